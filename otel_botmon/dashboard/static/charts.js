// otel_botmon dashboard: hand-rolled SVG line charts with a UTC time axis, nice ticks,
// rule thresholds, shaded firing spans and a tooltip. Drawn at the element's CSS size.
"use strict";

(function () {
  const { svg, setAttr, fmtAge, fmtNumber, fmtUtc } = window.BotmonDom;

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  }

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) hi = lo + 1;
    const step = niceStep(hi - lo, count);
    const start = Math.floor(lo / step) * step, end = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = start; v <= end + step / 2; v += step) ticks.push(Math.round(v / step) * step);
    const digits = (String(Number(step.toPrecision(6))).split(".")[1] || "").length;
    return { ticks: ticks, lo: start, hi: end, digits: Math.min(digits, 6) };
  }

  function lineChart(node, times, series, options) {
    options = options || {};
    const W = Math.max(240, Math.round(node.clientWidth || 400)), H = 170, L = 44, R = 10, B = 34;
    let T = 10;
    // redraw only when the data, the size or the rules' lines changed
    const sig = [W, times.length, times[times.length - 1], JSON.stringify(series.map(function (s) { return s.values[s.values.length - 1]; })),
      JSON.stringify(options.thresholds || []), JSON.stringify((options.spans || []).map(function (s) { return [s[0], Math.round(s[1])]; }))].join("|");
    if (node._sig === sig) return;
    node._sig = sig;
    setAttr(node, "viewBox", "0 0 " + W + " " + H);
    const values = [];
    for (const s of series) for (const v of s.values) if (v !== null && v !== undefined) values.push(v * (options.scale || 1));
    // a threshold far above the data would flatten it: such lines are named at the top instead
    const dataHi = values.length ? Math.max.apply(null, values) : 0;
    const onScale = [], offScale = [];
    for (const t of options.thresholds || []) (t.value <= Math.max(dataHi * 2, 1e-9) ? onScale : offScale).push(t);
    for (const t of onScale) values.push(t.value);
    if (offScale.length) T = 24;  // room for the off-scale note above the plot
    node._chart = null;
    if (!values.length || times.length < 1) {
      node.replaceChildren(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "empty" }, "no data yet"));
      return;
    }
    const nice = niceTicks(Math.min(0, Math.min.apply(null, values)), Math.max.apply(null, values), 4);
    const t0 = times[0], t1 = times[times.length - 1] > t0 ? times[times.length - 1] : t0 + 1;
    const x = function (t) { return L + (W - L - R) * (t - t0) / (t1 - t0); };
    const y = function (v) { return T + (H - T - B) * (1 - (v - nice.lo) / (nice.hi - nice.lo)); };
    const nodes = [];
    for (const span of options.spans || []) {
      const a = Math.max(t0, span[0]), b = Math.min(t1, span[1]);
      if (b <= a) continue;
      nodes.push(svg("rect", { "class": "fired " + span[2], x: x(a).toFixed(1), y: T, width: Math.max(1, x(b) - x(a)).toFixed(1), height: H - T - B }));
    }
    for (const v of nice.ticks) {
      nodes.push(svg("line", { "class": "grid", x1: L, x2: W - R, y1: y(v).toFixed(1), y2: y(v).toFixed(1) }));
      nodes.push(svg("text", { x: L - 4, y: (y(v) + 4).toFixed(1), "text-anchor": "end" }, v.toFixed(nice.digits)));
    }
    const tStep = niceStep(t1 - t0, Math.max(2, Math.floor((W - L - R) / 90)));
    for (let t = Math.ceil(t0 / tStep) * tStep; t <= t1; t += tStep) {
      nodes.push(svg("line", { "class": "tick", x1: x(t).toFixed(1), x2: x(t).toFixed(1), y1: H - B, y2: H - B + 4 }));
      nodes.push(svg("text", { x: x(t).toFixed(1), y: H - B + 15, "text-anchor": "middle" }, fmtUtc(t).slice(tStep >= 60 ? 0 : 3, tStep >= 60 ? 5 : 8)));
    }
    nodes.push(svg("text", { "class": "axis-label", x: W - R, y: H - 3, "text-anchor": "end" }, "UTC · last " + fmtAge(t1 - t0)));
    const placed = [];
    onScale.sort(function (a, b) { return b.value - a.value; }).forEach(function (t) {
      const ty = y(t.value);
      nodes.push(svg("line", { "class": "threshold " + t.severity, x1: L, x2: W - R, y1: ty.toFixed(1), y2: ty.toFixed(1) }));
      // labels alternate right/left and skip a slot taken by a close neighbour
      const right = !placed.some(function (p) { return p.right && Math.abs(p.y - ty) < 12; });
      const left = !right && !placed.some(function (p) { return !p.right && Math.abs(p.y - ty) < 12; });
      if (!right && !left) return;
      placed.push({ y: ty, right: right });
      nodes.push(svg("text", { "class": "threshold-label " + t.severity, x: right ? W - R - 2 : L + 4, y: (ty - 3).toFixed(1), "text-anchor": right ? "end" : "start" }, t.label));
    });
    if (offScale.length) {
      nodes.push(svg("text", { "class": "threshold-label off " + offScale[0].severity, x: W - R - 2, y: 14, "text-anchor": "end" },
        "↑ " + offScale.map(function (t) { return t.label; }).join(", ") + " (off scale)"));
    }
    series.forEach(function (s, i) {
      const points = [];
      s.values.forEach(function (v, j) {
        if (v !== null && v !== undefined) points.push(x(times[j]).toFixed(1) + "," + y(v * (options.scale || 1)).toFixed(1));
      });
      if (points.length === 1) {
        const xy = points[0].split(",");
        nodes.push(svg("circle", { "class": "dot s" + i, cx: xy[0], cy: xy[1], r: 3 }));
      }
      nodes.push(svg("polyline", { "class": "series s" + i, points: points.join(" ") }));
      nodes.push(svg("text", { "class": "legend-" + i, x: L + 6 + i * 80, y: H - 3 }, s.name));
    });
    const tip = svg("g", { "class": "tip", visibility: "hidden" });
    tip.appendChild(svg("line", { y1: T, y2: H - B }));
    tip.appendChild(svg("rect", { height: 18 + 14 * series.length, width: 150, rx: 3 }));
    for (let i = 0; i <= series.length; i++) tip.appendChild(svg("text", { "class": i ? "legend-" + (i - 1) : "" }));
    nodes.push(tip);
    node.replaceChildren.apply(node, nodes);
    node._chart = { times: times, series: series, x: x, L: L, R: R, W: W, T: T, options: options };
    if (node._hover) showTip(node, node._hover);  // a redraw keeps the tooltip under the mouse
  }

  function showTip(node, event) {
    const c = node._chart;
    const tip = node.querySelector(".tip");
    if (!c || !tip) return;
    const box = node.getBoundingClientRect();
    const px = (event.clientX - box.left) * (c.W / box.width);
    let best = 0;
    for (let j = 0; j < c.times.length; j++) if (Math.abs(c.x(c.times[j]) - px) < Math.abs(c.x(c.times[best]) - px)) best = j;
    const cx = c.x(c.times[best]);
    const line = tip.children[0], rect = tip.children[1];
    line.setAttribute("x1", cx.toFixed(1)); line.setAttribute("x2", cx.toFixed(1));
    const left = cx + 156 > c.W ? cx - 156 : cx + 6;
    rect.setAttribute("x", left.toFixed(1)); rect.setAttribute("y", String(c.T));
    const texts = Array.from(tip.querySelectorAll("text"));
    texts[0].setAttribute("x", (left + 6).toFixed(1)); texts[0].setAttribute("y", String(c.T + 13));
    texts[0].textContent = fmtUtc(c.times[best], true);
    c.series.forEach(function (s, i) {
      const v = s.values[best];
      texts[i + 1].setAttribute("x", (left + 6).toFixed(1)); texts[i + 1].setAttribute("y", String(c.T + 27 + 14 * i));
      texts[i + 1].textContent = s.name + ": " + (v === null || v === undefined ? "–" : fmtNumber(v * (c.options.scale || 1), 2) + (c.options.unit ? " " + c.options.unit : ""));
    });
    tip.setAttribute("visibility", "visible");
  }

  window.BotmonCharts = { lineChart, showTip, niceTicks };
})();
