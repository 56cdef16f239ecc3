// The dashboard's page-load numbers in headless Chromium, as rows of the
// benchmark table (`| benchmark | result | target |`, no header):
//
//   LABMATE_PLAYWRIGHT=/path/to/node_modules/playwright-core node bench.mjs URL_WITH_TOKEN RUN_ID
//
// RUN_ID is a run with a long `loss` series (1,000,000 points in the
// serve benchmark's lab, which also holds 10,000 runs). Each number is the
// median of 5 fresh page loads, measured by the page itself from its
// navigation start: on the run page until performance.mark
// "labmate:charts-drawn", on the runs page until its first contentful
// paint and until "labmate:runs-drawn" (the table has its rows). It
// reports and asserts nothing about the targets. CHROMIUM names the
// browser (default /usr/bin/chromium).

import { join } from "node:path";
import { pathToFileURL } from "node:url";

const driver = process.env.LABMATE_PLAYWRIGHT;
const { chromium } = await import(driver ? pathToFileURL(join(driver, "index.mjs")).href : "playwright-core");

const [start, runId] = process.argv.slice(2);
if (!start || !runId) {
  console.error("usage: node bench.mjs URL_WITH_TOKEN RUN_ID");
  process.exit(2);
}
const origin = new URL(start).origin;
const LOADS = 5;
// Bounds a page that never draws, so that it fails instead of hanging.
const WAIT = { timeout: 60000 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const problems = [];

// The token URL once, for the cookie; every load after is a new page.
{
  const page = await context.newPage();
  await page.goto(start);
  await page.close();
}

// One fresh load of PATH: the times (ms since its navigation start) of
// the named performance entries, once all of them exist.
async function load(path, names) {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${path}: ${e.message}`));
  await page.goto(origin + path);
  await page.waitForFunction((ns) => ns.every((n) => performance.getEntriesByName(n).length > 0), names, WAIT);
  const times = await page.evaluate((ns) => ns.map((n) => performance.getEntriesByName(n)[0].startTime), names);
  await page.close();
  return times;
}

async function medians(path, names) {
  await load(path, names); // the first load warms the server's index and caches
  const samples = [];
  for (let i = 0; i < LOADS; i++) samples.push(await load(path, names));
  return names.map((_, j) => {
    const xs = samples.map((s) => s[j]).sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)];
  });
}

const ms = (v) => `${Math.round(v)} ms`;
const count = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "?");
try {
  // The sizes, for the labels: what was measured, not what was meant.
  // (The context's request client carries the page's cookie.)
  const json = async (path) => (await context.request.get(origin + path)).json();
  const run = await json(`/api/runs/${encodeURIComponent(runId)}`);
  const sizes = { points: run.metrics && run.metrics.loss ? run.metrics.loss.count : null, runs: (await json("/api/runs?limit=1")).total };
  const [charts] = await medians(`/run/${encodeURIComponent(runId)}`, ["labmate:charts-drawn"]);
  console.log(`| run page of a ${count(sizes.points)}-point \`loss\`: navigation start to \`labmate:charts-drawn\` | ${ms(charts)} (median of ${LOADS}) | < 300 ms |`);
  const [paint, rows] = await medians("/", ["first-contentful-paint", "labmate:runs-drawn"]);
  console.log(`| runs page over ${count(sizes.runs)} runs: first contentful paint | ${ms(paint)} (median of ${LOADS}) | < 500 ms |`);
  console.log(`| runs page over ${count(sizes.runs)} runs: navigation start to the table's rows (\`labmate:runs-drawn\`) | ${ms(rows)} (median of ${LOADS}) | < 500 ms |`);
} catch (e) {
  problems.push(String(e && e.message ? e.message : e).split("\n")[0]);
}
await browser.close();
if (problems.length) {
  for (const p of problems) console.error(`bench.mjs: ${p}`);
  process.exit(1);
}
