// The console's few scripts. Pages work without them; they add a live script preview, an
// import's moving progress bar and confirmations before destructive buttons. Values are put in
// the page as text (textContent), never as HTML.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function confirmations() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  });
}

function scriptPreview() {
  const panel = document.getElementById("script-preview");
  const script = document.getElementById("script");
  if (!panel || !script) {
    return;
  }
  const seller = document.getElementById("seller_name");
  const text = document.getElementById("script-text");
  const source = document.getElementById("script-source");
  const unknown = document.getElementById("script-unknown");
  const campaignId = panel.dataset.campaignId ? Number(panel.dataset.campaignId) : null;
  let timer = null;
  let sent = 0;

  async function refresh() {
    const mine = ++sent;
    const response = await fetch(panel.dataset.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ script: script.value, seller: seller ? seller.value : "", campaign_id: campaignId }),
    });
    if (!response.ok || mine !== sent) {
      return;
    }
    const filled = await response.json();
    text.textContent = filled.text || "The script is empty.";
    source.textContent = "Filled in with " + filled.source + ".";
    unknown.textContent = filled.unknown.length
      ? "Not a field of this lead: " + filled.unknown.map((name) => "{" + name + "}").join(", ") + " (shown as written)."
      : "";
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  script.addEventListener("input", later);
  if (seller) {
    seller.addEventListener("input", later);
  }
  refresh();
}

function importProgress() {
  const card = document.getElementById("import-progress");
  if (!card || card.dataset.running !== "yes") {
    return;
  }
  const bar = document.getElementById("import-bar");
  const label = document.getElementById("import-percent");
  const number = new Intl.NumberFormat("en-US");

  async function poll() {
    let status;
    try {
      const response = await fetch(card.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) {
        throw new Error(String(response.status));
      }
      status = await response.json();
    } catch (error) {
      label.textContent = "Progress unavailable; retrying…";
      setTimeout(poll, 3000);
      return;
    }
    const expected = Math.max(status.expected_rows || 0, status.rows, 1);
    bar.max = expected;
    bar.value = status.rows;
    label.textContent = number.format(status.rows) + " of " + number.format(expected) + " rows (" + Math.floor((100 * status.rows) / expected) + "%)";
    for (const name of ["imported", "duplicates", "invalid", "dnc"]) {
      const cell = card.querySelector('[data-count="' + name + '"]');
      if (cell) {
        cell.textContent = number.format(status[name]);
      }
    }
    if (status.status === "running") {
      setTimeout(poll, 700);
    } else {
      // The finished page shows the summary and the rows that were not imported.
      window.location.reload();
    }
  }
  poll();
}

function dialModeForecast() {
  const card = document.getElementById("forecast");
  if (!card) {
    return;
  }
  const basis = document.getElementById("forecast-basis");
  const table = document.getElementById("forecast-table");
  const percent = (value, digits) => (100 * value).toFixed(digits) + "%";
  fetch(card.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then((response) => {
      if (!response.ok) {
        throw new Error(String(response.status));
      }
      return response.json();
    })
    .then((found) => {
      const figures = found.typical
        ? "a typical campaign's figures (only " + found.attempts + " calls recorded yet)"
        : "its last " + found.attempts + " calls: " + percent(found.live_rate, 0) + " answered by a person, " +
          found.talk_s + " s of talk, " + found.wrap_s + " s of wrap-up";
      basis.textContent = "An hour with " + found.agents + " agent" + (found.agents === 1 ? "" : "s") + ", on " + figures + ".";
      const body = table.querySelector("tbody");
      for (const mode of found.modes) {
        const row = body.insertRow();
        row.insertCell().textContent = mode.mode;
        for (const text of [mode.contacts_per_hour.toFixed(0), percent(mode.utilisation, 0), percent(mode.abandon_rate, 1)]) {
          const cell = row.insertCell();
          cell.textContent = text;
          cell.className = "num";
        }
        if (mode.abandon_rate > found.abandon_target) {
          row.classList.add("over-target");
          row.cells[3].title = "over the campaign's abandon target";
        }
      }
      table.hidden = false;
    })
    .catch(() => {
      basis.textContent = "The forecast could not be computed; try again later, or run dialer forecast.";
    });
}

document.addEventListener("DOMContentLoaded", () => {
  confirmations();
  scriptPreview();
  importProgress();
  dialModeForecast();
});
