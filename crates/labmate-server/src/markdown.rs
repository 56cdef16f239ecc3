//! The notebook's markdown as HTML a page may insert: notebook text is
//! untrusted (anyone who can write the file writes it), so raw HTML in it
//! becomes text, a link may only go to the web, an anchor or a relative
//! path, and an image only to a file beside the notebook (served by
//! `/api/notebook/file`): no request leaves the machine.
//!
//! A rendered live reference (`<!--{{REF}}-->**VALUE**<!--/-->`) becomes
//! `<span class="ref" title="{{REF}}">VALUE</span>`, marked `mismatch` (its
//! title saying what the registry holds) when `notebook check` disagrees.

use std::collections::HashMap;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

/// Where a private-use character pair holds the place of a reference.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// Renders `text`; `mismatched` maps a reference's body (what is between
/// `{{` and `}}`) to what the registry says instead.
pub fn render(text: &str, mismatched: &HashMap<String, String>) -> String {
    let (text, refs) = take_references(&strip_markers(text));
    let events = Parser::new_ext(&text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(inert);
    let mut out = String::new();
    html::push_html(&mut out, events);
    put_references(&out, &refs, mismatched)
}

/// The notebook's own marker comments (entries' metadata, results blocks)
/// say nothing to a reader.
fn strip_markers(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("<!-- labmate:") || t.starts_with("<!-- /labmate:"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Raw HTML as text; links and images only where they may go.
fn inert(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            let dest_url = if safe_link(&dest_url) { dest_url } else { CowStr::Borrowed("#") };
            Event::Start(Tag::Link { link_type, dest_url, title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            let dest_url = match local_file(&dest_url) {
                Some(path) => CowStr::from(format!("/api/notebook/file?path={}", query_escape(&path))),
                // An image from the web would be a request leaving the
                // machine: an empty picture instead, its alt text kept.
                None => CowStr::Borrowed("data:,"),
            };
            Event::Start(Tag::Image { link_type, dest_url, title, id })
        }
        other => other,
    }
}

fn safe_link(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with('#')
        || local_file(url).is_some()
}

/// A relative path without `..`, as a file beside the notebook.
pub fn local_file(url: &str) -> Option<String> {
    let path = url.trim();
    let scheme = path.split_once(':').is_some_and(|(s, _)| !s.contains('/'));
    if path.is_empty() || path.starts_with('/') || path.starts_with('\\') || scheme {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.split(['/', '\\']).any(|p| p == "..") || path.is_empty() {
        return None;
    }
    Some(path.trim_start_matches("./").to_string())
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Rendered references out of the text, each replaced by a placeholder:
/// (the text, [(reference body, value)]).
fn take_references(text: &str) -> (String, Vec<(String, String)>) {
    let mut out = String::with_capacity(text.len());
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<!--{{") {
        let after = &rest[start + 6..];
        let Some(body_end) = after.find("}}-->**") else { break };
        let value_start = body_end + 7;
        let Some(value_len) = after[value_start..].find("**<!--/-->") else { break };
        out.push_str(&rest[..start]);
        out.push(OPEN);
        out.push_str(&refs.len().to_string());
        out.push(CLOSE);
        refs.push((after[..body_end].to_string(), after[value_start..value_start + value_len].to_string()));
        rest = &after[value_start + value_len + 10..];
    }
    out.push_str(rest);
    (out, refs)
}

fn put_references(html: &str, refs: &[(String, String)], mismatched: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len_utf8()..];
        let Some(end) = after.find(CLOSE) else {
            rest = after;
            continue;
        };
        if let Some((body, value)) = after[..end].parse::<usize>().ok().and_then(|i| refs.get(i)) {
            match mismatched.get(body) {
                Some(real) => out.push_str(&format!(
                    "<span class=\"ref mismatch\" title=\"{{{{{}}}}}: the registry says {}\">{}</span>",
                    escape(body),
                    escape(real),
                    escape(value)
                )),
                None => out.push_str(&format!(
                    "<span class=\"ref\" title=\"{{{{{}}}}}\">{}</span>",
                    escape(body),
                    escape(value)
                )),
            }
        }
        rest = &after[end + CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            OPEN | CLOSE => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(text: &str) -> String {
        render(text, &HashMap::new())
    }

    #[test]
    fn raw_html_is_text() {
        let out = html("a <img src=x onerror=alert(1)> b\n\n<script>alert(1)</script>\n");
        assert!(!out.contains("<img") && !out.contains("<script"), "{out}");
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn links_go_only_where_they_may() {
        let out =
            html("[a](javascript:alert(1)) [b](JavaScript:x) [c](data:text/html,x) [d](https://example.org) [e](#x)");
        assert!(!out.to_lowercase().contains("javascript:") && !out.contains("data:text"), "{out}");
        assert!(out.contains("href=\"https://example.org\"") && out.contains("href=\"#x\""), "{out}");
    }

    #[test]
    fn images_come_only_from_beside_the_notebook() {
        let out =
            html("![p](<plots/val loss.png>) ![w](https://example.org/x.png) ![u](../secret.png) ![a](/etc/x.png)");
        assert!(out.contains("src=\"/api/notebook/file?path=plots/val%20loss.png\""), "{out}");
        assert!(!out.contains("example.org") && !out.contains("secret") && !out.contains("/etc/"), "{out}");
    }

    #[test]
    fn references_show_their_values_and_mismatches_are_marked() {
        let text = "loss <!--{{lr.metrics.loss.min}}-->**0.25**<!--/--> and <!--{{b.config.x}}-->**<b>**<!--/-->";
        let mismatched = HashMap::from([("b.config.x".to_string(), "7".to_string())]);
        let out = render(text, &mismatched);
        assert!(out.contains("<span class=\"ref\" title=\"{{lr.metrics.loss.min}}\">0.25</span>"), "{out}");
        assert!(out.contains("class=\"ref mismatch\"") && out.contains("the registry says 7"), "{out}");
        assert!(out.contains("&lt;b&gt;") && !out.contains("<b>"), "{out}");
    }

    #[test]
    fn marker_comments_are_dropped() {
        let out = html("<!-- labmate:results -->\n| a |\n|---|\n| 1 |\n<!-- /labmate:results -->\n");
        assert!(!out.contains("labmate:results"), "{out}");
        assert!(out.contains("<table>"), "{out}");
    }
}
