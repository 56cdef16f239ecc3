// One run: its status and why it ended, the command, a chart per metric
// grouped by prefix (train/, val/, sys/...), alerts with their evidence,
// config, git and the code patch, system metrics, tags, and the tail of
// its output, all live while it runs.

import { h, fill, on, clear, badge, fmtNum, fmtExact, fmtDuration, fmtTime, fmtAge, fmtBytes, fmtArgv, kvTable, section } from "../dom.js";
import { get, post, url, onStream, openStream } from "../api.js";
import { Chart, PALETTE, chartControls, loadPrefs, smoothingOf, markChartsDrawn } from "../chart.js";
import { fetchSeries } from "../series.js";

const LOG_TAIL = 200;
// The output shown is capped; older text scrolls out.
const LOG_KEEP = 512 * 1024;

// "train/loss" → "train"; keys without a prefix come first, sys/ last.
export function prefixOf(key) {
  const i = key.indexOf("/");
  return i > 0 ? key.slice(0, i) : "";
}

function groupOrder(a, b) {
  const rank = (p) => (p === "" ? 0 : p === "train" ? 1 : p === "val" ? 2 : p === "sys" ? 4 : 3);
  return rank(a) - rank(b) || a.localeCompare(b);
}

export async function render(root, [id]) {
  document.title = `labmate · ${id}`;
  const prefs = loadPrefs();
  let run = null;
  let streamOpen = false;
  let t0 = null;
  const charts = new Map(); // key → Chart
  const groupBoxes = new Map(); // prefix → element holding its charts

  const head = h("div");
  const alertsBox = h("div");
  const chartsBox = h("div");
  const controlsBox = h("div");
  const infoGrid = h("div", { class: "grid" });
  const logPre = h("pre", { class: "log", tabindex: "0" });
  const logNote = h("span", { class: "muted small" });
  const eventsBox = h("div");
  fill(root, 
    head,
    alertsBox,
    h("section", { class: "card" }, h("h2", null, "Metrics"), controlsBox, chartsBox),
    infoGrid,
    h("section", { class: "card" }, h("div", { class: "row" }, h("h2", null, "Output"), h("span", { class: "spacer" }), logNote), logPre),
    eventsBox,
  );

  async function load() {
    // The series are asked for at once, beside the run itself: the charts
    // need not wait for one answer before asking the next.
    const early = fetchSeries(id, [], prefs.x, null, t0).catch(() => null);
    run = await get(`/api/runs/${encodeURIComponent(id)}`);
    document.title = `labmate · ${run.name || run.id}`;
    drawHead();
    drawAlerts();
    drawInfo();
    drawEvents();
    const cursor = run.cursor;
    // The output waits for the charts: on a small machine its request would
    // take the cores the series need.
    await drawCharts(early);
    await loadLog(true);
    if (!streamOpen) {
      streamOpen = true;
      openStream(cursor);
    }
  }

  function drawHead() {
    const r = run;
    const ended = r.status !== "running" && r.status !== "queued" && r.status !== "held";
    const duration = r.duration_s ?? (r.status === "running" ? (Date.now() - Date.parse(r.created_at)) / 1000 : null);
    const why = r.reason ? h("div", { class: `reason ${["failed", "crashed", "lost"].includes(r.status) ? "bad" : ""}` }, r.reason) : null;
    const exit = [r.exit_code !== null && r.exit_code !== undefined ? `exit code ${r.exit_code}` : null, r.signal ? `signal ${r.signal}` : null].filter(Boolean).join(", ");
    let stop = null;
    if (r.status === "running" || (r.status === "queued" && r.slurm)) {
      const whyInput = h("input", { type: "text", placeholder: "why stop (kept in the run's events)", "aria-label": "why stop" });
      const btn = h("button", { type: "button" }, "Stop run");
      const out = h("span", { class: "muted" });
      on(btn, "click", async () => {
        btn.disabled = true;
        try {
          await post(`/api/runs/${encodeURIComponent(r.id)}/stop`, { why: whyInput.value.trim() || "stopped from the dashboard" }, { quiet: true });
          out.textContent = "stopping…";
        } catch (e) {
          out.textContent = e.message;
          btn.disabled = false;
        }
      });
      stop = h("div", { class: "row" }, whyInput, btn, out);
    }
    fill(head, 
      h("div", { class: "run-head" }, h("h1", null, r.name || r.id), badge(r.status, r.reason), h("span", { class: "id mono" }, r.id)),
      h(
        "div",
        { class: "facts" },
        h("span", { title: r.created_at }, r.status === "queued" ? (r.slurm ? "submitted " : "queued ") : "started ", h("b", null, fmtTime(r.created_at)), ` (${fmtAge(r.created_at)})`),
        h("span", null, "duration ", h("b", { class: "num", "data-duration": "" }, fmtDuration(duration))),
        ended && r.ended_at ? h("span", null, "ended ", h("b", null, fmtTime(r.ended_at))) : null,
        exit ? h("span", null, h("b", null, exit)) : null,
        r.host ? h("span", null, "on ", h("b", null, r.user ? `${r.user}@${r.host}` : r.host)) : null,
        r.origin ? h("span", null, "by ", h("b", null, r.origin)) : null,
        r.slurm ? h("span", { title: "the run's Slurm job" }, "Slurm job ", h("b", { class: "mono" }, r.slurm.job_id),
          [r.slurm.state ? ` ${r.slurm.state}` : "", r.slurm.reason ? ` (${r.slurm.reason})` : "",
           r.slurm.partition ? `, partition ${r.slurm.partition}` : "", r.slurm.node ? `, node ${r.slurm.node}` : "",
           r.slurm.visible_devices ? `, GPUs ${r.slurm.visible_devices}` : ""].join("")) : null,
      ),
      why,
      h("div", { class: "command mono", title: "command" }, fmtArgv(r.command || [])),
      stop,
    );
  }

  function drawAlerts() {
    const alerts = Array.isArray(run.alerts) ? run.alerts : [];
    clear(alertsBox);
    if (alerts.length === 0) return;
    alertsBox.appendChild(section(`Alerts (${alerts.length})`, alerts.map(alertItem)));
  }

  function alertItem(a) {
    return h(
      "div",
      { class: "alert-item" },
      h("div", null, h("span", { class: "mono muted" }, fmtTime(a.time)), " ", a.kind && a.kind !== "alert" ? h("b", null, `${a.kind}: `) : null, a.message),
      a.data ? h("details", null, h("summary", { class: "muted small" }, "evidence"), h("pre", { class: "mono" }, JSON.stringify(a.data, null, 2))) : null,
    );
  }

  function drawInfo() {
    const r = run;
    const git = r.git;
    let gitBody;
    if (!git) gitBody = h("p", { class: "muted" }, "not in a git repository");
    else {
      const patchPre = h("pre", { class: "patch", hidden: true });
      const toggle = h("button", { type: "button" }, "view patch");
      let loaded = false;
      on(toggle, "click", async () => {
        if (!patchPre.hidden) {
          patchPre.hidden = true;
          toggle.textContent = "view patch";
          return;
        }
        if (!loaded) {
          toggle.disabled = true;
          try {
            const p = await get(`/api/runs/${encodeURIComponent(r.id)}/patch`);
            patchPre.textContent = p.patch || "(empty patch)";
            loaded = true;
          } finally {
            toggle.disabled = false;
          }
        }
        patchPre.hidden = false;
        toggle.textContent = "hide patch";
      });
      const hasPatch = (r.patch_bytes || 0) > 0;
      gitBody = [
        h(
          "table",
          { class: "kv" },
          h(
            "tbody",
            null,
            h("tr", null, h("th", null, "commit"), h("td", null, git.commit || "—")),
            h("tr", null, h("th", null, "branch"), h("td", null, git.branch || "—")),
            h("tr", null, h("th", null, "dirty"), h("td", null, git.dirty ? "yes" : "no")),
            h("tr", null, h("th", null, "patch"), h("td", null, hasPatch ? fmtBytes(r.patch_bytes) : "none")),
            Array.isArray(r.untracked) && r.untracked.length ? h("tr", null, h("th", null, "untracked"), h("td", null, r.untracked.join("\n"))) : null,
          ),
        ),
        hasPatch ? h("div", { class: "row" }, toggle) : null,
        patchPre,
      ];
    }
    const sys = Object.entries(r.metrics || {}).filter(([k]) => k.startsWith("sys/"));
    const sysTable = sys.length
      ? h(
          "table",
          { class: "data" },
          h("thead", null, h("tr", null, h("th", null, "metric"), h("th", { class: "num" }, "last"), h("th", { class: "num" }, "min"), h("th", { class: "num" }, "max"), h("th", { class: "num" }, "mean"))),
          h(
            "tbody",
            null,
            sys.map(([k, m]) => h("tr", null, h("td", { class: "mono" }, k.slice(4)), ["last", "min", "max", "mean"].map((f) => h("td", { class: "num", title: fmtExact(m[f]) }, fmtNum(m[f]))))),
          ),
        )
      : h("p", { class: "muted" }, "none recorded");
    const other = Object.entries(r.metrics || {}).filter(([k]) => !k.startsWith("sys/"));
    const metricTable = other.length
      ? h(
          "table",
          { class: "data" },
          h("thead", null, h("tr", null, h("th", null, "metric"), ["last", "min", "max", "count", "last step", "NaN"].map((f) => h("th", { class: "num" }, f)))),
          h(
            "tbody",
            null,
            other.map(([k, m]) =>
              h(
                "tr",
                null,
                h("td", { class: "mono" }, k),
                ["last", "min", "max"].map((f) => h("td", { class: "num", title: fmtExact(m[f]) }, fmtNum(m[f]))),
                h("td", { class: "num" }, fmtNum(m.count)),
                h("td", { class: "num" }, fmtNum(m.last_step)),
                h("td", { class: `num ${m.nan_count ? "nonfinite" : "muted"}` }, fmtNum(m.nan_count || 0)),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "none recorded");
    fill(infoGrid, 
      section("Config", kvTable(r.config)),
      section("Metric summaries", metricTable),
      Object.keys(r.summary || {}).length ? section("Summary", kvTable(r.summary)) : null,
      section("Git", gitBody),
      section("System", sysTable),
      section("Tags", (r.tags || []).length ? (r.tags || []).map((t) => h("span", { class: "tag" }, t)) : h("p", { class: "muted" }, "none")),
      r.env && Object.keys(r.env).length ? section("Environment", kvTable(r.env)) : null,
      r.dir ? section("Folder", h("code", null, r.dir), r.cwd ? h("div", { class: "muted small" }, "working directory ", h("code", null, r.cwd)) : null) : null,
    );
  }

  function drawEvents() {
    const events = Array.isArray(run.events) ? run.events : [];
    clear(eventsBox);
    if (events.length === 0) return;
    eventsBox.appendChild(
      h(
        "details",
        { class: "card" },
        h("summary", null, h("b", null, `Events (${events.length})`)),
        h(
          "table",
          { class: "data" },
          h(
            "tbody",
            null,
            events.map((e) => h("tr", null, h("td", { class: "mono muted" }, fmtTime(e.time)), h("td", null, e.kind || ""), h("td", { class: "wrap" }, e.message || "", e.data ? h("details", null, h("summary", { class: "muted small" }, "data"), h("pre", null, JSON.stringify(e.data, null, 2))) : null))),
          ),
        ),
      ),
    );
  }

  // Charts: one fetch for every key, then one chart per key.
  async function drawCharts(early) {
    const keys = Object.keys(run.metrics || {});
    const xKeys = keys.filter((k) => !k.startsWith("sys/"));
    clear(controlsBox).appendChild(
      chartControls(
        prefs,
        xKeys,
        (p, what) => {
          if (what === "x") refetchAll();
          else for (const c of charts.values()) c.setSmoothing(smoothingOf(p));
        },
        true,
      ),
    );
    clear(chartsBox);
    charts.clear();
    groupBoxes.clear();
    if (keys.length === 0) {
      chartsBox.appendChild(h("p", { class: "muted" }, "no metrics logged yet"));
      return;
    }
    const groups = [...new Set(keys.map(prefixOf))].sort(groupOrder);
    for (const g of groups) {
      const box = h("div", { class: "charts" });
      groupBoxes.set(g, box);
      chartsBox.appendChild(h("div", { class: "chart-group" }, h("h3", null, g === "" ? "metrics" : `${g}/`), box));
    }
    for (const k of keys.sort()) addChart(k);
    await refetchAll(early);
    markChartsDrawn();
  }

  function addChart(key) {
    const g = prefixOf(key);
    let box = groupBoxes.get(g);
    if (!box) {
      box = h("div", { class: "charts" });
      groupBoxes.set(g, box);
      chartsBox.appendChild(h("div", { class: "chart-group" }, h("h3", null, g === "" ? "metrics" : `${g}/`), box));
    }
    const chart = new Chart(box, {
      title: key,
      xMode: prefs.x,
      smoothing: smoothingOf(prefs),
      // A zoomed range is in the unit of the axis the chart is on.
      load: async (range) => {
        const s = await fetchSeries(run.id, [key], chart.xMode, range, t0);
        return s.series[key] ? [curveOf(s.series[key])] : [];
      },
      onStale: async (c) => {
        const d = placed.has(key) ? await drawnSeries([key], null, c.xMode) : await drawnSeries([key]);
        const one = d.get(key);
        if (one && one.curve) {
          c.setCurves([curveOf(one.curve)], one.mode);
          placed.add(key);
        }
      },
    });
    charts.set(key, chart);
    return chart;
  }

  function curveOf(s) {
    return { ...s, id: run.id, label: run.name || run.id, color: PALETTE[0] };
  }

  // The keys whose chart has been drawn on an axis of its own choosing.
  const placed = new Set();

  // The series of `keys` on the axis the page chose (`mode`, else the
  // control's), as key → {curve, mode}. Under "auto" each key goes on its
  // own default axis, which the first answer names: those that are not the
  // step are asked for again, on their step metric.
  // `early`: an answer for every key asked before the charts were made.
  async function drawnSeries(keys, early, mode) {
    const chosen = mode || prefs.x;
    const s = (early && (await early)) || (await fetchSeries(run.id, keys, chosen, null, t0));
    if (chosen === "relative" && t0 === null) t0 = s.t0;
    const out = new Map();
    const again = new Map(); // mode → keys
    for (const k of keys) {
      const c = s.series[k];
      const own = chosen === "auto" && c && c.defaultX !== "step" ? `metric:${c.defaultX}` : null;
      if (own) again.set(own, [...(again.get(own) || []), k]);
      else out.set(k, { curve: c, mode: chosen === "auto" ? "step" : chosen });
    }
    for (const [own, ks] of again) {
      const more = await fetchSeries(run.id, ks, own, null, t0);
      for (const k of ks) out.set(k, { curve: more.series[k], mode: own });
    }
    return out;
  }

  async function refetchAll(early) {
    const keys = [...charts.keys()];
    if (keys.length === 0) return;
    const drawn = await drawnSeries(keys, early);
    for (const [k, chart] of charts) {
      const d = drawn.get(k);
      chart.setCurves(d && d.curve ? [curveOf(d.curve)] : [], d ? d.mode : prefs.x);
      placed.add(k);
    }
  }

  // Output: the tail first, then what comes after the last byte seen.
  let logEnd = null;
  let logBusy = false;
  let logAgain = false;
  async function loadLog(first) {
    if (logBusy) {
      logAgain = true;
      return;
    }
    logBusy = true;
    try {
      const path = `/api/runs/${encodeURIComponent(id)}/logs`;
      const answer = await get(first || logEnd === null ? url(path, { tail: LOG_TAIL }) : url(path, { offset: logEnd }), { quiet: !first });
      const atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 4;
      if (first || logEnd === null) logPre.textContent = answer.text || "";
      else if (answer.text) logPre.textContent += answer.text;
      if (logPre.textContent.length > LOG_KEEP) logPre.textContent = logPre.textContent.slice(-LOG_KEEP);
      logEnd = answer.end;
      logNote.textContent = first && answer.offset > 0 ? `last ${LOG_TAIL} lines` : "";
      if (!logPre.textContent) logPre.textContent = "(no output yet)";
      if (atBottom || first) logPre.scrollTop = logPre.scrollHeight;
    } catch {
      /* a failed poll is retried on the next tick */
    } finally {
      logBusy = false;
      if (logAgain) {
        logAgain = false;
        loadLog(false);
      }
    }
  }

  let lastPoll = 0;
  function pollLogSoon() {
    const now = Date.now();
    if (now - lastPoll < 1000) return;
    lastPoll = now;
    loadLog(false);
  }
  setInterval(() => {
    if (run && run.status === "running") {
      pollLogSoon();
      const d = head.querySelector("[data-duration]");
      if (d && run.duration_s == null) d.textContent = fmtDuration((Date.now() - Date.parse(run.created_at)) / 1000);
    }
  }, 2000);

  onStream("points", (ev) => {
    if (!run || ev.run !== run.id || !Array.isArray(ev.points)) return;
    let chart = charts.get(ev.key);
    if (!chart) {
      // A metric this page had not seen: its chart starts from a fetch.
      run.metrics = run.metrics || {};
      run.metrics[ev.key] = run.metrics[ev.key] || {};
      chart = addChart(ev.key);
      chart.opts.onStale(chart);
    } else {
      chart.append(run.id, ev.points);
    }
    const m = run.metrics && run.metrics[ev.key];
    const last = ev.points[ev.points.length - 1];
    if (m && last) {
      m.last = last.value;
      m.last_step = last.step;
    }
    pollLogSoon();
  });
  onStream("status", (ev) => {
    if (!run || ev.run !== run.id) return;
    const before = run.status;
    for (const k of ["status", "reason", "exit_code", "signal", "ended_at", "duration_s"]) if (k in ev) run[k] = ev[k];
    if (ev.metrics) run.metrics = { ...run.metrics, ...ev.metrics };
    if (before !== run.status) {
      drawHead();
      loadLog(false);
    }
    pollLogSoon();
  });
  onStream("alert", (ev) => {
    if (!run || ev.run !== run.id) return;
    const alerts = Array.isArray(run.alerts) ? run.alerts : [];
    // An alert the first fetch already held, sent again, is shown once.
    if (alerts.some((a) => a.time === ev.time && a.message === ev.message)) return;
    run.alerts = [...alerts, ev];
    drawAlerts();
  });
  onStream("reset", () => {
    t0 = null;
    logEnd = null;
    load();
  });

  try {
    await load();
  } catch (e) {
    if (!run) fill(root, h("p", { class: "muted" }, "This run could not be loaded (the message is above)."));
    throw e;
  }
}

