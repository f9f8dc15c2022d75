// Playground (/playground): a prompt, neurons to clamp (sliders) or ablate
// and attention heads to scale or ablate, and the baseline and clamped
// generations side by side as they stream in (POST /api/generate, NDJSON);
// the probe of chosen next tokens with and without the interventions (POST
// /api/probe). Query string: prompt, chat, clamp=L:I=V, ablate=L:I,
// scale_head=L:H=F, ablate_head=L:H (each repeatable), max_tokens, seed,
// temperature, top_k, top_p, tokens (probe, one per line).
"use strict";
window.NL = window.NL || {};
NL.pages = NL.pages || {};

(function (NL) {
  const { el, table, fmt, fmtProb, tokenList, notice, api } = NL;
  const DEFAULT_PROMPT = "What is your favourite animal?";

  function parseIntervention(text, withValue) {
    const m = withValue ? /^(\d+):(\d+)=(-?[\d.eE+-]+)$/.exec(text) : /^(\d+):(\d+)$/.exec(text);
    if (!m) return null;
    const item = { layer: parseInt(m[1], 10), index: parseInt(m[2], 10) };
    if (withValue) item.value = parseFloat(m[3]);
    return withValue && !Number.isFinite(item.value) ? null : item;
  }

  // The quick-add box: "29:808=36" clamps, "3:17" ablates a neuron; "h5:2=0.5"
  // scales and "h5:2" ablates attention head 2 of layer 5.
  function parseQuick(text) {
    const head = /^h/i.test(text);
    const body = head ? text.slice(1) : text;
    const valued = parseIntervention(body, true);
    if (valued) return Object.assign(valued, { mode: head ? "scale-head" : "clamp" });
    const bare = parseIntervention(body, false);
    return bare ? Object.assign(bare, { mode: head ? "ablate-head" : "ablate" }) : null;
  }
  const HEAD_MODES = ["scale-head", "ablate-head"];

  // One row of the intervention list: layer, index (a neuron, or a head for
  // the head modes), what to do, value slider and number kept in step (the
  // clamp value, or the head's factor).
  function interventionRow(list, item, nLayers, dFfn, nHeads, recorded) {
    const row = el("div", { class: "pg-row", testid: "pg-neuron-row" });
    const range = (v) => Math.max(50, Math.ceil(Math.abs(v) * 2 / 10) * 10);
    const layer = el("input", { type: "number", min: 0, max: nLayers - 1, value: item.layer, class: "pg-layer", testid: "pg-layer", "aria-label": "layer" });
    const index = el("input", { type: "number", min: 0, max: dFfn - 1, value: item.index, class: "pg-index", testid: "pg-index", "aria-label": "neuron index" });
    const modes = [["clamp", "clamp neuron to"], ["ablate", "ablate neuron (zero)"]];
    if (nHeads) modes.push(["scale-head", "scale head by"], ["ablate-head", "ablate head (zero)"]);
    const mode = NL.select({ class: "pg-mode", testid: "pg-mode", "aria-label": "intervention" }, modes, item.mode || "clamp");
    const value0 = item.value === undefined ? 10 : item.value;
    const slider = el("input", { type: "range", min: -range(value0), max: range(value0), step: 0.5, value: value0, class: "pg-slider", testid: "pg-slider", "aria-label": "clamp value" });
    const value = el("input", { type: "number", step: "any", min: -1e4, max: 1e4, value: value0, class: "pg-value", testid: "pg-value", "aria-label": "clamp value" });
    slider.addEventListener("input", () => { value.value = slider.value; });
    value.addEventListener("input", () => {
      const v = parseFloat(value.value);
      if (!Number.isFinite(v)) return;
      if (Math.abs(v) > Number(slider.max)) { slider.max = range(v); slider.min = -range(v); }
      slider.value = v;
    });
    const indexLabel = el("span", {}, "neuron ");
    const syncMode = () => {
      slider.disabled = value.disabled = mode.value === "ablate" || mode.value === "ablate-head";
      const head = HEAD_MODES.includes(mode.value);
      indexLabel.textContent = head ? "head " : "neuron ";
      index.max = head ? nHeads - 1 : dFfn - 1;
      index.setAttribute("aria-label", head ? "head index" : "neuron index");
    };
    // With a record in the atlas: set the clamp to the neuron's recorded
    // max |activation| over the corpus (`neuronlens record`).
    const fromRecord = recorded ? el("button", {
      type: "button", class: "small", testid: "pg-from-record", title: "the neuron's largest |activation| over the recorded corpus",
      onclick: async () => {
        try {
          const r = await api.get(`/api/record/${layer.value}/${index.value}`, { contexts: 0 });
          const v = Math.round(r.stats.max_abs * 100) / 100;
          value.value = v;
          value.dispatchEvent(new Event("input"));
        } catch (err) {
          fromRecord.title = err.message;
        }
      },
    }, "recorded max") : null;
    const syncRecordButton = () => { if (fromRecord) fromRecord.disabled = mode.value !== "clamp"; };
    mode.addEventListener("change", syncMode);
    mode.addEventListener("change", syncRecordButton);
    syncMode();
    syncRecordButton();
    row.append(
      el("label", {}, "layer ", layer), el("label", {}, indexLabel, index), mode, slider, value, fromRecord,
      el("button", { type: "button", class: "icon", testid: "pg-remove", title: "remove", onclick: () => row.remove() }, "✕"));
    row.read = () => ({ mode: mode.value, layer: parseInt(layer.value, 10), index: parseInt(index.value, 10), value: parseFloat(value.value) });
    list.appendChild(row);
    return row;
  }

  function readInterventions(list) {
    const clamps = [];
    const ablate = [];
    const heads = [];
    for (const row of list.querySelectorAll(".pg-row")) {
      const r = row.read();
      if (!Number.isInteger(r.layer) || !Number.isInteger(r.index)) continue;
      if (r.mode === "ablate") ablate.push({ layer: r.layer, index: r.index });
      else if (r.mode === "ablate-head") heads.push({ layer: r.layer, head: r.index, factor: 0 });
      else if (r.mode === "scale-head") { if (Number.isFinite(r.value)) heads.push({ layer: r.layer, head: r.index, factor: r.value }); }
      else if (Number.isFinite(r.value)) clamps.push({ layer: r.layer, index: r.index, value: r.value });
    }
    return { clamps, ablate, heads };
  }

  // A streamed token: its text as is, with a faint ↵ before each line break
  // so a run of blank lines is visible; data-text keeps the exact text.
  function generatedToken(ev) {
    const span = el("span", { class: "gen-token", "data-id": ev.id, "data-text": ev.text, title: `id ${ev.id}  ${JSON.stringify(ev.text)}` });
    ev.text.split("\n").forEach((part, i) => {
      if (i > 0) span.append(el("span", { class: "nl-mark", "aria-hidden": "true" }, "↵"), "\n");
      if (part) span.append(part);
    });
    return span;
  }

  function outputColumn(run, title) {
    const status = el("div", { class: "gen-status muted small", testid: `pg-status-${run}`, id: `pg-status-${run}` }, "—");
    const text = el("div", { class: "gen-text", testid: `pg-text-${run}`, id: `pg-text-${run}` });
    const column = el("div", { class: "card gen-col", testid: `pg-out-${run}`, id: `pg-out-${run}`, "data-run": run, "data-state": "idle" },
      el("h3", {}, title), status, text);
    return { column, status, text };
  }

  function probeTable(res) {
    return el("div", { testid: "pg-probe-result", id: "pg-probe-result" },
      table({ class: "table compact" }, ["token", "id", "p baseline", "p clamped", "ratio"],
        res.tokens.map((t) => el("tr", { testid: "pg-probe-row", "data-id": t.id, "data-text": t.text, "data-baseline": t.baseline, "data-clamped": t.clamped },
          el("td", {}, NL.tokenChip(t, { showProb: false })), el("td", { class: "num" }, String(t.id)),
          el("td", { class: "num" }, fmtProb(t.baseline)), el("td", { class: "num" }, fmtProb(t.clamped)),
          el("td", { class: "num" }, t.baseline > 0 ? `×${fmt(t.clamped / t.baseline, 2)}` : "–")))),
      el("div", { class: "gen-grid" },
        el("div", { class: "card" }, el("h3", {}, "top next tokens, baseline"), tokenList(res.baseline_top, { testid: "pg-probe-top-baseline" })),
        el("div", { class: "card" }, el("h3", {}, "top next tokens, with interventions"), tokenList(res.clamped_top, { testid: "pg-probe-top-clamped" }))));
  }

  NL.pages.playground = async function (ctx) {
    const { info, query, root } = ctx;
    document.title = "playground · neuronlens";
    root.appendChild(el("h1", { testid: "page-title" }, "Playground"));
    if (!info.model_loaded) {
      root.appendChild(notice("unavailable",
        "No model loaded: the playground runs the model. Start the server with its weights (",
        el("code", {}, "neuronlens serve ATLAS.db --model MODEL"), ") to clamp neurons and compare generations."));
      return;
    }
    const limits = info.limits || { max_tokens: 256, max_clamps: 16, max_prompt_bytes: 4096 };
    const num = (id, value, attrs) => el("input", Object.assign({ type: "number", id, testid: id, value }, attrs || {}));
    const prompt = el("textarea", { id: "pg-prompt", testid: "pg-prompt", rows: 3, maxlength: limits.max_prompt_bytes }, query.get("prompt") || DEFAULT_PROMPT);
    const chatDefault = query.has("chat") ? query.get("chat") !== "0" : Boolean(info.chat_template);
    const chat = el("input", { type: "checkbox", id: "pg-chat", testid: "pg-chat", checked: chatDefault, disabled: !info.chat_template });
    const baseline = el("input", { type: "checkbox", id: "pg-baseline", testid: "pg-baseline", checked: query.get("baseline") !== "0" });
    const maxTokens = num("pg-max-tokens", query.get("max_tokens") || 48, { min: 1, max: limits.max_tokens });
    const temperature = num("pg-temperature", query.get("temperature") || 0, { min: 0, step: 0.1 });
    const topK = num("pg-top-k", query.get("top_k") || 0, { min: 0 });
    const topP = num("pg-top-p", query.get("top_p") || 1, { min: 0, max: 1, step: 0.05 });
    const seed = num("pg-seed", query.get("seed") || 0, { min: 0 });

    const list = el("div", { class: "pg-list", testid: "pg-neurons", id: "pg-neurons" });
    const addRow = (item) => interventionRow(list, item, info.model.n_layers, info.model.d_ffn, info.n_heads, Boolean(info.record));
    query.getAll("clamp").map((c) => parseIntervention(c, true)).filter(Boolean).forEach((c) => addRow(c));
    query.getAll("ablate").map((c) => parseIntervention(c, false)).filter(Boolean).forEach((c) => addRow(Object.assign(c, { mode: "ablate" })));
    query.getAll("scale_head").map((c) => parseIntervention(c, true)).filter(Boolean).forEach((c) => addRow(Object.assign(c, { mode: "scale-head" })));
    query.getAll("ablate_head").map((c) => parseIntervention(c, false)).filter(Boolean).forEach((c) => addRow(Object.assign(c, { mode: "ablate-head" })));
    const quick = el("input", { type: "text", id: "pg-quick", testid: "pg-quick", placeholder: "29:808=36, 3:17, h5:2=0.5 or h5:2", size: 22, "aria-label": "add neuron or head" });
    const addQuick = () => {
      const text = quick.value.trim();
      const item = parseQuick(text);
      if (!item || (HEAD_MODES.includes(item.mode) && !info.n_heads)) { quick.classList.add("invalid"); return; }
      quick.classList.remove("invalid");
      quick.value = "";
      addRow(item);
    };
    quick.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); addQuick(); } });

    const generate = el("button", { type: "submit", id: "pg-generate", testid: "pg-generate", class: "primary" }, "Generate");
    const stop = el("button", { type: "button", id: "pg-stop", testid: "pg-stop", disabled: true }, "Stop");
    const message = el("div", { testid: "pg-message", id: "pg-message" });
    const base = outputColumn("baseline", "baseline (no intervention)");
    const clamped = outputColumn("clamped", "with the interventions");
    const outputs = el("div", { class: "gen-grid", testid: "pg-outputs", id: "pg-outputs", "data-state": "idle" }, base.column, clamped.column);

    const settings = () => {
      const { clamps, ablate, heads } = readInterventions(list);
      return {
        prompt: prompt.value, chat: chat.checked, clamps, ablate, heads,
        max_tokens: parseInt(maxTokens.value, 10), seed: parseInt(seed.value, 10), temperature: parseFloat(temperature.value),
        top_k: parseInt(topK.value, 10), top_p: parseFloat(topP.value), baseline: baseline.checked,
      };
    };
    // Keep the page's URL a reproducible link to what was run.
    const remember = (s, probeTokens) => {
      const q = new URLSearchParams();
      q.set("prompt", s.prompt);
      q.set("chat", s.chat ? "1" : "0");
      s.clamps.forEach((c) => q.append("clamp", `${c.layer}:${c.index}=${c.value}`));
      s.ablate.forEach((a) => q.append("ablate", `${a.layer}:${a.index}`));
      s.heads.forEach((h) => (h.factor === 0 ? q.append("ablate_head", `${h.layer}:${h.head}`) : q.append("scale_head", `${h.layer}:${h.head}=${h.factor}`)));
      for (const k of ["max_tokens", "seed", "temperature", "top_k", "top_p"]) q.set(k, String(s[k]));
      if (probeTokens !== undefined) q.set("tokens", probeTokens);
      history.replaceState(null, "", `/playground?${q}`);
    };

    // Numbers the server would refuse (it wants JSON integers where it says so).
    const problems = (s) => {
      const bad = [];
      for (const k of ["max_tokens", "seed", "top_k"]) if (!Number.isInteger(s[k])) bad.push(k.replace("_", " "));
      for (const k of ["temperature", "top_p"]) if (!Number.isFinite(s[k])) bad.push(k.replace("_", " "));
      const rows = list.querySelectorAll(".pg-row").length;
      if (s.clamps.length + s.ablate.length + s.heads.length < rows) bad.push("a neuron or head row (layer, index or value)");
      return bad;
    };

    let running = null;
    const runGeneration = async () => {
      const s = settings();
      NL.clear(message);
      const bad = problems(s);
      if (bad.length) {
        message.appendChild(notice("error", `Please give a number for: ${bad.join(", ")}.`));
        return;
      }
      remember(s);
      if (!s.clamps.length && !s.ablate.length && !s.heads.length) message.appendChild(notice("info", "No neuron or head chosen: both runs will be the same. Add one above."));
      const columns = { baseline: base, clamped };
      for (const c of Object.values(columns)) {
        NL.clear(c.text);
        c.status.textContent = "waiting…";
        c.column.dataset.state = "waiting";
      }
      if (!s.baseline) { base.status.textContent = "skipped"; base.column.dataset.state = "skipped"; }
      outputs.dataset.state = "running";
      running = new AbortController();
      const abortWithPage = () => running && running.abort();
      ctx.signal.addEventListener("abort", abortWithPage);
      generate.disabled = true;
      stop.disabled = false;
      try {
        await api.stream("/api/generate", s, (ev) => {
          const c = columns[ev.run];
          if (ev.event === "start" && c) {
            c.status.textContent = `${ev.prompt_tokens} prompt tokens · generating…`;
            c.column.dataset.state = "running";
          } else if (ev.event === "token" && c) {
            c.text.appendChild(generatedToken(ev));
          } else if (ev.event === "done" && c) {
            c.status.textContent = `${ev.tokens} tokens · stop: ${ev.stop} · ${fmt(ev.seconds, 2)} s`;
            c.column.dataset.state = "done";
          }
        }, running.signal);
        outputs.dataset.state = "done";
      } catch (err) {
        outputs.dataset.state = err.name === "AbortError" ? "stopped" : "error";
        for (const c of Object.values(columns)) {
          if (c.column.dataset.state !== "done" && c.column.dataset.state !== "skipped") c.status.textContent = err.name === "AbortError" ? "stopped" : "failed";
        }
        if (err.name !== "AbortError") message.appendChild(NL.errorBox(err));
      } finally {
        ctx.signal.removeEventListener("abort", abortWithPage);
        running = null;
        generate.disabled = false;
        stop.disabled = true;
      }
    };
    stop.addEventListener("click", () => running && running.abort());

    root.appendChild(el("form", {
      class: "card", testid: "pg-form",
      onsubmit: (e) => { e.preventDefault(); runGeneration(); },
    },
    el("label", { class: "block" }, "Prompt", prompt),
    el("div", { class: "row gap small" },
      el("label", { class: "check" }, chat, "chat template"),
      el("label", {}, "max tokens ", maxTokens), el("label", {}, "temperature ", temperature),
      el("label", {}, "top-k ", topK), el("label", {}, "top-p ", topP), el("label", {}, "seed ", seed),
      el("label", { class: "check" }, baseline, "run the baseline too")),
    el("h3", {}, "Neurons and heads"),
    el("p", { class: "muted small" }, `Clamping sets the neuron's activation silu(gate)·up to the value at every position; at most ${limits.max_clamps} interventions. The neuron page shows its largest activation on a text, a useful scale. A head's output (before the output projection) is multiplied by its factor, or zeroed.`),
    list,
    el("div", { class: "row gap" },
      el("button", { type: "button", id: "pg-add", testid: "pg-add", onclick: () => addRow({ layer: info.model.n_layers - 1, index: 0, value: 10 }) }, "+ add neuron"),
      quick, el("button", { type: "button", id: "pg-quick-add", testid: "pg-quick-add", onclick: addQuick }, "add")),
    el("div", { class: "row gap" }, generate, stop)));
    root.appendChild(message);
    root.appendChild(outputs);

    // The probe: next-token probabilities of chosen tokens.
    const probeTokens = el("textarea", { id: "pg-probe-tokens", testid: "pg-probe-tokens", rows: 3 }, query.get("tokens") || " dog\n cat");
    const probeTop = num("pg-probe-top", 10, { min: 1, max: 50 });
    const probeButton = el("button", { type: "submit", id: "pg-probe", testid: "pg-probe", class: "primary" }, "Probe");
    const probeOut = el("div", { testid: "pg-probe-out" });
    // The tokens as the server will read them, leading spaces made visible.
    const probePreview = el("div", { class: "small muted", testid: "pg-probe-preview" });
    const showPreview = () => {
      NL.clear(probePreview).append("tokens: ",
        tokenList(probeTokens.value.split("\n").filter((t) => t.length).map((text) => ({ text })), { testid: "pg-probe-token" }));
    };
    probeTokens.addEventListener("input", showPreview);
    showPreview();
    root.appendChild(el("form", {
      class: "card", testid: "pg-probe-form",
      onsubmit: async (e) => {
        e.preventDefault();
        const s = settings();
        const tokens = probeTokens.value.split("\n").filter((t) => t.length);
        const bad = problems(s);
        if (bad.length) {
          NL.clear(probeOut).appendChild(notice("error", `Please give a number for: ${bad.join(", ")}.`));
          return;
        }
        remember(s, probeTokens.value);
        probeButton.disabled = true;
        NL.clear(probeOut).appendChild(NL.loading("Probing…"));
        try {
          const res = await api.post("/api/probe", { prompt: s.prompt, chat: s.chat, tokens, clamps: s.clamps, ablate: s.ablate, heads: s.heads, top: parseInt(probeTop.value, 10) }, ctx.signal);
          NL.clear(probeOut).appendChild(probeTable(res));
        } catch (err) {
          if (err.name !== "AbortError") NL.clear(probeOut).appendChild(NL.errorBox(err));
        } finally {
          probeButton.disabled = false;
        }
      },
    },
    el("h2", {}, "Probe the next token"),
    el("p", { class: "muted small" }, "The probability of each token (one per line; a leading space is part of the token) right after the prompt, without and with the neurons above."),
    probeTokens, probePreview, el("div", { class: "row gap" }, el("label", {}, "top ", probeTop), probeButton), probeOut));
  };
})(window.NL);
