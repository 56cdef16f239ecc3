// Compare: two or more runs (or groups of runs) side by side, as
// `labmate compare` reports them: the config keys that differ, the code
// (commits, patch stats), each metric's values with the same verdict
// text, and the metrics' curves overlaid, one colour per side; a side of
// several runs is drawn as their mean with a min–max band.

import { h, fill, fmtNum, fmtExact, fmtValue, runLink, section } from "../dom.js";
import { get, url, onStream, openStream } from "../api.js";
import { Chart, PALETTE, chartControls, loadPrefs, smoothingOf, markChartsDrawn } from "../chart.js";
import { fetchSeries } from "../series.js";

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

export async function render(root, _params, query) {
  document.title = "labmate · compare";
  if (!query.get("runs")) {
    fill(
      root,
      h("h1", null, "Compare"),
      h("p", null, "Select two or more runs on the ", h("a", { href: "/" }, "Runs"), " page and press Compare, or open ", h("code", null, "/compare?runs=ID1,ID2"), "."),
    );
    return;
  }
  const report = await get(url("/api/compare", Object.fromEntries(query)));
  const sides = report.sides || [];
  const colorOf = (i) => PALETTE[i % PALETTE.length];
  const sideName = (i) => LETTERS[i] || String(i + 1);

  const legend = h(
    "div",
    { class: "row" },
    sides.map((s, i) => {
      const sw = h("span", { class: "swatch" });
      sw.style.background = colorOf(i);
      return h("span", { class: "side-label" }, sw, h("b", null, `${sideName(i)} `), s.label, s.runs && s.runs.length > 1 ? h("span", { class: "muted" }, ` (${s.runs.length} runs)`) : null);
    }),
  );

  const prefs = loadPrefs();
  const controlsBox = h("div");
  const chartsBox = h("div", { class: "charts" });
  fill(
    root,
    h("h1", null, "Compare"),
    legend,
    h("div", { class: "grid" }, section("Config differences", configTable(report, sideName)), section("Code", codeTable(report, sideName))),
    section("Metrics", metricsTable(report, sideName)),
    section("Curves", controlsBox, chartsBox),
  );

  // The curves: the compared metrics (metrics.KEY.FIELD → KEY), one fetch
  // per run for every key.
  const keys = [...new Set((report.metrics || []).map((m) => metricKey(m.metric)).filter(Boolean))];
  const runIds = [...new Set(sides.flatMap((s) => s.runs || []))];
  const t0 = new Map();
  const charts = new Map();
  if (keys.length === 0) {
    chartsBox.appendChild(h("p", { class: "muted" }, "no metric in common"));
    return;
  }
  controlsBox.appendChild(
    chartControls(prefs, keys, (p, what) => {
      if (what === "x") drawAll();
      else for (const c of charts.values()) c.setSmoothing(smoothingOf(p));
    }),
  );

  async function fetchAll(range, onlyKeys) {
    const out = new Map();
    const answers = await Promise.all(runIds.map((id) => fetchSeries(id, onlyKeys, prefs.x, range, t0.get(id))));
    let cursor = null;
    runIds.forEach((id, i) => {
      const a = answers[i];
      if (prefs.x === "relative" && !t0.has(id) && a.t0 !== undefined) t0.set(id, a.t0);
      if (cursor === null || (a.cursor !== undefined && a.cursor < cursor)) cursor = a.cursor;
      out.set(id, a.series);
    });
    return { byRun: out, cursor };
  }

  function curvesFor(key, byRun) {
    return sides.map((s, i) => {
      const members = (s.runs || []).map((id) => ({ ...(byRun.get(id)?.[key] || { x: [], y: [], step: [], full: true }), id, label: id }));
      const label = `${sideName(i)} ${s.label}`;
      if (members.length === 1) return { ...members[0], label, color: colorOf(i) };
      return { id: `side-${i}`, label, color: colorOf(i), members };
    });
  }

  let streamOpen = false;
  async function drawAll() {
    const { byRun, cursor } = await fetchAll(null, keys);
    for (const key of keys) {
      let chart = charts.get(key);
      if (!chart) {
        chart = new Chart(chartsBox, {
          title: key,
          xMode: prefs.x,
          smoothing: smoothingOf(prefs),
          load: async (range) => curvesFor(key, (await fetchAll(range, [key])).byRun),
          onStale: async (c) => c.setCurves(curvesFor(key, (await fetchAll(null, [key])).byRun), prefs.x),
        });
        charts.set(key, chart);
      }
      chart.setCurves(curvesFor(key, byRun), prefs.x);
    }
    markChartsDrawn();
    if (!streamOpen) {
      streamOpen = true;
      openStream(cursor);
    }
  }

  onStream("points", (ev) => {
    const chart = charts.get(ev.key);
    if (chart && runIds.includes(ev.run) && Array.isArray(ev.points)) chart.append(ev.run, ev.points);
  });
  onStream("reset", () => drawAll());

  await drawAll();
}

// "metrics.val/loss.last" → "val/loss"
function metricKey(path) {
  if (!path || !path.startsWith("metrics.")) return null;
  const rest = path.slice(8);
  const at = rest.indexOf("@");
  if (at >= 0) return rest.slice(0, at);
  const dot = rest.lastIndexOf(".");
  return dot > 0 ? rest.slice(0, dot) : rest;
}

function sideHeads(report, sideName) {
  return (report.sides || []).map((s, i) => h("th", { title: s.label }, sideName(i)));
}

function shownValue(v) {
  if (v && typeof v === "object" && !Array.isArray(v) && Array.isArray(v.varies)) {
    return h("span", { class: "muted", title: "the side's runs differ" }, "varies: ", v.varies.map(fmtValue).join(", "));
  }
  return fmtValue(v);
}

function configTable(report, sideName) {
  const rows = report.config || [];
  if (rows.length === 0) return h("p", { class: "muted" }, "The config is the same on every side.");
  return h(
    "table",
    { class: "data" },
    h("thead", null, h("tr", null, h("th", null, "key"), sideHeads(report, sideName))),
    h(
      "tbody",
      null,
      rows.map((r) => h("tr", null, h("td", { class: "mono" }, r.key), (r.values || []).map((v) => h("td", { class: "mono wrap" }, shownValue(v))))),
    ),
  );
}

function codeTable(report, sideName) {
  const code = report.code || [];
  if (code.length === 0) return h("p", { class: "muted" }, "no code state recorded");
  const cell = (f) => code.map((c) => h("td", { class: "mono wrap" }, f(c)));
  return h(
    "table",
    { class: "data" },
    h("thead", null, h("tr", null, h("th", null, ""), sideHeads(report, sideName))),
    h(
      "tbody",
      null,
      h("tr", null, h("th", null, "commits"), cell((c) => ((c.commits || []).length ? c.commits.map((x) => String(x).slice(0, 12)).join(", ") : "—"))),
      h(
        "tr",
        null,
        h("th", null, "uncommitted"),
        cell((c) => {
          const p = c.patch || {};
          if (!p.runs_with_patch) return "none";
          return `${p.files} file${p.files === 1 ? "" : "s"}, +${p.added} −${p.removed} (${p.runs_with_patch} run${p.runs_with_patch === 1 ? "" : "s"} with a patch)`;
        }),
      ),
      h("tr", null, h("th", null, "since A"), cell((c) => c.since_first || "—")),
    ),
  );
}

function metricsTable(report, sideName) {
  const metrics = report.metrics || [];
  if (metrics.length === 0) return h("p", { class: "muted" }, "no metric in common");
  return h(
    "table",
    { class: "data" },
    h("thead", null, h("tr", null, h("th", null, "metric"), sideHeads(report, sideName), h("th", null, "verdict"))),
    h(
      "tbody",
      null,
      metrics.map((m) =>
        h(
          "tr",
          null,
          h("td", { class: "mono" }, m.metric, h("div", { class: "muted small" }, m.lower_is_better ? "lower is better" : "higher is better")),
          (m.values || []).map((vals) => h("td", { class: "num", title: (vals || []).map(fmtExact).join(", ") }, (vals || []).map(fmtNum).join(", "))),
          h(
            "td",
            { class: "wrap verdict" },
            (m.comparisons || []).map((c, i) =>
              h(
                "div",
                { title: c.p_value !== null && c.p_value !== undefined ? `diff ${fmtExact(c.diff)}, p = ${fmtNum(c.p_value)} (${c.method})` : null },
                h("b", null, `${sideName(i + 1)} vs A: `),
                c.verdict || "",
                verdictBadge(c, m.lower_is_better),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

// A badge when the difference is significant: which way it goes.
function verdictBadge(c, lowerIsBetter) {
  if (c.p_value === null || c.p_value === undefined || !(c.p_value < 0.05) || typeof c.diff !== "number") return null;
  const better = lowerIsBetter ? c.diff < 0 : c.diff > 0;
  return [" ", h("span", { class: `badge ${better ? "st-finished" : "st-failed"}` }, better ? "better" : "worse")];
}
