// Charts drawn as inline SVG: the layers x kinds heat map, the bar chart of a
// neuron's token probabilities, and the agreement-by-layer line plot.
"use strict";
window.NL = window.NL || {};

(function (NL) {
  const { svg, visibleToken, fmt, fmtProb, fmtPercent } = NL;

  const KIND_COLOURS = { up: "#2f6fbd", gate: "#c8553d", down: "#3a9a5b" };

  // Viridis, sampled at 9 stops and interpolated linearly in RGB.
  const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"];

  function hexToRgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  function colourAt(t) {
    const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const a = hexToRgb(VIRIDIS[i]);
    const b = hexToRgb(VIRIDIS[i + 1]);
    const f = x - i;
    const c = a.map((v, k) => Math.round(v + (b[k] - v) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  // Heat map of per-(kind, layer) cells. metric: a function cell -> number;
  // describe: cell -> hover text; onPick(cell) on click. Kinds are rows,
  // layers columns; (kind, layer) pairs missing from cells are drawn grey.
  function heatMap({ kinds, nLayers, cells, metric, metricLabel, describe, onPick, reverse }) {
    const byKey = new Map(cells.map((c) => [`${c.kind}/${c.layer}`, c]));
    const values = cells.map(metric).filter(Number.isFinite);
    const lo = values.length ? Math.min(...values) : 0;
    const hi = values.length ? Math.max(...values) : 1;
    const scale = (v) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
    const tone = (v) => colourAt(reverse ? 1 - scale(v) : scale(v));

    const cellW = Math.max(10, Math.min(34, Math.floor(900 / Math.max(1, nLayers))));
    const cellH = 30;
    const left = 52;
    const top = 24;
    const width = left + nLayers * cellW + 12;
    const legendTop = top + kinds.length * cellH + 34;
    const height = legendTop + 42;
    const root = svg("svg", {
      class: "chart heatmap", viewBox: `0 0 ${width} ${height}`, width, height,
      role: "img", "aria-label": `${metricLabel} by layer and kind`, testid: "heatmap",
    });

    const labelEvery = Math.ceil(nLayers / Math.max(1, Math.floor((nLayers * cellW) / 24)));
    for (let layer = 0; layer < nLayers; layer++) {
      if (layer % labelEvery !== 0 && layer !== nLayers - 1) continue;
      root.appendChild(svg("text", { x: left + layer * cellW + cellW / 2, y: top - 8, class: "axis-label", "text-anchor": "middle" }, String(layer)));
    }
    kinds.forEach((kind, row) => {
      const y = top + row * cellH;
      root.appendChild(svg("text", { x: left - 8, y: y + cellH / 2 + 4, class: "axis-label", "text-anchor": "end" }, kind));
      for (let layer = 0; layer < nLayers; layer++) {
        const cell = byKey.get(`${kind}/${layer}`);
        const x = left + layer * cellW;
        if (!cell) {
          root.appendChild(svg("rect", {
            x: x + 0.5, y: y + 0.5, width: cellW - 1, height: cellH - 1, class: "heat-missing",
            testid: "heat-cell-missing", "data-kind": kind, "data-layer": layer,
          }, svg("title", {}, `layer ${layer} ${kind}: not mapped`)));
          continue;
        }
        const value = metric(cell);
        const rect = svg("rect", {
          x: x + 0.5, y: y + 0.5, width: cellW - 1, height: cellH - 1, fill: tone(value),
          class: "heat-cell", testid: "heat-cell", tabindex: 0,
          "data-kind": kind, "data-layer": layer, "data-value": value,
        }, svg("title", {}, describe(cell)));
        if (onPick) {
          rect.addEventListener("click", () => onPick(cell));
          rect.addEventListener("keydown", (e) => { if (e.key === "Enter") onPick(cell); });
        }
        root.appendChild(rect);
      }
    });
    root.appendChild(svg("text", { x: left + (nLayers * cellW) / 2, y: top + kinds.length * cellH + 16, class: "axis-title", "text-anchor": "middle" }, "layer"));

    // Legend: a gradient bar from the lowest to the highest value shown.
    const gradId = "heat-gradient";
    const grad = svg("linearGradient", { id: gradId, x1: 0, x2: 1, y1: 0, y2: 0 });
    for (let i = 0; i <= 10; i++) {
      grad.appendChild(svg("stop", { offset: `${i * 10}%`, "stop-color": colourAt(reverse ? 1 - i / 10 : i / 10) }));
    }
    root.appendChild(svg("defs", {}, grad));
    const legendW = Math.min(260, nLayers * cellW);
    root.appendChild(svg("text", { x: left, y: legendTop - 6, class: "axis-label" }, metricLabel));
    root.appendChild(svg("rect", { x: left, y: legendTop, width: legendW, height: 12, fill: `url(#${gradId})`, testid: "heat-legend" }));
    root.appendChild(svg("text", { x: left, y: legendTop + 26, class: "axis-label" }, fmt(lo, 3)));
    root.appendChild(svg("text", { x: left + legendW, y: legendTop + 26, class: "axis-label", "text-anchor": "end" }, fmt(hi, 3)));
    return root;
  }

  // Horizontal bars of token probabilities, longest bar = largest probability.
  function barChart(tokens) {
    const rowH = 22;
    const labelW = 150;
    const barW = 360;
    const width = labelW + barW + 70;
    const height = tokens.length * rowH + 8;
    const maxP = Math.max(1e-12, ...tokens.map((t) => t.prob));
    const root = svg("svg", {
      class: "chart bars", viewBox: `0 0 ${width} ${height}`, width, height,
      role: "img", "aria-label": "top tokens by probability", testid: "bar-chart",
    });
    tokens.forEach((t, i) => {
      const y = 4 + i * rowH;
      const w = Math.max(1, (t.prob / maxP) * barW);
      let label = visibleToken(t.text);
      if (label.length > 22) label = label.slice(0, 21) + "…";
      const hover = `#${i + 1}  id ${t.id}  ${JSON.stringify(t.text)}  p ${fmtProb(t.prob)}  logit ${fmt(t.logit, 3)}`;
      root.appendChild(svg("g", { class: "bar-row", testid: "bar", "data-id": t.id, "data-text": t.text, "data-prob": t.prob },
        svg("title", {}, hover),
        svg("text", { x: labelW - 8, y: y + rowH / 2 + 4, class: "bar-label", "text-anchor": "end" }, label),
        svg("rect", { x: labelW, y: y + 3, width: w, height: rowH - 6, class: "bar", rx: 2 }),
        svg("text", { x: labelW + w + 6, y: y + rowH / 2 + 4, class: "bar-value" }, fmtProb(t.prob))));
    });
    return root;
  }

  // Lines of a per-layer value in [0, 1], one per kind. rows: [{kind, layer, value, title}].
  function linePlot({ rows, yLabel }) {
    const kinds = [...new Set(rows.map((r) => r.kind))];
    const nLayers = Math.max(1, ...rows.map((r) => r.layer + 1));
    const left = 48;
    const right = 110;
    const top = 14;
    const plotW = Math.max(240, Math.min(760, nLayers * 26));
    const plotH = 220;
    const width = left + plotW + right;
    const height = top + plotH + 44;
    const x = (layer) => left + (nLayers > 1 ? (layer / (nLayers - 1)) * plotW : plotW / 2);
    const y = (v) => top + (1 - v) * plotH;
    const root = svg("svg", {
      class: "chart lines", viewBox: `0 0 ${width} ${height}`, width, height,
      role: "img", "aria-label": `${yLabel} by layer`, testid: "agreement-plot",
    });
    for (let v = 0; v <= 1.0001; v += 0.25) {
      root.appendChild(svg("line", { x1: left, x2: left + plotW, y1: y(v), y2: y(v), class: "grid" }));
      root.appendChild(svg("text", { x: left - 6, y: y(v) + 4, class: "axis-label", "text-anchor": "end" }, fmtPercent(v, 0)));
    }
    const every = Math.ceil(nLayers / 16);
    for (let layer = 0; layer < nLayers; layer += every) {
      root.appendChild(svg("text", { x: x(layer), y: top + plotH + 16, class: "axis-label", "text-anchor": "middle" }, String(layer)));
    }
    root.appendChild(svg("text", { x: left + plotW / 2, y: top + plotH + 36, class: "axis-title", "text-anchor": "middle" }, "layer"));
    kinds.forEach((kind, k) => {
      const points = rows.filter((r) => r.kind === kind).sort((a, b) => a.layer - b.layer);
      const colour = KIND_COLOURS[kind] || "#555";
      root.appendChild(svg("polyline", {
        points: points.map((p) => `${x(p.layer)},${y(p.value)}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": 2, testid: "agreement-line", "data-kind": kind,
      }));
      for (const p of points) {
        root.appendChild(svg("circle", { cx: x(p.layer), cy: y(p.value), r: 3.5, fill: colour, testid: "agreement-point", "data-kind": kind, "data-layer": p.layer },
          svg("title", {}, p.title)));
      }
      const ly = top + 10 + k * 20;
      root.appendChild(svg("line", { x1: left + plotW + 14, x2: left + plotW + 34, y1: ly, y2: ly, stroke: colour, "stroke-width": 3 }));
      root.appendChild(svg("text", { x: left + plotW + 40, y: ly + 4, class: "axis-label" }, kind));
    });
    return root;
  }

  // Background colour for an activation a relative to max_abs: orange for
  // positive, blue for negative, alpha by magnitude.
  function activationColour(a, maxAbs) {
    const t = maxAbs > 0 ? Math.min(1, Math.abs(a) / maxAbs) : 0;
    return a >= 0 ? `rgba(234, 118, 24, ${(0.85 * t).toFixed(3)})` : `rgba(40, 110, 220, ${(0.85 * t).toFixed(3)})`;
  }

  NL.charts = { heatMap, barChart, linePlot, activationColour, colourAt, KIND_COLOURS };
})(window.NL);
