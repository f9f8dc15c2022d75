// DOM and formatting helpers shared by every page. All text from the API is
// put into the page with textContent or attributes, never as HTML, so a
// token such as "<script>" is shown, not run.
"use strict";
window.NL = window.NL || {};

(function (NL) {
  // el("a", {href: "/", class: "x", dataset: {testid: "t"}}, "text", child, ...)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    appendAll(node, children);
    return node;
  }

  // SVG element with the same calling convention as el().
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    setAttrs(node, attrs);
    appendAll(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "dataset") {
        for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) node.dataset[k] = String(v);
      } else if (key === "testid") {
        node.setAttribute("data-testid", value);
      } else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "value" && "value" in node && !(node instanceof SVGElement)) {
        node.value = String(value);
      } else if (key === "checked" || key === "disabled" || key === "selected") {
        node[key] = Boolean(value);
      } else {
        node.setAttribute(key === "className" ? "class" : key, value === true ? "" : String(value));
      }
    }
  }

  function appendAll(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // A token's display text made visible: spaces as "␣", newlines as "↵",
  // tabs as "⇥", other control characters as \xNN (the atlas's own escapes
  // for invalid bytes, "\x95", arrive as four characters and stay as they are).
  function visibleToken(text) {
    if (text === "") return "∅";
    let out = "";
    for (const ch of text) {
      const code = ch.codePointAt(0);
      if (ch === " ") out += "␣";
      else if (ch === "\n") out += "↵";
      else if (ch === "\t") out += "⇥";
      else if (ch === "\r") out += "␍";
      else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).toUpperCase().padStart(2, "0");
      else out += ch;
    }
    return out;
  }

  // One token as a chip: the visible text, the raw text and id in data
  // attributes (the e2e test reads them), probability after it when given.
  function tokenChip(token, opts) {
    const o = opts || {};
    const title = [token.id === undefined ? "" : `id ${token.id}`, `text ${JSON.stringify(token.text)}`];
    if (token.prob !== undefined) title.push(`p ${fmtProb(token.prob)}`);
    if (token.logit !== undefined) title.push(`logit ${fmt(token.logit, 3)}`);
    const chip = el("span", {
      class: "tok",
      title: title.filter(Boolean).join("  "),
      testid: o.testid || "token",
      dataset: { id: token.id, text: token.text },
    }, el("span", { class: "tok-text" }, visibleToken(token.text)));
    if (o.showProb !== false && token.prob !== undefined) {
      chip.appendChild(el("span", { class: "tok-prob" }, fmtProb(token.prob)));
    }
    return chip;
  }

  function tokenList(tokens, opts) {
    return el("span", { class: "tok-list" }, (tokens || []).map((t) => tokenChip(t, opts)));
  }

  function fmt(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    return Number(x).toFixed(digits === undefined ? 3 : digits);
  }

  // Probabilities: 2 significant decimals for large ones, more for small ones.
  function fmtProb(p) {
    if (p === null || p === undefined) return "–";
    if (p >= 0.01) return p.toFixed(2);
    if (p >= 0.0001) return p.toFixed(4);
    return p.toExponential(1);
  }

  function fmtPercent(x, digits) {
    if (x === null || x === undefined) return "–";
    return (100 * x).toFixed(digits === undefined ? 1 : digits) + "%";
  }

  function fmtInt(n) {
    return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
  }

  function neuronRef(n) {
    return `${n.layer}:${n.kind}:${n.index}`;
  }

  function neuronPath(layer, kind, index) {
    return `/neuron/${layer}/${kind}/${index}`;
  }

  // An in-app link: the router intercepts clicks on a[data-link].
  function link(href, text, attrs) {
    return el("a", Object.assign({ href, "data-link": "" }, attrs || {}), text);
  }

  function neuronLink(n, attrs) {
    return link(neuronPath(n.layer, n.kind, n.index), neuronRef(n), Object.assign({ class: "neuron-ref" }, attrs || {}));
  }

  function notice(kind, ...children) {
    return el("div", { class: `notice notice-${kind}`, testid: `notice-${kind}`, role: "status" }, children);
  }

  // A message for a failed request; 429 has its own wording.
  function errorBox(err) {
    if (err && err.status === 429) return notice("busy", "The model is busy with another request: busy, try again in a moment.");
    const status = err && err.status ? ` (HTTP ${err.status})` : "";
    return notice("error", `${(err && err.message) || String(err)}${status}`);
  }

  function loading(text) {
    return el("div", { class: "loading", testid: "loading" }, text || "Loading…");
  }

  // Pagination bar for {total, offset, limit} lists. onPage(offset) is called
  // with the new offset; the bar's buttons carry stable test ids under prefix.
  // cap: how many items the server lists at most (search: its best 1000).
  function pager(page, prefix, onPage, cap) {
    const { offset, limit } = page;
    const total = Math.min(page.total, cap === undefined ? Infinity : cap);
    const first = total === 0 ? 0 : offset + 1;
    const last = Math.min(offset + limit, total);
    const pages = Math.max(1, Math.ceil(total / limit));
    const current = Math.floor(offset / limit) + 1;
    const go = (o) => onPage(Math.max(0, Math.min(o, Math.max(0, (pages - 1) * limit))));
    const pageInput = el("input", {
      type: "number", min: 1, max: pages, value: current, class: "pager-input",
      id: `${prefix}-page`, testid: `${prefix}-page`, "aria-label": "page",
      onchange: (e) => go((Math.max(1, parseInt(e.target.value, 10) || 1) - 1) * limit),
    });
    return el("div", { class: "pager", testid: `${prefix}-pager` },
      el("button", { type: "button", id: `${prefix}-first`, testid: `${prefix}-first`, disabled: offset <= 0, onclick: () => go(0) }, "«"),
      el("button", { type: "button", id: `${prefix}-prev`, testid: `${prefix}-prev`, disabled: offset <= 0, onclick: () => go(offset - limit) }, "‹ prev"),
      el("span", { class: "pager-info", testid: `${prefix}-info` },
        `${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(page.total)}${total < page.total ? ` (the first ${fmtInt(total)} listed)` : ""} · page `,
        pageInput, ` of ${fmtInt(pages)}`),
      el("button", { type: "button", id: `${prefix}-next`, testid: `${prefix}-next`, disabled: last >= total, onclick: () => go(offset + limit) }, "next ›"),
      el("button", { type: "button", id: `${prefix}-last`, testid: `${prefix}-last`, disabled: last >= total, onclick: () => go((pages - 1) * limit) }, "»"));
  }

  // A table in a horizontally scrolling wrapper (narrow screens): headers
  // are strings, rows are <tr> elements.
  function table(attrs, headers, rows) {
    return el("div", { class: "table-wrap" },
      el("table", attrs, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
  }

  function select(attrs, options, selected) {
    return el("select", attrs, options.map(([value, label]) =>
      el("option", { value, selected: String(value) === String(selected) }, label)));
  }

  Object.assign(NL, {
    el, svg, clear, visibleToken, tokenChip, tokenList, fmt, fmtProb, fmtPercent, fmtInt,
    neuronRef, neuronPath, link, neuronLink, notice, errorBox, loading, pager, table, select,
  });
})(window.NL);
