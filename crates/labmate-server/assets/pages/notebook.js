// The lab notebook as the server renders it: what precedes the entries
// (the results table), then each entry as a card with its text as HTML
// the server has sanitised, the values `notebook check` disputes in it,
// and the review items still open. Entries are filtered by kind, author
// and run (kept in the URL), and a new one can be written here as the
// person at the dashboard.

import { h, fill, on, clear, badge, setTrustedHtml, fmtTime, runLink } from "../dom.js";
import { get, post, url } from "../api.js";

const KINDS = ["hypothesis", "observation", "result", "decision", "bug"];

export async function render(root, _params, query) {
  document.title = "labmate · notebook";
  const filter = { kind: query.get("kind") || "", author: query.get("author") || "", run: query.get("run") || "" };

  const kindSelect = h("select", { "aria-label": "kind" }, h("option", { value: "" }, "any kind"), KINDS.map((k) => h("option", { value: k }, k)));
  kindSelect.value = filter.kind;
  const authorInput = h("input", { type: "search", placeholder: "author", "aria-label": "author", spellcheck: "false" });
  authorInput.value = filter.author;
  const runInput = h("input", { type: "search", placeholder: "run (id, prefix or name)", "aria-label": "run", spellcheck: "false" });
  runInput.value = filter.run;
  const apply = () => {
    filter.kind = kindSelect.value;
    filter.author = authorInput.value.trim();
    filter.run = runInput.value.trim();
    load();
  };
  on(kindSelect, "change", apply);
  for (const input of [authorInput, runInput]) {
    on(input, "keydown", (e) => {
      if (e.key === "Enter") apply();
    });
    // The search field's clear button.
    on(input, "search", apply);
  }

  const pathLine = h("p", { class: "muted small" });
  const itemsBox = h("div");
  const checkBox = h("div");
  const filterError = h("pre", { class: "query-error", hidden: true });
  const head = h("article", { class: "notebook notebook-head" });
  const summary = h("p", { class: "muted" });
  const entriesBox = h("div", { class: "entries" });
  const problemsBox = h("div");
  fill(
    root,
    h("h1", null, "Notebook"),
    pathLine,
    itemsBox,
    checkBox,
    head,
    h("div", { class: "query notebook-filters" }, kindSelect, authorInput, runInput),
    filterError,
    summary,
    entriesBox,
    problemsBox,
    writeBox(() => load()),
  );

  async function load() {
    history.replaceState(null, "", url(location.pathname, filter));
    let data;
    try {
      data = await get(url("/api/notebook", filter), { quiet: true });
    } catch (e) {
      // A run the filter names that does not exist is the filter's fault.
      if (e.status === 400 || e.status === 404) {
        filterError.textContent = e.message;
        filterError.hidden = false;
        return;
      }
      throw e;
    }
    filterError.hidden = true;
    pathLine.textContent = data.path ? `${data.path}` : "";
    drawItems(itemsBox, data.open_items || []);
    drawCheck(checkBox, data.check);
    // The one place HTML from the server is inserted as HTML: its own
    // rendering of the notebook, sanitised there.
    setTrustedHtml(head, typeof data.head_html === "string" ? data.head_html : "");
    const entries = Array.isArray(data.entries) ? data.entries : [];
    const filtered = filter.kind || filter.author || filter.run;
    summary.textContent = entries.length === 0 ? (filtered ? "No entry matches." : "No entry yet: write one below, or with `labmate note`.") : `${entries.length} entr${entries.length === 1 ? "y" : "ies"}${filtered ? " matching" : ""}`;
    clear(entriesBox);
    for (const e of entries) entriesBox.appendChild(entryCard(e));
    const problems = Array.isArray(data.problems) ? data.problems : [];
    fill(problemsBox, problems.length ? h("section", { class: "card" }, h("h2", null, "Problems reading the notebook"), h("ul", null, problems.map((p) => h("li", { class: "mono" }, typeof p === "string" ? p : JSON.stringify(p))))) : null);
  }

  await load();
}

// Review items still open, at the top: someone asked a human to look.
function drawItems(box, items) {
  const open = items.filter((i) => !i.state || i.state === "pending" || i.state === "disputed");
  if (open.length === 0) return fill(box);
  fill(
    box,
    h(
      "section",
      { class: "card open-items" },
      h("div", { class: "row" }, h("h2", null, `Open review items (${open.length})`), h("span", { class: "spacer" }), h("a", { href: "/review" }, "answer them on the review page →")),
      h(
        "ul",
        null,
        open.map((i) =>
          h(
            "li",
            null,
            badge(i.state || "pending"),
            " ",
            h("a", { href: "/review", class: "mono" }, i.id),
            " ",
            h("span", { class: "muted" }, `from ${i.author || "?"}`),
            i.run ? [" · ", runLink(i.run)] : null,
            i.entry ? [" · ", h("a", { href: `#${i.entry}`, class: "mono" }, i.entry)] : null,
            ": ",
            i.note || "",
          ),
        ),
      ),
    ),
  );
}

function drawCheck(box, check) {
  if (!check) return fill(box);
  const mismatches = Array.isArray(check.mismatches) ? check.mismatches : [];
  const standing = mismatches.filter((m) => !m.amended_by);
  const counts = `${check.references ?? 0} live reference${check.references === 1 ? "" : "s"}, ${check.claims ?? 0} claim${check.claims === 1 ? "" : "s"}`;
  const outside = mismatches.filter((m) => !m.entry);
  const problems = Array.isArray(check.problems) ? check.problems : [];
  fill(
    box,
    h(
      "p",
      { class: standing.length ? "check bad" : "check good" },
      `notebook check: ${counts}; `,
      mismatches.length === 0 ? "every cited value matches the registry" : `${mismatches.length} mismatch${mismatches.length === 1 ? "" : "es"}${standing.length < mismatches.length ? ` (${mismatches.length - standing.length} corrected by a later entry)` : ""}`,
    ),
    outside.length ? mismatchList(outside) : null,
    problems.length ? h("ul", { class: "small" }, problems.map((p) => h("li", { class: "mono" }, typeof p === "string" ? p : JSON.stringify(p)))) : null,
  );
}

function entryCard(e) {
  const body = h("div", { class: "entry-body notebook" });
  setTrustedHtml(body, typeof e.html === "string" ? e.html : "");
  const mismatches = Array.isArray(e.mismatches) ? e.mismatches : [];
  const runs = Array.isArray(e.runs) ? e.runs : [];
  const amendedBy = Array.isArray(e.amended_by) ? e.amended_by : [];
  return h(
    "section",
    { class: `card entry kind-${KINDS.includes(e.kind) ? e.kind : "other"}`, id: e.id || null, "data-id": e.id || null },
    h(
      "div",
      { class: "entry-head" },
      h("span", { class: "muted", title: e.time || null }, fmtTime(e.time)),
      " · ",
      h("b", { class: "entry-kind" }, e.kind || "?"),
      " · ",
      h("span", null, e.author || "?"),
      " · ",
      h("a", { href: `#${e.id}`, class: "mono muted" }, e.id || ""),
      runs.length ? h("span", { class: "entry-runs" }, " · ", runs.map((r, i) => [i ? ", " : null, runLink(r)])) : null,
      e.amends ? h("span", { class: "muted" }, " · amends ", h("a", { href: `#${e.amends}`, class: "mono" }, e.amends)) : null,
      amendedBy.length ? h("span", { class: "amended" }, " · amended by ", amendedBy.map((a, i) => [i ? ", " : null, h("a", { href: `#${a}`, class: "mono" }, a)])) : null,
      e.status ? [" ", badge(`bug ${e.status}`, e.reproduced ? "its reproducer failed at least once" : "its reproducer never failed")] : null,
    ),
    body,
    Array.isArray(e.repro) && e.repro.length ? h("div", { class: "small" }, "reproducer ", h("code", null, e.repro.join(" ")), bugHistory(e.history)) : null,
    mismatches.length ? mismatchList(mismatches) : null,
  );
}

function bugHistory(history) {
  if (!Array.isArray(history) || history.length === 0) return null;
  return h("ul", { class: "small" }, history.map((r) => h("li", null, h("span", { class: "muted" }, fmtTime(r.time)), " ", r.passed ? "passed" : `failed${r.exit_code !== null && r.exit_code !== undefined ? ` (exit code ${r.exit_code})` : ""}`, r.commit ? h("span", { class: "mono muted" }, ` at ${String(r.commit).slice(0, 10)}`) : null)));
}

// Claimed against real, as `notebook check` reports them.
function mismatchList(list) {
  return h(
    "ul",
    { class: "mismatches" },
    list.map((m) =>
      h(
        "li",
        { class: m.amended_by ? "amended" : null },
        h("span", { class: "mono muted" }, `line ${m.line}`),
        " ",
        m.what === "reference" ? "reference " : "claim ",
        h("code", null, m.text || ""),
        m.run ? h("span", { class: "muted" }, ` (${m.run}${m.metric ? ` ${m.metric}` : ""})`) : null,
        ": the notebook says ",
        h("b", { class: "claimed" }, m.claimed ?? "?"),
        ", the registry says ",
        h("b", { class: "real" }, m.real ?? "?"),
        m.amended_by ? h("span", { class: "muted" }, " — corrected by ", h("a", { href: `#${m.amended_by}`, class: "mono" }, m.amended_by)) : null,
      ),
    ),
  );
}

// A new entry, written as the person at the dashboard; the server
// refuses (403) when it was not told who that is, and the message says so.
function writeBox(onWritten) {
  const text = h("textarea", { rows: "4", placeholder: "A new entry, in markdown. Live values: {{RUN.metrics.loss.min}}", "aria-label": "new entry" });
  const kind = h("select", { "aria-label": "kind of the new entry" }, KINDS.filter((k) => k !== "bug").map((k) => h("option", { value: k }, k)));
  kind.value = "observation";
  const runs = h("input", { type: "text", placeholder: "runs it concerns (comma-separated)", "aria-label": "runs of the new entry", spellcheck: "false" });
  const write = h("button", { type: "button", class: "primary" }, "Write entry");
  const result = h("div", { class: "result", role: "status" });
  on(write, "click", async () => {
    const body = text.value.trim();
    if (!body) {
      result.className = "result error";
      result.textContent = "the entry is empty";
      return;
    }
    write.disabled = true;
    result.className = "result";
    result.textContent = "writing…";
    try {
      const runList = runs.value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const answer = await post("/api/notes", { text: body, kind: kind.value, runs: runList }, { quiet: true });
      result.className = "result ok";
      const warnings = Array.isArray(answer.warnings) ? answer.warnings : [];
      result.textContent = `written as ${answer.id} by ${answer.author}${answer.review_item ? `; review item ${answer.review_item} opened` : ""}${warnings.length ? ` (${warnings.join("; ")})` : ""}`;
      text.value = "";
      runs.value = "";
      onWritten();
    } catch (e) {
      result.className = "result error";
      result.textContent = e.message;
    } finally {
      write.disabled = false;
    }
  });
  return h("section", { class: "card write" }, h("h2", null, "Write an entry"), text, h("div", { class: "row" }, kind, runs, write), result);
}
