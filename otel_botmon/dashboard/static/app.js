// otel_botmon dashboard. No framework, no CDN: plain DOM and SVG.
// Alert and health texts can hold exception text from anywhere, so every piece of
// server data goes into the page through textContent / setAttribute, never as HTML.
// Rows are keyed by id and updated in place (text selection and focus survive updates).
"use strict";

(function () {
  const { el, setText, setAttr, setClass, keyed, fmtAge, fmtNumber, fmtUtc } = window.BotmonDom;
  const { lineChart, showTip } = window.BotmonCharts;
  const SEVERITIES = ["emergency", "critical", "warning", "info"];
  const RANK = { emergency: 4, critical: 3, warning: 2, info: 1 };
  const UNDO_MS = 5000;
  const state = {
    view: null, ws: null, retry: 1000, pollTimer: null, connected: false,
    lastData: 0, serverSkew: 0, details: {}, resolving: {}, asked: false,
  };

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

  function notice(text) {
    const box = $("notice");
    setText(box, text || "");
    box.hidden = !text;
  }

  function now() { return Date.now() / 1000; }
  function serverNow() { return now() + state.serverSkew; }

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

  function failed(err) {
    notice((err.status === 401 ? "Not allowed (open the dashboard with #token=...): " : "Failed: ") + err.message);
  }

  // a matcher as Alertmanager writes it (and the server reads it): backslash, line feed
  // and double quote escaped; JSON.stringify's other escapes (\t, \u0001) would stay literal
  function matcherText(name, value) {
    return name + '="' + String(value).replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
      .replace(/"/g, '\\"') + '"';
  }

  // --- who is acting ----------------------------------------------------------------

  function userName() { return ($("you").value || "").trim(); }

  // The name is asked once: the first action without one points at the field; a second
  // click goes ahead as the token's name or "dashboard".
  function readyToAct() {
    if (userName() || state.asked || localStorage.getItem("botmon-asked")) return true;
    state.asked = true;
    localStorage.setItem("botmon-asked", "1");
    $("you").classList.add("ask");
    $("you").focus();
    notice("Who is acting? Type your name at the top (it is remembered), or click again to act as \"dashboard\".");
    return false;
  }

  function actionBody(note) {
    const body = {};
    if (userName()) body.user = userName();
    if (note) body.note = note;
    return Object.keys(body).length ? body : undefined;
  }

  // --- status, headline, title ---------------------------------------------------------

  function firingAlerts(view) {
    return ((view.alerts || {}).active || []).filter(function (a) { return a.state === "firing"; })
      .sort(function (a, b) {
        return (RANK[b.severity] || 0) - (RANK[a.severity] || 0) || (a.fired_at || a.started_at || 0) - (b.fired_at || b.started_at || 0);
      });
  }

  function headline(status, firing) {
    const overall = String(status.overall_health || "unknown").toUpperCase();
    if (!firing.length) return overall;
    return overall + " · " + firing[0].title + (firing.length > 1 ? " (+" + (firing.length - 1) + ")" : "");
  }

  function renderStatus(view, firing) {
    const status = view.status;
    const badge = $("overall");
    const text = headline(status, firing);
    setText(badge, text);
    setClass(badge, "badge status-" + status.overall_health);
    const title = text + " · otel_botmon";
    if (document.title !== title) document.title = title;
    for (const sev of SEVERITIES) {
      setText(document.querySelector('[data-severity="' + sev + '"]'), (status.alerts_by_severity || {})[sev] || 0);
    }
    setText($("pending-total"), status.pending_alerts || 0);
  }

  // --- alerts ------------------------------------------------------------------------

  const HIDDEN_LABELS = { alertname: 1, severity: 1 };

  function safeUrl(url) { return /^https?:\/\//i.test(String(url || "")) ? String(url) : null; }

  function createAlertItem(alert) {
    const li = el("li", { "data-alert-id": alert.id });
    const head = li.appendChild(el("div", { "class": "a-head" }));
    head.appendChild(el("span", { "class": "sevtag" }));
    head.appendChild(el("span", { "class": "title" }));
    head.appendChild(el("span", { "class": "age" }));
    const meta = li.appendChild(el("div", { "class": "a-meta" }));
    meta.appendChild(el("span", { "class": "value" }));
    meta.appendChild(el("span", { "class": "labels" }));
    const runbook = meta.appendChild(el("a", { "class": "runbook", "rel": "noopener noreferrer", "target": "_blank" }, "runbook"));
    runbook.hidden = true;
    const idBox = meta.appendChild(el("span", { "class": "id-box" }));
    idBox.appendChild(el("code", { "class": "short-id", "title": alert.id }, alert.id.slice(0, 8)));
    const copy = idBox.appendChild(el("button", { "type": "button", "class": "copy-btn link", "title": "Copy the full id" }, "copy"));
    copy.addEventListener("click", function () { copyId(alert.id, copy); });
    li.appendChild(el("div", { "class": "message" }));
    li.appendChild(el("div", { "class": "alert-state" }));
    if (alert.state === "firing") li.appendChild(createActions(alert));
    li.appendChild(el("ul", { "class": "events", "hidden": "" }));
    return li;
  }

  function createActions(alert) {
    const box = el("div", { "class": "actions" });
    const ack = box.appendChild(el("button", { "type": "button", "class": "ack-btn" }, "Acknowledge"));
    const resolve = box.appendChild(el("button", { "type": "button", "class": "resolve-btn" }, "Resolve"));
    const silence = box.appendChild(el("button", { "type": "button", "class": "silence-btn" }, "Silence 1h"));
    const events = box.appendChild(el("button", { "type": "button", "class": "details-btn" }, "Events"));
    const note = box.appendChild(el("input", { "type": "text", "class": "note", "maxlength": "500", "placeholder": "note (optional)", "aria-label": "Note" }));
    const id = alert.id;
    ack.addEventListener("click", function () {
      if (!readyToAct()) return;
      ack.disabled = true;
      api("POST", "/api/alerts/" + encodeURIComponent(id) + "/acknowledge", actionBody(note.value.trim()))
        .then(function () { note.value = ""; notice(""); return refresh(); })
        .catch(function (err) { ack.disabled = false; failed(err); });
    });
    resolve.addEventListener("click", function () {
      if (state.resolving[id]) { delete state.resolving[id]; tick(); return; }
      if (!readyToAct()) return;
      state.resolving[id] = { at: Date.now() + UNDO_MS, note: note.value.trim() };
      tick();
    });
    silence.addEventListener("click", function () {
      if (!readyToAct()) return;
      const current = findAlert(id);
      if (!current) return;
      const labels = current.labels || {};
      const matchers = labels.alertname ? [matcherText("alertname", labels.alertname)]
        : Object.keys(labels).map(function (k) { return matcherText(k, labels[k]); });
      const body = { matchers: matchers, duration_s: 3600, comment: note.value.trim() || "silenced from the dashboard" };
      if (userName()) body.created_by = userName();
      silence.disabled = true;
      api("POST", "/api/silences", body).then(function () { notice(""); return refresh(); })
        .catch(failed).finally(function () { silence.disabled = false; });
    });
    events.addEventListener("click", function () {
      if (state.details[id]) { delete state.details[id]; render(); return; }
      state.details[id] = { events: [], sig: null, loaded: 0 };
      loadEvents(id);
    });
    return box;
  }

  function copyId(id, button) {
    const done = function () { setText(button, "copied"); setTimeout(function () { setText(button, "copy"); }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(id).then(done).catch(function () { notice("Alert id: " + id); });
    } else {
      notice("Alert id: " + id);
    }
  }

  function loadEvents(id) {
    return api("GET", "/api/alerts/" + encodeURIComponent(id)).then(function (body) {
      if (!state.details[id]) return;
      state.details[id].events = body.events || [];
      state.details[id].loaded = now();
      render();
    }).catch(function (err) { notice("Loading events failed: " + err.message); });
  }

  function eventText(e) {
    const d = e.detail || {};
    let what = e.kind;
    if (e.kind === "notified") what += " via " + (d.channel || "?") + ": " + (d.outcome || (d.ok ? "delivered" : "failed")) + (d.detail ? " (" + d.detail + ")" : "");
    else if (d.by) what += " by " + d.by;
    if (d.note) what += " · " + d.note;
    return fmtUtc(e.at, true) + "  " + what;
  }

  function alertSignature(a) { return [a.state, a.acknowledged_by, a.resolved_at, a.value].join("|"); }

  // An alert of a rule on a KPI ("trade_latency_p95 > 2000ms") shows its value as that
  // KPI's card does (the same unit, seconds as ms, the same digits), with the threshold.
  function alertValueText(a) {
    if (a.value === null || a.value === undefined) return "";
    const view = state.view || {};
    const rule = (view.rules || []).find(function (r) { return r.name === a.rule_name; });
    const kpi = rule && rule.metric ? (view.kpis || {})[rule.metric] : null;
    let value = a.value, unit = "", digits = Math.abs(a.value) >= 100 ? 0 : 2;
    if (kpi) {
      unit = kpi.unit === "s" ? "ms" : kpi.unit === "quote currency" ? "quote ccy" : COUNT_UNITS.has(kpi.unit) ? "" : kpi.unit;
      if (kpi.unit === "s") value *= 1000;
      digits = KPI_DIGITS[kpi.unit] !== undefined ? KPI_DIGITS[kpi.unit] : 0;
    }
    const threshold = rule && rule.threshold !== null ? " (" + rule.op + " " + rule.threshold + (rule.unit || "") + ")" : "";
    return "value " + fmtNumber(value, digits) + (unit ? " " + unit : "") + threshold;
  }

  function updateAlertItem(li, a) {
    setClass(li, "alert sev-" + a.severity + " " + a.state + (a.acknowledged ? " acked" : ""));
    const q = function (sel) { return li.querySelector(sel); };
    setText(q(".sevtag"), a.severity.toUpperCase());
    setClass(q(".sevtag"), "sevtag " + a.severity);
    setText(q(".title"), a.title);
    const since = a.fired_at || a.started_at;
    q(".age").dataset.since = String(since || "");
    setAttr(q(".age"), "title", (a.state === "firing" ? "firing since " : "pending since ") + fmtUtc(since, true));
    setText(q(".age"), (a.state === "firing" ? "for " : "pending ") + fmtAge(serverNow() - since));
    setText(q(".value"), alertValueText(a));
    const labels = Object.keys(a.labels || {}).filter(function (k) { return !HIDDEN_LABELS[k]; }).slice(0, 8)
      .map(function (k) { return k + "=" + a.labels[k]; }).join("  ");
    setText(q(".labels"), labels);
    const ann = a.annotations || {};
    const runbook = safeUrl(ann.runbook_url || ann.runbook);
    q(".runbook").hidden = !runbook;
    setAttr(q(".runbook"), "href", runbook);
    setText(q(".message"), ann.summary && ann.summary !== a.title ? ann.summary + " — " + a.message : a.message);
    const ackText = a.acknowledged ? "ACK by " + (a.acknowledged_by || "?") + (a.acknowledged_at ? " · " + fmtAge(serverNow() - a.acknowledged_at) + " ago" : "") : "";
    setText(q(".alert-state"), ackText);
    q(".alert-state").dataset.ackAt = String(a.acknowledged_at || "");
    const ack = q(".ack-btn");
    if (ack) {
      setText(ack, a.acknowledged ? "Acknowledged" : "Acknowledge");
      if (a.acknowledged) ack.disabled = true;
    }
    const open = state.details[a.id];
    const list = q(".events");
    const details = q(".details-btn");
    if (details) setText(details, open ? "Hide events" : "Events");
    list.hidden = !open;
    if (open) {
      const sig = alertSignature(a);
      if (open.sig !== null && open.sig !== sig) loadEvents(a.id);  // refresh open lists on change
      open.sig = sig;
      keyed(list, open.events, function (e) { return e.id !== null && e.id !== undefined ? e.id : e.kind + e.at; },
        function () { return el("li"); }, function (node, e) { setText(node, eventText(e)); });
    }
  }

  function findAlert(id) {
    const alerts = (state.view || {}).alerts || {};
    return (alerts.active || []).concat(alerts.recent || []).find(function (a) { return a.id === id; });
  }

  function renderAlerts(view, firing) {
    const active = (view.alerts || {}).active || [];
    const pending = active.filter(function (a) { return a.state === "pending"; });
    keyed($("firing"), firing, function (a) { return a.id; }, createAlertItem, updateAlertItem);
    keyed($("pending"), pending, function (a) { return a.id; }, createAlertItem, updateAlertItem);
    $("no-firing").hidden = firing.length > 0;
    setText($("firing-count"), firing.length);
    setClass($("firing-count"), "pill" + (firing.length ? " hot" : ""));
    $("pending-box").hidden = pending.length === 0;
    setText($("pending-count"), pending.length);
    // history: every recent alert, keyed rows
    const seen = new Set();
    const rows = [];
    for (const a of active.concat((view.alerts || {}).recent || [])) if (!seen.has(a.id)) { seen.add(a.id); rows.push(a); }
    keyed($("alerts").tBodies[0], rows, function (a) { return a.id; }, function (a) {
      const tr = el("tr", { "data-alert-id": a.id });
      const labels = ["Severity", "State", "Alert", "Started", "Ended", "Id"];
      for (let i = 0; i < 6; i++) tr.appendChild(el("td", { "data-label": labels[i] }));
      tr.cells[0].appendChild(el("span", { "class": "sevtag" }));
      tr.cells[2].appendChild(el("span", { "class": "title" }));
      tr.cells[2].appendChild(el("span", { "class": "message" }));
      tr.cells[5].appendChild(el("code", { "title": a.id }, a.id.slice(0, 8)));
      return tr;
    }, function (tr, a) {
      setClass(tr, "alert " + a.state);
      const tag = tr.cells[0].firstChild;
      setText(tag, a.severity); setClass(tag, "sevtag " + a.severity);
      setText(tr.cells[1], a.state + (a.acknowledged ? " · ACK by " + (a.acknowledged_by || "?") : ""));
      setAttr(tr.cells[1], "class", "alert-state");
      setText(tr.cells[2].firstChild, a.title);
      setText(tr.cells[2].lastChild, a.message);
      setText(tr.cells[3], fmtUtc(a.started_at, true));
      setText(tr.cells[4], a.resolved_at ? fmtUtc(a.resolved_at, true) : "");
    });
    $("no-alerts").hidden = rows.length > 0;
  }

  // --- components --------------------------------------------------------------------

  function renderComponents(health) {
    const items = Object.entries(health.components || {}).map(function (e) { return Object.assign({ name: e[0] }, e[1]); });
    keyed($("components").tBodies[0], items, function (c) { return c.name; }, function (c) {
      const tr = el("tr", { "data-component": c.name });
      const labels = ["Component", "Status", "Message", "Checked"];
      for (let i = 0; i < 4; i++) tr.appendChild(el("td", { "data-label": labels[i] }));
      return tr;
    }, function (tr, c) {
      setText(tr.cells[0], c.name);
      setText(tr.cells[1], c.status); setAttr(tr.cells[1], "class", "status " + c.status);
      setText(tr.cells[2], c.message);
      setText(tr.cells[3], (c.checked_at || "").slice(11, 19));
    });
  }

  // --- KPI cards -------------------------------------------------------------------------
  // One function maps the /api/performance payload to cards. Every figure is a KPI of the
  // query engine's table, computed by the definition the alert rules use; the payload's
  // `kpis` gives each one's title, unit and window, which every card shows. Durations
  // (seconds) are shown in ms.

  const KPI_DIGITS = { "%": 1, "s": 1, "errors/min": 2, "quote currency": 2 };
  const COUNT_UNITS = new Set(["trades", "requests", "positions"]);

  function kpis(performance, table) {
    const c = performance.current || {};
    return Object.keys(table).map(function (key) {
      const k = table[key];
      let value = c[key];
      let unit = k.unit;
      if (unit === "s") {
        value = value === null || value === undefined ? value : value * 1000;
        unit = "ms";
      }
      const digits = KPI_DIGITS[k.unit] !== undefined ? KPI_DIGITS[k.unit] : 0;
      const window = k.window === "latest" ? "now" : (k.window === "since start" ? "since start" : "last " + k.window);
      // counts ("trades", "requests") and the currency are named beside the window
      const aside = unit === "quote currency" ? "quote ccy" : (COUNT_UNITS.has(unit) ? unit : "");
      return { key: key, label: k.title || key, value: value, unit: aside ? "" : unit, aside: aside, digits: digits, window: window };
    });
  }

  function renderMetrics(performance, table) {
    const cards = kpis(performance, table || performance.kpis || {});
    for (const [name, summary] of Object.entries(performance.custom_metrics || {})) {
      cards.push({ key: name, label: name, value: summary.last, unit: summary.unit || "", digits: 2, window: "last value" });
    }
    keyed($("metrics"), cards, function (m) { return m.key; }, function (m) {
      const card = el("div", { "class": "metric", "data-metric": m.key });
      card.appendChild(el("span", { "class": "label" }));
      card.appendChild(el("span", { "class": "value" }));
      card.appendChild(el("span", { "class": "window" }));
      return card;
    }, function (card, m) {
      setText(card.children[0], m.label);
      setText(card.children[1], m.value === null || m.value === undefined ? "–" : fmtNumber(m.value, m.digits) + (m.unit ? " " + m.unit : ""));
      setText(card.children[2], m.window + (m.aside ? " · " + m.aside : ""));
    });
  }

  // --- trading views -------------------------------------------------------------------

  // A rate-limit row's colour comes from the rules that alert on a rate-limit gauge
  // ("botmon.exchange.ratelimit.utilization > 0.8", "...used > 1000"): each compares the
  // row's value of that gauge, as the rule reads it, with its threshold (critical and
  // above: red; below critical: amber). With no such rule: 70 % / 90 % of the budget.
  const RL_PREFIX = "botmon.exchange.ratelimit.";
  const RL_FIELDS = new Set(["utilization", "used", "orders"]);
  const COMPARE = {
    ">": function (a, b) { return a > b; }, ">=": function (a, b) { return a >= b; },
    "<": function (a, b) { return a < b; }, "<=": function (a, b) { return a <= b; },
  };

  function rateLimitRules(rules) {
    return (rules || []).filter(function (r) {
      return r.metric && r.metric.indexOf(RL_PREFIX) === 0 && r.threshold !== null && !r.unit &&
        RL_FIELDS.has(r.metric.slice(RL_PREFIX.length)) && COMPARE[r.op];
    });
  }

  function rateLimitLevel(row, rules) {
    let level = null;
    for (const r of rules) {
      const value = row[r.metric.slice(RL_PREFIX.length)];
      if (value === null || value === undefined) continue;
      if (level === null) level = "ok";
      if (COMPARE[r.op](value, r.threshold)) {
        if ((RANK[r.severity] || 0) >= RANK.critical) return "crit";
        level = "warn";
      }
    }
    if (level !== null) return level;
    const u = row.utilization;
    return u === null || u === undefined ? "unknown" : u >= 0.9 ? "crit" : u >= 0.7 ? "warn" : "ok";
  }

  function renderTrading(trading, allRules) {
    trading = trading || {};
    const rlRules = rateLimitRules(allRules);
    const rlLegend = rlRules.length
      ? "colour: " + rlRules.map(function (r) { return r.name + " " + r.metric.slice(RL_PREFIX.length) + " " + r.op + " " + r.threshold + " (" + r.severity + ")"; }).join(", ")
      : "colour: amber from 70 %, red from 90 % of the budget";
    const limits = trading.rate_limits || [];
    keyed($("ratelimits").tBodies[0], limits, function (r) { return r.exchange + "|" + r.budget + "|" + r.interval; }, function () {
      const tr = el("tr");
      const labels = ["Exchange", "Budget", "Window", "Used", "Left", "Retry after"];
      for (let i = 0; i < labels.length; i++) tr.appendChild(el("td", { "data-label": labels[i] }));
      const bar = tr.cells[3].appendChild(el("span", { "class": "bar" }));
      bar.appendChild(el("span", { "class": "fill" }));
      tr.cells[3].appendChild(el("span", { "class": "bar-text" }));
      return tr;
    }, function (tr, r) {
      setText(tr.cells[0], r.exchange); setText(tr.cells[1], r.budget); setText(tr.cells[2], r.interval);
      const u = r.utilization;
      setClass(tr, "rl " + rateLimitLevel(r, rlRules));
      setAttr(tr.cells[3], "title", rlLegend);
      const fill = tr.cells[3].querySelector(".fill");
      const width = u === null || u === undefined ? "0%" : Math.min(100, Math.max(0, u * 100)).toFixed(0) + "%";
      if (fill.style.width !== width) fill.style.width = width;
      tr.cells[3].querySelector(".bar").hidden = u === null || u === undefined;
      const parts = [];
      if (u !== null && u !== undefined) parts.push(fmtNumber(u * 100, 0) + "%");
      if (r.used !== null && r.used !== undefined) parts.push(fmtNumber(r.used, 0) + " weight");
      if (r.orders !== null && r.orders !== undefined) parts.push(fmtNumber(r.orders, 0) + " orders");
      if (u === null || u === undefined) parts.push("limit unknown");
      setText(tr.cells[3].querySelector(".bar-text"), parts.join(" · "));
      setText(tr.cells[4], r.remaining === null || r.remaining === undefined ? "–" : fmtNumber(r.remaining, 0));
      setText(tr.cells[5], r.retry_after ? fmtNumber(r.retry_after, 0) + " s" : "–");
    });
    $("no-ratelimits").hidden = limits.length > 0;

    const pnl = trading.pnl_by_symbol || [];
    const biggest = Math.max.apply(null, [1e-9].concat(pnl.map(function (p) { return Math.abs(p.pnl); })));
    keyed($("pnl"), pnl, function (p) { return p.symbol; }, function () {
      const li = el("li");
      li.appendChild(el("span", { "class": "sym" }));
      const bar = li.appendChild(el("span", { "class": "bar" }));
      bar.appendChild(el("span", { "class": "fill" }));
      li.appendChild(el("span", { "class": "amount" }));
      return li;
    }, function (li, p) {
      setClass(li, p.pnl < 0 ? "neg" : "pos");
      setText(li.children[0], p.symbol);
      const width = (Math.abs(p.pnl) / biggest * 100).toFixed(0) + "%";
      const fill = li.children[1].firstChild;
      if (fill.style.width !== width) fill.style.width = width;
      setText(li.children[2], (p.pnl > 0 ? "+" : "") + fmtNumber(p.pnl, 2));
    });
    $("no-pnl").hidden = pnl.length > 0;

    const trades = trading.recent_trades || [];
    keyed($("trades").tBodies[0], trades, function (t) { return t.time + "|" + t.symbol + "|" + t.side + "|" + t.price; }, function () {
      const tr = el("tr");
      const labels = ["Time", "Symbol", "Side", "Qty", "Price", "Slippage", "Outcome", "Latency"];
      for (let i = 0; i < 8; i++) tr.appendChild(el("td", { "data-label": labels[i] }));
      return tr;
    }, function (tr, t) {
      setClass(tr, "trade " + t.outcome);
      const cells = [fmtUtc(t.time), t.symbol, t.side, fmtNumber(t.quantity, 4), fmtNumber(t.price, 2),
        t.slippage_bp === null || t.slippage_bp === undefined ? "–" : fmtNumber(t.slippage_bp, 1) + " bp",
        t.outcome + (t.reason ? " (" + t.reason + ")" : ""),
        t.latency_ms === null || t.latency_ms === undefined ? "–" : fmtNumber(t.latency_ms, 0) + " ms"];
      cells.forEach(function (text, i) { setText(tr.cells[i], text); });
    });
    $("no-trades").hidden = trades.length > 0;
  }

  // --- silences -------------------------------------------------------------------------

  function renderSilences(silences) {
    silences = silences || [];
    keyed($("silences"), silences, function (s) { return s.id; }, function (s) {
      const li = el("li", { "data-silence-id": s.id });
      li.appendChild(el("span", { "class": "matchers" }));
      li.appendChild(el("span", { "class": "s-meta" }));
      const expire = li.appendChild(el("button", { "type": "button", "class": "expire-btn" }, "Expire"));
      expire.addEventListener("click", function () {
        expire.disabled = true;
        api("POST", "/api/silences/" + encodeURIComponent(s.id) + "/expire").then(refresh)
          .catch(function (err) { expire.disabled = false; failed(err); });
      });
      return li;
    }, function (li, s) {
      setText(li.children[0], (s.matchers_text || []).join(", "));
      li.children[1].dataset.ends = String(s.ends_at);
      setText(li.children[1], s.state + " · ends in " + fmtAge(s.ends_at - serverNow()) + " · by " + (s.created_by || "?") + (s.comment ? " · " + s.comment : ""));
    });
    $("no-silences").hidden = silences.length > 0;
  }

  // --- charts ----------------------------------------------------------------------------

  // Which rules draw a threshold on which chart (rules with a simple "metric > N").
  const CHART_RULE_METRICS = {
    "chart-host": /cpu|memory/i, "chart-trade": /trade_latency|trade\.duration/i,
    "chart-api": /api_latency|request\.duration/i, "chart-errors": /api_error_rate/i,
  };

  function chartContext(id, view) {
    const pattern = CHART_RULE_METRICS[id];
    if (!pattern) return { thresholds: [], spans: [] };
    const rules = (view.rules || []).filter(function (r) { return r.metric && pattern.test(r.metric); });
    const names = new Set(rules.map(function (r) { return r.name; }));
    const thresholds = rules.filter(function (r) { return r.threshold !== null; }).map(function (r) {
      let value = r.threshold;
      if (r.unit === "s") value *= 1000;
      return { value: value, label: r.name + " " + r.op + " " + r.threshold + (r.unit || ""), severity: r.severity };
    });
    const alerts = ((view.alerts || {}).active || []).concat((view.alerts || {}).recent || []);
    const spans = alerts.filter(function (a) { return names.has(a.rule_name) && a.fired_at; })
      .map(function (a) { return [a.fired_at, a.resolved_at || serverNow(), a.severity]; });
    return { thresholds: thresholds, spans: spans };
  }

  function renderCharts(view) {
    const h = (view.performance || {}).history || {};
    const t = h.timestamp || [];
    const chart = function (id, series, options) {
      lineChart($(id), t, series, Object.assign({}, options, chartContext(id, view)));
    };
    const ms = function (values) { return (values || []).map(function (v) { return v === null || v === undefined ? v : v * 1000; }); };
    chart("chart-host", [{ name: "cpu", values: h.cpu || [] }, { name: "memory", values: h.memory || [] }], { unit: "%" });
    chart("chart-trade", [{ name: "p50 (5m)", values: ms(h.trade_latency_p50) }, { name: "p95 (5m)", values: ms(h.trade_latency_p95) }], { unit: "ms" });
    chart("chart-api", [{ name: "avg (5m)", values: ms(h.api_latency_avg) }, { name: "p95 (5m)", values: ms(h.api_latency_p95) }], { unit: "ms" });
    chart("chart-errors", [{ name: "errors (1m)", values: h.api_error_rate || [] }], { unit: "/min" });
    chart("chart-pnl", [{ name: "P&L", values: h.pnl || [] }], { unit: "" });
    setText($("chart-window"), t.length > 1 ? "last " + fmtAge(t[t.length - 1] - t[0]) + " · times in UTC · shaded: alert firing · dashed: rule threshold" : "");
  }

  // --- render, clocks, staleness ---------------------------------------------------------

  function render() {
    const view = state.view;
    if (!view) return;
    const firing = firingAlerts(view);
    renderStatus(view, firing);
    renderAlerts(view, firing);
    renderComponents(view.health || {});
    renderMetrics(view.performance || {}, view.kpis);
    renderTrading(view.trading, view.rules);
    renderSilences(view.silences);
    renderCharts(view);
    document.body.classList.remove("loading");
    $("loading").hidden = true;
    document.body.setAttribute("data-loaded", "true");
    tick();
  }

  // Every second: ages, "updated Ns ago", the uptime clock (stopped while stale), undo timers.
  function tick() {
    const view = state.view;
    const age = state.lastData ? now() - state.lastData : null;
    setText($("updated"), age === null ? "no data yet" : "updated " + fmtAge(age) + " ago");
    // stale: the socket is down, or it is open but silent (the server pushes at least every
    // interval_s, so three of those without a word means a hung process)
    const stale = state.lastData > 0 && (!state.connected || age > Math.max(10, 3 * (state.interval || 2)));
    document.body.classList.toggle("stale", stale);
    $("stale-banner").hidden = !stale;
    if (stale) setText($("stale-text"), "Everything below is " + fmtAge(age) + " old (last update " + fmtUtc(state.lastData, true) + ").");
    if (view && view.status) {
      const s = view.status;
      const uptime = s.running && s.started_at ? (stale ? s.uptime_seconds : serverNow() - s.started_at) : null;
      setText($("uptime"), uptime === null ? "stopped" : fmtAge(uptime));
    }
    for (const node of document.querySelectorAll(".alert .age")) {
      const since = Number(node.dataset.since);
      if (since && !stale) setText(node, node.textContent.replace(/^(for|pending) .*/, "$1 " + fmtAge(serverNow() - since)));
    }
    for (const node of document.querySelectorAll(".alert-state[data-ack-at]")) {
      const at = Number(node.dataset.ackAt);
      if (at && !stale) setText(node, node.textContent.replace(/ · .* ago$/, " · " + fmtAge(serverNow() - at) + " ago"));
    }
    for (const [id, open] of Object.entries(state.details)) {  // open event lists stay current
      if (open.loaded && now() - open.loaded > 10 && !stale) { open.loaded = now(); loadEvents(id); }
    }
    for (const li of document.querySelectorAll("#firing > li")) {
      const id = li.dataset.key;
      const button = li.querySelector(".resolve-btn");
      if (!button) continue;
      const pending = state.resolving[id];
      if (!pending) { setText(button, "Resolve"); setClass(button, "resolve-btn"); continue; }
      const left = Math.ceil((pending.at - Date.now()) / 1000);
      if (left > 0) { setText(button, "Undo (" + left + "s)"); setClass(button, "resolve-btn undo"); continue; }
      delete state.resolving[id];
      button.disabled = true;
      api("POST", "/api/alerts/" + encodeURIComponent(id) + "/resolve", actionBody(pending.note))
        .then(function () { notice(""); return refresh(); })
        .catch(failed).finally(function () { button.disabled = false; });
    }
  }

  // --- data flow ---------------------------------------------------------------------------

  function received(at) {
    state.lastData = now();
    if (at) state.serverSkew = at - now();
  }

  function applyMessage(message) {
    if (message.type === "dashboard" || !state.view) {
      state.view = message.data;
      state.historyLimit = message.history_limit || 120;
      if (message.interval_s) state.interval = message.interval_s;
      return;
    }
    const view = state.view;
    for (const [key, value] of Object.entries(message.data || {})) {
      if (key === "performance") view.performance = Object.assign({}, value, { history: (view.performance || {}).history || {} });
      else view[key] = value;
    }
    const append = (message.append || {})["performance.history"];
    if (append) {
      const limit = message.history_limit || state.historyLimit || 120;
      const history = (view.performance || (view.performance = {})).history || (view.performance.history = {});
      for (const [col, values] of Object.entries(append)) history[col] = (history[col] || []).concat(values).slice(-limit);
    }
    if (view.status && message.at) {
      view.status.timestamp = message.at;
      if (view.status.running && view.status.started_at) view.status.uptime_seconds = message.at - view.status.started_at;
    }
  }

  function refresh() {
    return api("GET", "/api/dashboard").then(function (data) {
      received(data.status && data.status.timestamp);
      state.view = data;
      render();
    }).catch(function (err) { notice("Refresh failed: " + err.message); });
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const query = token ? "?token=" + encodeURIComponent(token) : "";
    const ws = new WebSocket(scheme + window.location.host + "/ws" + query);
    state.ws = ws;
    ws.onopen = function () {
      state.retry = 1000;
      state.connected = true;
      setText($("connection"), "live");
      setClass($("connection"), "meta live");
      if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null; }
      tick();
    };
    ws.onmessage = function (event) {
      const message = JSON.parse(event.data);
      if (message.type !== "dashboard" && message.type !== "delta") return;
      received(message.at);
      applyMessage(message);
      render();
    };
    ws.onclose = function () {
      const was = state.connected;
      state.connected = false;
      setText($("connection"), "disconnected");
      setClass($("connection"), "meta down");
      tick();
      if (!state.pollTimer) state.pollTimer = setInterval(function () {
        api("GET", "/api/dashboard").then(function (data) {
          // the API answers but the socket is down: show the data (the banner stays up)
          received(data.status && data.status.timestamp);
          state.view = data; render();
        }).catch(function () {});
      }, 5000);
      setTimeout(connect, was ? 500 : state.retry);
      state.retry = Math.min(state.retry * 2, 30000);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    const you = $("you");
    you.value = localStorage.getItem("botmon-user") || "";
    you.addEventListener("change", function () {
      localStorage.setItem("botmon-user", you.value.trim());
      you.classList.remove("ask");
      notice("");
    });
    $("refresh").addEventListener("click", function () { notice(""); refresh(); });
    $("force-check").addEventListener("click", function () {
      const button = $("force-check");
      button.disabled = true;
      api("POST", "/api/health/check").then(function () { notice(""); return refresh(); })
        .catch(failed).finally(function () { button.disabled = false; });
    });
    $("silence-form").addEventListener("submit", function (event) {
      event.preventDefault();
      const matchers = ($("silence-matchers").value.match(/[^\s,]+?(?:=~|!~|!=|=)(?:"(?:[^"\\]|\\.)*"|[^\s,]+)/g) || []);
      if (!matchers.length) { notice("Matchers look like alertname=\"high_cpu_usage\" bot=\"demo\""); return; }
      const body = { matchers: matchers, duration_s: Number($("silence-duration").value), comment: $("silence-comment").value.trim() };
      if (userName()) body.created_by = userName();
      api("POST", "/api/silences", body).then(function () {
        $("silence-matchers").value = ""; $("silence-comment").value = ""; notice(""); return refresh();
      }).catch(failed);
    });
    for (const id of ["chart-host", "chart-trade", "chart-api", "chart-errors", "chart-pnl"]) {
      const node = $(id);
      node.addEventListener("mousemove", function (event) { node._hover = { clientX: event.clientX }; showTip(node, node._hover); });
      node.addEventListener("mouseleave", function () { node._hover = null; const tip = node.querySelector(".tip"); if (tip) tip.setAttribute("visibility", "hidden"); });
    }
    let resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { if (state.view) renderCharts(state.view); }, 150);
    });
    setInterval(tick, 1000);
    refresh().then(connect);
  });
})();
