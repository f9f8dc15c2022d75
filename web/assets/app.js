// The single-page app's shell: history-API routing on the paths of
// docs/api.md ("Pages"), the header, and the page life cycle. Each page
// (pages_*.js) registers NL.pages.NAME = async function (ctx).
"use strict";
window.NL = window.NL || {};

(function (NL) {
  const { el, clear, api } = NL;
  const KIND = "(up|gate|down)";
  const ROUTES = [
    [/^\/$/, "overview", []],
    [/^\/search$/, "search", []],
    [new RegExp(`^/layer/(\\d+)/${KIND}$`), "layer", ["layer", "kind"]],
    [new RegExp(`^/neuron/(\\d+)/${KIND}/(\\d+)$`), "neuron", ["layer", "kind", "index"]],
    [/^\/heads\/(\d+)\/(ov|qk)$/, "heads", ["layer", "kind"]],
    [/^\/head\/(\d+)\/(ov|qk)\/(\d+)$/, "head", ["layer", "kind", "index"]],
    [/^\/compare$/, "compare", []],
    [/^\/playground$/, "playground", []],
  ];
  const NAV = [["/", "Overview", "overview"], ["/search", "Search", "search"], ["/compare", "Compare", "compare"], ["/playground", "Playground", "playground"]];

  let current = null; // {controller} of the page on screen

  function match(pathname) {
    const path = pathname.length > 1 ? pathname.replace(/\/+$/, "") : pathname;
    for (const [re, name, keys] of ROUTES) {
      const m = re.exec(path);
      if (!m) continue;
      const params = {};
      keys.forEach((k, i) => { params[k] = k === "kind" ? m[i + 1] : parseInt(m[i + 1], 10); });
      return { name, params };
    }
    return { name: "notFound", params: {} };
  }

  function navigate(url, opts) {
    const o = opts || {};
    if (o.replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    render();
  }

  function setState(state) {
    document.body.dataset.state = state;
  }

  function header() {
    const jump = el("input", {
      id: "jump-input", testid: "jump-input", type: "text", placeholder: "16:up:4031",
      "aria-label": "go to neuron layer:kind:index or head layer:ov:head", autocomplete: "off", spellcheck: "false",
    });
    const form = el("form", {
      class: "jump", testid: "jump-form",
      onsubmit: (e) => {
        e.preventDefault();
        const m = /^\s*(\d+)\s*[:/ ]\s*(up|gate|down|ov|qk)\s*[:/ ]\s*(\d+)\s*$/.exec(jump.value);
        if (!m) jump.classList.add("invalid");
        else if (m[2] === "ov" || m[2] === "qk") navigate(NL.headPath(m[1], m[2], m[3]));
        else navigate(NL.neuronPath(m[1], m[2], m[3]));
      },
    }, jump);
    return el("header", { class: "top" },
      el("a", { href: "/", "data-link": "", class: "brand", testid: "brand" }, "neuronlens"),
      el("nav", { class: "nav" }, NAV.map(([href, text, name]) =>
        el("a", { href, "data-link": "", id: `nav-${name}`, testid: `nav-${name}`, "data-page": name }, text))),
      el("span", { class: "model-name", id: "model-name", testid: "model-name" }),
      form);
  }

  function markNav(name) {
    for (const a of document.querySelectorAll(".nav a")) {
      a.classList.toggle("active", a.dataset.page === name || ((name === "layer" || name === "heads" || name === "head") && a.dataset.page === "overview"));
    }
  }

  async function render() {
    if (current) current.controller.abort();
    const controller = new AbortController();
    const me = { controller };
    current = me;
    const { name, params } = match(location.pathname);
    const root = clear(document.getElementById("app"));
    document.body.dataset.page = name;
    markNav(name);
    setState("loading");
    window.scrollTo(0, 0);
    const ctx = {
      params,
      query: new URLSearchParams(location.search),
      root,
      signal: controller.signal,
      alive: () => current === me,
      navigate,
      // Replace the query string and re-render (pagination, filters).
      setQuery(values, opts) {
        const q = new URLSearchParams(location.search);
        for (const [k, v] of Object.entries(values)) {
          if (v === undefined || v === null || v === "") q.delete(k);
          else q.set(k, String(v));
        }
        const s = q.toString();
        navigate(location.pathname + (s ? "?" + s : ""), opts);
      },
      ready: () => { if (current === me) setState("ready"); },
    };
    try {
      ctx.info = await api.info();
      if (!ctx.alive()) return;
      document.getElementById("model-name").textContent = ctx.info.model.name;
      const page = NL.pages[name];
      await page(ctx);
      ctx.ready();
    } catch (err) {
      if (err.name === "AbortError" || !ctx.alive()) return;
      root.appendChild(NL.errorBox(err));
      setState("error");
    }
  }

  NL.pages = NL.pages || {};
  NL.pages.notFound = async (ctx) => {
    document.title = "Not found · neuronlens";
    ctx.root.appendChild(el("h1", {}, "Not found"));
    ctx.root.appendChild(el("p", {}, "No page at ", el("code", {}, location.pathname), ". ", NL.link("/", "Back to the overview.")));
  };

  NL.navigate = navigate;

  function boot() {
    document.body.insertBefore(header(), document.getElementById("app"));
    document.addEventListener("click", (e) => {
      const a = e.target.closest("a[data-link]");
      if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(a.getAttribute("href"));
    });
    window.addEventListener("popstate", render);
    render();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})(window.NL);
