// The live dashboard. The server pushes the board (campaigns, agents, the floor's totals) over
// server-sent events whenever the database changes; the page never polls. Figures arrive as
// text formatted by the server and go in with textContent; charts are images the server draws,
// loaded again only when their hourly sums changed.
"use strict";

(function () {
  const root = document.getElementById("board");
  if (!root) {
    return;
  }
  let clockOffset = 0;

  function setText(element, text) {
    if (element.textContent !== text) {
      element.textContent = text;
      // A changed figure glows for a moment, so an eye on the floor catches it.
      element.classList.remove("bump");
      void element.offsetWidth;
      element.classList.add("bump");
    }
  }

  function setLevel(element, level) {
    for (const name of Array.from(element.classList)) {
      if (name.startsWith("level-")) {
        element.classList.remove(name);
      }
    }
    element.classList.add("level-" + level);
  }

  function clock(seconds) {
    const total = Math.max(0, Math.floor(seconds));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const secs = String(total % 60).padStart(2, "0");
    return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + secs : minutes + ":" + secs;
  }

  function renderCampaign(card, campaign) {
    for (const element of card.querySelectorAll("[data-field]")) {
      const value = campaign.fields[element.dataset.field];
      if (value !== undefined) {
        setText(element, value);
      }
    }
    for (const element of card.querySelectorAll("[data-level]")) {
      setLevel(element, campaign.levels[element.dataset.level]);
    }
    for (const bar of card.querySelectorAll("[data-gauge]")) {
      bar.setAttribute("width", String(campaign.gauges[bar.dataset.gauge] * 100));
    }
    for (const line of card.querySelectorAll("[data-gauge-line]")) {
      const x = String(campaign.gauges[line.dataset.gaugeLine] * 100);
      line.setAttribute("x1", x);
      line.setAttribute("x2", x);
    }
    const badge = card.querySelector("[data-status]");
    badge.textContent = campaign.status;
    badge.className = "badge badge-" + campaign.status;
    for (const form of card.querySelectorAll("form[data-action]")) {
      form.hidden = !campaign.actions.includes(form.dataset.action);
    }
    for (const image of card.querySelectorAll("img[data-chart]")) {
      if (image.dataset.version !== campaign.charts) {
        image.dataset.version = campaign.charts;
        image.src = image.dataset.chart + "?v=" + encodeURIComponent(campaign.charts);
      }
    }
    const why = card.querySelector("[data-why]");
    why.hidden = !campaign.why;
    if (campaign.why) {
      why.querySelector("[data-why-summary]").textContent = campaign.why.summary;
      const rows = campaign.why.reasons.map((reason) => {
        const row = document.createElement("tr");
        for (const [text, className] of [[reason.leads, "num"], [reason.label, ""], [reason.when, "sub"]]) {
          const cell = document.createElement("td");
          cell.textContent = text;
          if (className) {
            cell.className = className;
          }
          row.append(cell);
        }
        return row;
      });
      why.querySelector("[data-why-reasons]").replaceChildren(...rows);
    }
  }

  function renderAgents(agents) {
    const rows = agents.map((agent) => {
      const row = document.createElement("tr");
      const cells = [agent.username, agent.campaign, null, agent.for, String(agent.calls), agent.node];
      cells.forEach((text, i) => {
        const cell = document.createElement("td");
        if (i === 2) {
          const badge = document.createElement("span");
          badge.className = "badge agent-" + agent.state;
          badge.textContent = agent.label;
          cell.append(badge);
        } else {
          cell.textContent = text;
        }
        if (i === 3) {
          cell.className = "num timer";
          cell.dataset.since = agent.since;
        } else if (i === 4) {
          cell.className = "num";
        } else if (i === 5) {
          cell.className = "sub";
        }
        row.append(cell);
      });
      return row;
    });
    document.getElementById("agents-rows").replaceChildren(...rows);
    document.getElementById("agents-table").hidden = agents.length === 0;
    document.getElementById("agents-empty").hidden = agents.length > 0;
  }

  function render(board) {
    clockOffset = Date.parse(board.now) - Date.now();
    const ids = board.campaigns.map((c) => String(c.id)).join(",");
    if (ids !== root.dataset.campaigns) {
      // A campaign started or ended: the page is drawn again around the new set.
      window.location.reload();
      return;
    }
    for (const campaign of board.campaigns) {
      const card = root.querySelector('[data-campaign="' + campaign.id + '"]');
      if (card) {
        renderCampaign(card, campaign);
      }
    }
    for (const element of root.querySelectorAll("[data-floor]")) {
      setText(element, board.floor[element.dataset.floor]);
    }
    renderAgents(board.agents);
    const at = new Date(Date.parse(board.now));
    document.getElementById("board-updated").textContent = "updated " + at.toLocaleTimeString();
  }

  function tick() {
    const now = Date.now() + clockOffset;
    for (const cell of root.querySelectorAll("td.timer[data-since]")) {
      cell.textContent = clock((now - Date.parse(cell.dataset.since)) / 1000);
    }
  }

  function setLive(ok, text) {
    const dot = document.getElementById("live-status");
    dot.classList.toggle("live-off", !ok);
    dot.textContent = ok ? "live" : text || "reconnecting…";
  }

  function connect() {
    const source = new EventSource(root.dataset.events);
    source.addEventListener("board", (event) => {
      setLive(true);
      render(JSON.parse(event.data));
    });
    source.addEventListener("busy", () => setLive(false, "too many screens open: retrying in 30 s"));
    source.onerror = () => {
      setLive(false);
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(() => window.location.reload(), 3000);
      }
    };
  }

  connect();
  setInterval(tick, 1000);
})();
