// The client of docs/api.md: JSON GETs and POSTs, and the NDJSON stream of
// POST /api/generate. Errors become ApiError with the HTTP status and the
// server's {"error": "..."} message.
"use strict";
window.NL = window.NL || {};

(function (NL) {
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value === undefined || value === null || value === "") continue;
      q.set(key, String(value));
    }
    const s = q.toString();
    return s ? "?" + s : "";
  }

  async function errorFrom(response) {
    let message = response.statusText || "request failed";
    try {
      const body = await response.json();
      if (body && body.error) message = body.error;
    } catch (_) {
      // not JSON: keep the status text
    }
    return new ApiError(response.status, message);
  }

  async function request(method, path, params, body, signal) {
    let response;
    try {
      response = await fetch(path + query(params), {
        method,
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, `cannot reach the server: ${err.message}`);
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  async function get(path, params, signal) {
    return (await request("GET", path, params, undefined, signal)).json();
  }

  async function post(path, body, signal) {
    return (await request("POST", path, undefined, body, signal)).json();
  }

  // POST with an NDJSON response: onEvent(object) for each line as it
  // arrives. Resolves when the stream ends; rejects with ApiError on an HTTP
  // error before the stream or an {"event": "error"} line inside it.
  async function stream(path, body, onEvent, signal) {
    const response = await request("POST", path, undefined, body, signal);
    const reader = response.body.getReader();
    const decoder = new TextDecoder("utf-8");
    let buffered = "";
    const emit = (line) => {
      if (!line.trim()) return;
      const event = JSON.parse(line);
      if (event.event === "error") throw new ApiError(500, event.error || "generation failed");
      onEvent(event);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        emit(line);
      }
    }
    buffered += decoder.decode();
    emit(buffered);
  }

  let infoPromise = null;
  // GET /api/info, fetched once per page load.
  function info() {
    if (!infoPromise) {
      infoPromise = get("/api/info").catch((err) => {
        infoPromise = null;
        throw err;
      });
    }
    return infoPromise;
  }

  NL.api = { ApiError, get, post, stream, info, query };
})(window.NL);
