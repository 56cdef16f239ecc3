// The dashboard: the server answers every page's path with the same shell
// (index.html), and this picks the page from location.pathname. Links are
// plain links: each page is a fresh load, so a page owns its state and its
// stream and nothing leaks from one page to the next.

import { h, clear } from "./dom.js";
import { showError, openStream } from "./api.js";
import { drawNav, refreshReviewCount, followReviewCount } from "./nav.js";
import * as runs from "./pages/runs.js";
import * as run from "./pages/run.js";
import * as compare from "./pages/compare.js";
import * as notebook from "./pages/notebook.js";
import * as review from "./pages/review.js";

const ROUTES = [
  [/^\/$/, runs, "runs"],
  [/^\/run\/([^/]+)\/?$/, run, "runs"],
  [/^\/compare\/?$/, compare, "compare"],
  [/^\/notebook\/?$/, notebook, "notebook"],
  [/^\/review\/?$/, review, "review"],
];

// The token in the URL printed at start has become a cookie by the time
// this runs; take it out of the address bar so it does not end up in
// bookmarks, history or screenshots.
function dropToken() {
  const u = new URL(location.href);
  if (u.searchParams.has("token")) {
    u.searchParams.delete("token");
    history.replaceState(null, "", u.pathname + (u.search === "?" ? "" : u.search) + u.hash);
  }
}

async function main() {
  dropToken();
  const path = location.pathname;
  const page = document.getElementById("page");
  const route = ROUTES.find(([re]) => re.test(path));
  drawNav(route ? route[2] : null);
  refreshReviewCount();
  followReviewCount();
  clear(page);
  if (!route) {
    document.title = "labmate · not found";
    page.appendChild(h("p", null, "No such page: ", h("code", null, path)));
    return;
  }
  const match = path.match(route[0]);
  try {
    await route[1].render(page, match.slice(1).map(decodeURIComponent), new URLSearchParams(location.search));
  } catch (e) {
    console.error(e);
    if (!e.kind) showError(e);
  }
  // Pages that follow runs opened the stream with their first fetch's
  // cursor; the others follow from now, for the nav's count.
  openStream();
}

main();
