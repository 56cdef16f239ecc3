// The nav bar, with the number of requests and items waiting for a human
// next to "Review".

import { h, clear } from "./dom.js";
import { get, onStream } from "./api.js";

const NAV = [
  ["runs", "/", "Runs"],
  ["compare", "/compare", "Compare"],
  ["notebook", "/notebook", "Notebook"],
  ["review", "/review", "Review"],
];

export function drawNav(active) {
  const nav = document.getElementById("nav");
  clear(nav);
  for (const [name, href, label] of NAV) {
    const a = h("a", { href, "aria-current": name === active ? "page" : null }, label);
    if (name === "review") a.appendChild(h("span", { id: "review-count", class: "count", hidden: true }));
    nav.appendChild(a);
  }
}

// The number of requests and items waiting for a human, next to "Review";
// the review page calls it again after each decision, and every page
// after each status event (an approved launch starts a run, an agent's
// held launch is a new one), at most once a second.
export function followReviewCount() {
  let timer = 0;
  let again = false;
  onStream("status", () => {
    if (timer) {
      again = true;
      return;
    }
    refreshReviewCount();
    timer = setTimeout(function tick() {
      timer = 0;
      if (again) {
        again = false;
        refreshReviewCount();
        timer = setTimeout(tick, 1000);
      }
    }, 1000);
  });
  onStream("reset", () => refreshReviewCount());
}

export async function refreshReviewCount() {
  const el = document.getElementById("review-count");
  if (!el) return;
  try {
    const data = await get("/api/reviews", { quiet: true });
    const n = pendingCount(data);
    el.textContent = String(n);
    el.hidden = n === 0;
  } catch {
    el.hidden = true;
  }
}

export function pendingCount(data) {
  const requests = (data && (data.pending || data.requests)) || [];
  const items = (data && data.items) || [];
  const open = (x) => !x.state || x.state === "pending" || x.state === "disputed";
  return requests.filter(open).length + items.filter(open).length;
}

