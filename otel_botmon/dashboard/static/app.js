// otel_botmon dashboard. No framework, no CDN: plain DOM and SVG.
// Alert and health texts can hold exception text from anywhere, so every piece of
// server data goes into the page through textContent / setAttribute, never as HTML.
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SEVERITIES = ["info", "warning", "critical", "emergency"];
  const state = { data: null, ws: null, retry: 1000, pollTimer: null, details: {} };

  // The access token comes from the URL fragment (#token=...), which browsers never send
  // to the server, and is kept for this tab only.
  function readToken() {
    const match = /(?:^|[#&])token=([^&]+)/.exec(window.location.hash || "");
    if (match) {
      sessionStorage.setItem("botmon-token", decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem("botmon-token");
  }
  const token = readToken();

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function notice(text) {
    const box = $("notice");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function fmtDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds || 0));
    const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    const m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }

  function fmtNumber(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    return Number(value).toFixed(digits === undefined ? 1 : digits);
  }

  function fmtTime(epoch) {
    if (!epoch) return "–";
    return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["Authorization"] = "Bearer " + token;
    const response = await fetch(path, {
      method: method, headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let payload = null;
    try { payload = await response.json(); } catch (e) { payload = null; }
    if (!response.ok) {
      const detail = payload && payload.detail ? payload.detail : response.statusText;
      const error = new Error(response.status + " " + (typeof detail === "string" ? detail : JSON.stringify(detail)));
      error.status = response.status;
      throw error;
    }
    return payload;
  }

  // --- rendering ------------------------------------------------------------------

  function renderStatus(status) {
    const badge = $("overall");
    badge.textContent = status.overall_health;
    badge.className = "badge status-" + status.overall_health;
    $("uptime").textContent = status.running ? fmtDuration(status.uptime_seconds) : "stopped";
    for (const sev of SEVERITIES) {
      const node = document.querySelector('[data-severity="' + sev + '"]');
      node.textContent = String((status.alerts_by_severity || {})[sev] || 0);
    }
  }

  function renderComponents(health) {
    const body = $("components").tBodies[0];
    const rows = [];
    for (const [name, result] of Object.entries(health.components || {})) {
      const row = el("tr", { "data-component": name });
      row.appendChild(el("td", {}, name));
      row.appendChild(el("td", { "class": "status " + result.status }, result.status));
      row.appendChild(el("td", {}, result.message));
      row.appendChild(el("td", {}, (result.checked_at || "").replace("T", " ").slice(0, 19)));
      rows.push(row);
    }
    body.replaceChildren.apply(body, rows);
  }

  const METRICS = [
    ["cpu_percent", "CPU", "%", 1], ["memory_percent", "Memory", "%", 1],
    ["disk_percent", "Disk", "%", 1], ["trades_total", "Trades", "", 0],
    ["trades_failed", "Failed trades", "", 0], ["trade_latency_p50_ms", "Trade p50", " ms", 1],
    ["trade_latency_p95_ms", "Trade p95", " ms", 1], ["api_requests_total", "API calls", "", 0],
    ["api_errors_total", "API errors", "", 0], ["api_latency_avg_ms", "API latency", " ms", 1],
    ["api_latency_p95_ms", "API p95", " ms", 1], ["api_error_rate", "API error rate", " %", 1, 100],
    ["pnl_realized", "Realized P&L", "", 2], ["positions_closed", "Closed positions", "", 0],
    ["win_rate", "Win rate", " %", 1],
  ];

  function renderMetrics(performance) {
    const current = performance.current || {};
    const cards = METRICS.map(function (m) {
      const raw = current[m[0]];
      const value = raw === null || raw === undefined ? null : raw * (m[4] || 1);
      const card = el("div", { "class": "metric", "data-metric": m[0] });
      card.appendChild(el("span", { "class": "label" }, m[1]));
      card.appendChild(el("span", { "class": "value" }, value === null ? "–" : fmtNumber(value, m[3]) + m[2]));
      return card;
    });
    const custom = performance.custom_metrics || {};
    for (const [name, summary] of Object.entries(custom)) {
      const card = el("div", { "class": "metric custom", "data-metric": name });
      card.appendChild(el("span", { "class": "label" }, name));
      card.appendChild(el("span", { "class": "value" },
        summary.last === null ? "–" : fmtNumber(summary.last, 2) + (summary.unit ? " " + summary.unit : "")));
      cards.push(card);
    }
    const box = $("metrics");
    box.replaceChildren.apply(box, cards);
  }

  // A line chart of one or two series over time, drawn as SVG polylines.
  function lineChart(svg, times, series, scale) {
    const W = 400, H = 140, L = 36, R = 6, T = 8, B = 16;
    const nodes = [];
    const values = [];
    for (const s of series) for (const v of s.values) if (v !== null && v !== undefined) values.push(v * (scale || 1));
    if (!values.length || times.length < 1) {
      const empty = document.createElementNS(SVG_NS, "text");
      empty.setAttribute("x", String(W / 2)); empty.setAttribute("y", String(H / 2));
      empty.setAttribute("text-anchor", "middle");
      empty.textContent = "no data yet";
      svg.replaceChildren(empty);
      return;
    }
    let lo = Math.min(0, Math.min.apply(null, values));
    let hi = Math.max.apply(null, values);
    if (hi === lo) hi = lo + 1;
    const t0 = times[0], t1 = times[times.length - 1] === t0 ? t0 + 1 : times[times.length - 1];
    const x = function (t) { return L + (W - L - R) * (t - t0) / (t1 - t0); };
    const y = function (v) { return T + (H - T - B) * (1 - (v - lo) / (hi - lo)); };
    for (const v of [lo, (lo + hi) / 2, hi]) {
      const line = document.createElementNS(SVG_NS, "line");
      line.setAttribute("class", "grid");
      line.setAttribute("x1", String(L)); line.setAttribute("x2", String(W - R));
      line.setAttribute("y1", String(y(v))); line.setAttribute("y2", String(y(v)));
      const label = document.createElementNS(SVG_NS, "text");
      label.setAttribute("x", String(L - 3)); label.setAttribute("y", String(y(v) + 3));
      label.setAttribute("text-anchor", "end");
      label.textContent = Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1);
      nodes.push(line, label);
    }
    series.forEach(function (s, i) {
      const points = [];
      s.values.forEach(function (v, j) {
        if (v !== null && v !== undefined) points.push(x(times[j]).toFixed(1) + "," + y(v * (scale || 1)).toFixed(1));
      });
      if (points.length === 1) {
        const xy = points[0].split(",");
        const dot = document.createElementNS(SVG_NS, "circle");
        dot.setAttribute("class", "dot s" + i);
        dot.setAttribute("cx", xy[0]); dot.setAttribute("cy", xy[1]); dot.setAttribute("r", "2.5");
        nodes.push(dot);
      }
      const poly = document.createElementNS(SVG_NS, "polyline");
      poly.setAttribute("class", "series s" + i);
      poly.setAttribute("points", points.join(" "));
      nodes.push(poly);
      const legend = document.createElementNS(SVG_NS, "text");
      legend.setAttribute("class", "legend-" + i);
      legend.setAttribute("x", String(L + 6 + i * 90)); legend.setAttribute("y", String(H - 3));
      legend.textContent = s.name;
      nodes.push(legend);
    });
    svg.replaceChildren.apply(svg, nodes);
  }

  function renderCharts(performance) {
    const h = performance.history || {};
    const t = h.timestamp || [];
    lineChart($("chart-host"), t, [{ name: "cpu", values: h.cpu_percent || [] }, { name: "memory", values: h.memory_percent || [] }]);
    lineChart($("chart-trade"), t, [{ name: "p50", values: h.trade_latency_p50_ms || [] }, { name: "p95", values: h.trade_latency_p95_ms || [] }]);
    lineChart($("chart-api"), t, [{ name: "avg", values: h.api_latency_avg_ms || [] }, { name: "p95", values: h.api_latency_p95_ms || [] }]);
    lineChart($("chart-errors"), t, [{ name: "errors", values: h.api_error_rate || [] }], 100);
    lineChart($("chart-pnl"), t, [{ name: "P&L", values: h.pnl_realized || [] }]);
  }

  function alertButton(label, cls, alert, action) {
    const button = el("button", { "type": "button", "class": cls, "data-alert-id": alert.id }, label);
    button.addEventListener("click", function () {
      button.disabled = true;
      action(alert.id).then(refresh).catch(function (err) {
        button.disabled = false;
        notice((err.status === 401 ? "Not allowed (open the dashboard with #token=...): " : "Failed: ") + err.message);
      });
    });
    return button;
  }

  // The alert's event log: fired, acknowledged, every notification attempt, resolved.
  function renderEvents(events) {
    const list = el("ul", { "class": "events" });
    for (const e of events) {
      const d = e.detail || {};
      let what = e.kind;
      if (e.kind === "notified") what += " via " + (d.channel || "?") + ": " + (d.outcome || (d.ok ? "delivered" : "failed")) + (d.detail ? " (" + d.detail + ")" : "");
      else if (d.by) what += " by " + d.by;
      list.appendChild(el("li", {}, fmtTime(e.at) + "  " + what));
    }
    return list;
  }

  function detailsButton(alert) {
    const open = !!state.details[alert.id];
    const button = el("button", { "type": "button", "class": "details-btn", "data-alert-id": alert.id },
      open ? "Hide events" : "Events");
    button.addEventListener("click", function () {
      if (state.details[alert.id]) {
        delete state.details[alert.id];
        if (state.data) renderAlerts(state.data.alerts);
        return;
      }
      api("GET", "/api/alerts/" + encodeURIComponent(alert.id)).then(function (body) {
        state.details[alert.id] = body.events || [];
        if (state.data) renderAlerts(state.data.alerts);
      }).catch(function (err) { notice("Loading events failed: " + err.message); });
    });
    return button;
  }

  function renderAlerts(alerts) {
    const seen = new Set();
    const list = [];
    for (const a of (alerts.active || []).concat(alerts.recent || [])) {
      if (!seen.has(a.id)) { seen.add(a.id); list.push(a); }
    }
    const rows = list.map(function (a) {
      const row = el("tr", { "class": "alert " + a.state, "data-alert-id": a.id });
      row.appendChild(el("td", {}, "")).appendChild(el("span", { "class": "sevtag " + a.severity }, a.severity));
      const stateText = a.state + (a.acknowledged ? " · acknowledged" + (a.acknowledged_by ? " by " + a.acknowledged_by : "") : "");
      row.appendChild(el("td", { "class": "alert-state" }, stateText));
      const text = el("td", {});
      text.appendChild(el("span", { "class": "title" }, a.title));
      text.appendChild(el("span", { "class": "message" }, a.message));
      if (state.details[a.id]) text.appendChild(renderEvents(state.details[a.id]));
      row.appendChild(text);
      row.appendChild(el("td", {}, fmtTime(a.fired_at || a.started_at)));
      const actions = el("td", { "class": "actions" });
      const active = a.state === "firing" || a.state === "pending";
      if (active && !a.acknowledged) {
        actions.appendChild(alertButton("Acknowledge", "ack-btn", a, function (id) {
          return api("POST", "/api/alerts/" + encodeURIComponent(id) + "/acknowledge", { user: "dashboard" });
        }));
      }
      actions.appendChild(detailsButton(a));
      if (active) {
        actions.appendChild(alertButton("Resolve", "resolve-btn", a, function (id) {
          return api("POST", "/api/alerts/" + encodeURIComponent(id) + "/resolve", { user: "dashboard" });
        }));
      }
      row.appendChild(actions);
      return row;
    });
    const body = $("alerts").tBodies[0];
    body.replaceChildren.apply(body, rows);
    $("no-alerts").hidden = rows.length > 0;
  }

  function render(data) {
    state.data = data;
    renderStatus(data.status);
    renderComponents(data.health);
    renderMetrics(data.performance);
    renderCharts(data.performance);
    renderAlerts(data.alerts);
    document.body.setAttribute("data-loaded", "true");
  }

  // --- data flow ----------------------------------------------------------------------

  function refresh() {
    return api("GET", "/api/dashboard").then(render).catch(function (err) { notice("Refresh failed: " + err.message); });
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const query = token ? "?token=" + encodeURIComponent(token) : "";
    const ws = new WebSocket(scheme + window.location.host + "/ws" + query);
    state.ws = ws;
    ws.onopen = function () {
      state.retry = 1000;
      $("connection").textContent = "live";
      if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null; }
    };
    ws.onmessage = function (event) {
      const message = JSON.parse(event.data);
      if (message.type === "dashboard") render(message.data);
    };
    ws.onclose = function () {
      $("connection").textContent = "reconnecting…";
      if (!state.pollTimer) state.pollTimer = setInterval(refresh, 5000);
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 30000);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("refresh").addEventListener("click", function () { notice(""); refresh(); });
    $("force-check").addEventListener("click", function () {
      const button = $("force-check");
      button.disabled = true;
      api("POST", "/api/health/check").then(function () { notice(""); return refresh(); })
        .catch(function (err) { notice("Health check failed: " + err.message); })
        .finally(function () { button.disabled = false; });
    });
    setInterval(function () {
      if (state.data && state.data.status.running) {
        state.data.status.uptime_seconds += 1;
        $("uptime").textContent = fmtDuration(state.data.status.uptime_seconds);
      }
    }, 1000);
    refresh().then(connect);
  });
})();
