// The runs page: the table `labmate runs` prints, with the --where
// language in a query box, sorting by column, a column chooser, grouping
// by config keys, and a selection to compare. It shows one page of 100
// runs at a time, so a lab of 10,000 runs draws as fast as one of 10.
//
// The page's state lives in its URL (where, sort, group_by, cols, offset),
// so a view can be reloaded, bookmarked and shared.

import { h, fill, on, clear, badge, fmtNum, fmtExact, fmtAge, fmtDuration, fmtValue, flatten, runLink, toNumber } from "../dom.js";
import { get, url, onStream, openStream, showError } from "../api.js";

const PAGE = 100;
const SUMMARY_FIELDS = ["last", "min", "max", "mean", "count", "last_step", "nan_count"];

// A path of the query language, read from a run object as the API sends
// it; undefined when the run lacks it (or only the server can compute it,
// like metrics.loss@1000).
export function resolvePath(run, path) {
  if (path.startsWith("config.")) return dig(run.config, path.slice(7).split("."));
  if (path.startsWith("summary.")) return dig(run.summary, path.slice(8).split("."));
  if (path.startsWith("git.")) return run.git ? run.git[path.slice(4)] : undefined;
  if (path.startsWith("metrics.")) {
    const rest = path.slice(8);
    const dot = rest.lastIndexOf(".");
    if (dot < 0) return undefined;
    const field = rest.slice(dot + 1);
    const m = run.metrics && run.metrics[rest.slice(0, dot)];
    return m && SUMMARY_FIELDS.includes(field) ? m[field] : undefined;
  }
  return run[path];
}

function dig(obj, parts) {
  let v = obj;
  for (const p of parts) {
    if (v === null || typeof v !== "object" || !(p in v)) return undefined;
    v = v[p];
  }
  return v;
}

// A column the browser cannot read from a run object: ask the server for
// it with `columns=`.
function serverOnly(path) {
  return path.includes("@");
}

function splitList(s) {
  return (s || "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

export async function render(root, _params, query) {
  document.title = "labmate · runs";
  const state = {
    where: query.get("where") || "",
    sort: splitList(query.get("sort")),
    groupBy: query.get("group_by") || "",
    cols: query.has("cols") ? splitList(query.get("cols")) : null,
    offset: Math.max(0, parseInt(query.get("offset") || "0", 10) || 0),
  };
  const selected = new Set();
  let data = null; // the last answer: runs view or groups view
  let extra = new Map(); // run id → {path: value} for server-only columns
  let streamOpen = false;
  const rowOf = new Map(); // run id → <tr>
  const runOf = new Map(); // run id → run object shown

  // The query bar.
  const whereInput = h("input", {
    type: "search",
    class: "where",
    placeholder: 'where: status == "finished" and config.lr < 1e-3 and metrics.val_loss.min < 2.1',
    spellcheck: "false",
    "aria-label": "where",
  });
  whereInput.value = state.where;
  const groupInput = h("input", { type: "search", class: "group", placeholder: "group by: config.lr", spellcheck: "false", "aria-label": "group by" });
  groupInput.value = state.groupBy;
  const whereError = h("pre", { class: "query-error", hidden: true });
  on(whereInput, "keydown", (e) => {
    if (e.key === "Enter") {
      state.where = whereInput.value.trim();
      state.offset = 0;
      load();
    }
  });
  on(groupInput, "keydown", (e) => {
    if (e.key === "Enter") {
      state.groupBy = groupInput.value.trim();
      state.offset = 0;
      load();
    }
  });

  const compareBtn = h("button", { type: "button", class: "primary", disabled: true }, "Compare");
  on(compareBtn, "click", () => {
    location.href = url("/compare", { runs: [...selected] });
  });
  const clearSel = h("button", { type: "button", hidden: true }, "clear selection");
  on(clearSel, "click", () => {
    selected.clear();
    redraw();
  });

  const chooserBtn = h("button", { type: "button", "aria-haspopup": "true" }, "Columns ▾");
  const chooserPanel = h("div", { class: "chooser-panel", hidden: true });
  on(chooserBtn, "click", () => {
    chooserPanel.hidden = !chooserPanel.hidden;
    if (!chooserPanel.hidden) drawChooser();
  });
  on(document, "click", (e) => {
    if (!chooserPanel.hidden && !chooserPanel.contains(e.target) && e.target !== chooserBtn) chooserPanel.hidden = true;
  });

  const summary = h("span", { class: "muted" });
  const notice = h("button", { type: "button", class: "notice", hidden: true }, "new runs: show them");
  on(notice, "click", () => load());
  const table = h("table", { class: "data runs" });
  const pager = h("div", { class: "pager" });

  clear(root);
  root.append(
    h("div", { class: "query" }, whereInput, groupInput),
    whereError,
    h("div", { class: "toolbar" }, summary, notice, h("span", { class: "spacer" }), clearSel, compareBtn, h("span", { class: "chooser" }, chooserBtn, chooserPanel)),
    table,
    pager,
  );

  function keep() {
    const u = url(location.pathname, {
      where: state.where,
      sort: state.sort,
      group_by: state.groupBy,
      cols: state.cols === null ? null : state.cols.join(",") || ",",
      offset: state.offset || null,
    });
    history.replaceState(null, "", u);
  }

  function defaultCols() {
    return ((data && data.key_metrics) || []).map((k) => `metrics.${k}.last`);
  }
  function cols() {
    return state.cols === null ? defaultCols() : state.cols.filter((c) => c !== "");
  }

  async function load() {
    keep();
    const params = { where: state.where, sort: state.sort };
    let answer;
    try {
      if (state.groupBy) {
        answer = await get(url("/api/runs", { ...params, group_by: state.groupBy }), { quiet: true });
      } else {
        answer = await get(url("/api/runs", { ...params, limit: PAGE, offset: state.offset }), { quiet: true });
      }
    } catch (e) {
      // A bad where, sort or group_by is the query's fault: show the
      // message (with its ^ pointer) under the box, not in the banner.
      if (e.status === 400) {
        whereError.textContent = e.message;
        whereError.hidden = false;
        return;
      }
      showError(e);
      return;
    }
    whereError.hidden = true;
    data = answer;
    notice.hidden = true;
    extra = new Map();
    const wanted = cols().filter(serverOnly);
    if (!state.groupBy && wanted.length > 0) {
      try {
        const rows = await get(url("/api/runs", { ...params, limit: PAGE, offset: state.offset, columns: ["id", ...wanted] }), { quiet: true });
        for (const row of rows.rows || []) extra.set(row.id, row);
      } catch (e) {
        whereError.textContent = e.message;
        whereError.hidden = false;
      }
    }
    redraw();
    if (!streamOpen) {
      streamOpen = true;
      openStream(answer.cursor);
    }
  }

  function redraw() {
    compareBtn.disabled = selected.size < 2;
    compareBtn.textContent = selected.size ? `Compare ${selected.size}` : "Compare";
    clearSel.hidden = selected.size === 0;
    if (!data) return;
    if (state.groupBy) drawGroups();
    else drawRuns();
  }

  // Sorting: a click sorts by that column (again: the other way), a
  // shift-click adds it as a further key.
  function sortHeader(th, key, firstDesc = false) {
    th.classList.add("sortable");
    const i = state.sort.findIndex((s) => s.replace(/^-/, "") === key);
    if (i >= 0) {
      const desc = state.sort[i].startsWith("-");
      th.appendChild(h("span", { class: "arrow" }, (desc ? "▼" : "▲") + (state.sort.length > 1 ? i + 1 : "")));
    }
    th.title = `sort by ${key} (shift-click: add to the sort)`;
    on(th, "click", (e) => {
      const at = state.sort.findIndex((s) => s.replace(/^-/, "") === key);
      const flip = (s) => (s.startsWith("-") ? s.slice(1) : `-${s}`);
      if (e.shiftKey) {
        if (at >= 0) state.sort[at] = flip(state.sort[at]);
        else state.sort.push(firstDesc ? `-${key}` : key);
      } else if (at === 0 && state.sort.length === 1) {
        state.sort = [flip(state.sort[0])];
      } else {
        state.sort = [firstDesc ? `-${key}` : key];
      }
      state.offset = 0;
      load();
    });
    return th;
  }

  function drawRuns() {
    const runs = data.runs || [];
    const baseline = data.baseline || null;
    const columns = cols();
    rowOf.clear();
    runOf.clear();
    const total = data.total ?? runs.length;
    summary.textContent = total === 0 ? "no runs" : `${state.offset + 1}–${state.offset + runs.length} of ${total} runs`;

    const allBox = h("input", { type: "checkbox", "aria-label": "select all on this page" });
    allBox.checked = runs.length > 0 && runs.every((r) => selected.has(r.id));
    on(allBox, "change", () => {
      for (const r of runs) allBox.checked ? selected.add(r.id) : selected.delete(r.id);
      redraw();
    });
    const head = h(
      "tr",
      null,
      h("th", { class: "check" }, allBox),
      sortHeader(h("th", null, "status"), "status"),
      sortHeader(h("th", null, "name"), "name"),
      sortHeader(h("th", null, "id"), "id"),
      sortHeader(h("th", null, "age"), "created_at", true),
      sortHeader(h("th", { class: "num" }, "duration"), "duration_s"),
      columns.map((c) => sortHeader(h("th", { class: "num", title: c }, shortPath(c)), c)),
      baseline ? sortHeader(h("th", { class: "num", title: `last ${baseline.key} minus the baseline's mean ${fmtExact(baseline.mean)}` }, `Δ ${baseline.key}`), `metrics.${baseline.key}.last`) : null,
      h("th", null, "tags"),
    );
    const body = h("tbody");
    for (const r of runs) {
      runOf.set(r.id, r);
      const tr = runRow(r, columns, baseline);
      rowOf.set(r.id, tr);
      body.appendChild(tr);
    }
    fill(table, h("thead", null, head), body);
    markRunsDrawn();
    if (runs.length === 0) body.appendChild(h("tr", null, h("td", { colspan: 8 + columns.length, class: "muted" }, state.where ? "no run matches" : "no runs yet: launch one with `labmate run -- CMD`")));

    clear(pager);
    if (total > PAGE) {
      const prev = h("button", { type: "button", disabled: state.offset === 0 }, "‹ previous");
      const next = h("button", { type: "button", disabled: state.offset + PAGE >= total }, "next ›");
      on(prev, "click", () => {
        state.offset = Math.max(0, state.offset - PAGE);
        load();
      });
      on(next, "click", () => {
        state.offset += PAGE;
        load();
      });
      pager.append(prev, h("span", null, `page ${Math.floor(state.offset / PAGE) + 1} of ${Math.ceil(total / PAGE)}`), next);
    }
  }

  function runRow(r, columns, baseline) {
    const box = h("input", { type: "checkbox", "aria-label": `select ${r.name || r.id}` });
    box.checked = selected.has(r.id);
    on(box, "change", () => {
      box.checked ? selected.add(r.id) : selected.delete(r.id);
      redraw();
    });
    const why = [r.reason, r.exit_code !== null && r.exit_code !== undefined ? `exit code ${r.exit_code}` : null, r.signal ? `signal ${r.signal}` : null].filter(Boolean).join("; ");
    const alerts = typeof r.alerts === "number" ? r.alerts : Array.isArray(r.alerts) ? r.alerts.length : 0;
    const duration = r.duration_s ?? (r.status === "running" ? (Date.now() - Date.parse(r.created_at)) / 1000 : null);
    const extraRow = extra.get(r.id) || {};
    const cells = columns.map((c) => {
      const v = serverOnly(c) ? extraRow[c] : resolvePath(r, c);
      const numeric = typeof v === "number" || v === "NaN" || v === "Infinity" || v === "-Infinity";
      return h("td", { class: numeric ? "num" : null, title: v === undefined ? null : fmtValue(v) }, v === undefined ? "" : numeric ? fmtNum(v) : fmtValue(v));
    });
    let delta = null;
    if (baseline) {
      const m = r.metrics && r.metrics[baseline.key];
      const last = m ? toNumber(m.last) : null;
      const mean = toNumber(baseline.mean);
      if (last !== null && mean !== null && Number.isFinite(last) && Number.isFinite(mean)) {
        const d = last - mean;
        const rel = mean !== 0 ? (100 * d) / Math.abs(mean) : null;
        const pct = rel !== null && Math.abs(rel) < 1e4 ? ` (${rel >= 0 ? "+" : ""}${rel.toFixed(1)}%)` : "";
        delta = h("td", { class: "num", title: `${fmtExact(last)} − ${fmtExact(mean)}` }, `${d >= 0 ? "+" : ""}${fmtNum(d)}${pct}`);
      } else {
        delta = h("td", { class: "num muted" }, "—");
      }
    }
    return h(
      "tr",
      { class: selected.has(r.id) ? "selected" : null, "data-id": r.id },
      h("td", { class: "check" }, box),
      h("td", { title: why || null }, badge(r.status, why), alerts ? h("span", { class: "alerts", title: `${alerts} alert${alerts > 1 ? "s" : ""}` }, `⚑${alerts}`) : null),
      h("td", { class: "name-cell", title: r.name || null }, runLink(r.id, r.name || r.id)),
      h("td", { class: "mono muted" }, r.id),
      h("td", { class: "num", title: r.created_at || null, "data-age": "" }, fmtAge(r.created_at)),
      h("td", { class: "num", "data-duration": "" }, fmtDuration(duration)),
      cells,
      delta,
      h("td", { class: "wrap" }, (r.tags || []).map((t) => h("span", { class: "tag" }, t))),
    );
  }

  function drawGroups() {
    const groups = data.groups || [];
    const by = data.by || splitList(state.groupBy);
    summary.textContent = `${groups.length} group${groups.length === 1 ? "" : "s"} by ${by.join(", ")}`;
    clear(pager);
    const statKeys = [];
    const seen = new Set();
    const keyMetrics = (data.key_metrics || []).map((k) => `metrics.${k}.last`);
    const addKey = (k) => {
      if (!seen.has(k)) {
        seen.add(k);
        statKeys.push(k);
      }
    };
    for (const k of keyMetrics) addKey(k);
    for (const g of groups) for (const k of Object.keys(g.stats || {})) addKey(k);
    const head = h(
      "tr",
      null,
      h("th", { class: "check" }),
      by.map((b) => h("th", null, b)),
      h("th", { class: "num" }, "n"),
      h("th", null, "seeds"),
      statKeys.map((k) => h("th", { class: "num", title: `${k}: mean ± std, and the 95% confidence interval` }, shortPath(k))),
      h("th", null, "runs"),
    );
    const body = h("tbody");
    for (const g of groups) {
      const ids = g.runs || [];
      const box = h("input", { type: "checkbox", "aria-label": "select the group's runs" });
      box.checked = ids.length > 0 && ids.every((id) => selected.has(id));
      on(box, "change", () => {
        for (const id of ids) box.checked ? selected.add(id) : selected.delete(id);
        redraw();
      });
      body.appendChild(
        h(
          "tr",
          null,
          h("td", { class: "check" }, box),
          by.map((b) => h("td", { class: "mono" }, fmtValue(g.key ? g.key[b] : undefined))),
          h("td", { class: "num" }, String(ids.length)),
          h("td", { class: "mono small" }, (g.seeds || []).map(fmtValue).join(", ")),
          statKeys.map((k) => statCell(g.stats ? g.stats[k] : null)),
          h(
            "td",
            { class: "small" },
            ids.map((id, i) => [i ? " " : null, runLink(id)]),
          ),
        ),
      );
    }
    fill(table, h("thead", null, head), body);
    markRunsDrawn();
  }

  function drawChooser() {
    clear(chooserPanel);
    const current = new Set(cols());
    const found = { metrics: new Set(), config: new Set(), summary: new Set() };
    for (const r of (data && data.runs) || []) {
      for (const k of Object.keys(r.metrics || {})) {
        found.metrics.add(`metrics.${k}.last`);
        found.metrics.add(`metrics.${k}.min`);
      }
      for (const [k] of flatten(r.config || {})) if (k) found.config.add(`config.${k}`);
      for (const [k] of flatten(r.summary || {})) if (k) found.summary.add(`summary.${k}`);
    }
    for (const c of current) {
      const kind = c.split(".")[0];
      if (found[kind]) found[kind].add(c);
    }
    const toggle = (path, box) => {
      const list = cols();
      state.cols = box.checked ? [...list.filter((c) => c !== path), path] : list.filter((c) => c !== path);
      if (serverOnly(path)) load();
      else {
        keep();
        redraw();
      }
    };
    for (const [kind, paths] of Object.entries(found)) {
      if (paths.size === 0) continue;
      chooserPanel.appendChild(h("h3", null, kind));
      for (const p of [...paths].sort()) {
        const box = h("input", { type: "checkbox" });
        box.checked = current.has(p);
        on(box, "change", () => toggle(p, box));
        chooserPanel.appendChild(h("label", null, box, " ", p));
      }
    }
    const other = h("input", { type: "text", placeholder: "another path, e.g. metrics.loss@1000", spellcheck: "false" });
    on(other, "keydown", (e) => {
      if (e.key === "Enter" && other.value.trim()) {
        state.cols = [...cols().filter((c) => c !== other.value.trim()), other.value.trim()];
        load();
        drawChooser();
      }
    });
    const reset = h("button", { type: "button" }, "default columns");
    on(reset, "click", () => {
      state.cols = null;
      load();
      drawChooser();
    });
    chooserPanel.append(h("h3", null, "other"), other, h("div", { class: "row" }, reset));
  }

  // Live: a status event redraws its row; points move the row's last
  // values; a run this page does not show yet offers a reload.
  const dirty = new Set();
  let frame = 0;
  function touch(id) {
    dirty.add(id);
    if (!frame) frame = requestAnimationFrame(flush);
  }
  function flush() {
    frame = 0;
    if (!data || state.groupBy) return dirty.clear();
    const columns = cols();
    for (const id of dirty) {
      const old = rowOf.get(id);
      const r = runOf.get(id);
      if (!old || !r) continue;
      const tr = runRow(r, columns, data.baseline || null);
      old.replaceWith(tr);
      rowOf.set(id, tr);
    }
    dirty.clear();
  }
  onStream("status", (ev) => {
    const r = runOf.get(ev.run);
    if (!r) {
      if (!state.groupBy && state.offset === 0) notice.hidden = false;
      return;
    }
    for (const k of ["status", "reason", "exit_code", "signal", "ended_at", "duration_s"]) if (k in ev) r[k] = ev[k];
    if (ev.metrics) r.metrics = { ...r.metrics, ...ev.metrics };
    touch(r.id);
  });
  onStream("points", (ev) => {
    const r = runOf.get(ev.run);
    if (!r || !Array.isArray(ev.points) || ev.points.length === 0) return;
    r.metrics = r.metrics || {};
    const m = (r.metrics[ev.key] = r.metrics[ev.key] || { count: 0 });
    for (const p of ev.points) {
      if (m.last_step !== undefined && m.last_step !== null && p.step <= m.last_step) continue;
      const v = toNumber(p.value);
      m.last = p.value;
      m.last_step = p.step;
      m.count = (m.count || 0) + 1;
      if (v !== null && Number.isFinite(v)) {
        if (m.min === undefined || m.min === null || v < m.min) m.min = v;
        if (m.max === undefined || m.max === null || v > m.max) m.max = v;
      } else if (Number.isNaN(v)) m.nan_count = (m.nan_count || 0) + 1;
    }
    touch(r.id);
  });
  onStream("alert", (ev) => {
    const r = runOf.get(ev.run);
    if (!r) return;
    r.alerts = (typeof r.alerts === "number" ? r.alerts : 0) + 1;
    touch(r.id);
  });
  onStream("reset", () => load());

  // Ages and running durations move on their own.
  setInterval(() => {
    if (!data || state.groupBy) return;
    for (const [id, r] of runOf) {
      const tr = rowOf.get(id);
      if (!tr) continue;
      const age = tr.querySelector("[data-age]");
      if (age) age.textContent = fmtAge(r.created_at);
      if (r.status === "running" && r.duration_s == null) {
        const d = tr.querySelector("[data-duration]");
        if (d) d.textContent = fmtDuration((Date.now() - Date.parse(r.created_at)) / 1000);
      }
    }
  }, 1000);

  await load();
}

let drawnMarked = false;

// performance.mark("labmate:runs-drawn") once, when the table first has
// its rows on screen (the browser benchmark measures up to it).
function markRunsDrawn() {
  if (drawnMarked) return;
  drawnMarked = true;
  requestAnimationFrame(() => performance.mark("labmate:runs-drawn"));
}

// metrics.val_loss.last → val_loss, config.optim.lr → optim.lr: the
// header is narrow, its title keeps the full path.
function shortPath(p) {
  if (p.startsWith("metrics.") && p.endsWith(".last")) return p.slice(8, -5);
  if (p.startsWith("metrics.")) return p.slice(8);
  if (p.startsWith("config.")) return p.slice(7);
  return p;
}

function statCell(s) {
  if (!s) return h("td", { class: "num muted" }, "—");
  const main = s.std === null || s.std === undefined ? fmtNum(s.mean) : `${fmtNum(s.mean)} ± ${fmtNum(s.std)}`;
  const ci = Array.isArray(s.ci95) ? `[${fmtNum(s.ci95[0])}, ${fmtNum(s.ci95[1])}]` : null;
  const excluded = (s.nan_excluded || 0) + (s.inf_excluded || 0);
  const title = [`n ${s.n}`, `min ${fmtExact(s.min)}`, `max ${fmtExact(s.max)}`, excluded ? `${s.nan_excluded} NaN and ${s.inf_excluded} ±∞ left out` : null].filter(Boolean).join(", ");
  return h("td", { class: "num", title }, main, ci ? h("div", { class: "muted small" }, `CI ${ci}`) : null, excluded ? h("div", { class: "nonfinite small" }, `${excluded} non-finite left out`) : null);
}
