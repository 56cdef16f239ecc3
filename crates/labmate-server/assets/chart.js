// The metric chart, on uPlot: curves of one or more runs (or groups as a
// mean with a min–max band), an x-axis of step, wall time, relative time
// or another metric, log-y, smoothing with the raw curve kept faint
// behind, NaN and ±Inf marked at the plot's edges, a hover legend with
// every curve's exact value, and drag-to-zoom that refetches the range at
// full resolution.
//
// A chart does not know the API: its owner gives it curves and a `load`
// that fetches a zoomed range. A curve is
//   {id, label, color, x: [...], y: [...], step: [...], full, t0, unit}
// with y as numbers (NaN, ±Infinity included), or a group
//   {id, label, color, members: [curve...]}.

import uPlot from "./vendor/uPlot.esm.js";
import { h, on, clear, fmtNum, fmtExact, fmtDuration } from "./dom.js";

export const PALETTE = ["#3a5ccc", "#d9480f", "#2b8a3e", "#ae3ec9", "#0c8599", "#e67700", "#c2255c", "#5c940d", "#1864ab", "#862e9c", "#a61e4d", "#495057"];

// Beyond this many points a live curve is fetched again, downsampled: the
// page never holds an unbounded history.
const MAX_LIVE_POINTS = 8000;

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

// The typical gap between points, the unit smoothing weights are per:
// a curve shown at 2,000 points or zoomed in at full resolution smooths
// the same, because the weight depends on how far apart points are, not
// on how many are drawn.
export function typicalGap(xs) {
  const gaps = [];
  for (let i = 1; i < xs.length; i++) {
    const d = xs[i] - xs[i - 1];
    if (d > 0 && Number.isFinite(d)) gaps.push(d);
  }
  if (gaps.length === 0) return 1;
  gaps.sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)];
}

// Exponential moving average as TensorBoard draws it, but weighted by the
// x gap: `weight` is the weight one `unit` apart, a point twice as far
// from the last gets weight^2. Debiased: the sum of the weights given to
// points so far (1 - w^n for equal gaps) divides the average, so the
// start is not pulled towards zero. Non-finite values are skipped (and
// drawn as marks), so one NaN does not poison the rest of the curve.
export function ema(xs, ys, weight, unit) {
  const out = new Array(ys.length);
  let acc = 0;
  let norm = 0;
  let prev = null;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      out[i] = null;
      continue;
    }
    // Two points at the same x still both count, a little.
    const gap = prev === null ? unit : Math.max(xs[i] - prev, unit * 1e-3);
    const w = Math.pow(weight, gap / unit);
    acc = acc * w + (1 - w) * v;
    norm = norm * w + (1 - w);
    out[i] = norm > 0 ? acc / norm : v;
    prev = xs[i];
  }
  return out;
}

// Trailing mean over the last `n` units of x (n points where points are
// evenly spaced), finite values only.
export function runningMean(xs, ys, n, unit) {
  const out = new Array(ys.length);
  const span = n * unit;
  let lo = 0;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (typeof v === "number" && Number.isFinite(v)) {
      sum += v;
      count++;
    }
    while (lo < i && xs[i] - xs[lo] >= span) {
      const u = ys[lo];
      if (typeof u === "number" && Number.isFinite(u)) {
        sum -= u;
        count--;
      }
      lo++;
    }
    out[i] = typeof v === "number" && Number.isFinite(v) && count > 0 ? sum / count : null;
  }
  return out;
}

export function smooth(xs, ys, smoothing, unit) {
  if (!smoothing || smoothing.kind === "ema") return ema(xs, ys, Math.min(0.999, Math.max(0, smoothing ? smoothing.weight : 0)), unit);
  if (smoothing.kind === "mean") return runningMean(xs, ys, Math.max(1, smoothing.window), unit);
  return ys.slice();
}

function isSmoothing(s) {
  return s && ((s.kind === "ema" && s.weight > 0) || (s.kind === "mean" && s.window > 1));
}

// Members of a group on one x grid: the union of their x values when that
// is small, else evenly spaced; each member is linearly interpolated
// inside its own range. Gives the mean and the min–max band.
export function aggregate(members, maxPoints = 2000) {
  const xsAll = [];
  let lo = Infinity;
  let hi = -Infinity;
  for (const m of members) {
    for (const x of m.x) xsAll.push(x);
    if (m.x.length) {
      lo = Math.min(lo, m.x[0]);
      hi = Math.max(hi, m.x[m.x.length - 1]);
    }
  }
  let grid;
  if (xsAll.length <= maxPoints * 2) grid = [...new Set(xsAll)].sort((a, b) => a - b);
  else {
    grid = [];
    for (let i = 0; i < maxPoints; i++) grid.push(lo + ((hi - lo) * i) / (maxPoints - 1));
  }
  const mean = new Array(grid.length).fill(null);
  const min = new Array(grid.length).fill(null);
  const max = new Array(grid.length).fill(null);
  const at = members.map((m) => interpolator(m));
  for (let i = 0; i < grid.length; i++) {
    let s = 0;
    let n = 0;
    let a = Infinity;
    let b = -Infinity;
    for (const f of at) {
      const v = f(grid[i]);
      if (v === null) continue;
      s += v;
      n++;
      a = Math.min(a, v);
      b = Math.max(b, v);
    }
    if (n > 0) {
      mean[i] = s / n;
      min[i] = a;
      max[i] = b;
    }
  }
  return { x: grid, mean, min, max };
}

function interpolator(c) {
  const xs = [];
  const ys = [];
  for (let i = 0; i < c.x.length; i++) {
    if (Number.isFinite(c.y[i])) {
      xs.push(c.x[i]);
      ys.push(c.y[i]);
    }
  }
  return (x) => {
    if (xs.length === 0 || x < xs[0] || x > xs[xs.length - 1]) return null;
    const i = upperBound(xs, x);
    if (i === 0) return ys[0];
    if (i >= xs.length) return ys[xs.length - 1];
    const x0 = xs[i - 1];
    const x1 = xs[i];
    if (x1 === x0) return ys[i];
    return ys[i - 1] + ((ys[i] - ys[i - 1]) * (x - x0)) / (x1 - x0);
  };
}

// The first index whose value is > x.
function upperBound(xs, x) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function nearest(xs, x) {
  if (xs.length === 0) return -1;
  const i = upperBound(xs, x);
  if (i === 0) return 0;
  if (i >= xs.length) return xs.length - 1;
  return x - xs[i - 1] <= xs[i] - x ? i - 1 : i;
}

// What an x mode is called on the axis and in the legend.
export function xLabel(mode) {
  if (mode === "time") return "wall time";
  if (mode === "relative") return "relative time";
  if (mode && mode.startsWith("metric:")) return mode.slice(7);
  return "step";
}

// The chart's own mode for a page's choice: "auto" is resolved per chart
// by its owner, and a chart not yet told draws steps.
function drawnMode(mode) {
  return !mode || mode === "auto" ? "step" : mode;
}

function fmtX(mode, v) {
  if (v === null || v === undefined) return "—";
  if (mode === "step") return String(Math.round(v));
  if (mode === "time") return new Date(v * 1000).toLocaleString();
  if (mode === "relative") return fmtDuration(v);
  return fmtNum(v);
}

let drawnMarked = false;

// performance.mark("labmate:charts-drawn") once, when a page's first
// charts are on screen (the browser benchmark measures up to it).
export function markChartsDrawn() {
  if (drawnMarked) return;
  drawnMarked = true;
  requestAnimationFrame(() => performance.mark("labmate:charts-drawn"));
}

export class Chart {
  // opts: {title, xMode, smoothing, load(range) → Promise<curves>, onStale()}
  constructor(parent, opts) {
    this.opts = opts;
    this.xMode = drawnMode(opts.xMode);
    this.smoothing = opts.smoothing || null;
    this.logY = false;
    this.curves = [];
    this.zoom = null; // {from, to, curves|null}
    this.plot = null;
    this.shape = "";
    this.hoverX = null;

    const logBox = h("input", { type: "checkbox" });
    on(logBox, "change", () => {
      this.logY = logBox.checked;
      this.draw(true);
    });
    this.note = h("span", { class: "chart-note" });
    this.plotEl = h("div", { class: "chart-plot" });
    this.xLabelEl = h("div", { class: "chart-xlabel" }, xLabel(this.xMode));
    this.legend = h("div", { class: "chart-legend" });
    this.el = h(
      "div",
      { class: "chart" },
      h("div", { class: "chart-head" }, h("span", { class: "chart-title", title: opts.title }, opts.title), this.note, h("label", { title: "logarithmic y axis" }, logBox, "log y")),
      this.plotEl,
      this.xLabelEl,
      this.legend,
    );
    parent.appendChild(this.el);
    this.resizer = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize(this.size());
    });
    this.resizer.observe(this.plotEl);
  }

  size() {
    return { width: Math.max(200, this.plotEl.clientWidth), height: 200 };
  }

  setCurves(curves, xMode) {
    if (xMode) this.xMode = drawnMode(xMode);
    this.xLabelEl.textContent = xLabel(this.xMode);
    this.el.setAttribute("data-x-axis", xLabel(this.xMode));
    this.curves = curves;
    this.zoom = null;
    this.draw(true);
  }

  setSmoothing(s) {
    this.smoothing = s;
    this.draw(true);
  }

  shown() {
    return (this.zoom && this.zoom.curves) || this.curves;
  }

  // New points of one run from the stream. Points at or before the last
  // step the curve holds are already there (the first fetch and the
  // stream overlap by design) and are skipped.
  append(runId, points) {
    if (this.xMode !== "step" && this.xMode !== "time" && this.xMode !== "relative") {
      // Another metric as x: the pairing needs the server.
      this.stale();
      return;
    }
    let changed = false;
    const lists = [this.curves, this.zoom && this.zoom.curves].filter(Boolean);
    for (const list of lists) {
      for (const c of list) {
        for (const target of c.members ? c.members : [c]) {
          if (target.id !== runId) continue;
          const last = target.step.length ? target.step[target.step.length - 1] : -Infinity;
          for (const p of points) {
            if (p.step <= last && target.step.length) continue;
            const x = this.xMode === "step" ? p.step : this.xMode === "time" ? p.time : p.time - (target.t0 || 0);
            target.x.push(x);
            target.y.push(toNum(p.value));
            target.step.push(p.step);
            changed = true;
          }
          if (target.x.length > MAX_LIVE_POINTS) this.stale();
        }
      }
    }
    if (changed) this.scheduleDraw();
  }

  scheduleDraw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.draw(false);
    });
  }

  // Refetch (debounced): used when live data cannot be placed here.
  stale() {
    if (this.staleTimer) return;
    this.staleTimer = setTimeout(async () => {
      this.staleTimer = 0;
      if (this.opts.onStale) await this.opts.onStale(this);
    }, 2000);
  }

  async zoomTo(from, to) {
    if (!(to > from)) return;
    this.zoom = { from, to, curves: null };
    if (this.plot) this.plot.setScale("x", { min: from, max: to });
    const partial = this.curves.some((c) => (c.members ? c.members.some((m) => !m.full) : !c.full));
    if (!partial || !this.opts.load) return;
    this.note.textContent = "loading…";
    try {
      const curves = await this.opts.load({ from, to });
      if (this.zoom && this.zoom.from === from && this.zoom.to === to) {
        // The smoothing unit stays the overview's, so zooming in does not
        // change what the smoothed curve says.
        for (const c of curves) {
          const o = this.curves.find((x) => x.id === c.id);
          if (o) inheritUnits(c, o);
        }
        this.zoom.curves = curves;
        this.draw(false);
      }
    } catch {
      this.note.textContent = "";
    }
  }

  resetZoom() {
    this.zoom = null;
    this.draw(true);
  }

  // The uPlot data and series for the curves shown.
  build() {
    const smoothing = isSmoothing(this.smoothing) ? this.smoothing : null;
    const tables = [];
    const series = [{}];
    const bands = [];
    const marks = []; // {x, kind}
    const legend = []; // per curve: {curve, color, label, idx: {raw, smooth}}
    const byStep = this.xMode !== "step" && this.xMode !== "time" && this.xMode !== "relative";
    let col = 1;
    for (const c of this.shown()) {
      const color = c.color || PALETTE[0];
      const entry = { curve: c, color, nonfinite: { nan: 0, pos: 0, neg: 0, hidden: 0 } };
      let x;
      let raw;
      let table;
      if (c.members) {
        const g = aggregate(c.members.map((m) => (byStep ? sortedByX(m) : m)));
        x = g.x;
        raw = g.mean;
        const lo = g.min.map((v) => this.clip(v));
        const hi = g.max.map((v) => this.clip(v));
        for (const m of c.members) countNonFinite(m, entry.nonfinite, marks, this.logY);
        const unit = c.unit || typicalGap(x);
        const meanShown = raw.map((v) => this.clip(v));
        if (smoothing) {
          table = [x, meanShown, smooth(x, raw, smoothing, unit).map((v) => this.clip(v)), smooth(x, g.max, smoothing, unit).map((v) => this.clip(v)), smooth(x, g.min, smoothing, unit).map((v) => this.clip(v))];
          series.push(line(c.label + " (raw)", alpha(color, 0.25), 1), line(c.label, color, 1.5), line(c.label + " max", alpha(color, 0.35), 0.5), line(c.label + " min", alpha(color, 0.35), 0.5));
          entry.raw = col;
          entry.smooth = col + 1;
          bands.push({ series: [col + 2, col + 3], fill: alpha(color, 0.12) });
          col += 4;
        } else {
          table = [x, meanShown, hi, lo];
          series.push(line(c.label, color, 1.5), line(c.label + " max", alpha(color, 0.35), 0.5), line(c.label + " min", alpha(color, 0.35), 0.5));
          entry.raw = col;
          bands.push({ series: [col + 1, col + 2], fill: alpha(color, 0.12) });
          col += 3;
        }
      } else {
        let cur = c;
        countNonFinite(c, entry.nonfinite, marks, this.logY);
        if (byStep) {
          // The smoothing runs in step order; the line is drawn in x order.
          const smoothed = smoothing ? smooth(c.step, c.y, smoothing, c.stepUnit || typicalGap(c.step)) : null;
          cur = sortedByX({ ...c, s: smoothed });
        }
        x = cur.x;
        raw = cur.y.map((v) => this.clip(v));
        if (smoothing) {
          const s = byStep ? cur.s : smooth(cur.x, cur.y, smoothing, c.unit || typicalGap(cur.x));
          table = [x, raw, s.map((v) => this.clip(v))];
          series.push(line(c.label + " (raw)", alpha(color, 0.25), 1), line(c.label, color, 1.5));
          entry.raw = col;
          entry.smooth = col + 1;
          col += 2;
        } else {
          table = [x, raw];
          series.push(line(c.label, color, 1.25));
          entry.raw = col;
          col += 1;
        }
      }
      entry.x = x;
      entry.rawY = c.members ? raw : cur_y(c, byStep);
      tables.push(table);
      legend.push(entry);
    }
    const data = tables.length === 0 ? [[]] : tables.length === 1 ? tables[0] : uPlot.join(tables);
    return { data, series, bands, marks, legend, shape: `${series.length}|${bands.length}|${this.logY}|${this.xMode}|${!!smoothing}` };
  }

  // Values a log axis cannot show are left out of the line (and counted).
  clip(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return null;
    if (this.logY && v <= 0) return null;
    return v;
  }

  draw(resetScales) {
    this.note.textContent = this.zoom ? "zoomed: double-click to reset" : "";
    const b = this.build();
    this.built = b;
    // The number of points the first curve holds, for tests to wait on.
    const first = this.shown()[0];
    const held = first ? (first.members ? first.members[0] : first) : null;
    this.el.setAttribute("data-points", String(held ? held.x.length : 0));
    const empty = this.shown().every((c) => (c.members ? c.members.every((m) => m.x.length === 0) : c.x.length === 0));
    if (empty) {
      if (this.plot) this.plot.destroy();
      this.plot = null;
      clear(this.plotEl).appendChild(h("p", { class: "muted" }, "no points"));
      this.drawLegend(null);
      return;
    }
    if (this.plot && this.shape === b.shape) {
      this.plot.setData(b.data, resetScales && !this.zoom);
      if (this.zoom) this.plot.setScale("x", { min: this.zoom.from, max: this.zoom.to });
    } else {
      if (this.plot) this.plot.destroy();
      clear(this.plotEl);
      this.shape = b.shape;
      this.plot = new uPlot(this.options(b), b.data, this.plotEl);
      if (this.zoom) this.plot.setScale("x", { min: this.zoom.from, max: this.zoom.to });
    }
    // Live points redraw the chart; a hovered x stays hovered.
    this.drawLegend(this.hoverX ?? null);
  }

  options(b) {
    const mode = this.xMode;
    const chart = this;
    return {
      ...this.size(),
      legend: { show: false },
      scales: { x: { time: mode === "time" }, y: this.logY ? { distr: 3, log: 10 } : {} },
      series: b.series,
      bands: b.bands,
      axes: [
        {
          values: mode === "time" ? undefined : (u, splits) => splits.map((v) => (mode === "relative" ? fmtDuration(v) : fmtNum(v))),
          grid: { stroke: "#eef0f2" },
          ticks: { stroke: "#e3e6ea" },
        },
        { size: 62, values: (u, splits) => splits.map((v) => fmtNum(v)), grid: { stroke: "#eef0f2" }, ticks: { stroke: "#e3e6ea" } },
      ],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => () => chart.resetZoom() },
      },
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width > 3) {
              const from = u.posToVal(u.select.left, "x");
              const to = u.posToVal(u.select.left + u.select.width, "x");
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              chart.zoomTo(from, to);
            }
          },
        ],
        setCursor: [
          (u) => {
            chart.hoverX = u.cursor.idx === null || u.cursor.idx === undefined ? null : u.data[0][u.cursor.idx];
            chart.drawLegend(chart.hoverX);
          },
        ],
        draw: [(u) => drawMarks(u, chart.built ? chart.built.marks : [])],
      },
    };
  }

  // The legend: every curve's value at the hovered x (its nearest point),
  // or its last value when nothing is hovered, and the count of non-finite
  // values it holds.
  drawLegend(atX) {
    const b = this.built;
    clear(this.legend);
    if (!b || b.legend.length === 0) return;
    const rows = [];
    if (atX !== null) rows.push(h("tr", { class: "muted" }, h("td", { colspan: 4 }, `${this.xMode === "relative" ? "elapsed" : this.xMode === "time" ? "time" : xLabel(this.xMode)} ${fmtX(this.xMode, atX)}`)));
    for (const e of b.legend) {
      const xs = e.x;
      let i = atX === null ? xs.length - 1 : nearest(xs, atX);
      if (atX === null) while (i > 0 && !Number.isFinite(e.rawY[i])) i--;
      const v = i >= 0 ? e.rawY[i] : null;
      let smooth = null;
      if (e.smooth !== undefined && i >= 0 && this.plot) {
        // The smoothed value at the same x, from the joined table.
        const j = nearest(this.plot.data[0], xs[i]);
        smooth = j >= 0 ? this.plot.data[e.smooth][j] : null;
      }
      const nf = e.nonfinite;
      const bad = [nf.nan ? `NaN ×${nf.nan}` : null, nf.pos ? `+∞ ×${nf.pos}` : null, nf.neg ? `−∞ ×${nf.neg}` : null, nf.hidden ? `≤0 ×${nf.hidden} (log)` : null].filter(Boolean).join(" ");
      rows.push(
        h(
          "tr",
          null,
          h("td", { class: "lab", title: e.curve.label }, h("span", { class: "swatch", "data-color": e.color }), e.curve.label),
          h("td", { class: "num" }, v === null || v === undefined ? "—" : fmtExact(v)),
          h("td", { class: "num muted", title: "smoothed" }, smooth === null || smooth === undefined ? "" : `~${fmtNum(smooth)}`),
          h("td", { class: "nonfinite" }, bad),
        ),
      );
    }
    const table = h("table", null, h("tbody", null, rows));
    // The swatch colour is data from the palette, set through CSSOM (the
    // CSP allows no style attributes).
    for (const sw of table.querySelectorAll(".swatch")) sw.style.background = sw.getAttribute("data-color");
    this.legend.appendChild(table);
  }

  destroy() {
    this.resizer.disconnect();
    if (this.plot) this.plot.destroy();
    this.el.remove();
  }
}

function cur_y(c, byStep) {
  return byStep ? sortedByX(c).y : c.y;
}

function inheritUnits(c, o) {
  c.unit = o.unit || typicalGap(o.x);
  c.stepUnit = o.stepUnit || typicalGap(o.step);
  c.t0 = o.t0;
  if (c.members && o.members) {
    for (const m of c.members) {
      const om = o.members.find((x) => x.id === m.id);
      if (om) inheritUnits(m, om);
    }
  }
}

function line(label, stroke, width) {
  return { label, stroke, width, spanGaps: false };
}

function toNum(v) {
  if (typeof v === "number") return v;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return NaN;
}

function sortedByX(c) {
  const idx = c.x.map((_, i) => i).sort((a, b) => c.x[a] - c.x[b]);
  const out = { ...c, x: idx.map((i) => c.x[i]), y: idx.map((i) => c.y[i]), step: idx.map((i) => c.step[i]) };
  if (c.s) out.s = idx.map((i) => c.s[i]);
  return out;
}

function countNonFinite(c, nf, marks, logY) {
  for (let i = 0; i < c.y.length; i++) {
    const v = c.y[i];
    if (Number.isNaN(v)) {
      nf.nan++;
      marks.push({ x: c.x[i], kind: "nan" });
    } else if (v === Infinity) {
      nf.pos++;
      marks.push({ x: c.x[i], kind: "pos" });
    } else if (v === -Infinity) {
      nf.neg++;
      marks.push({ x: c.x[i], kind: "neg" });
    } else if (logY && v <= 0) nf.hidden++;
  }
}

// NaN: a red tick down from the top edge; +∞ a red triangle at the top;
// −∞ one at the bottom. Never silently dropped.
function drawMarks(u, marks) {
  if (marks.length === 0) return;
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  const r = Math.round(3 * devicePixelRatio);
  ctx.save();
  ctx.fillStyle = "#c62828";
  ctx.strokeStyle = "#c62828";
  ctx.lineWidth = Math.max(1, devicePixelRatio);
  for (const m of marks) {
    const px = u.valToPos(m.x, "x", true);
    if (!(px >= left && px <= left + width)) continue;
    ctx.beginPath();
    if (m.kind === "nan") {
      ctx.moveTo(px, top);
      ctx.lineTo(px, top + 3 * r);
      ctx.stroke();
    } else if (m.kind === "pos") {
      ctx.moveTo(px - r, top + 2 * r);
      ctx.lineTo(px + r, top + 2 * r);
      ctx.lineTo(px, top);
      ctx.fill();
    } else {
      ctx.moveTo(px - r, top + height - 2 * r);
      ctx.lineTo(px + r, top + height - 2 * r);
      ctx.lineTo(px, top + height);
      ctx.fill();
    }
  }
  ctx.restore();
}

// The controls every chart of a page shares: x-axis and smoothing; kept
// in localStorage so they survive a reload.
const PREFS = "labmate.charts";

export function loadPrefs() {
  try {
    const p = JSON.parse(localStorage.getItem(PREFS) || "{}");
    return { x: p.x || "auto", smoothing: { kind: p.kind || "ema", weight: typeof p.weight === "number" ? p.weight : 0.6, window: p.window || 10 } };
  } catch {
    return { x: "auto", smoothing: { kind: "ema", weight: 0.6, window: 10 } };
  }
}

function savePrefs(p) {
  try {
    localStorage.setItem(PREFS, JSON.stringify({ x: p.x, kind: p.smoothing.kind, weight: p.smoothing.weight, window: p.smoothing.window }));
  } catch {
    /* private mode: preferences just do not persist */
  }
}

// metricKeys: the keys offered as x. onChange(prefs, what) with what
// "x" or "smoothing". With `auto`, the first choice draws each metric on
// its own default axis (its step metric, else the step).
export function chartControls(prefs, metricKeys, onChange, auto = false) {
  const xSel = h(
    "select",
    { "aria-label": "x axis" },
    auto ? h("option", { value: "auto" }, "its step metric") : null,
    h("option", { value: "step" }, "step"),
    h("option", { value: "time" }, "wall time"),
    h("option", { value: "relative" }, "relative time"),
    metricKeys.length ? h("optgroup", { label: "metric" }, metricKeys.map((k) => h("option", { value: `metric:${k}` }, k))) : null,
  );
  xSel.value = prefs.x;
  if (xSel.value !== prefs.x) {
    prefs.x = "step";
    xSel.value = "step";
  }
  const kind = h("select", { "aria-label": "smoothing" }, h("option", { value: "none" }, "none"), h("option", { value: "ema" }, "EMA (time-weighted)"), h("option", { value: "mean" }, "running mean"));
  kind.value = prefs.smoothing.kind;
  const weight = h("input", { type: "range", min: "0", max: "0.99", step: "0.01", "aria-label": "EMA weight" });
  weight.value = String(prefs.smoothing.weight);
  const weightOut = h("span", { class: "num" }, prefs.smoothing.weight.toFixed(2));
  const win = h("input", { type: "number", min: "1", max: "10000", step: "1", "aria-label": "window", class: "num" });
  win.value = String(prefs.smoothing.window);
  const weightLabel = h("label", null, "weight", weight, weightOut);
  const winLabel = h("label", null, "window", win, "points");
  const showParams = () => {
    weightLabel.hidden = kind.value !== "ema";
    winLabel.hidden = kind.value !== "mean";
  };
  showParams();
  const changed = (what) => {
    prefs.x = xSel.value;
    prefs.smoothing = { kind: kind.value, weight: Number(weight.value), window: Math.max(1, Math.round(Number(win.value) || 1)) };
    weightOut.textContent = prefs.smoothing.weight.toFixed(2);
    showParams();
    savePrefs(prefs);
    onChange(prefs, what);
  };
  on(xSel, "change", () => changed("x"));
  on(kind, "change", () => changed("smoothing"));
  on(weight, "input", () => changed("smoothing"));
  on(win, "change", () => changed("smoothing"));
  return h(
    "div",
    { class: "chart-controls" },
    h("label", null, "x", xSel),
    h("label", null, "smoothing", kind),
    weightLabel,
    winLabel,
    h("span", { class: "muted small" }, "drag to zoom · double-click to reset"),
  );
}

// The smoothing a chart gets from the page's prefs.
export function smoothingOf(prefs) {
  return prefs.smoothing.kind === "none" ? null : prefs.smoothing;
}
