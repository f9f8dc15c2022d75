// Search (/search): a concept ranked over the neurons as `neuronlens find`
// ranks it (GET /api/search), or tokens found by their text with the
// atlas's full-text index (GET /api/tokens) and the neurons that hold one
// (GET /api/tokens/{id}/neurons). All state is in the query string.
"use strict";
window.NL = window.NL || {};
NL.pages = NL.pages || {};

(function (NL) {
  const { el, table, link, fmt, fmtInt, fmtProb, tokenChip, tokenList, select, pager, notice, api } = NL;
  const KINDS = ["up", "gate", "down"];
  const PAGE = 20;
  const LISTED = 1000; // a search lists its best 1000 neurons (docs/api.md)

  function tabs(mode) {
    return el("div", { class: "tabs big" },
      link("/search", "Concept", { class: mode === "concept" ? "tab active" : "tab", testid: "search-tab-concept", id: "search-tab-concept" }),
      link("/search?mode=tokens", "Token text", { class: mode === "tokens" ? "tab active" : "tab", testid: "search-tab-tokens", id: "search-tab-tokens" }));
  }

  function conceptForm(ctx) {
    const { query, info } = ctx;
    const kinds = (query.get("kinds") || KINDS.join(",")).split(",");
    const input = el("input", {
      id: "search-input", testid: "search-input", type: "search", value: query.get("q") || "", placeholder: "a concept, e.g. dog",
      maxlength: 100, autocomplete: "off", spellcheck: "false", "aria-label": "concept", autofocus: true,
    });
    const by = select({ id: "search-by", testid: "search-by" }, [["prob", "probability of the concept"], ["logit", "logit"]], query.get("by") || "prob");
    const kindBoxes = KINDS.map((k) => el("label", { class: "check" },
      el("input", { type: "checkbox", id: `search-kind-${k}`, testid: `search-kind-${k}`, value: k, checked: kinds.includes(k) }), k));
    const layers = el("input", { id: "search-layers", testid: "search-layers", type: "text", value: query.get("layers") || "all", size: 8, "aria-label": "layers" });
    const variants = el("input", { type: "checkbox", id: "search-variants", testid: "search-variants", checked: query.get("variants") !== "0" });
    const exact = el("input", {
      type: "checkbox", id: "search-exact", testid: "search-exact",
      checked: info.model_loaded && query.get("exact") !== "0", disabled: !info.model_loaded,
    });
    return el("form", {
      class: "search-form", testid: "search-form",
      onsubmit: (e) => {
        e.preventDefault();
        const q = input.value.trim();
        if (!q) return;
        const chosen = kindBoxes.map((b) => b.querySelector("input")).filter((b) => b.checked).map((b) => b.value);
        ctx.navigate("/search" + api.query({
          q,
          by: by.value === "prob" ? "" : by.value,
          kinds: chosen.length === KINDS.length ? "" : chosen.join(","),
          layers: layers.value.trim() === "all" ? "" : layers.value.trim(),
          exact: info.model_loaded && !exact.checked ? "0" : "",
          variants: variants.checked ? "" : "0",
        }));
      },
    },
    el("div", { class: "row gap" }, input, el("button", { type: "submit", id: "search-submit", testid: "search-submit", class: "primary" }, "Search")),
    el("div", { class: "row gap small" }, el("label", {}, "rank by ", by), el("span", {}, "kinds ", kindBoxes),
      el("label", {}, "layers ", layers),
      el("label", { class: "check", title: "with and without a leading space, capitalised, plural; unticked: exactly as typed" }, variants, "variants"),
      el("label", { class: "check", title: info.model_loaded ? "rank every neuron with the model's LM head" : "needs the model" }, exact, "exact over all neurons")));
  }

  async function conceptResults(ctx, holder) {
    const { query } = ctx;
    const offset = Math.max(0, parseInt(query.get("offset"), 10) || 0);
    const params = {
      q: query.get("q"), by: query.get("by") || "prob", kinds: query.get("kinds") || KINDS.join(","),
      layers: query.get("layers") || "all", offset, limit: PAGE, show_top: 8,
    };
    if (query.get("exact")) params.exact = query.get("exact");
    if (query.get("variants")) params.variants = query.get("variants");
    const res = await api.get("/api/search", params, ctx.signal);
    if (!ctx.alive()) return;
    NL.clear(holder);
    const concept = res.concept;
    holder.appendChild(el("div", { class: "concept-line", testid: "search-concept" },
      el("span", {}, `concept “${concept.text}” → `),
      tokenList(concept.variants.map((text, i) => ({ text, id: concept.ids[i] })), { testid: "concept-variant" }),
      concept.not_single && concept.not_single.length
        ? el("span", { class: "muted" }, " · not single tokens: ", concept.not_single.map((t) => NL.visibleToken(t)).join(", "))
        : null));
    holder.appendChild(el("div", { class: "status-line" },
      res.exact
        ? el("span", { class: "badge badge-ok", testid: "search-exact-badge" }, `exact: ranked over all ${fmtInt(res.total)} neurons`)
        : el("span", { class: "badge badge-warn", testid: "search-inexact-badge" }, `within the stored top-k: ${fmtInt(res.total)} neurons`),
      res.note && res.note !== ctx.info.note ? el("span", { class: "muted", testid: "search-note" }, res.note) : null));
    const onPage = (o) => ctx.setQuery({ offset: o });
    holder.appendChild(pager(res, "search", onPage, LISTED));
    holder.appendChild(table({ class: "table", testid: "search-results", id: "search-results" }, ["#", "neuron", `p(concept)`, "logit", "rank", "top tokens"],
      res.items.map((n, i) => el("tr", {
        testid: "search-row", "data-layer": n.layer, "data-kind": n.kind, "data-index": n.index, "data-prob": n.prob,
      },
      el("td", { class: "num muted" }, String(res.offset + i + 1)),
      el("td", {}, NL.neuronLink(n, { testid: "search-row-link" })),
      el("td", { class: "num" }, fmtProb(n.prob)),
      el("td", { class: "num" }, fmt(n.logit, 3)),
      el("td", { class: "num", title: "where the concept's best token ranks in this neuron's distribution" }, String(n.rank)),
      el("td", {}, tokenList(n.top))))));
    if (!res.items.length) holder.appendChild(notice("info", "No neuron found."));
    holder.appendChild(pager(res, "search-bottom", onPage, LISTED));
  }

  function tokensForm(ctx) {
    const input = el("input", {
      id: "token-search-input", testid: "token-search-input", type: "search", value: ctx.query.get("q") || "",
      placeholder: "part of a token's text, e.g. ifornia", maxlength: 100, autocomplete: "off", spellcheck: "false", autofocus: true,
    });
    return el("form", {
      class: "search-form", testid: "token-search-form",
      onsubmit: (e) => {
        e.preventDefault();
        if (input.value) ctx.navigate("/search" + api.query({ mode: "tokens", q: input.value }));
      },
    }, el("div", { class: "row gap" }, input, el("button", { type: "submit", id: "token-search-submit", testid: "token-search-submit", class: "primary" }, "Find tokens")),
    el("p", { class: "muted small" }, "Substring search over the vocabulary (1–2 characters match by prefix). Leading spaces count: type “ dog” for the word-initial token."));
  }

  async function tokenResults(ctx, holder) {
    const { query } = ctx;
    const res = await api.get("/api/tokens", { q: query.get("q"), limit: 50 }, ctx.signal);
    if (!ctx.alive()) return;
    NL.clear(holder);
    const chosen = query.get("token");
    holder.appendChild(el("div", { class: "token-matches", testid: "token-matches" },
      res.items.length ? res.items.map((t) => el("a", {
        href: "/search" + api.query({ mode: "tokens", q: query.get("q"), token: t.id }), "data-link": "",
        class: String(t.id) === chosen ? "token-match active" : "token-match", testid: "token-match", "data-id": t.id,
      }, tokenChip(t, { showProb: false }), el("span", { class: "muted small" }, ` ${fmtInt(t.neurons)} neurons`)))
        : notice("info", "No token contains that text.")));
    if (chosen === null) return;
    const offset = Math.max(0, parseInt(query.get("offset"), 10) || 0);
    const page = await api.get(`/api/tokens/${encodeURIComponent(chosen)}/neurons`, { offset, limit: 50 }, ctx.signal);
    if (!ctx.alive()) return;
    const onPage = (o) => ctx.setQuery({ offset: o });
    holder.appendChild(el("h2", {}, "Neurons holding ", page.token ? NL.tokenChip(page.token) : `token ${chosen}`, " in their top-k"));
    holder.appendChild(pager(page, "token-neurons", onPage));
    holder.appendChild(table({ class: "table", testid: "token-neurons" }, ["neuron", "p(token)", "rank", "entropy", "top tokens"],
      page.items.map((n) => el("tr", { testid: "token-neuron-row", "data-layer": n.layer, "data-kind": n.kind, "data-index": n.index },
        el("td", {}, NL.neuronLink(n)),
        el("td", { class: "num" }, fmtProb(n.prob)),
        el("td", { class: "num" }, String(n.rank)),
        el("td", { class: "num" }, fmt(n.entropy, 3)),
        el("td", {}, tokenList(n.top))))));
  }

  NL.pages.search = async function (ctx) {
    const { query, root, info } = ctx;
    const mode = query.get("mode") === "tokens" ? "tokens" : "concept";
    document.title = `search${query.get("q") ? " " + query.get("q") : ""} · neuronlens`;
    root.appendChild(el("h1", { testid: "page-title" }, "Search"));
    root.appendChild(tabs(mode));
    if (mode === "concept") {
      root.appendChild(conceptForm(ctx));
      if (!info.exact_search) {
        root.appendChild(notice("info", `Not exact${info.note ? ` (${info.note})` : ""}: search ranks the neurons that hold a concept token ` +
          "in their stored top-k, not every neuron over the whole vocabulary."));
      }
    } else {
      root.appendChild(tokensForm(ctx));
    }
    if (!query.get("q")) return;
    const holder = el("section", { class: "results", testid: "search-holder" }, NL.loading("Ranking neurons…"));
    root.appendChild(holder);
    if (mode === "concept") await conceptResults(ctx, holder);
    else await tokenResults(ctx, holder);
  };
})(window.NL);
