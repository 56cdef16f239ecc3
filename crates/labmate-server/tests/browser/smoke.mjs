// Loads every dashboard page in headless Chromium and checks what a person
// would see; saves a screenshot of each under $SHOTS (default ./shots).
//
//   LABMATE_URL=http://127.0.0.1:PORT/?token=TOKEN CHROMIUM=/usr/bin/chromium \
//     node smoke.mjs RUN_ID OTHER_RUN_ID
//
// Needs playwright-core (npm install playwright-core in a scratch folder;
// LABMATE_PLAYWRIGHT names its folder, as ES modules ignore NODE_PATH); it drives
// the Chromium given and downloads none. Exits 1 when a check fails.

import { mkdirSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const driver = process.env.LABMATE_PLAYWRIGHT || process.env.PLAYWRIGHT;
const { chromium } = await import(driver ? pathToFileURL(join(driver, "index.mjs")).href : "playwright-core");

const start = new URL(process.env.LABMATE_URL || "http://127.0.0.1:8765/");
const origin = start.origin;
const shots = process.env.SHOTS || "shots";
const [runId, otherId] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && m.text().startsWith("CSP")) problems.push(m.text());
});
// Off-machine requests would be a leak: refuse them and count them.
await page.route("**/*", (route) => {
  const u = new URL(route.request().url());
  if (u.origin !== origin && u.protocol !== "data:") {
    problems.push(`request off the machine: ${u.href}`);
    return route.abort();
  }
  return route.continue();
});
await page.addInitScript(() => {
  document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
});

function check(ok, what) {
  if (!ok) {
    console.error(`FAIL ${what}`);
    problems.push(what);
  } else console.log(`ok   ${what}`);
}

async function visit(path, name, wait) {
  await page.goto(path.startsWith("http") ? path : origin + path);
  if (wait) await page.waitForSelector(wait, { timeout: 10000 });
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  // Payloads in names, keys, tags, config and logs set window.__xss when
  // they run; a navigation starts a fresh window, so each page is asked.
  if ((await page.evaluate(() => window.__xss)) !== undefined) problems.push(`an injected script ran on ${name}`);
}

// The token URL sets the cookie, then leaves the address bar.
await visit(start.href, "runs", "table.runs tbody tr");
check(!page.url().includes("token="), "the token is taken out of the address bar");
check((await page.locator("table.runs tbody tr").count()) > 0, "the runs table lists runs");

if (runId) {
  await visit(`/run/${encodeURIComponent(runId)}`, "run", ".chart canvas");
  await page.waitForFunction(() => performance.getEntriesByName("labmate:charts-drawn").length > 0, null, { timeout: 10000 });
  check((await page.locator(".chart canvas").count()) > 0, "the run page draws a chart canvas");
  const mark = await page.evaluate(() => performance.getEntriesByName("labmate:charts-drawn")[0].startTime);
  console.log(`     charts drawn ${Math.round(mark)} ms after navigation start`);
}
if (runId && otherId) {
  await visit(`/compare?runs=${encodeURIComponent(runId)},${encodeURIComponent(otherId)}`, "compare", ".chart canvas");
  check((await page.locator(".verdict").count()) > 0, "compare shows verdicts");
}
await visit("/review", "review", "h1");
await visit("/notebook", "notebook", "h1");

check(problems.length === 0, `no injected script ran, no page error, CSP violation or off-machine request (${problems.join("; ")})`);
await browser.close();
process.exit(problems.length ? 1 : 0);
