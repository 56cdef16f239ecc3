// Building the page from untrusted data, and the formats numbers, times
// and statuses are shown in.
//
// Everything the API returns is text a run, an agent or a config file
// wrote: run names, metric keys, tags, config values and logs may hold
// markup. Elements are made with createElement and filled with
// textContent or setAttribute only, so such text always shows as text.

// h("td", {class: "num", title: "..."}, child, "text", [more]) makes an
// element. Attributes go through setAttribute (never `on*` handlers:
// listeners are added with `on`); children are nodes or strings (text
// nodes), arrays are flattened, null/undefined/false are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) throw new Error(`h: use on() for ${name}`);
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

export function on(el, event, fn) {
  el.addEventListener(event, fn);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Replaces an element's children. (The DOM's own append would turn a
// skipped null child into the text "null".)
export function fill(el, ...children) {
  return append(clear(el), children);
}

// The one place markup from the server is put in as markup: the notebook,
// which the server renders from markdown and sanitises (no script, no
// event handlers, no URLs off the machine) before sending it. Nothing
// else may ever go through here; the CSP is the second wall.
export function setTrustedHtml(el, html) {
  el.innerHTML = html;
}

// Numbers as the CLI prints them: 4 significant digits, exponents for the
// very large and very small, and the JSON spellings of non-finite values.
export function fmtNum(v) {
  if (v === null || v === undefined) return "—";
  if (v === "NaN") return "NaN";
  if (v === "Infinity") return "+∞";
  if (v === "-Infinity") return "−∞";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "+∞" : "−∞";
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) {
    return v.toExponential(3).replace(/\.?0+e/, "e").replace("e+", "e");
  }
  return String(Number(v.toPrecision(4)));
}

// A value's full precision, for hover legends and titles.
export function fmtExact(v) {
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return fmtNum(v);
}

// A JSON value from a config or a summary, as one line of text.
export function fmtValue(v) {
  if (typeof v === "number" || v === "NaN" || v === "Infinity" || v === "-Infinity") {
    return typeof v === "number" ? fmtExact(v) : fmtNum(v);
  }
  if (typeof v === "string") return v;
  if (v === null || v === undefined) return "null";
  return JSON.stringify(v);
}

export function toNumber(v) {
  if (typeof v === "number") return v;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return null;
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "—";
  if (s === 0) return "0s";
  if (Math.abs(s) < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

export function fmtAge(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "—";
  const s = Math.max(0, (now - t) / 1000);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400 * 2) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function fmtTime(iso) {
  const t = typeof iso === "number" ? iso * 1000 : Date.parse(iso);
  if (!Number.isFinite(t)) return iso === null || iso === undefined ? "—" : String(iso);
  const d = new Date(t);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// A command line as a shell would read it back.
export function fmtArgv(argv) {
  if (!Array.isArray(argv)) return fmtValue(argv);
  return argv
    .map((a) => {
      const s = String(a);
      return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
    })
    .join(" ");
}

const STATUS_CLASS = {
  running: "st-running",
  finished: "st-finished",
  failed: "st-failed",
  crashed: "st-failed",
  lost: "st-failed",
  stopped: "st-stopped",
  queued: "st-waiting",
  held: "st-waiting",
  pending: "st-waiting",
  approved: "st-finished",
  accepted: "st-finished",
  rejected: "st-failed",
  disputed: "st-stopped",
  resolved: "st-finished",
};

// A status badge; an unknown status shows as plain text in the neutral
// colour, so a newer server still reads.
export function badge(status, title) {
  const cls = STATUS_CLASS[status] || "st-other";
  return h("span", { class: `badge ${cls}`, title: title || null }, String(status ?? "?"));
}

// {"a": {"b": 1}} → [["a.b", 1]]; arrays are values, as the query
// language treats them.
export function flatten(obj, prefix = "", out = []) {
  if (obj && typeof obj === "object" && !Array.isArray(obj)) {
    const keys = Object.keys(obj).sort();
    if (keys.length === 0 && prefix) out.push([prefix, {}]);
    for (const k of keys) flatten(obj[k], prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, obj]);
  }
  return out;
}

// A key/value table of a flattened object.
export function kvTable(obj, cls = "kv") {
  const rows = flatten(obj || {});
  if (rows.length === 0) return h("p", { class: "muted" }, "none");
  return h(
    "table",
    { class: cls },
    h(
      "tbody",
      null,
      rows.map(([k, v]) => h("tr", null, h("th", null, k), h("td", { class: typeof v === "number" ? "num" : null }, fmtValue(v)))),
    ),
  );
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", null, title), children);
}

export function runLink(id, text) {
  return h("a", { href: `/run/${encodeURIComponent(id)}`, class: text ? null : "mono" }, text ?? id);
}
