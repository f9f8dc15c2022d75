// Attention heads of an atlas that mapped them (map --kinds ov,qk):
//   /heads/{layer}/{circuit}         every head of a layer, its leading direction's tokens on both sides
//   /head/{layer}/{circuit}/{head}   one head: each singular direction, both sides
// OV directions: "out" (what the head writes, decoded through the final norm
// and LM head) and "in" (what it reads where it attends, through the token
// embedding). QK directions: "query" and "key", both through the embedding.
"use strict";
window.NL = window.NL || {};
NL.pages = NL.pages || {};

(function (NL) {
  const { el, table, link, fmt, tokenList, notice, api } = NL;
  const CIRCUITS = ["ov", "qk"];
  const SIDE_TEXT = {
    out: "writes (final norm, LM head)",
    in: "reads where it attends (token embedding)",
    query: "query direction (token embedding)",
    key: "key direction it looks for (token embedding)",
  };

  NL.headPath = (layer, circuit, head) => `/head/${layer}/${circuit}/${head}`;

  function circuitTabs(info, layer, circuit, page) {
    return el("span", { class: "tabs" }, CIRCUITS.map((c) => ((info.mapped[c] || []).includes(layer)
      ? link(page(c), c, { class: c === circuit ? "tab active" : "tab", testid: `heads-circuit-${c}` })
      : el("span", { class: "tab disabled", title: "not mapped" }, c))));
  }

  function sideCell(side, count) {
    return el("td", {}, el("span", { class: "muted small" }, `${side.side} `), tokenList(side.top.slice(0, count)));
  }

  NL.pages.heads = async function (ctx) {
    const { info, root, params } = ctx;
    const { layer, kind: circuit } = params;
    document.title = `layer ${layer} ${circuit} heads · neuronlens`;
    root.appendChild(el("div", { class: "crumbs" }, link("/", "overview"), " / layer ", String(layer), " / ", `${circuit} heads`));
    root.appendChild(el("h1", { testid: "page-title" }, `Layer ${layer} · ${circuit.toUpperCase()} heads`));
    const mapped = info.mapped[circuit] || [];
    const layerLink = (l, text, testid) => (mapped.includes(l)
      ? link(`/heads/${l}/${circuit}`, text, { testid, class: "button-link" })
      : el("span", { class: "button-link disabled" }, text));
    root.appendChild(el("div", { class: "row gap" }, layerLink(layer - 1, `‹ layer ${layer - 1}`, "heads-prev"),
      circuitTabs(info, layer, circuit, (c) => `/heads/${layer}/${c}`), layerLink(layer + 1, `layer ${layer + 1} ›`, "heads-next")));
    if (!mapped.includes(layer)) {
      root.appendChild(notice("error", `Layer ${layer}'s ${circuit} circuits are not in this atlas (map --kinds ${circuit}).`));
      return;
    }
    const data = await api.get(`/api/heads/${layer}/${circuit}`, { show_top: 6 }, ctx.signal);
    if (!ctx.alive()) return;
    root.appendChild(el("p", { class: "muted" }, `Each head's leading singular direction (r0) of its ${circuit.toUpperCase()} circuit; open a head for all ${info.head_rank}.`));
    root.appendChild(table({ class: "table", testid: "heads-table" }, ["head", "σ", "side 0", "side 1"],
      data.heads.map((h) => {
        const d = h.directions[0];
        return el("tr", { testid: "heads-row", "data-head": h.head },
          el("td", {}, link(NL.headPath(layer, circuit, h.head), `${layer}:${circuit}:${h.head}`, { testid: "heads-row-link", class: "neuron-ref" })),
          el("td", { class: "num" }, fmt(d.singular_value, 3)),
          sideCell(d.sides[0], 6), sideCell(d.sides[1], 6));
      })));
  };

  NL.pages.head = async function (ctx) {
    const { info, root, params } = ctx;
    const { layer, kind: circuit, index: head } = params;
    document.title = `${layer}:${circuit}:${head} · neuronlens`;
    root.appendChild(el("div", { class: "crumbs" }, link("/", "overview"), " / ", link(`/heads/${layer}/${circuit}`, `layer ${layer} ${circuit} heads`), " / head ", String(head)));
    root.appendChild(el("h1", { testid: "page-title" }, `${layer}:${circuit}:${head}`));
    const data = await api.get(`/api/heads/${layer}/${circuit}/${head}`, {}, ctx.signal);
    if (!ctx.alive()) return;
    const step = (h, text, testid) => (h === null ? el("span", { class: "button-link disabled" }, text)
      : link(NL.headPath(layer, circuit, h), text, { testid, class: "button-link" }));
    root.appendChild(el("div", { class: "row gap" }, step(data.neighbours.previous, "‹ previous head", "head-prev"),
      circuitTabs(info, layer, circuit, (c) => NL.headPath(layer, c, head)), step(data.neighbours.next, "next head ›", "head-next")));
    root.appendChild(el("p", { class: "muted" }, circuit === "ov"
      ? "OV circuit W_O[:, h] · W_V: when the head attends to a position holding the 'in' direction, it writes the 'out' direction."
      : "QK circuit W_Qᵀ · W_K: a query along the 'query' direction attends to keys along the 'key' direction (RoPE left out)."));
    for (const d of data.directions) {
      root.appendChild(el("section", { class: "card", testid: "head-direction", "data-rank": d.rank },
        el("h3", {}, `r${d.rank} · singular value ${fmt(d.singular_value, 4)}`),
        d.sides.map((s) => el("div", { class: "head-side", testid: `head-side-${s.side}` },
          el("div", { class: "muted small" }, `${s.side}: ${SIDE_TEXT[s.side]}, entropy ${fmt(s.entropy, 3)} nats`),
          tokenList(s.top)))));
    }
  };
})(window.NL);
