// Overview (/): the model, the map settings and the layers x kinds heat map.
// Layer (/layer/{l}/{kind}): that layer's neurons, sorted and paginated.
"use strict";
window.NL = window.NL || {};
NL.pages = NL.pages || {};

(function (NL) {
  const { el, table, link, fmt, fmtInt, fmtPercent, tokenList, select, pager, notice, api, charts } = NL;
  const KINDS = ["up", "gate", "down"];

  function modelCard(info) {
    const m = info.model;
    const rows = [
      ["architecture", m.architecture],
      ["layers", fmtInt(m.n_layers)],
      ["d_model", fmtInt(m.d_model)],
      ["d_ffn (neurons per layer)", fmtInt(m.d_ffn)],
      ["vocabulary", fmtInt(m.vocab_size)],
      ["norm", info.settings.norm],
      ["top-k stored", fmtInt(info.settings.top_k)],
      ["vectors mapped", fmtInt(info.neurons)],
      ["kinds mapped", KINDS.concat(["ov", "qk"]).filter((k) => (info.mapped[k] || []).length)
        .map((k) => `${k} (${info.mapped[k].length} layer${info.mapped[k].length === 1 ? "" : "s"})`).join(", ") || "none"],
      ["sha256", el("code", { title: m.sha256 }, (m.sha256 || "").slice(0, 16) + "…")],
      ["file", el("code", {}, m.file || "–")],
    ];
    if (info.record) {
      const r = info.record;
      rows.push(["activation record", el("span", { testid: "record-summary" },
        `${r.files.map((f) => f.name).join(", ")}: ${fmtInt(r.tokens_recorded)} tokens, top ${r.contexts} contexts per sign`,
        r.complete ? "" : ` (stopped at chunk ${fmtInt(r.chunks_done)} of ${fmtInt(r.chunks_total)})`)]);
    }
    return el("section", { class: "card model-card", testid: "model-card" },
      el("dl", { class: "facts facts-wide" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("div", { class: "status-line" },
        info.model_loaded
          ? el("span", { class: "badge badge-ok", testid: "model-loaded" }, "model loaded: exact search, activations, playground")
          : el("span", { class: "badge badge-warn", testid: "model-missing" }, "no model loaded: search ranks within the stored top-k"),
        info.compare ? el("span", { class: "badge" }, "compare atlas: ", info.compare.model_name) : null,
        info.note ? el("span", { class: "muted" }, info.note) : null));
  }

  // The record's agreement with the weight decode (`neuronlens record`):
  // per layer, how often the token after a neuron's top positive contexts is
  // in its down decode's top-k, beside chance.
  async function agreementSection(ctx) {
    const section = el("section", { class: "card", testid: "agreement" }, el("h2", {}, "Weight decode vs. corpus contexts"));
    const data = await api.get("/api/agreement", {}, ctx.signal);
    if (!data.available) {
      section.appendChild(notice("info", data.note));
      return section;
    }
    const max = Math.max(...data.layers.map((l) => Math.max(l.mean_rate, l.mean_chance)), 1e-9);
    const bar = (v, cls) => el("span", { class: `agree-bar ${cls}`, style: `width: ${(100 * v / max).toFixed(1)}%` });
    section.appendChild(el("p", { class: "muted small" },
      `For each neuron: the share of its top positive contexts whose next token is in its ${data.kind} decode's top ${data.top_k} (blue), `,
      "against chance, the corpus frequency of those tokens (grey); averaged per layer."));
    section.appendChild(table({ class: "table compact", testid: "agreement-table" }, ["layer", "neurons", "rate", "chance", "lift", ""],
      data.layers.map((l) => el("tr", { testid: "agreement-row", "data-layer": l.layer, "data-rate": l.mean_rate, "data-chance": l.mean_chance },
        el("td", { class: "num" }, String(l.layer)), el("td", { class: "num" }, fmtInt(l.neurons)),
        el("td", { class: "num" }, fmtPercent(l.mean_rate, 2)), el("td", { class: "num" }, fmtPercent(l.mean_chance, 2)),
        el("td", { class: "num" }, l.mean_chance > 0 ? `${fmt(l.mean_rate / l.mean_chance, 1)}×` : "–"),
        el("td", { class: "agree-bars" }, bar(l.mean_rate, "rate"), bar(l.mean_chance, "chance"))))));
    return section;
  }

  NL.pages.overview = async function (ctx) {
    const { info, query, root } = ctx;
    document.title = `${info.model.name} · neuronlens`;
    const metric = query.get("metric") === "share" ? "share" : "entropy";
    const threshold = query.get("threshold") || "0.5";
    root.appendChild(el("h1", { testid: "page-title" }, info.model.name));
    root.appendChild(modelCard(info));

    const thresholdInput = el("input", {
      id: "heat-threshold", testid: "heat-threshold", type: "number", min: 0.01, max: 1, step: 0.05, value: threshold,
      disabled: metric !== "share",
    });
    const controls = el("form", {
      class: "controls", testid: "heat-controls",
      onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ metric: metricSelect.value, threshold: thresholdInput.value }); },
    },
    el("label", {}, "colour by ",
      select({ id: "heat-metric", testid: "heat-metric", onchange: () => controls.requestSubmit() },
        [["entropy", "mean entropy (nats)"], ["share", "share of specialised neurons"]], metric)),
    el("label", {}, "specialised: top-1 p > ", thresholdInput),
    el("button", { type: "submit", id: "heat-apply", testid: "heat-apply" }, "apply"));
    const metricSelect = controls.querySelector("#heat-metric");
    const section = el("section", { class: "card" }, el("h2", {}, "Layers × kinds"),
      el("p", { class: "muted" }, "Each cell is one (kind, layer). Click a cell to list its neurons (or, for ov and qk, its attention heads: their singular directions' out or query side); hover for the numbers."),
      controls);
    root.appendChild(section);
    const holder = el("div", { class: "chart-holder", testid: "heatmap-holder" }, NL.loading());
    section.appendChild(holder);

    const data = await api.get("/api/overview", { threshold }, ctx.signal);
    if (!ctx.alive()) return;
    NL.clear(holder);
    holder.appendChild(charts.heatMap({
      kinds: data.kinds,
      nLayers: data.n_layers,
      cells: data.cells,
      metric: metric === "share" ? (c) => c.specialised_share : (c) => c.mean_entropy,
      metricLabel: metric === "share" ? `share with top-1 p > ${data.threshold}` : "mean entropy (nats)",
      reverse: metric === "entropy",
      describe: (c) => `layer ${c.layer} ${c.kind}: ${fmtInt(c.neurons)} ${c.kind === "ov" || c.kind === "qk" ? "head directions" : "neurons"}, mean entropy ${fmt(c.mean_entropy, 3)} nats, ` +
        `${fmtInt(c.specialised)} with top-1 p > ${data.threshold} (${fmtPercent(c.specialised_share, 2)})`,
      onPick: (c) => ctx.navigate(c.kind === "ov" || c.kind === "qk" ? `/heads/${c.layer}/${c.kind}` : `/layer/${c.layer}/${c.kind}`),
    }));
    const notes = [];
    if (metric === "entropy") notes.push("Bright = low entropy (a few tokens hold the mass).");
    if (data.cells.length < data.kinds.length * data.n_layers) notes.push("Grey cells: layers this atlas has not mapped.");
    if (notes.length) holder.appendChild(el("p", { class: "muted small" }, notes.join(" ")));

    // Per-kind totals under the map.
    const totals = data.kinds.filter((kind) => data.cells.some((c) => c.kind === kind)).map((kind) => {
      const cells = data.cells.filter((c) => c.kind === kind);
      const neurons = cells.reduce((s, c) => s + c.neurons, 0);
      const special = cells.reduce((s, c) => s + c.specialised, 0);
      const entropy = neurons ? cells.reduce((s, c) => s + c.mean_entropy * c.neurons, 0) / neurons : NaN;
      return el("tr", {}, el("td", {}, kind), el("td", { class: "num" }, fmtInt(cells.length)), el("td", { class: "num" }, fmtInt(neurons)),
        el("td", { class: "num" }, fmt(entropy, 3)), el("td", { class: "num" }, `${fmtInt(special)} (${fmtPercent(neurons ? special / neurons : 0, 2)})`));
    });
    section.appendChild(table({ class: "table compact", testid: "kind-totals" }, ["kind", "layers", "neurons", "mean entropy", `top-1 p > ${data.threshold}`],
      totals));
    if (info.record) {
      const agreement = await agreementSection(ctx);
      if (ctx.alive()) root.appendChild(agreement);
    }
  };

  NL.pages.layer = async function (ctx) {
    const { info, query, root, params } = ctx;
    const { layer, kind } = params;
    document.title = `layer ${layer} ${kind} · neuronlens`;
    const sort = ["index", "entropy", "top1_prob"].includes(query.get("sort")) ? query.get("sort") : "index";
    const order = query.get("order") === "desc" ? "desc" : "asc";
    const limit = Math.min(200, Math.max(1, parseInt(query.get("limit"), 10) || 50));
    const offset = Math.max(0, parseInt(query.get("offset"), 10) || 0);

    const mappedLayers = info.mapped[kind] || [];
    const layerLink = (l, text, testid) => (mappedLayers.includes(l)
      ? link(`/layer/${l}/${kind}`, text, { testid, class: "button-link" })
      : el("span", { class: "button-link disabled" }, text));
    root.appendChild(el("div", { class: "crumbs" }, link("/", "overview"), " / layer ", String(layer), " / ", kind));
    root.appendChild(el("h1", { testid: "page-title" }, `Layer ${layer} · ${kind}`));
    root.appendChild(el("div", { class: "row gap" },
      layerLink(layer - 1, `‹ layer ${layer - 1}`, "layer-prev"),
      el("span", { class: "tabs" }, KINDS.map((k) => ((info.mapped[k] || []).includes(layer)
        ? link(`/layer/${layer}/${k}`, k, { class: k === kind ? "tab active" : "tab", testid: `layer-kind-${k}` })
        : el("span", { class: "tab disabled", title: "not mapped" }, k)))),
      layerLink(layer + 1, `layer ${layer + 1} ›`, "layer-next")));

    const sortSelect = select({ id: "layer-sort", testid: "layer-sort" },
      [["index", "index"], ["entropy", "entropy"], ["top1_prob", "top-1 probability"]], sort);
    const orderSelect = select({ id: "layer-order", testid: "layer-order" }, [["asc", "ascending"], ["desc", "descending"]], order);
    const limitSelect = select({ id: "layer-limit", testid: "layer-limit" }, [[25, "25"], [50, "50"], [100, "100"], [200, "200"]], limit);
    const apply = () => ctx.setQuery({ sort: sortSelect.value, order: orderSelect.value, limit: limitSelect.value, offset: 0 });
    [sortSelect, orderSelect, limitSelect].forEach((s) => s.addEventListener("change", apply));
    root.appendChild(el("div", { class: "controls" }, el("label", {}, "sort by ", sortSelect), el("label", {}, "order ", orderSelect),
      el("label", {}, "per page ", limitSelect),
      el("span", { class: "muted" }, "most specialised first: sort by top-1 probability, descending")));

    if (!mappedLayers.includes(layer)) {
      root.appendChild(notice("error", `Layer ${layer} ${kind} is not in this atlas.`));
    }
    const holder = el("div", {}, NL.loading());
    root.appendChild(holder);
    const page = await api.get(`/api/layers/${layer}/${kind}`, { sort, order, offset, limit, show_top: 6 }, ctx.signal);
    if (!ctx.alive()) return;
    NL.clear(holder);
    const onPage = (o) => ctx.setQuery({ offset: o });
    holder.appendChild(pager(page, "layer", onPage));
    holder.appendChild(table({ class: "table", testid: "layer-table" }, ["neuron", "entropy", "top-1 p", "top-k mass", "top tokens"],
      page.items.map((n) => el("tr", { testid: "layer-row", "data-index": n.index },
        el("td", {}, NL.neuronLink(n, { testid: "layer-row-link" })),
        el("td", { class: "num" }, fmt(n.entropy, 3)),
        el("td", { class: "num" }, NL.fmtProb(n.top1_prob)),
        el("td", { class: "num" }, fmt(n.topk_mass, 3)),
        el("td", {}, tokenList(n.top))))));
    holder.appendChild(pager(page, "layer-bottom", onPage));
  };
})(window.NL);
