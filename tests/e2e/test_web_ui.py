#!/usr/bin/env python3
"""End-to-end test of the web UI of `neuronlens serve` in headless Chromium.

Maps MODEL into an atlas (and a second one with --norm none, to compare),
starts `neuronlens serve ATLAS --model MODEL --compare OTHER --port 0`, and
drives Debian's chromium through chromedriver (selenium):

  overview    the heat map has n_layers x kinds cells; a click opens the layer,
              whose rows are GET /api/layers' answer
  search      typing CONCEPT gives the rows of GET /api/search, in order, each
              with its top tokens; the next page is the API's next page
  neuron      the first result's page shows GET /api/neurons' top tokens as
              bars; a typed text gives POST /api/activations' tokens and
              values, highlighted by |act|
  playground  a clamped greedy generation fills both columns with the texts
              POST /api/generate streams for the same request; the probe shows
              POST /api/probe's probabilities
  compare     the agreement plot has a point per (kind, layer) and the changed
              neurons are GET /api/compare/changed's
  no model    a second server with --no-model: the playground says it needs a
              model, search says it is not exact

The page must log no JavaScript error and load nothing from another origin.
Screenshots of every page go to WORK (test artefacts).

Usage: test_web_ui.py --neuronlens BIN --model MODEL --work DIR [--concept dog]
                      [--map-args "--layers 29"] [--max-tokens 12]
                      [--atlas EXISTING.db] [--compare-atlas OTHER.db]
Exit 0 pass, 1 fail, 77 skipped (selenium, chromium or the model missing).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

SKIP = 77
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None


class TestFailure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise TestFailure(message)


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the server -------------------------------------------------------------

class Server:
    """`neuronlens serve` on a free port; its URL is read from its output."""

    def __init__(self, neuronlens: str, args: list[str], log_path: str, timeout: float):
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        command = [neuronlens, "serve", *args, "--port", "0"]
        log("starting " + shlex.join(command))
        self.process = subprocess.Popen(command, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.url = self._wait_for_url(timeout)
        log(f"server at {self.url}")

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TestFailure(f"serve exited with {self.process.returncode}:\n{self.output()}")
            m = re.search(r"https?://[A-Za-z0-9.\-\[\]:]+:(\d+)", self.output())
            if m and int(m.group(1)) > 0:
                url = m.group(0).rstrip("/")
                try:
                    urllib.request.urlopen(url + "/api/info", timeout=10).read()
                    return url
                except (urllib.error.URLError, ConnectionError):
                    pass
            time.sleep(0.2)
        raise TestFailure(f"serve printed no reachable URL within {timeout:.0f} s:\n{self.output()}")

    def output(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self) -> int:
        """SIGTERM, as a user's Ctrl-C would; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log_file.closed:
            self.log_file.close()
        return self.process.returncode

    def check_clean_exit(self) -> None:
        """Stopped by SIGTERM it exits 0, with no sanitizer report in its output."""
        status = self.stop()
        output = self.output()
        check(status == 0, f"serve exited with {status} on SIGTERM:\n{output[-4000:]}")
        check("ERROR: AddressSanitizer" not in output and "runtime error:" not in output
              and "ERROR: LeakSanitizer" not in output, f"sanitizer report from serve:\n{output[-4000:]}")


class Api:
    def __init__(self, url: str, timeout: float):
        self.url = url
        self.timeout = timeout

    def _read(self, request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                return r.read()
        except urllib.error.HTTPError as err:
            raise TestFailure(f"{request if isinstance(request, str) else request.full_url}: HTTP {err.code} "
                              f"{err.read().decode(errors='replace')}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            raise TestFailure(f"{request if isinstance(request, str) else request.full_url}: {err}") from None

    def get(self, path: str, **params) -> dict:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        return json.loads(self._read(self.url + path + query))

    def post(self, path: str, body: dict) -> bytes:
        return self._read(urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                                 headers={"Content-Type": "application/json"}, method="POST"))

    def post_json(self, path: str, body: dict) -> dict:
        return json.loads(self.post(path, body))

    def generate(self, body: dict) -> dict[str, str]:
        """POST /api/generate: the concatenated token texts of each run."""
        texts: dict[str, str] = {}
        for line in self.post("/api/generate", body).decode().splitlines():
            if not line.strip():
                continue
            event = json.loads(line)
            check(event.get("event") != "error", f"/api/generate streamed an error: {event}")
            if event.get("event") == "token":
                texts[event["run"]] = texts.get(event["run"], "") + event["text"]
            elif event.get("event") == "start":
                texts.setdefault(event["run"], "")
        return texts


# --- the browser ------------------------------------------------------------

class Browser:
    def __init__(self, work: str, timeout: float):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1",
                    "--lang=en-US"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(CHROMEDRIVER, log_output=os.path.join(work, "chromedriver.log"))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.work = work
        self.timeout = timeout

    def quit(self) -> None:
        self.driver.quit()

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait_ready()

    def wait(self, condition, what: str, timeout: float | None = None):
        try:
            return WebDriverWait(self.driver, timeout or self.timeout, poll_frequency=0.1).until(lambda d: condition())
        except TimeoutException:
            raise TestFailure(f"timed out waiting for {what} (url {self.driver.current_url}, page state "
                              f"{self.driver.execute_script('return document.body.dataset.state')})") from None

    def wait_ready(self) -> None:
        """The router sets body[data-state] to ready or error after each render."""
        state = self.wait(lambda: self.driver.execute_script(
            "const s = document.body.dataset.state; return s === 'ready' || s === 'error' ? s : null;"), "the page to render")
        if state == "error":
            raise TestFailure(f"page {self.driver.current_url} rendered an error: {self.text('[data-testid=notice-error]')}")

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        found = self.find_all(css)
        return found[0].get_attribute("textContent") if found else ""

    def click(self, css: str) -> None:
        element = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def type(self, css: str, text: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(text)

    def path(self) -> str:
        return urllib.parse.urlparse(self.driver.current_url).path

    def screenshot(self, name: str) -> None:
        """The whole page: the window is stretched to the document's height."""
        self.driver.execute_script("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur();")
        height, chrome = self.driver.execute_script(
            "return [Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),"
            " window.outerHeight - window.innerHeight]")
        self.driver.set_window_size(1280, max(600, min(int(height) + int(chrome), 4000)))
        time.sleep(0.2)
        path = os.path.join(self.work, name)
        self.driver.save_screenshot(path)
        self.driver.set_window_size(1280, 900)
        log(f"screenshot {path}")

    def check_console(self) -> None:
        """No JavaScript error or failed load; nothing from another origin."""
        errors = [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]
        check(not errors, f"browser console errors: {errors}")
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlparse(self.driver.current_url))
        foreign = [u for u in self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)") if not u.startswith(origin)]
        check(not foreign, f"the page loaded resources from elsewhere: {foreign}")


def token_ids(element) -> list[int]:
    return [int(t.get_attribute("data-id")) for t in element.find_elements(By.CSS_SELECTOR, "[data-testid=token]")]


# --- the checks, page by page -----------------------------------------------

def check_agreement(b: Browser, api: Api, info: dict) -> None:
    """The overview's agreement table (an atlas with a record): /api/agreement's rows."""
    if not info.get("record"):
        return
    agreement = api.get("/api/agreement")
    b.open(api.url + "/")
    b.wait(lambda: b.find_all("[data-testid=agreement]"), "the agreement section")
    if not agreement["available"]:
        check(agreement["note"] in b.text("[data-testid=agreement]"), "the agreement section does not say why it is empty")
        return
    b.wait(lambda: b.find_all("[data-testid=agreement-row]"), "the agreement rows")
    rows = [(int(r.get_attribute("data-layer")), float(r.get_attribute("data-rate")), float(r.get_attribute("data-chance")))
            for r in b.find_all("[data-testid=agreement-row]")]
    want = [(l["layer"], l["mean_rate"], l["mean_chance"]) for l in agreement["layers"]]
    check(len(rows) == len(want) and all(a[0] == w[0] and abs(a[1] - w[1]) < 1e-9 and abs(a[2] - w[2]) < 1e-9
                                         for a, w in zip(rows, want)), f"agreement rows {rows[:3]} != /api/agreement {want[:3]}")
    log(f"overview agreement: {len(rows)} layers")


def check_overview(b: Browser, api: Api, info: dict) -> None:
    b.open(api.url + "/")
    check(b.text("[data-testid=page-title]") == info["model"]["name"], "overview title is not the model's name")
    overview = api.get("/api/overview", threshold=0.5)
    kinds = [k for k in ("up", "gate", "down") if info["mapped"][k]]
    cells = b.find_all("[data-testid=heatmap] [data-testid=heat-cell]")
    expected = {(c["kind"], c["layer"]) for c in overview["cells"]}
    shown = {(c.get_attribute("data-kind"), int(c.get_attribute("data-layer"))) for c in cells}
    mapped = {(k, l) for k in kinds for l in info["mapped"][k]}
    check(shown == expected == mapped, f"heat map cells {sorted(shown)} != /api/overview {sorted(expected)} / mapped {sorted(mapped)}")
    if all(len(info["mapped"][k]) == info["model"]["n_layers"] for k in kinds):
        check(len(cells) == info["model"]["n_layers"] * len(kinds),
              f"heat map has {len(cells)} cells, expected n_layers x kinds = {info['model']['n_layers']} x {len(kinds)}")
    titles = [c.find_element(By.TAG_NAME, "title").get_attribute("textContent") for c in cells[:3]]
    check(all("entropy" in t for t in titles), f"heat map cells lack hover titles: {titles}")
    check(b.find_all("[data-testid=heat-legend]"), "heat map has no legend")
    log(f"overview: {len(cells)} heat map cells")
    b.screenshot("overview.png")

    # Colour by the share of specialised neurons: the same cells, new values.
    b.driver.execute_script("const s = document.getElementById('heat-metric'); s.value = 'share'; s.dispatchEvent(new Event('change'));")
    b.wait(lambda: "metric=share" in b.driver.current_url and b.driver.execute_script("return document.body.dataset.state") == "ready",
           "the heat map by share")
    shares = {(c.get_attribute("data-kind"), int(c.get_attribute("data-layer"))): float(c.get_attribute("data-value"))
              for c in b.find_all("[data-testid=heat-cell]")}
    for c in overview["cells"]:
        check(abs(shares[(c["kind"], c["layer"])] - c["specialised_share"]) < 1e-9, f"share of {c['kind']} {c['layer']} wrong")

    # Click the last layer of the first kind: its layer page.
    kind, layer = kinds[0], max(info["mapped"][kinds[0]])
    b.driver.execute_script(
        "document.querySelector(`[data-testid=heat-cell][data-kind='${arguments[0]}'][data-layer='${arguments[1]}']`)"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}))", kind, layer)
    b.wait(lambda: b.path() == f"/layer/{layer}/{kind}", f"the click to open /layer/{layer}/{kind}")
    b.wait_ready()
    rows = [int(r.get_attribute("data-index")) for r in b.find_all("[data-testid=layer-row]")]
    page = api.get(f"/api/layers/{layer}/{kind}", sort="index", order="asc", offset=0, limit=50, show_top=6)
    check(rows == [n["index"] for n in page["items"]], f"layer rows {rows[:5]}… != /api/layers {[n['index'] for n in page['items']][:5]}…")
    # Sorted by top-1 probability, descending.
    b.driver.execute_script("const s = document.getElementById('layer-sort'); s.value = 'top1_prob'; s.dispatchEvent(new Event('change'));")
    b.wait(lambda: "sort=top1_prob" in b.driver.current_url, "the layer sorted by top-1 p")
    b.wait_ready()
    b.driver.execute_script("const s = document.getElementById('layer-order'); s.value = 'desc'; s.dispatchEvent(new Event('change'));")
    b.wait(lambda: "order=desc" in b.driver.current_url, "the layer in descending order")
    b.wait_ready()
    rows = [int(r.get_attribute("data-index")) for r in b.find_all("[data-testid=layer-row]")]
    page = api.get(f"/api/layers/{layer}/{kind}", sort="top1_prob", order="desc", offset=0, limit=50, show_top=6)
    check(rows == [n["index"] for n in page["items"]], "layer rows sorted by top-1 p differ from /api/layers")
    log(f"layer {layer} {kind}: {len(rows)} rows of {page['total']}")
    b.screenshot("layer.png")


def check_search(b: Browser, api: Api, concept: str) -> dict:
    b.click("[data-testid=nav-search]")
    b.wait(lambda: b.path() == "/search", "the search page")
    b.wait_ready()
    b.type("#search-input", concept)
    b.click("#search-submit")
    b.wait(lambda: b.find_all("[data-testid=search-row]") or b.find_all("[data-testid=notice-error]"), "search results")
    b.wait_ready()
    params = dict(q=concept, by="prob", kinds="up,gate,down", layers="all", offset=0, limit=20, show_top=8)
    expected = api.get("/api/search", **params)
    check(expected["items"], f"/api/search found nothing for {concept!r}: pick a concept in the model's vocabulary")

    def shown_rows():
        return [((r.get_attribute("data-layer"), r.get_attribute("data-kind"), r.get_attribute("data-index")), token_ids(r))
                for r in b.find_all("[data-testid=search-row]")]

    def api_rows(answer):
        return [((str(n["layer"]), n["kind"], str(n["index"])), [t["id"] for t in n["top"]]) for n in answer["items"]]

    check(shown_rows() == api_rows(expected), f"search rows differ from /api/search:\n UI  {shown_rows()[:3]}\n API {api_rows(expected)[:3]}")
    variants = [t.get_attribute("data-text") for t in b.find_all("[data-testid=search-concept] [data-testid=concept-variant]")]
    check(variants == expected["concept"]["variants"], f"concept variants {variants} != {expected['concept']['variants']}")
    if expected["exact"]:
        check(b.find_all("[data-testid=search-exact-badge]"), "exact search not shown as exact")
    check(str(expected["total"]) in b.text("[data-testid=search-info]").replace(",", ""), "search total not shown")
    log(f"search {concept!r}: {len(expected['items'])} rows of {expected['total']}, first {expected['items'][0]['layer']}:"
        f"{expected['items'][0]['kind']}:{expected['items'][0]['index']}")
    b.screenshot("search.png")

    if expected["total"] > 20:
        b.click("#search-next")
        b.wait(lambda: "offset=20" in b.driver.current_url, "the next page of results")
        b.wait_ready()
        second = api.get("/api/search", **dict(params, offset=20))
        check(shown_rows() == api_rows(second), "second page of search results differs from /api/search offset=20")
        b.driver.back()
        b.wait(lambda: "offset=20" not in b.driver.current_url, "back to the first page")
        b.wait_ready()
    results = b.driver.current_url
    check_token_search(b, api, concept)
    b.open(results)
    return expected


def check_token_search(b: Browser, api: Api, text: str) -> None:
    """Tokens by their text (GET /api/tokens), then one token's neurons."""
    b.click("#search-tab-tokens")
    b.wait(lambda: "mode=tokens" in b.driver.current_url, "the token search tab")
    b.wait_ready()
    b.type("#token-search-input", text)
    b.click("#token-search-submit")
    b.wait(lambda: b.find_all("[data-testid=token-match]") or b.find_all("[data-testid=token-matches] .notice"), "token matches")
    b.wait_ready()
    tokens = api.get("/api/tokens", q=text, limit=50)["items"]
    shown = [int(a.get_attribute("data-id")) for a in b.find_all("[data-testid=token-match]")]
    check(tokens and shown == [t["id"] for t in tokens], f"token matches {shown} != /api/tokens {[t['id'] for t in tokens]}")
    chosen = max(tokens, key=lambda t: t["neurons"])
    b.click(f"[data-testid=token-match][data-id='{chosen['id']}']")
    b.wait(lambda: f"token={chosen['id']}" in b.driver.current_url, "the token's neurons")
    b.wait_ready()
    page = api.get(f"/api/tokens/{chosen['id']}/neurons", offset=0, limit=50)
    rows = [(r.get_attribute("data-kind"), int(r.get_attribute("data-layer")), int(r.get_attribute("data-index")))
            for r in b.find_all("[data-testid=token-neuron-row]")]
    check(rows == [(n["kind"], n["layer"], n["index"]) for n in page["items"]], "the token's neurons differ from /api/tokens/{id}/neurons")
    log(f"token search {text!r}: {len(shown)} tokens; {chosen['text']!r} in {len(rows)} neurons' top-k")
    b.screenshot("search-tokens.png")


def check_neuron(b: Browser, api: Api, info: dict, first: dict) -> None:
    ref = f"{first['layer']}:{first['kind']}:{first['index']}"
    b.click("[data-testid=search-row] [data-testid=search-row-link]")
    b.wait(lambda: b.path() == f"/neuron/{first['layer']}/{first['kind']}/{first['index']}", f"the page of {ref}")
    b.wait_ready()
    neuron = api.get(f"/api/neurons/{first['layer']}/{first['kind']}/{first['index']}")
    bars = b.find_all("[data-testid=bar-chart] [data-testid=bar]")
    shown = [(int(e.get_attribute("data-id")), e.get_attribute("data-text")) for e in bars]
    check(shown == [(t["id"], t["text"]) for t in neuron["top"]], f"bars {shown[:4]} != /api/neurons top {neuron['top'][:4]}")
    check(len(bars) == info["settings"]["top_k"], f"{len(bars)} bars, expected top_k = {info['settings']['top_k']}")
    labels = [e.find_element(By.CSS_SELECTOR, ".bar-label").get_attribute("textContent") for e in bars]
    for (_, text), label in zip(shown, labels):
        if text.startswith(" ") and len(text) < 20:
            check(label.startswith("␣"), f"leading space of {text!r} not shown: {label!r}")
    for kind in ("up", "gate", "down"):
        card = b.find(f"[data-testid=kind-card-{kind}]")
        other = neuron["other_kinds"][kind]
        if other:
            check(token_ids(card) == [t["id"] for t in other["top"]], f"{kind} card tokens differ from other_kinds")
    check(b.find_all("#neighbour-next") or neuron["neighbours"]["next"] is None, "no link to the next neuron")
    log(f"neuron {ref}: {len(bars)} bars, entropy {neuron['entropy']:.3f}")
    evidence = neuron.get("evidence")
    if info.get("record"):
        check(evidence is not None, "an atlas with a record gave no evidence for the neuron")
        for sign in ("positive", "negative"):
            items = b.find_all(f"[data-testid=contexts-{sign}] [data-testid=context]")
            shown = [(float(e.get_attribute("data-activation")), int(e.get_attribute("data-chunk")), int(e.get_attribute("data-offset")))
                     for e in items]
            want = [(c["activation"], c["chunk"], c["offset"]) for c in evidence[sign]]
            check(len(shown) == len(want) and all(abs(a[0] - w[0]) <= 1e-5 * max(1, abs(w[0])) and a[1:] == w[1:]
                                                  for a, w in zip(shown, want)), f"{sign} contexts {shown[:2]} != /api/neurons evidence {want[:2]}")
            for item, context in zip(items, evidence[sign]):
                fired = item.find_elements(By.CSS_SELECTOR, "[data-testid=context-fired]")
                want_fired = [t["text"] for t in context["tokens"] if t["fired"]]
                check([f.get_attribute("textContent") for f in fired] == want_fired, f"the fired token of a {sign} context differs")
        log(f"neuron {ref}: {len(evidence['positive'])} + {len(evidence['negative'])} recorded contexts shown")
    else:
        check(b.find_all("[data-testid=evidence-panel] .notice"), "the neuron page does not say the atlas has no record")
    b.screenshot("neuron.png")

    text = "the dog and the cat ran to the house"
    b.type("#act-text", text)
    b.click("#act-run")
    b.wait(lambda: b.find_all("[data-testid=act-token]") or b.find_all(".notice-error, .notice-busy"), "the activations")
    check(not b.find_all("#act-out .notice"), f"activation request failed: {b.text('#act-out')}")
    expected = api.post_json("/api/activations", {"text": text, "layer": first["layer"], "index": first["index"], "chat": False})
    spans = b.find_all("[data-testid=act-token]")
    shown = [(int(s.get_attribute("data-id")), s.get_attribute("data-text"), float(s.get_attribute("data-act"))) for s in spans]
    check([(i, t) for i, t, _ in shown] == [(t["id"], t["text"]) for t in expected["tokens"]], "activation tokens differ from /api/activations")
    check(all(abs(a - e) <= 1e-6 * max(1.0, abs(e)) for (_, _, a), e in zip(shown, expected["act"])), "activation values differ")
    # Highlighting: the strongest token is the most opaque, alpha ~ |act| / max_abs.
    alphas = [float(b.driver.execute_script(
        "const m = getComputedStyle(arguments[0]).backgroundColor.match(/rgba?\\(([^)]*)\\)/);"
        "const p = m[1].split(',').map(Number); return p.length > 3 ? p[3] : 1;", s)) for s in spans]
    peak = max(range(len(expected["act"])), key=lambda i: abs(expected["act"][i]))
    check(expected["max_abs"] > 0 and alphas[peak] > 0.8, f"the strongest token is not highlighted: alpha {alphas[peak]}")
    for alpha, act in zip(alphas, expected["act"]):
        check(abs(alpha - 0.85 * abs(act) / expected["max_abs"]) < 0.02, f"highlight alpha {alpha} does not follow act {act}")
    check("act" in spans[peak].get_attribute("title"), "activation value not on hover")
    log(f"activations: {len(spans)} tokens, max |act| {expected['max_abs']:.4f}")
    b.screenshot("neuron-activation.png")


def check_playground(b: Browser, api: Api, info: dict, search: dict, max_tokens: int) -> None:
    neuron = search["items"][0]
    b.click("[data-testid=nav-playground]")
    b.wait(lambda: b.path() == "/playground", "the playground")
    b.wait_ready()
    prompt = "What is your favourite animal?"
    chat = bool(info["chat_template"])
    # The clamp: the concept's best neuron at a strong value (greedy, seed 0).
    clamp = {"layer": neuron["layer"], "index": neuron["index"], "value": 50.0}
    request = {"prompt": prompt, "chat": chat, "max_tokens": max_tokens, "seed": 0, "temperature": 0.0, "top_k": 0,
               "top_p": 1.0, "clamps": [clamp], "ablate": [], "baseline": True}
    b.type("#pg-prompt", prompt)
    if b.find("#pg-chat").is_selected() != chat:
        b.click("#pg-chat")
    for css, value in (("#pg-max-tokens", max_tokens), ("#pg-temperature", 0), ("#pg-seed", 0), ("#pg-top-k", 0), ("#pg-top-p", 1)):
        b.type(css, str(value))
    b.type("#pg-quick", f"{clamp['layer']}:{clamp['index']}={clamp['value']:g}")
    b.click("#pg-quick-add")
    check(len(b.find_all("[data-testid=pg-neuron-row]")) == 1, "the clamp row was not added")
    slider = b.find("[data-testid=pg-slider]")
    check(float(slider.get_attribute("value")) == clamp["value"], "the slider does not hold the clamp value")
    b.click("#pg-generate")
    b.wait(lambda: b.find("#pg-outputs").get_attribute("data-state") in ("done", "error", "stopped"), "the generations to finish")
    check(b.find("#pg-outputs").get_attribute("data-state") == "done", f"generation failed: {b.text('#pg-message')}")
    check(all(b.text(f"#pg-text-{run}") for run in ("baseline", "clamped")), "a column stayed empty")
    shown = {run: b.driver.execute_script(
        "return [...document.querySelectorAll(`#pg-text-${arguments[0]} .gen-token`)].map(s => s.dataset.text).join('')", run)
        for run in ("baseline", "clamped")}
    check(all(b.find(f"#pg-out-{run}").get_attribute("data-state") == "done" for run in shown), "a column did not finish")
    expected = api.generate(request)
    check(shown == {run: expected.get(run) for run in shown}, f"generations differ from /api/generate:\n UI  {shown}\n API {expected}")
    check(expected["baseline"] != expected["clamped"], f"the clamp {clamp} changed nothing; pick a stronger one: {expected}")
    log(f"playground: baseline {shown['baseline']!r} | clamped {shown['clamped']!r}")

    # The probe of the concept's tokens, with and without the clamp.
    tokens = search["concept"]["variants"][:2]
    b.driver.execute_script("const t = document.getElementById('pg-probe-tokens'); t.value = arguments[0];"
                            "t.dispatchEvent(new Event('input'));", "\n".join(tokens))
    preview = [t.get_attribute("data-text") for t in b.find_all("[data-testid=pg-probe-token]")]
    check(preview == tokens, f"probe token preview {preview} != {tokens}")
    b.click("#pg-probe")
    b.wait(lambda: b.find_all("[data-testid=pg-probe-row]") or b.find_all("[data-testid=pg-probe-out] .notice"), "the probe")
    expected = api.post_json("/api/probe", {"prompt": prompt, "chat": chat, "tokens": tokens, "clamps": [clamp], "ablate": [], "top": 10})
    rows = [(int(r.get_attribute("data-id")), float(r.get_attribute("data-baseline")), float(r.get_attribute("data-clamped")))
            for r in b.find_all("[data-testid=pg-probe-row]")]
    check(rows == [(t["id"], t["baseline"], t["clamped"]) for t in expected["tokens"]], f"probe rows {rows} != /api/probe {expected['tokens']}")
    log(f"probe: {rows}")
    b.screenshot("playground.png")


def check_compare(b: Browser, api: Api) -> None:
    b.click("[data-testid=nav-compare]")
    b.wait(lambda: b.path() == "/compare", "the compare page")
    b.wait_ready()
    summary = api.get("/api/compare/summary")
    points = {(p.get_attribute("data-kind"), int(p.get_attribute("data-layer"))) for p in b.find_all("[data-testid=agreement-point]")}
    check(points == {(r["kind"], r["layer"]) for r in summary["layers"]}, "agreement plot points differ from /api/compare/summary")
    changed = api.get("/api/compare/changed", kind="all", layer="all", offset=0, limit=25)
    rows = [(r.get_attribute("data-kind"), int(r.get_attribute("data-layer")), int(r.get_attribute("data-index")), token_ids(r))
            for r in b.find_all("[data-testid=changed-row]")]
    expected = [(n["kind"], n["layer"], n["index"], [t["id"] for t in n["top_a"][:8] + n["top_b"][:8]]) for n in changed["items"]]
    check(rows == expected, f"changed neurons differ from /api/compare/changed:\n UI  {rows[:2]}\n API {expected[:2]}")
    log(f"compare: {len(points)} plot points, {len(rows)} changed rows")
    b.screenshot("compare.png")


def check_without_model(b: Browser, url: str, concept: str) -> None:
    b.open(url + "/playground")
    check(b.find_all("[data-testid=notice-unavailable]"), "the playground does not say it needs a model")
    check(not b.find_all("#pg-generate"), "the playground offers generation without a model")
    b.open(url + "/compare")
    check(b.find_all("[data-testid=notice-unavailable]"), "the compare page does not say it needs a second atlas")
    b.open(url + "/search?" + urllib.parse.urlencode({"q": concept}))
    check(b.find_all("[data-testid=search-inexact-badge]"), "search without a model is not marked as within the stored top-k")
    log("without a model: notices shown")
    b.screenshot("no-model-search.png")


# --- main -------------------------------------------------------------------

def run_map(neuronlens: str, model: str, atlas: str, extra: list[str], timeout: float) -> None:
    if os.path.exists(atlas):
        os.remove(atlas)
    command = [neuronlens, "map", model, "-o", atlas, *extra]
    log("mapping: " + shlex.join(command))
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if done.returncode != 0:
        raise TestFailure(f"map failed ({done.returncode}):\n{done.stdout[-4000:]}")


def run_record(neuronlens: str, model: str, atlas: str, corpus: str, timeout: float) -> None:
    command = [neuronlens, "record", model, "--corpus", corpus, "-o", atlas, "--max-tokens", "3000", "--seq-len", "128"]
    log("recording: " + shlex.join(command))
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if done.returncode != 0:
        raise TestFailure(f"record failed ({done.returncode}):\n{done.stdout[-4000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neuronlens", required=True, help="the neuronlens binary")
    parser.add_argument("--model", required=True, help="model to map and serve")
    parser.add_argument("--work", required=True, help="folder for the atlases, logs and screenshots")
    parser.add_argument("--concept", default="dog", help="concept to search (a word in the model's vocabulary)")
    parser.add_argument("--map-args", default="", help="extra arguments for `neuronlens map`, e.g. '--layers 29'")
    parser.add_argument("--atlas", help="serve this existing atlas instead of mapping the model")
    parser.add_argument("--compare-atlas", help="compare with this existing atlas instead of mapping with --norm none")
    parser.add_argument("--max-tokens", type=int, default=12, help="tokens per generation")
    parser.add_argument("--record-corpus", help="record this corpus into the atlas (3,000 tokens) before serving")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for any one step")
    parser.add_argument("--skip-missing-model", action="store_true",
                        help="exit 77 when the model is missing (unless NEURONLENS_REQUIRE_MODEL is set)")
    args = parser.parse_args()

    if webdriver is None:
        print("SKIP: python package selenium missing (scripts/install-deps.sh installs it)")
        return SKIP
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            print(f"SKIP: {path} missing (apt-get install chromium chromium-driver)")
            return SKIP
    if not os.path.exists(args.model):
        if args.skip_missing_model and not os.environ.get("NEURONLENS_REQUIRE_MODEL"):
            print(f"SKIP: model {args.model} missing (scripts/fetch-model.sh)")
            return SKIP
        print(f"FAIL: model {args.model} missing")
        return 1

    os.makedirs(args.work, exist_ok=True)
    work = os.path.abspath(args.work)
    started = time.monotonic()
    servers: list[Server] = []
    browser = None
    try:
        atlas = args.atlas or os.path.join(work, "atlas.db")
        other = args.compare_atlas or os.path.join(work, "atlas-norm-none.db")
        extra = shlex.split(args.map_args)
        if not args.atlas:
            run_map(args.neuronlens, args.model, atlas, extra, args.timeout * 5)
            if args.record_corpus:
                run_record(args.neuronlens, args.model, atlas, args.record_corpus, args.timeout * 5)
        if not args.compare_atlas:
            run_map(args.neuronlens, args.model, other, extra + ["--norm", "none"], args.timeout * 5)
        server = Server(args.neuronlens, [atlas, "--model", args.model, "--compare", other],
                        os.path.join(work, "serve.log"), args.timeout)
        servers.append(server)
        api = Api(server.url, args.timeout)
        info = api.get("/api/info")
        check(info["model_loaded"], "the server did not load the model")
        browser = Browser(work, args.timeout)

        check_overview(browser, api, info)
        check_agreement(browser, api, info)
        search = check_search(browser, api, args.concept)
        check_neuron(browser, api, info, search["items"][0])
        check_playground(browser, api, info, search, args.max_tokens)
        check_compare(browser, api)
        browser.check_console()

        bare = Server(args.neuronlens, [atlas, "--no-model"], os.path.join(work, "serve-no-model.log"), args.timeout)
        servers.append(bare)
        check_without_model(browser, bare.url, args.concept)
        browser.check_console()
        for s in servers:
            s.check_clean_exit()
    except Exception as failure:  # a TestFailure, or selenium's or the HTTP client's own error
        if not isinstance(failure, TestFailure):
            traceback.print_exc()
        print(f"FAIL: {failure}")
        if browser:
            try:
                browser.screenshot("failure.png")
            except Exception as err:  # the browser itself may be gone
                print(f"(no failure screenshot: {err})")
        for s in servers:
            print(f"--- {s.log_path} (last lines)\n" + "\n".join(s.output().splitlines()[-20:]))
        return 1
    finally:
        if browser:
            browser.quit()
        for s in servers:
            s.stop()
    print(f"PASS: web UI end to end in {time.monotonic() - started:.1f} s; screenshots in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
