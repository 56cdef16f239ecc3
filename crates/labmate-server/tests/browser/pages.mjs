// Every dashboard page in headless Chromium, against a real `labmate serve`
// over a lab the caller made, checked as a person would use it:
//
//   LABMATE_PLAYWRIGHT=/path/to/node_modules/playwright-core node pages.mjs SPEC.json
//
// SPEC.json: {"url": "http://127.0.0.1:PORT/?token=T", "shots": "/abs/dir",
//   "runs": {"xss", "live", "a", "b"}, "request": "a-...", "go_file": "/abs/path",
//   "live_value": 0.125, "readonly_url": "http://127.0.0.1:PORT2/?token=T2"}
// (make-lab.sh beside this file writes one.) `runs.xss` carries markup in its
// name, tag, config, a metric key, an alert and its output; `runs.live` is
// running and logs one more point, `loss` = live_value, once go_file exists;
// `request` is a held launch; readonly_url is a server on the same lab
// without --user.
//
// Prints `ok CHECK` per check that holds and `FAIL CHECK: why` per one that
// does not; exits 1 when any failed. Throughout, it fails on an injected
// script running, a dialog, a page error, a Content-Security-Policy
// violation or a request to another origin. Screenshots go to spec.shots.
// CHROMIUM names the browser (default /usr/bin/chromium); none is downloaded.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const driver = process.env.LABMATE_PLAYWRIGHT;
const { chromium } = await import(driver ? pathToFileURL(join(driver, "index.mjs")).href : "playwright-core");

if (process.argv.length < 3) {
  console.error("usage: node pages.mjs SPEC.json");
  process.exit(2);
}
const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
for (const key of ["url", "shots", "runs", "request", "go_file", "live_value", "readonly_url"]) {
  if (spec[key] === undefined) {
    console.error(`pages.mjs: ${process.argv[2]} has no "${key}"`);
    process.exit(2);
  }
}
mkdirSync(spec.shots, { recursive: true });

// Waiting for what a page shows, never for a time: this bounds a page that
// never shows it, so that a broken page fails instead of hanging.
const WAIT = { timeout: 20000 };
const failed = [];
// Problems seen by the watchers between checks, charged to the next check.
let seen = [];

async function check(name, fn) {
  let why = null;
  try {
    await fn();
  } catch (e) {
    why = String(e && e.message ? e.message : e).split("\n")[0];
  }
  if (!why && seen.length) why = seen.join("; ");
  seen = [];
  if (why) {
    failed.push(name);
    console.log(`FAIL ${name}: ${why}`);
  } else {
    console.log(`ok ${name}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});

// A browser context for one server: off-origin requests are refused and
// reported, and every page is watched for errors, dialogs and CSP reports.
async function open(startUrl) {
  const origin = new URL(startUrl).origin;
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (u.origin !== origin && u.protocol !== "data:") {
      seen.push(`request to another origin: ${u.href}`);
      return route.abort();
    }
    return route.continue();
  });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => seen.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    const text = m.text();
    if (m.type() === "error" && (text.startsWith("CSP violation") || text.includes("Content Security Policy"))) seen.push(text);
  });
  page.on("dialog", (d) => {
    seen.push(`a dialog opened: ${d.type()} ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  return { context, page, origin };
}

// A payload that became markup would have run (window.__xss) or left an
// element with a handler attribute or a second script behind.
async function noInjection(page, where) {
  const found = await page.evaluate(() => ({
    xss: window.__xss,
    handlers: [...document.querySelectorAll("*")].filter((el) => [...el.attributes].some((a) => a.name.startsWith("on"))).length,
    scripts: document.scripts.length,
  }));
  assert(found.xss === undefined, `an injected script ran on ${where} (window.__xss = ${found.xss})`);
  assert(found.handlers === 0, `${found.handlers} element(s) with an event handler attribute on ${where}`);
  assert(found.scripts === 1, `${found.scripts} script elements on ${where}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(spec.shots, `${name}.png`), fullPage: true });
}

async function visible(page, text, where) {
  await page
    .getByText(text, { exact: false })
    .first()
    .waitFor({ state: "visible", ...WAIT })
    .catch(() => {
      throw new Error(`${JSON.stringify(text)} is not shown as text on ${where}`);
    });
}

async function rowOrder(page) {
  return page.$$eval("table.runs tbody tr[data-id]", (rows) => rows.map((r) => r.getAttribute("data-id")));
}

async function reviewCount(page) {
  return page.$eval("#review-count", (el) => (el.hidden ? 0 : Number(el.textContent) || 0));
}

const { runs } = spec;
const PAYLOAD = '<img src=x onerror="window.__xss=';
const main = await open(spec.url);
const page = main.page;
const origin = main.origin;
const run = (id) => `${origin}/run/${encodeURIComponent(id)}`;

await check("the token URL sets the cookie and leaves the address bar", async () => {
  await page.goto(spec.url);
  await page.waitForSelector("table.runs tbody tr[data-id]", WAIT);
  assert(!page.url().includes("token="), `the address still holds the token: ${page.url()}`);
});

await check("runs page: the table lists a, b, live and xss", async () => {
  const ids = await rowOrder(page);
  for (const [name, id] of Object.entries(runs)) assert(ids.includes(id), `run ${name} (${id}) is not in the table`);
  await visible(page, `${PAYLOAD}1">`, "the runs page");
  await visible(page, "<script>window.__xss=2</script>", "the runs page");
  await shot(page, "runs");
  await noInjection(page, "the runs page");
});

await check("runs page: a bad where shows its message with a ^ under the box", async () => {
  await page.fill("input.where", "config.lr >< 3");
  await page.press("input.where", "Enter");
  const pre = page.locator("pre.query-error");
  await pre.waitFor({ state: "visible", ...WAIT });
  const text = await pre.textContent();
  assert(text.includes("^"), `the error has no ^ line: ${JSON.stringify(text)}`);
  await shot(page, "runs-where-error");
});

await check("runs page: clicking a column header sorts by it", async () => {
  await page.fill("input.where", "");
  await page.press("input.where", "Enter");
  await page.locator("pre.query-error").waitFor({ state: "hidden", ...WAIT });
  const before = await rowOrder(page);
  await page.click("table.runs thead th:has-text('name')");
  await page.waitForFunction((b) => [...document.querySelectorAll("table.runs tbody tr[data-id]")].map((r) => r.getAttribute("data-id")).join() !== b, before.join(), WAIT);
  const byName = await rowOrder(page);
  assert(byName.length === before.length, "sorting changed the number of rows");
  assert(new URL(page.url()).searchParams.get("sort") === "name", `the sort is not kept in the URL: ${page.url()}`);
  await page.click("table.runs thead th:has-text('name')");
  await page.waitForFunction((b) => [...document.querySelectorAll("table.runs tbody tr[data-id]")].map((r) => r.getAttribute("data-id")).join() !== b, byName.join(), WAIT);
  const reversed = await rowOrder(page);
  assert(reversed.join() === [...byName].reverse().join(), `a second click does not reverse the order: ${byName} then ${reversed}`);
  await shot(page, "runs-sorted");
});

await check("run page: markup in the name, tag, config, metric key, alert and output shows as text", async () => {
  await page.goto(run(runs.xss));
  await page.waitForSelector(".chart canvas", WAIT);
  await page.waitForSelector("pre.log:not(:empty)", WAIT);
  await visible(page, `${PAYLOAD}1">`, "the xss run's page");
  await visible(page, "<script>window.__xss=2</script>", "the xss run's page");
  await visible(page, `${PAYLOAD}3">`, "the xss run's page");
  await visible(page, `${PAYLOAD}4"> is NaN`, "the xss run's alerts");
  const log = await page.textContent("pre.log");
  assert(log.includes(`${PAYLOAD}1">`), "the output does not show the payload line");
  await shot(page, "run-xss");
  await noInjection(page, "the xss run's page");
});

await check("run page: a live point reaches the chart", async () => {
  await page.goto(run(runs.live));
  const chart = page.locator(".chart:has(.chart-title[title='loss'])");
  await chart.locator("canvas").first().waitFor(WAIT);
  await page.waitForFunction(() => performance.getEntriesByName("labmate:charts-drawn").length > 0, null, WAIT);
  await page.waitForSelector("#live.on", WAIT);
  const before = Number(await chart.getAttribute("data-points"));
  assert(before > 0, `the chart holds no points before the live one (data-points=${before})`);
  writeFileSync(spec.go_file, "go\n");
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.getAttribute("data-points")) > n, [".chart:has(.chart-title[title='loss'])", before], WAIT);
  const legend = await chart.locator(".chart-legend").textContent();
  assert(legend.includes(String(spec.live_value)), `the legend does not show ${spec.live_value}: ${JSON.stringify(legend)}`);
  await shot(page, "run-live");
  await noInjection(page, "the live run's page");
});

await check("run page: a metric defined on a step metric is drawn against it, and its axis says so", async () => {
  await page.goto(run(runs.steps));
  const train = page.locator(".chart:has(.chart-title[title='train/loss'])");
  const val = page.locator(".chart:has(.chart-title[title='val_loss'])");
  await page.waitForSelector(".chart[data-x-axis='train/global_step'] canvas", WAIT);
  await val.locator("canvas").first().waitFor(WAIT);
  const label = ((await train.locator(".chart-xlabel").textContent()) || "").trim();
  assert(label === "train/global_step", `train/loss's x axis says ${JSON.stringify(label)}`);
  const other = ((await val.locator(".chart-xlabel").textContent()) || "").trim();
  assert(other === "step", `val_loss's x axis says ${JSON.stringify(other)}`);
  const points = Number(await train.getAttribute("data-points"));
  assert(points === 30, `train/loss holds ${points} points, not its 30`);
  await shot(page, "run-step-metric");
  await noInjection(page, "the step metric run's page");
});

await check("compare page: verdicts and charts", async () => {
  await page.goto(`${origin}/compare?runs=${encodeURIComponent(runs.a)},${encodeURIComponent(runs.b)}`);
  await page.waitForSelector(".chart canvas", WAIT);
  const verdict = page.locator(".verdict").first();
  await verdict.waitFor({ state: "visible", ...WAIT });
  assert(((await verdict.textContent()) || "").trim().length > 0, "the verdict is empty");
  await shot(page, "compare");
  await noInjection(page, "the compare page");
});

await check("notebook page: entries, with the payload as text", async () => {
  await page.goto(`${origin}/notebook`);
  await page.waitForSelector(".entry", WAIT);
  await visible(page, `The run ${PAYLOAD}1"> went NaN`, "the notebook");
  assert((await page.locator(".entry .ref").count()) > 0, "no live reference is marked in the entries");
  await shot(page, "notebook");
  await noInjection(page, "the notebook");
});

await check("review page: approving a held launch names the decider and the run it launched", async () => {
  await page.goto(`${origin}/review`);
  const card = page.locator(`.request[data-id='${spec.request}']`);
  await card.waitFor(WAIT);
  await page.waitForSelector(".review-who:has-text('deciding as')", WAIT);
  await page.waitForFunction(() => !document.getElementById("review-count").hidden, null, WAIT);
  const before = await reviewCount(page);
  assert(before > 0, "the nav shows no count while a request is pending");
  await shot(page, "review");
  await card.locator("textarea").fill("approved from the browser test");
  await card.locator("button:has-text('Approve')").click();
  await card
    .locator(".decided:has-text('approved')")
    .waitFor(WAIT)
    .catch(async () => {
      throw new Error(`no "approved" on the card; it says ${JSON.stringify(await card.locator(".result").last().textContent())}`);
    });
  const text = await card.locator(".decided").textContent();
  assert(/approved by \S+/.test(text), `the decision does not say who approved: ${JSON.stringify(text)}`);
  assert((await card.locator(".decided a[href^='/run/']").count()) === 1, `the decision does not link the launched run: ${JSON.stringify(text)}`);
  await page.waitForFunction((n) => {
    const el = document.getElementById("review-count");
    return (el.hidden ? 0 : Number(el.textContent)) < n;
  }, before, WAIT);
  await shot(page, "review-approved");
  await noInjection(page, "the review page");
});

const readonly = await open(spec.readonly_url);
await check("review page without --user: read-only, and says how to decide", async () => {
  await readonly.page.goto(spec.readonly_url);
  await readonly.page.waitForSelector("#page h1, table.runs", WAIT);
  await readonly.page.goto(`${readonly.origin}/review`);
  const who = readonly.page.locator(".review-who.readonly");
  await who.waitFor({ state: "visible", ...WAIT });
  const text = await who.textContent();
  assert(text.includes("read-only") && text.includes("--user"), `the message does not say how: ${JSON.stringify(text)}`);
  const enabled = await readonly.page.locator(".decide button:not([disabled])").count();
  assert(enabled === 0, `${enabled} decision button(s) are enabled without a user`);
  await shot(readonly.page, "review-readonly");
  await noInjection(readonly.page, "the read-only review page");
});

await check("notebook page without --user: writing an entry shows the refusal", async () => {
  await readonly.page.goto(`${readonly.origin}/notebook`);
  await readonly.page.waitForSelector(".entry", WAIT);
  await readonly.page.fill(".write textarea", "an entry the server must refuse");
  await readonly.page.click(".write button:has-text('Write entry')");
  const result = readonly.page.locator(".write .result.error");
  await result.waitFor({ state: "visible", ...WAIT });
  const text = await result.textContent();
  assert(text.includes("--user"), `the refusal does not say how to decide: ${JSON.stringify(text)}`);
  await shot(readonly.page, "notebook-readonly");
  await noInjection(readonly.page, "the read-only notebook");
});

await browser.close();
if (failed.length) {
  console.log(`${failed.length} check${failed.length === 1 ? "" : "s"} failed`);
  process.exit(1);
}
