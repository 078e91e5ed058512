// The agent desktop. The server pushes the agent's state and the screen pop of each call over
// server-sent events the moment the database shows them; the page never polls. Actions are the
// page's own forms, sent with fetch so that notes typed during a call survive. Values from the
// server are put in the page as text (textContent), never as HTML.
"use strict";

(function () {
  const desk = document.getElementById("desk");
  if (!desk) {
    return;
  }
  const byId = (id) => document.getElementById(id);
  const IN_CALL = ["reserved", "on_call", "wrap_up"];
  let current = null;
  let clockOffset = 0;
  let popKey = null;
  const seenNotices = new Set();
  const clocks = [];

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function clock(seconds) {
    const total = Math.max(0, Math.floor(seconds));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const secs = String(total % 60).padStart(2, "0");
    return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + secs : minutes + ":" + secs;
  }

  function serverNow() {
    return Date.now() + clockOffset;
  }

  function notice(text, kind) {
    const box = byId("desk-notices");
    const line = document.createElement("div");
    line.className = "flash flash-" + kind;
    line.setAttribute("role", kind === "error" ? "alert" : "status");
    line.textContent = text;
    box.prepend(line);
    while (box.children.length > 3) {
      box.lastElementChild.remove();
    }
    if (kind !== "error") {
      setTimeout(() => line.remove(), 8000);
    }
  }

  function setLive(ok, text) {
    const dot = byId("live-status");
    dot.classList.toggle("live-off", !ok);
    dot.textContent = ok ? "live" : text || "reconnecting…";
  }

  function show(element, visible) {
    element.hidden = !visible;
  }

  function enable(selector, enabled) {
    for (const element of desk.querySelectorAll(selector)) {
      element.disabled = !enabled;
    }
  }

  function fillList(list, pairs) {
    list.replaceChildren();
    for (const [label, value] of pairs) {
      const term = document.createElement("dt");
      term.textContent = label;
      const detail = document.createElement("dd");
      detail.textContent = value;
      list.append(term, detail);
    }
  }

  function renderPop(pop) {
    const key = pop ? pop.key : null;
    show(byId("call-pop"), Boolean(pop));
    show(byId("call-idle"), !pop);
    if (key === popKey) {
      return;
    }
    popKey = key;
    clocks.length = 0;
    if (!pop) {
      return;
    }
    byId("pop-name").textContent = pop.name;
    byId("pop-phone").textContent = pop.phone || "";
    byId("pop-attempts").textContent = pop.attempts_label;
    const reason = byId("pop-reason");
    reason.textContent = pop.reason_label;
    reason.className = "badge badge-reason reason-" + pop.reason;
    const highlights = byId("pop-highlights");
    highlights.replaceChildren(
      ...pop.highlights.map(([label, value]) => {
        const box = document.createElement("div");
        box.className = "highlight";
        const name = document.createElement("span");
        name.className = "figure-label";
        name.textContent = label;
        const figure = document.createElement("span");
        figure.className = "figure-value";
        figure.textContent = value;
        box.append(name, figure);
        return box;
      })
    );
    show(highlights, pop.highlights.length > 0);
    fillList(byId("pop-fields"), pop.fields);
    show(byId("pop-fields-block"), pop.fields.length > 0);
    fillList(byId("pop-custom"), pop.custom);
    show(byId("pop-custom-block"), pop.custom.length > 0);
    const regF = byId("pop-reg-f");
    fillList(regF, pop.reg_f);
    pop.reg_f.forEach(([, , binds], i) => regF.children[2 * i + 1].classList.toggle("binds", binds));
    show(regF, pop.reg_f.length > 0);
    // A new call starts unconfirmed: the last call's party is not this one's.
    for (const radio of desk.querySelectorAll('input[name="party"]')) {
      radio.checked = false;
    }
    gateParty();
    byId("pop-script").textContent = pop.script || "This campaign has no script.";
    const clockBox = byId("pop-clock");
    clockBox.replaceChildren();
    const label = document.createElement("span");
    label.className = "sub";
    label.textContent = "Their local time";
    clockBox.append(label);
    for (const zone of pop.zones) {
      let format;
      try {
        format = new Intl.DateTimeFormat("en-GB", {
          timeZone: zone,
          weekday: "short",
          hour: "2-digit",
          minute: "2-digit",
          second: "2-digit",
        });
      } catch (error) {
        continue;
      }
      const item = document.createElement("span");
      item.className = "zone";
      const time = document.createElement("strong");
      const name = document.createElement("span");
      name.className = "sub";
      name.textContent = zone.replace(/_/g, " ");
      item.append(time, " ", name);
      clockBox.append(item);
      clocks.push([time, format]);
    }
    if (!clocks.length) {
      const unknown = document.createElement("span");
      unknown.textContent = "unknown (no time zone for this number)";
      clockBox.append(unknown);
    }
    tick();
  }

  // Collections: the debt is discussed with the debtor alone. Until the agent confirms the
  // right party, the account, its counters and the promise to pay stay closed, and so do the
  // codes only the debtor can be given (their shortcut keys too: a disabled button is skipped).
  function gateParty() {
    if (!byId("party-choice")) {
      return;
    }
    const checked = desk.querySelector('input[name="party"]:checked');
    const confirmed = Boolean(checked) && checked.value === "right";
    show(byId("pop-debt"), confirmed);
    show(byId("pop-details"), confirmed);
    byId("promise-to-pay").disabled = !confirmed;
    const wrapping = Boolean(current) && current.state === "wrap_up";
    for (const button of desk.querySelectorAll("button.disposition[data-right-party]")) {
      button.disabled = !wrapping || !confirmed;
    }
  }

  function renderTransfer(names) {
    const select = byId("transfer-agent");
    const chosen = select.value;
    const options = [["", names.length ? "— choose an agent —" : "— none ready —"]].concat(names.map((n) => [n, n]));
    select.replaceChildren(
      ...options.map(([value, text]) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = text;
        return option;
      })
    );
    select.value = names.includes(chosen) ? chosen : "";
  }

  function idleText(state) {
    if (state.state === "paused") {
      if (state.pause_code === "LOGIN") {
        return ["You are logged in, paused", "Go ready to take calls."];
      }
      return ["Paused (" + (state.pause_code || "no code") + ")", "No calls come to you. Go ready when you are back."];
    }
    if (state.state === "reserved") {
      return ["Connecting a call…", "Your phone rings in a moment."];
    }
    if (state.campaign_status && state.campaign_status !== "active") {
      return ["Waiting for a call", "The campaign is " + state.campaign_status + ": no calls until a manager starts it."];
    }
    if (!state.node) {
      return ["Waiting for a call", "No dialer node has taken your session yet; calls come once the campaign runs."];
    }
    return ["Waiting for a call", "When a person answers, your phone picks up and their details show here."];
  }

  function render(state) {
    clockOffset = Date.parse(state.now) - Date.now();
    if (state.state === "logged_out" || String(state.campaign_id) !== desk.dataset.campaignId) {
      // Logged out, or into another campaign, from another window: the page starts again.
      window.location.reload();
      return;
    }
    current = state;
    desk.dataset.state = state.state;
    byId("state-pill").className = "state-pill state-" + state.state;
    let label = state.label;
    if (state.pause_after_call && IN_CALL.includes(state.state)) {
      label += " · pause (" + state.pause_after_call + ") next";
    }
    byId("state-label").textContent = label;
    byId("campaign-status").textContent = "campaign " + (state.campaign_status || "unknown");
    byId("node-status").textContent = state.node ? "· dialer node " + state.node : "· waiting for a dialer node";
    byId("calls-taken").textContent = String(state.calls_taken);
    const [title, hint] = idleText(state);
    byId("idle-title").textContent = title;
    byId("idle-hint").textContent = hint;

    const idle = state.state === "ready" || state.state === "paused";
    const previewing = state.state === "reserved" && state.pop && state.pop.preview && !state.attempt;
    renderPop(state.pop);
    show(byId("preview-actions"), Boolean(previewing));
    show(byId("call-controls"), state.state === "on_call" || (state.state === "reserved" && Boolean(state.attempt)));
    enable("#transfer-go, #transfer-agent, #transfer-number", state.state === "on_call");
    show(byId("disposition-card"), state.state === "on_call" || state.state === "wrap_up");
    enable("button.disposition", state.state === "wrap_up");
    gateParty();
    byId("disposition-card").classList.toggle("attention", state.state === "wrap_up");
    byId("disposition-hint").textContent = state.state === "wrap_up" ? "Keys 1–9 (outside the notes)" : "After the call ends";
    show(byId("dial-tools"), idle);
    enable("#go-ready", state.state === "paused");
    enable("#go-logout", idle);
    renderTransfer(state.transfer_to);
    for (const item of state.notices) {
      if (!seenNotices.has(item.id)) {
        seenNotices.add(item.id);
        notice(item.text, "error");
      }
    }
    tick();
  }

  function tick() {
    if (current) {
      const elapsed = (serverNow() - Date.parse(current.since)) / 1000;
      let text = clock(elapsed);
      if (current.state === "wrap_up" && current.wrap_total_s) {
        text += " of " + clock(current.wrap_total_s);
        byId("state-timer").classList.toggle("late", elapsed > current.wrap_total_s * 0.8);
      } else {
        byId("state-timer").classList.remove("late");
      }
      byId("state-timer").textContent = text;
    }
    const now = new Date(serverNow());
    for (const [element, format] of clocks) {
      element.textContent = format.format(now);
    }
  }

  async function send(form, submitter) {
    const body = new FormData(form);
    if (submitter && submitter.name) {
      body.set(submitter.name, submitter.value);
    }
    if (form.classList.contains("transfer") && String(body.get("number") || "").trim()) {
      body.delete("agent");
    }
    const buttons = form.querySelectorAll("button");
    const wasDisabled = Array.from(buttons, (b) => b.disabled);
    buttons.forEach((b) => (b.disabled = true));
    let answer;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      });
      if (response.redirected && response.url.includes("/auth/login")) {
        window.location.reload();
        return;
      }
      answer = await response.json();
    } catch (error) {
      answer = { ok: false, error: "the console could not be reached; try again" };
    } finally {
      buttons.forEach((b, i) => (b.disabled = wasDisabled[i]));
    }
    if (answer.ok) {
      notice(answer.message, "success");
      if (form.hasAttribute("data-reset")) {
        form.reset();
      }
      if (form.hasAttribute("data-reload")) {
        window.location.reload();
      }
    } else {
      notice(answer.reason ? answer.error + " [" + answer.reason + "]" : answer.error, "error");
    }
    if (current) {
      render(current);
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-desk-action]");
    if (!form) {
      return;
    }
    event.preventDefault();
    send(form, event.submitter);
  });

  document.addEventListener("change", (event) => {
    if (event.target.name === "party") {
      gateParty();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (!current || current.state !== "wrap_up" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    // Keys typed into a field are the field's; a radio or a checkbox takes no digits.
    if (event.target.closest && event.target.closest('textarea, select, input:not([type="radio"]):not([type="checkbox"])')) {
      return;
    }
    const button = desk.querySelector('button.disposition[data-key="' + event.key + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });

  function connect() {
    const source = new EventSource(desk.dataset.events);
    source.addEventListener("desk", (event) => {
      setLive(true);
      render(JSON.parse(event.data));
    });
    source.addEventListener("busy", () => setLive(false, "too many screens open: retrying in 30 s"));
    source.onerror = () => {
      setLive(false);
      if (source.readyState === EventSource.CLOSED) {
        // Refused rather than cut (signed out, say; a cut connection reconnects by itself):
        // the page loads again, or the sign-in page does.
        setTimeout(() => window.location.reload(), 3000);
      }
    };
  }

  // The server's own messages (logged in, say) fade like the page's.
  for (const flash of document.querySelectorAll(".flashes .flash-success, .flashes .flash-info")) {
    setTimeout(() => flash.remove(), 8000);
  }
  connect();
  setInterval(tick, 1000);
})();
