// otel_botmon dashboard: DOM helpers and formatting shared by app.js and charts.js.
// Server data only ever enters the page through textContent / setAttribute.
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Only touch the DOM when something changed: no flicker, selection kept.
  function setText(node, text) {
    text = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== text) node.textContent = text;
  }
  function setAttr(node, name, value) {
    if (value === null || value === undefined) { if (node.hasAttribute(name)) node.removeAttribute(name); return; }
    value = String(value);
    if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }
  function setClass(node, cls) { if (node.className !== cls) node.className = cls; }

  // Keep container's children in the order of items; create/update nodes by key.
  function keyed(container, items, key, create, update) {
    const existing = new Map();
    for (const child of Array.from(container.children)) existing.set(child.dataset.key, child);
    let previous = null;
    for (const item of items) {
      const k = String(key(item));
      let node = existing.get(k);
      if (node) existing.delete(k); else { node = create(item); node.dataset.key = k; }
      update(node, item);
      const wanted = previous ? previous.nextSibling : container.firstChild;
      if (node !== wanted) container.insertBefore(node, wanted);
      previous = node;
    }
    for (const node of existing.values()) node.remove();
  }

  function fmtAge(seconds) {
    seconds = Math.max(0, Math.floor(seconds || 0));
    const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    const m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) return d + "d" + h + "h";
    if (h) return h + "h" + String(m).padStart(2, "0") + "m";
    if (m) return m + "m" + String(s).padStart(2, "0") + "s";
    return s + "s";
  }

  function fmtNumber(value, digits) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    return Number(value).toLocaleString("en-US", {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
  }

  function fmtUtc(epoch, withDate) {
    if (!epoch) return "–";
    const iso = new Date(epoch * 1000).toISOString();
    return withDate ? iso.replace("T", " ").slice(0, 19) + " UTC" : iso.slice(11, 19);
  }

  window.BotmonDom = { el, svg, setText, setAttr, setClass, keyed, fmtAge, fmtNumber, fmtUtc };
})();
