// Review: launches waiting for a human's yes, shown in full (argv,
// config, code state, reasons, budget use), and review items an agent
// wants a human to look at. Each is answered in place with a note; the
// decision goes through the server, which names the person at the
// dashboard as its author and refuses when it cannot tell who that is.

import { h, fill, on, badge, fmtTime, fmtArgv, fmtValue, kvTable, runLink } from "../dom.js";
import { get, post } from "../api.js";
import { refreshReviewCount } from "../nav.js";

export async function render(root) {
  document.title = "labmate · review";
  const who = h("p", { class: "review-who" });
  const requestsBox = h("div");
  const itemsBox = h("div");
  fill(root, h("h1", null, "Review"), who, h("h2", null, "Approval requests"), requestsBox, h("h2", null, "Review items"), itemsBox);
  const data = await get("/api/reviews");
  // Decisions are the configured person's; a server without one only shows.
  user = typeof data.user === "string" && data.user ? data.user : null;
  if (user) {
    who.className = "review-who";
    fill(who, "deciding as ", h("b", null, user));
  } else {
    who.className = "review-who readonly";
    who.textContent = READ_ONLY;
  }
  const requests = data.requests || data.pending || [];
  const items = data.items || [];
  if (requests.length === 0) requestsBox.appendChild(h("p", { class: "muted" }, "No launch is waiting for approval."));
  for (const r of requests) requestsBox.appendChild(card(r, drawRequest));
  if (items.length === 0) itemsBox.appendChild(h("p", { class: "muted" }, "No review item is open."));
  for (const it of items) itemsBox.appendChild(card(it, drawItem));
}

// The person deciding, as the server was told; null: read-only.
let user = null;
const READ_ONLY = "read-only: start the server with --user NAME (or set user in [serve] of labmate.toml) to decide here";

function when(t) {
  return typeof t === "number" ? fmtTime(t) : fmtTime(t);
}

function card(x, draw) {
  const el = h("div", { class: "request", "data-id": x.id });
  draw(el, x);
  return el;
}

function drawRequest(card, r) {
  const launch = r.request || r.launch || {};
  const reasons = r.reason || r.reasons || [];
  const state = r.state || "pending";
  const config = launch.config;
  const rows = [
    ["name", launch.name],
    ["working directory", launch.cwd],
    ["tags", Array.isArray(launch.tags) && launch.tags.length ? launch.tags.join(", ") : null],
    ["queued", launch.queue === undefined ? null : launch.queue ? "yes (waits for a slot)" : "no"],
    ["rules", Array.isArray(launch.rules) && launch.rules.length ? launch.rules.map(fmtValue).join("\n") : null],
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  const code = launch.code || r.code || launch.git || null;
  const gates = r.gates || [];
  fill(
    card,
    h("div", { class: "row" }, h("b", { class: "mono" }, r.id), badge(state), h("span", { class: "muted" }, `asked by ${r.author || "?"}`, r.time !== undefined ? ` · ${when(r.time)}` : "")),
    reasons.length ? h("div", { class: "reasons" }, "needs approval: ", reasons.join("; ")) : null,
    h("h3", null, "command"),
    h("div", { class: "command mono" }, fmtArgv(launch.command || launch.argv || [])),
    rows.length ? h("table", { class: "kv" }, h("tbody", null, rows.map(([k, v]) => h("tr", null, h("th", null, k), h("td", null, String(v)))))) : null,
    h("h3", null, "config"),
    Array.isArray(config) ? (config.length ? h("div", { class: "mono" }, config.map((c) => h("div", null, fmtValue(c)))) : h("p", { class: "muted" }, "none given")) : kvTable(config),
    code ? [h("h3", null, "code"), typeof code === "object" ? kvTable(code) : h("div", { class: "mono" }, fmtValue(code))] : null,
    gates.length ? [h("h3", null, "gates"), h("div", null, gates.map((g) => h("div", { class: "mono" }, fmtValue(g.name ?? g.command ?? g), " ", g.passed === false ? badge("failed") : g.passed === true ? badge("passed") : "")))] : null,
    r.budget ? [h("h3", null, "budget"), typeof r.budget === "object" ? kvTable(r.budget) : h("div", null, fmtValue(r.budget))] : null,
    h("details", null, h("summary", { class: "muted small" }, "the request as stored"), h("pre", { class: "mono small" }, JSON.stringify(r, null, 2))),
    decisionOf(r),
    state === "pending" ? decide(card, r, "Approve", "Reject", drawRequest) : null,
  );
}

function drawItem(card, it) {
  const state = it.state || "pending";
  fill(
    card,
    h("div", { class: "row" }, h("b", { class: "mono" }, it.id), badge(state), h("span", { class: "muted" }, `from ${it.author || "?"}`, it.time !== undefined ? ` · ${when(it.time)}` : "")),
    it.run ? h("div", null, "run ", runLink(it.run)) : null,
    it.entry ? h("div", null, "notebook entry ", h("code", null, it.entry)) : null,
    h("p", { class: "wrap" }, it.note || ""),
    decisionOf(it),
    state === "pending" ? decide(card, it, "Accept", "Dispute", drawItem) : state === "disputed" ? decide(card, it, "Accept", null, drawItem) : null,
  );
}

// The last decision: the answer to a decision carries it, an item as
// listed carries its history.
function decisionOf(x) {
  const d = x.decision || (Array.isArray(x.decisions) && x.decisions.length ? x.decisions[x.decisions.length - 1] : null);
  if (!d) return null;
  const bad = d.decision === "rejected" || d.decision === "disputed";
  return h(
    "div",
    { class: `result decided ${bad ? "error" : "ok"}` },
    `${d.decision || x.state || "decided"} by ${d.by || "?"}`,
    d.time !== undefined ? h("span", { class: "muted" }, ` · ${when(d.time)}`) : null,
    d.launched ? [", launched run ", runLink(d.launched)] : null,
    d.note ? h("span", { class: "muted" }, ` — ${d.note}`) : null,
  );
}

// The note box and the buttons; the answer ({decision, request, item})
// redraws the card, an error shows under the buttons. Without a user the
// buttons are off and say why.
function decide(card, x, yes, no, redraw) {
  const note = h("textarea", { placeholder: "note (why)", "aria-label": "note", rows: "2" });
  const approve = h("button", { type: "button", class: "primary" }, yes);
  const reject = no ? h("button", { type: "button" }, no) : null;
  const result = h("div", { class: "result", role: "status" });
  const buttons = [approve, reject].filter(Boolean);
  if (!user) {
    for (const b of buttons) {
      b.disabled = true;
      b.title = READ_ONLY;
    }
    note.disabled = true;
  }
  const send = async (action) => {
    for (const b of buttons) b.disabled = true;
    result.className = "result";
    result.textContent = "sending…";
    try {
      const answer = await post(`/api/reviews/${encodeURIComponent(x.id)}/${action}`, { note: note.value.trim() }, { quiet: true });
      const decision = answer && answer.decision ? answer.decision : null;
      const now = (answer && (answer.request || answer.item)) || {};
      const state = (decision && decision.decision) || now.state || (action === "approve" ? (x.launch ? "approved" : "accepted") : x.launch ? "rejected" : "disputed");
      redraw(card, { ...x, ...(typeof now === "object" ? now : {}), state, decision });
      const notices = answer && Array.isArray(answer.notices) ? answer.notices : [];
      if (notices.length) card.appendChild(h("ul", { class: "small muted" }, notices.map((n) => h("li", null, typeof n === "string" ? n : JSON.stringify(n)))));
      refreshReviewCount();
    } catch (e) {
      result.className = "result error";
      result.textContent = e.message;
      for (const b of buttons) b.disabled = false;
    }
  };
  on(approve, "click", () => send("approve"));
  if (reject) on(reject, "click", () => send("reject"));
  return h("div", null, h("div", { class: "decide" }, note, buttons), result);
}
