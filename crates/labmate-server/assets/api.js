// The JSON API and the live stream, as the pages use them.
//
// Errors come back as {"error", "kind"}; a failed call throws an ApiError
// carrying them, and, unless the caller shows the error itself (quiet),
// puts the server's message in the banner at the top of the page.

import { h, clear, on } from "./dom.js";

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

async function call(method, path, body, { quiet = false, signal } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    const err = new ApiError(0, "network", `cannot reach the server (${method} ${path})`);
    if (!quiet) showError(err);
    throw err;
  }
  let data = null;
  const text = await res.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const message = data && typeof data.error === "string" ? data.error : `HTTP ${res.status} ${res.statusText} (${method} ${path})`;
    const kind = data && typeof data.kind === "string" ? data.kind : "internal";
    const err = new ApiError(res.status, kind, message);
    if (!quiet) showError(err);
    throw err;
  }
  if (data === null && text) {
    const err = new ApiError(res.status, "internal", `the server's answer to ${method} ${path} is not JSON`);
    if (!quiet) showError(err);
    throw err;
  }
  return data;
}

export function get(path, opts) {
  return call("GET", path, undefined, opts);
}

export function post(path, body, opts) {
  return call("POST", path, body ?? {}, opts);
}

// "/api/runs" + {where: "x", limit: 100} → "/api/runs?where=x&limit=100";
// empty values are left out.
export function url(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === "") continue;
    q.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export function showError(err) {
  const banner = document.getElementById("banner");
  if (!banner) return;
  clear(banner);
  const kind = err.kind && err.kind !== "internal" ? `${err.kind}: ` : "";
  banner.appendChild(h("span", { class: "banner-text" }, kind + (err.message || String(err))));
  const close = h("button", { type: "button", class: "banner-close", title: "dismiss" }, "×");
  on(close, "click", () => {
    banner.hidden = true;
  });
  banner.appendChild(close);
  banner.hidden = false;
}

// One Server-Sent Events stream per page, opened after the page's first
// fetch with that fetch's cursor, so nothing between the two is missed.
// The browser reconnects by itself and sends Last-Event-ID; a `reset`
// event says the server lost the cursor and the page must refetch.
const handlers = { points: [], status: [], alert: [], reset: [] };
let source = null;

export function onStream(type, fn) {
  handlers[type].push(fn);
}

export function openStream(cursor) {
  if (source || typeof EventSource === "undefined") return;
  const live = document.getElementById("live");
  const mark = (state, text) => {
    if (!live) return;
    live.hidden = false;
    live.className = `live ${state}`;
    live.textContent = text;
  };
  source = new EventSource(url("/api/stream", { after: cursor }));
  mark("connecting", "connecting");
  source.onopen = () => mark("on", "live");
  source.onerror = () => mark(source.readyState === EventSource.CLOSED ? "off" : "connecting", source.readyState === EventSource.CLOSED ? "offline" : "reconnecting");
  for (const type of Object.keys(handlers)) {
    source.addEventListener(type, (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data || "{}");
      } catch {
        return;
      }
      for (const fn of handlers[type]) {
        try {
          fn(data);
        } catch (e) {
          console.error(`stream ${type} handler`, e);
        }
      }
    });
  }
}
