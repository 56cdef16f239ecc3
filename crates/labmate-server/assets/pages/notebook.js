// The lab notebook as the server renders it: LABNOTEBOOK.md as HTML the
// server has sanitised, the entries, and what `notebook check` found.

import { h, fill, setTrustedHtml, fmtTime, fmtValue, runLink } from "../dom.js";
import { get } from "../api.js";

export async function render(root) {
  document.title = "labmate · notebook";
  let data;
  try {
    data = await get("/api/notebook", { quiet: true });
  } catch (e) {
    if (e.status === 404) {
      fill(root, h("h1", null, "Notebook"), h("p", { class: "muted" }, "The notebook is not available here yet: read it with ", h("code", null, "labmate notebook show"), "."));
      return;
    }
    throw e;
  }
  const body = h("article", { class: "notebook" });
  // The one place HTML from the server is inserted as HTML: it is the
  // server's own rendering of the notebook, sanitised there.
  setTrustedHtml(body, typeof data.html === "string" ? data.html : "");
  const entries = Array.isArray(data.entries) ? data.entries : [];
  const check = data.check || null;
  const mismatches = check && Array.isArray(check.mismatches) ? check.mismatches : [];
  fill(
    root,
    h("h1", null, "Notebook"),
    check ? h("p", { class: mismatches.length ? "reason bad" : "muted" }, mismatches.length ? `notebook check: ${mismatches.length} mismatch${mismatches.length === 1 ? "" : "es"}` : "notebook check: every cited value matches") : null,
    mismatches.length ? h("ul", null, mismatches.map((m) => h("li", { class: "mono" }, typeof m === "string" ? m : fmtValue(m)))) : null,
    body,
    entries.length
      ? h(
          "section",
          { class: "card" },
          h("h2", null, `Entries (${entries.length})`),
          h(
            "table",
            { class: "data" },
            h(
              "tbody",
              null,
              entries.map((e) => h("tr", null, h("td", { class: "mono muted" }, e.id || ""), h("td", null, e.kind || ""), h("td", null, e.author || ""), h("td", null, e.run ? runLink(e.run) : ""), h("td", { class: "muted" }, e.time !== undefined ? fmtTime(e.time) : ""), h("td", { class: "wrap" }, e.text || e.title || e.note || ""))),
            ),
          ),
        )
      : null,
  );
}
