// Compare (/compare): the served atlas against the --compare one. Agreement
// by layer as a line plot (GET /api/compare/summary) and the neurons whose
// top-k changed most, before and after (GET /api/compare/changed).
"use strict";
window.NL = window.NL || {};
NL.pages = NL.pages || {};

(function (NL) {
  const { el, table, fmt, fmtInt, fmtPercent, tokenList, select, pager, notice, api, charts } = NL;
  const PAGE = 25;
  const SHOW_TOP = 8; // tokens shown per side; the neuron page has them all

  NL.pages.compare = async function (ctx) {
    const { info, query, root } = ctx;
    document.title = "compare · neuronlens";
    root.appendChild(el("h1", { testid: "page-title" }, "Compare two atlases"));
    if (!info.compare) {
      root.appendChild(notice("unavailable",
        "No second atlas: start the server with ", el("code", {}, "neuronlens serve ATLAS.db --compare OTHER.db"),
        " (an atlas of the same shape, e.g. the base model's, or the same model mapped with --norm none) to compare them here."));
      return;
    }
    const metric = query.get("metric") === "overlap" ? "overlap" : "top1";
    const summary = await api.get("/api/compare/summary", {}, ctx.signal);
    if (!ctx.alive()) return;
    root.appendChild(el("section", { class: "card", testid: "compare-summary" },
      el("dl", { class: "facts" },
        el("dt", {}, "A (served)"), el("dd", {}, summary.a.model_name, " ", el("code", {}, summary.a.file)),
        el("dt", {}, "B (--compare)"), el("dd", {}, summary.b.model_name, " ", el("code", {}, summary.b.file))),
      table({ class: "table compact", testid: "compare-kinds" }, ["kind", "neurons", "same top-1 token", "mean top-k overlap"],
        summary.kinds.map((k) => el("tr", {},
          el("td", {}, k.kind), el("td", { class: "num" }, fmtInt(k.neurons)),
          el("td", { class: "num" }, fmtPercent(k.top1_same)), el("td", { class: "num" }, fmtPercent(k.mean_overlap)))))));

    const metricSelect = select({ id: "compare-metric", testid: "compare-metric", onchange: () => ctx.setQuery({ metric: metricSelect.value }, { replace: true }) },
      [["top1", "same top-1 token"], ["overlap", "mean top-k overlap"]], metric);
    root.appendChild(el("section", { class: "card" },
      el("h2", {}, "Agreement by layer"),
      el("div", { class: "controls" }, el("label", {}, "plot ", metricSelect)),
      el("div", { class: "chart-holder" }, charts.linePlot({
        yLabel: metric === "top1" ? "same top-1 token" : "mean top-k overlap",
        rows: summary.layers.map((r) => ({
          kind: r.kind, layer: r.layer, value: metric === "top1" ? r.top1_same : r.mean_overlap,
          title: `layer ${r.layer} ${r.kind}: same top-1 ${fmtPercent(r.top1_same)}, mean overlap ${fmtPercent(r.mean_overlap)} (${fmtInt(r.neurons)} neurons)`,
        })),
      }))));

    // The most changed neurons, filtered by kind and layer.
    const kinds = summary.kinds.map((k) => k.kind);
    const kind = kinds.includes(query.get("kind")) ? query.get("kind") : "all";
    const layer = query.get("layer") || "all";
    const offset = Math.max(0, parseInt(query.get("offset"), 10) || 0);
    const layers = [...new Set(summary.layers.filter((r) => kind === "all" || r.kind === kind).map((r) => r.layer))].sort((a, b) => a - b);
    const kindSelect = select({ id: "changed-kind", testid: "changed-kind" }, [["all", "all"], ...kinds.map((k) => [k, k])], kind);
    const layerSelect = select({ id: "changed-layer", testid: "changed-layer" }, [["all", "all"], ...layers.map((l) => [l, String(l)])], layer);
    const apply = () => ctx.setQuery({ kind: kindSelect.value, layer: layerSelect.value === "all" ? "" : layerSelect.value, offset: 0 });
    kindSelect.addEventListener("change", apply);
    layerSelect.addEventListener("change", apply);
    const section = el("section", { class: "card" }, el("h2", {}, "Neurons that changed most"),
      el("div", { class: "controls" }, el("label", {}, "kind ", kindSelect), el("label", {}, "layer ", layerSelect)));
    root.appendChild(section);
    const page = await api.get("/api/compare/changed", { kind, layer, offset, limit: PAGE }, ctx.signal);
    if (!ctx.alive()) return;
    const onPage = (o) => ctx.setQuery({ offset: o });
    section.appendChild(pager(page, "changed", onPage));
    section.appendChild(table({ class: "table", testid: "changed-table" }, ["neuron", "overlap", "top tokens in A (before)", "top tokens in B (after)"],
      page.items.map((n) => el("tr", { testid: "changed-row", "data-layer": n.layer, "data-kind": n.kind, "data-index": n.index },
        el("td", {}, NL.neuronLink(n)),
        el("td", { class: "num" }, fmt(n.overlap, 3)),
        el("td", {}, tokenList(n.top_a.slice(0, SHOW_TOP))),
        el("td", {}, tokenList(n.top_b.slice(0, SHOW_TOP)))))));
    section.appendChild(pager(page, "changed-bottom", onPage));
  };
})(window.NL);
