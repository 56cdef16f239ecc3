// labmate's run page beside TensorBoard's and Trackio's own dashboards, on
// the same one-run `loss` series (written by peers_lab.py), as rows of a
// markdown table:
//
//   LABMATE_PLAYWRIGHT=/path/to/node_modules/playwright-core node peers.mjs OUT [TOOL...]
//
// OUT is peers_lab.py's folder (OUT/peers.json, OUT/labmate, OUT/tb,
// OUT/trackio); TOOLs are labmate, tensorboard, tensorboard-slow (the
// Python loader, --load_fast=false) and trackio, all by default. Each
// dashboard is started on a free local port, loaded once cold (that load
// includes whatever the tool still has to read), then 3 times more in fresh
// pages: the median of those 3 is the result. Every time is measured in the
// page from its navigation start, by polling once per animation frame for:
//   labmate      performance.mark "labmate:charts-drawn" (its own mark);
//   TensorBoard  (opened with ?forceSVG=true, its own switch, since its
//                default WebGL chart draws in a worker's offscreen canvas that
//                the page cannot read) a `path` with a non-empty `d` in the
//                loss card's `line-chart .series-view svg`;
//   Trackio      a canvas of vega-embed in the plot with any painted pixel
//                (vega paints axes and marks in one pass, so the first
//                painted frame holds the line).
// The points each chart drew come from the data its page fetched (labmate:
// /api/runs/ID/metrics; TensorBoard: timeSeries; Trackio: get_logs_batch,
// then binned in the page as Trackio's dataProcessing.js does); the spike
// survives when that data holds the 10x value of step N/2. A draw or a start
// that takes over 3 minutes is reported as "> 3 min". CHROMIUM names the
// browser (default /usr/bin/chromium), PEERS_VENV the venv with tensorboard
// and trackio (default /tmp/peers-venv), LABMATE_BIN the labmate binary
// (default target/release/labmate of this repository).

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const driver = process.env.LABMATE_PLAYWRIGHT;
const { chromium } = await import(driver ? pathToFileURL(join(driver, "index.mjs")).href : "playwright-core");

const [out, ...picked] = process.argv.slice(2);
if (!out) {
  console.error("usage: node peers.mjs OUT [labmate|tensorboard|tensorboard-slow|trackio ...]");
  process.exit(2);
}
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const venv = process.env.PEERS_VENV || "/tmp/peers-venv";
const labmateBin = process.env.LABMATE_BIN || join(repo, "target/release/labmate");
const lab = JSON.parse(readFileSync(join(out, "peers.json"), "utf8"));
const LOADS = 3;
const LIMIT_MS = 180000;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// Starts COMMAND and resolves with the first match of PATTERN in its
// output (the dashboard's URL), or fails after the limit.
const children = [];
function start(command, args, options, pattern) {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const ready = new Promise((ok, fail) => {
    let text = "";
    const timer = setTimeout(() => fail(new Error("> 3 min to start")), LIMIT_MS);
    const look = (chunk) => {
      text += chunk;
      const m = text.replace(/\x1b\[[0-9;]*m/g, "").match(pattern);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    };
    child.stdout.on("data", look);
    child.stderr.on("data", look);
    child.on("exit", (code) => fail(new Error(`exited with ${code} before it served: ${text.slice(-400)}`)));
  });
  return { child, ready };
}

// TensorBoard keeps float32 values, hence the tolerance.
const isSpike = (v) => Math.abs(Number(v) - lab.spike_value) <= 1e-6 * lab.spike_value;

// Trackio's dataProcessing.js downsample(): 100 bins of a power-of-two
// width over the x range, the min and the max row of each, for 500 rows or
// more. Returns the rows it keeps.
function trackioBins(rows) {
  if (rows.length < 500) return rows;
  const xs = rows.map((r) => r.step);
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  if (lo === hi) return rows;
  const width = 2 ** Math.ceil(Math.log2((hi - lo) / 100));
  const bins = new Map();
  for (const r of rows) {
    const i = Math.min(Math.floor((r.step - lo) / width), 99);
    const b = bins.get(i);
    if (!b) bins.set(i, { min: r, max: r });
    else {
      if (r.loss < b.min.loss) b.min = r;
      if (r.loss > b.max.loss) b.max = r;
    }
  }
  return [...bins.values()].flatMap((b) => (b.min === b.max ? [b.min] : [b.min, b.max]));
}

const tools = {
  labmate: async () => {
    const s = start(labmateBin, ["serve", "--port", "0"], { cwd: join(out, "labmate") }, /(http:\/\/\S+\?token=\S+)/);
    const url = await s.ready;
    return {
      first: url,
      page: `${new URL(url).origin}/run/${encodeURIComponent(lab.labmate_run)}`,
      drawn: () => {
        const e = performance.getEntriesByName("labmate:charts-drawn")[0];
        return e ? e.startTime : false;
      },
      data: async (response) => {
        if (!/\/api\/runs\/[^/]+\/metrics/.test(response.url())) return null;
        const y = ((await response.json()).series || {}).loss?.y || [];
        return { points: y.length, spike: y.some(isSpike) };
      },
    };
  },
  tensorboard: (fast = true) => async () => {
    const port = await freePort();
    const args = ["--logdir", join(out, "tb"), "--host", "127.0.0.1", "--port", String(port), `--load_fast=${fast}`];
    const s = start(join(venv, "bin/tensorboard"), args, {}, /TensorBoard \S+ at (http:\/\/\S+)/);
    const url = await s.ready;
    return {
      page: `${url}?forceSVG=true`,
      drawn: () =>
        [...document.querySelectorAll("scalar-card line-chart .series-view svg path")].some((p) => (p.getAttribute("d") || "").length > 0)
          ? performance.now()
          : false,
      data: async (response) => {
        if (!response.url().includes("/timeseries/timeSeries")) return null;
        const answer = await response.json();
        const series = answer.flatMap((t) => (t.tag === "loss" ? Object.values(t.runToSeries || {}) : []));
        const points = series.flat();
        return { points: points.length, spike: points.some((p) => isSpike(p.value)) };
      },
    };
  },
  trackio: async () => {
    const port = await freePort();
    const code = `import trackio; trackio.show(project="bench", open_browser=False, server_port=${port}, block_thread=True)`;
    const env = { ...process.env, TRACKIO_DIR: join(out, "trackio") };
    const s = start(join(venv, "bin/python"), ["-c", code], { env }, /Trackio UI launched at: (http:\/\/\S+)/);
    const url = await s.ready;
    return {
      page: url,
      drawn: () => {
        for (const c of document.querySelectorAll(".vega-embed canvas")) {
          if (!c.width || !c.height) continue;
          const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return performance.now();
        }
        return false;
      },
      data: async (response) => {
        if (!response.url().includes("/api/get_logs_batch")) return null;
        const rows = ((await response.json()).data || []).flatMap((r) => r.logs || []).filter((r) => typeof r.loss === "number");
        const drawn = trackioBins(rows);
        return { points: drawn.length, received: rows.length, spike: drawn.some((r) => isSpike(r.loss)) };
      },
    };
  },
};
tools["tensorboard-slow"] = tools.tensorboard(false);
tools.tensorboard = tools.tensorboard(true);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});

// One fresh load: ms from navigation start to drawn, and what the page's
// first data answer held.
async function load(context, dash) {
  const page = await context.newPage();
  let seen = null;
  const reads = [];
  page.on("response", (r) => {
    reads.push(
      dash
        .data(r)
        .then((d) => {
          if (d && !seen) seen = d;
        })
        .catch(() => {}),
    );
  });
  try {
    await page.goto(dash.page, { timeout: LIMIT_MS });
    const handle = await page.waitForFunction(dash.drawn, null, { polling: "raf", timeout: LIMIT_MS });
    const ms = await handle.jsonValue();
    await Promise.all(reads);
    return { ms, seen };
  } finally {
    await page.close();
  }
}

const fmt = (v) => `${Math.round(v).toLocaleString("en-US")} ms`;
const count = (n) => n.toLocaleString("en-US");
const rows = [];
for (const name of picked.length ? picked : ["labmate", "tensorboard", "tensorboard-slow", "trackio"]) {
  if (!tools[name]) {
    console.error(`peers.mjs: unknown tool ${name}`);
    process.exit(2);
  }
  let dash = null;
  const started = performance.now();
  try {
    dash = await tools[name]();
    const startMs = performance.now() - started;
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    if (dash.first) await (await context.newPage()).goto(dash.first);
    const cold = await load(context, dash);
    const times = [];
    let seen = cold.seen;
    for (let i = 0; i < LOADS; i++) {
      const r = await load(context, dash);
      times.push(r.ms);
      seen = r.seen || seen;
    }
    await context.close();
    times.sort((a, b) => a - b);
    const pts = !seen ? "?" : seen.received !== undefined ? `${count(seen.points)} (of ${count(seen.received)} fetched)` : count(seen.points);
    const spike = !seen ? "not checked" : seen.spike ? "kept" : "lost";
    rows.push(`| ${name} | ${count(lab.n)} | ${fmt(startMs)} | ${fmt(cold.ms)} | ${fmt(times[1])} (${times.map((t) => Math.round(t)).join(", ")}) | ${pts} | ${spike} |`);
  } catch (e) {
    const why = String(e && e.message ? e.message : e).split("\n")[0];
    rows.push(`| ${name} | ${count(lab.n)} | ${/Timeout|> 3 min/.test(why) ? "> 3 min" : why} | | | | |`);
  } finally {
    for (const child of children.splice(0)) child.kill("SIGTERM");
  }
  console.log(rows[rows.length - 1]);
}
await browser.close();
