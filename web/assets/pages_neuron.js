// Neuron (/neuron/{l}/{kind}/{i}): the stored top-k as a bar chart, the
// same (layer, index) in the other kinds, neighbours, its top activating
// contexts where the atlas holds a record, and with a model loaded the
// neuron's activation on a typed text, token by token.
"use strict";
window.NL = window.NL || {};
NL.pages = NL.pages || {};

(function (NL) {
  const { el, table, link, fmt, fmtProb, tokenList, notice, api, charts, neuronPath } = NL;
  const KINDS = ["up", "gate", "down"];
  const DEFAULT_TEXT = "The dog chased the cat across the garden.";

  function otherKinds(data) {
    return el("div", { class: "kind-cards", testid: "other-kinds" }, KINDS.map((k) => {
      const s = data.other_kinds[k];
      const current = k === data.kind;
      if (!s) {
        return el("div", { class: "card kind-card missing", testid: `kind-card-${k}`, "data-kind": k },
          el("h3", {}, k), el("p", { class: "muted" }, "not mapped"));
      }
      return el("div", { class: current ? "card kind-card current" : "card kind-card", testid: `kind-card-${k}`, "data-kind": k },
        el("h3", {}, current ? `${k} (this page)` : link(neuronPath(s.layer, k, s.index), k, { testid: `kind-link-${k}` })),
        el("p", { class: "muted small" }, `entropy ${fmt(s.entropy, 3)} · top-k mass ${fmt(s.topk_mass, 3)}`),
        el("div", { class: "mini-tokens" }, tokenList(s.top)));
    }));
  }

  function neighbourLinks(data, info) {
    const { layer, kind, index } = data;
    const mapped = info.mapped[kind] || [];
    const button = (href, text, testid) => (href
      ? link(href, text, { class: "button-link", testid, id: testid })
      : el("span", { class: "button-link disabled", testid }, text));
    const { previous, next } = data.neighbours;
    return el("div", { class: "row gap", testid: "neighbours" },
      previous !== null ? button(neuronPath(layer, kind, previous), `‹ ${layer}:${kind}:${previous}`, "neighbour-prev") : null,
      next !== null ? button(neuronPath(layer, kind, next), `${layer}:${kind}:${next} ›`, "neighbour-next") : null,
      layer > 0 ? button(mapped.includes(layer - 1) ? neuronPath(layer - 1, kind, index) : null, `layer ${layer - 1}, same index`, "neighbour-layer-prev") : null,
      layer + 1 < info.model.n_layers
        ? button(mapped.includes(layer + 1) ? neuronPath(layer + 1, kind, index) : null, `layer ${layer + 1}, same index`, "neighbour-layer-next") : null,
      link(`/layer/${layer}/${kind}`, `all of layer ${layer} ${kind}`, { class: "button-link", testid: "neuron-layer-link" }));
  }

  // Per-token highlighting: background by act / max_abs, numbers on hover.
  function activationView(res) {
    const tokens = res.tokens.map((t, i) => {
      const a = res.act[i];
      return el("span", {
        class: "act-token", testid: "act-token", "data-id": t.id, "data-text": t.text, "data-act": a,
        style: `background-color: ${charts.activationColour(a, res.max_abs)}`,
        title: `${JSON.stringify(t.text)}  act ${fmt(a, 4)}  gate ${fmt(res.gate[i], 4)}  up ${fmt(res.up[i], 4)}`,
      }, t.text);
    });
    let peak = 0;
    res.act.forEach((a, i) => { if (Math.abs(a) > Math.abs(res.act[peak])) peak = i; });
    return el("div", { testid: "act-result", id: "act-result" },
      el("div", { class: "act-text" }, tokens),
      el("p", { class: "muted small", testid: "act-summary" },
        `${res.tokens.length} tokens · max |act| ${fmt(res.max_abs, 4)}`,
        res.tokens.length ? ` at ${JSON.stringify(res.tokens[peak].text)} (token ${peak + 1})` : "",
        " · orange positive, blue negative · hover a token for act, gate and up"),
      el("p", {}, link(`/playground${api.query({ clamp: `${res.layer}:${res.index}=${Math.max(1, Math.round(res.max_abs * 10) / 10)}` })}`,
        `clamp ${res.layer}:${res.index} to its max |act| in the playground ›`, { testid: "act-to-playground" })));
  }

  // The recorded contexts (`neuronlens record`): each window's tokens
  // coloured by the neuron's activation (scaled to its corpus max |act|),
  // the firing token outlined; positive and negative side by side.
  function contextList(contexts, maxAbs, sign) {
    if (!contexts.length) return el("p", { class: "muted small" }, `no ${sign} activations recorded`);
    return el("ol", { class: "contexts", testid: `contexts-${sign}` }, contexts.map((c) =>
      el("li", { class: "context", testid: "context", "data-activation": c.activation, "data-chunk": c.chunk, "data-offset": c.offset },
        el("span", { class: "context-value mono" }, fmt(c.activation, 3)),
        el("span", { class: "act-text" }, c.tokens.map((t) => el("span", {
          class: t.fired ? "act-token fired" : "act-token", testid: t.fired ? "context-fired" : "context-token",
          style: `background-color: ${charts.activationColour(t.activation, maxAbs)}`,
          title: `${JSON.stringify(t.text)}  act ${fmt(t.activation, 4)}`,
        }, t.text))))));
  }

  function evidencePanel(data, info) {
    const e = data.evidence;
    const rec = info.record;
    if (!e || !rec) {
      return el("section", { class: "card", testid: "evidence-panel" }, el("h2", {}, "Top activating contexts"),
        notice("info", "No activation record in this atlas: `neuronlens record MODEL --corpus FILE -o ATLAS.db` adds every neuron's top contexts in a corpus."));
    }
    const s = e.stats;
    const files = rec.files.map((f) => f.name).join(", ");
    const clamp = Math.round(s.max_abs * 100) / 100;
    return el("section", { class: "card", testid: "evidence-panel" },
      el("h2", {}, "Top activating contexts"),
      el("p", { class: "muted small", testid: "evidence-stats" },
        `Over ${rec.tokens_recorded.toLocaleString()} tokens of ${files}: mean ${fmt(s.mean, 4)} · std ${fmt(s.std, 4)} · `,
        `max |act| ${fmt(s.max_abs, 4)} · density ${fmt(s.density * 100, 2)}% (|act| > ${rec.density_threshold}). `,
        "Orange positive, blue negative; the outlined token is where the neuron fired."),
      el("p", {}, link(`/playground${api.query({ clamp: `${data.layer}:${data.index}=${clamp}` })}`,
        `clamp ${data.layer}:${data.index} to its recorded max |act| (${clamp}) in the playground ›`, { testid: "evidence-to-playground" })),
      el("div", { class: "contexts-grid" },
        el("div", {}, el("h3", {}, "positive"), contextList(e.positive, s.max_abs, "positive")),
        el("div", {}, el("h3", {}, "negative"), contextList(e.negative, s.max_abs, "negative"))));
  }

  function activationPanel(ctx, data) {
    const section = el("section", { class: "card", testid: "activation-panel" }, el("h2", {}, "Activation on a text"));
    if (!ctx.info.model_loaded) {
      section.appendChild(notice("info", "Needs a model: start the server with the model's weights (serve without --no-model) to see this neuron fire token by token."));
      return section;
    }
    section.appendChild(el("p", { class: "muted small" },
      `Neuron ${data.index} of layer ${data.layer}: its MLP activation silu(gate)·up at each token, the value a clamp sets (the same for every kind).`));
    const text = el("textarea", { id: "act-text", testid: "act-text", rows: 2, maxlength: 4096 }, DEFAULT_TEXT);
    const chat = el("input", { type: "checkbox", id: "act-chat", testid: "act-chat" });
    const out = el("div", { class: "act-out", testid: "act-out" });
    const run = el("button", { type: "submit", id: "act-run", testid: "act-run", class: "primary" }, "Show activations");
    section.appendChild(el("form", {
      onsubmit: async (e) => {
        e.preventDefault();
        run.disabled = true;
        NL.clear(out).appendChild(NL.loading("Running the model…"));
        try {
          const res = await api.post("/api/activations", { text: text.value, layer: data.layer, index: data.index, chat: chat.checked }, ctx.signal);
          NL.clear(out).appendChild(activationView(res));
        } catch (err) {
          if (err.name !== "AbortError") NL.clear(out).appendChild(NL.errorBox(err));
        } finally {
          run.disabled = false;
        }
      },
    }, text, el("div", { class: "row gap" }, run, el("label", { class: "check" }, chat, "wrap in the chat template"))));
    section.appendChild(out);
    return section;
  }

  NL.pages.neuron = async function (ctx) {
    const { layer, kind, index } = ctx.params;
    const ref = `${layer}:${kind}:${index}`;
    document.title = `${ref} · neuronlens`;
    const data = await api.get(`/api/neurons/${layer}/${kind}/${index}`, {}, ctx.signal);
    if (!ctx.alive()) return;
    const { root, info } = ctx;
    root.appendChild(el("div", { class: "crumbs" }, link("/", "overview"), " / ", link(`/layer/${layer}/${kind}`, `layer ${layer} ${kind}`), " / ", String(index)));
    root.appendChild(el("h1", { testid: "page-title" }, "Neuron ", el("span", { class: "mono" }, ref)));
    root.appendChild(el("div", { class: "stats", testid: "neuron-stats" },
      el("span", { testid: "neuron-entropy" }, "entropy ", el("b", {}, fmt(data.entropy, 3)), " nats"),
      el("span", {}, `top-${data.top.length} mass `, el("b", {}, fmt(data.topk_mass, 3))),
      el("span", {}, "logsumexp ", el("b", {}, fmt(data.logsumexp, 3))),
      el("span", {}, "top-1 ", tokenList(data.top.slice(0, 1)))));
    root.appendChild(neighbourLinks(data, info));
    const chart = el("section", { class: "card" },
      el("h2", {}, `Top ${data.top.length} tokens`),
      el("p", { class: "muted small" }, `p = softmax(W_U · ${info.settings.norm === "none" ? "v" : "norm(v)"}) of this ${kind} vector; bars scaled to the largest probability.`),
      el("div", { class: "chart-holder" }, charts.barChart(data.top)),
      el("details", {}, el("summary", {}, "as a table"),
        table({ class: "table compact", testid: "top-table" }, ["#", "id", "token", "logit", "p"],
          data.top.map((t, i) => el("tr", {},
            el("td", { class: "num" }, String(i + 1)), el("td", { class: "num" }, String(t.id)), el("td", {}, NL.tokenChip(t, { showProb: false })),
            el("td", { class: "num" }, fmt(t.logit, 3)), el("td", { class: "num" }, fmtProb(t.prob)))))));
    const kinds = el("section", { class: "kinds-column" }, el("h2", {}, "The same neuron in each kind"),
      el("p", { class: "muted small" }, "up and gate rows are what the neuron reads; the down column is what it writes."),
      otherKinds(data));
    root.appendChild(el("div", { class: "neuron-grid" }, chart, kinds));
    root.appendChild(evidencePanel(data, info));
    root.appendChild(activationPanel(ctx, data));
  };
})(window.NL);
