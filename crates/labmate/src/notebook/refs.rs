//! Live references: registry values cited in an entry's text, so that every
//! number stays traceable to its runs.
//!
//! ```text
//! {{RUN.PATH}}                          {{lr0.01-s1.metrics.val_loss.min}}, {{r-7fk2.config.lr}}
//! {{group:SIDE .PATH.STAT}}             {{group:config.lr=3e-4 .metrics.val_loss.min.mean}}
//! {{compare A B KEY}}                   {{compare config.lr=0.01 config.lr=0.03 val_loss}}
//! ```
//!
//! RUN is an id, a unique prefix or a name; PATH a query path; SIDE a run,
//! `PATH=VALUE` or an expression; STAT one of mean, std, min, max, n; KEY a
//! metric (`val_loss` is its last value, `val_loss.min`, `val_loss@1000`).
//! Rendered, a reference keeps its text so it can be re-derived:
//! `<!--{{REF}}-->**VALUE**<!--/-->`. Numbers have four significant digits.
//! A reference is at most [`MAX_REFERENCE_BYTES`] long.

use std::ops::Range;
use std::path::PathBuf;

use serde_json::Value;

use super::file::Notebook;
use crate::compare;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::query::{Path, as_number, check_path};
use crate::registry;
use crate::stats;
use crate::text::num;

pub const STATS: [&str; 5] = ["mean", "std", "min", "max", "n"];
const RENDERED_END: &str = "**<!--/-->";
/// Far more than any reference needs; reading one takes a pass per dot in it.
pub const MAX_REFERENCE_BYTES: usize = 4096;

/// A parsed reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    Run { run: String, path: Path },
    Group { side: String, path: Path, stat: String },
    Compare { a: String, b: String, path: Path },
}

impl Reference {
    pub fn parse(body: &str) -> std::result::Result<Reference, String> {
        let body = body.trim();
        if body.len() > MAX_REFERENCE_BYTES {
            return Err(format!("longer than {MAX_REFERENCE_BYTES} bytes ({} here)", body.len()));
        }
        if let Some(rest) = body.strip_prefix("group:") {
            let (side, spec) = rest.rsplit_once(" .").ok_or_else(|| {
                "a group reference reads {{group:SIDE .PATH.STAT}}, e.g. {{group:config.lr=3e-4 .metrics.val_loss.min.mean}}"
                    .to_string()
            })?;
            let (path, stat) = spec
                .rsplit_once('.')
                .filter(|(_, s)| STATS.contains(s))
                .ok_or_else(|| format!("'{spec}' should end in .STAT, one of {}", STATS.join(", ")))?;
            return Ok(Reference::Group {
                side: side.trim().to_string(),
                path: Path::parse(path)?,
                stat: stat.to_string(),
            });
        }
        if let Some(rest) = body.strip_prefix("compare ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let [a, b, key] = words[..] else {
                return Err(
                    "a comparison reads {{compare A B KEY}}, e.g. {{compare config.lr=0.01 config.lr=0.03 val_loss}}"
                        .into(),
                );
            };
            let key = if key.starts_with("metrics.") { key.to_string() } else { format!("metrics.{key}") };
            return Ok(Reference::Compare { a: a.into(), b: b.into(), path: Path::parse(&key)? });
        }
        // Names may hold dots (`lr0.01-s1`): the run ends at the first dot where a path begins.
        for (i, _) in body.match_indices('.') {
            let (run, rest) = (&body[..i], &body[i + 1..]);
            if !run.is_empty() && !run.contains(char::is_whitespace) {
                if let Ok(path) = Path::parse(rest) {
                    return Ok(Reference::Run { run: run.to_string(), path });
                }
            }
        }
        Err("expected {{RUN.PATH}} (e.g. {{r-7fk2.metrics.val_loss.min}}), {{group:SIDE .PATH.STAT}} \
             or {{compare A B KEY}}"
            .into())
    }

    /// The value as the notebook shows it, and the runs it is about (for a
    /// run, or a comparison of two runs).
    pub fn value(&self, index: &Index) -> Result<(String, Vec<String>)> {
        let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();
        match self {
            Reference::Run { run, path } => {
                let id = index.resolve(run)?;
                let r = index.run(&id)?;
                check_path(path, std::slice::from_ref(&r))?;
                match path.get(&r, &value_at) {
                    Value::Null => Err(Error::not_found("value", format!("run {id} has no value for {path}"))),
                    v => Ok((show(&v), vec![id])),
                }
            }
            Reference::Group { side, path, stat } => {
                let s = registry::side(index, side)?;
                check_path(path, &s.runs)?;
                let values: Vec<f64> =
                    s.runs.iter().map(|r| as_number(&path.get(r, &value_at)).unwrap_or(f64::NAN)).collect();
                let sum = stats::summarize(&values);
                if sum.n == 0 {
                    return Err(Error::not_found("value", format!("no run of '{side}' has a finite value for {path}")));
                }
                let v = match stat.as_str() {
                    "mean" => sum.mean,
                    "std" => sum.std,
                    "min" => sum.min,
                    "max" => sum.max,
                    _ => return Ok((sum.n.to_string(), Vec::new())),
                };
                Ok((num(v), Vec::new()))
            }
            Reference::Compare { a, b, path } => {
                let sides = [registry::side(index, a)?, registry::side(index, b)?];
                let all: Vec<_> = sides.iter().flat_map(|s| s.runs.clone()).collect();
                check_path(path, &all)?;
                let report = compare::compare(index, &sides, std::slice::from_ref(path))?;
                let verdict = report.metrics[0].comparisons[0].verdict.clone();
                let cited = if sides.iter().all(|s| s.runs.len() == 1) {
                    sides.iter().map(|s| s.runs[0].id.clone()).collect()
                } else {
                    Vec::new()
                };
                Ok((verdict, cited))
            }
        }
    }
}

/// A registry value as text: numbers in four significant digits.
fn show(v: &Value) -> String {
    let s = match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => n.as_f64().map_or(n.to_string(), num),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    };
    sanitize(&s)
}

/// Keeps a value from breaking the rendered form around it.
fn sanitize(s: &str) -> String {
    s.replace('\n', " ").replace("**", "\\*\\*").replace("<!--", "&lt;!--").replace("-->", "--&gt;").trim().to_string()
}

/// A reference found in a text: plain (`{{REF}}`) or rendered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    /// The bytes a rendering replaces.
    pub range: Range<usize>,
    pub body: String,
    /// The value shown, when rendered.
    pub rendered: Option<String>,
}

/// Every reference in `text` (already blanked where it must not be scanned),
/// in one pass however many markers the text holds.
pub(crate) fn find(text: &str) -> Vec<Found> {
    let (mut open, mut close, mut newline) = (Next::new("{{"), Next::new("}}"), Next::new("\n"));
    let (mut rendered_close, mut rendered_end) = (Next::new("}}-->"), Next::new(RENDERED_END));
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = open.from(text, i) {
        let line_end = newline.from(text, p).unwrap_or(text.len());
        if text[..p].ends_with("<!--") {
            if let Some(c) = rendered_close.from(text, p).filter(|c| *c < line_end) {
                let body = text[p + 2..c].trim().to_string();
                let after = c + 5;
                let value_end = if text[after..].starts_with("**") {
                    rendered_end.from(text, after + 2).filter(|e| *e < line_end)
                } else {
                    None
                };
                let (end, rendered) = match value_end {
                    Some(e) => (e + RENDERED_END.len(), Some(text[after + 2..e].to_string())),
                    None => (after, None),
                };
                out.push(Found { range: p - 4..end, body, rendered });
                i = end;
                continue;
            }
        }
        match close.from(text, p + 2).filter(|c| *c < line_end) {
            Some(c) if !text[p + 2..c].trim().is_empty() && open.from(text, p + 2).is_none_or(|o| o >= c) => {
                out.push(Found { range: p..c + 2, body: text[p + 2..c].trim().to_string(), rendered: None });
                i = c + 2;
            }
            _ => i = p + 2,
        }
    }
    out
}

/// Where a pattern next occurs, remembered: asked from positions that only
/// grow, it reads each byte of the text once.
struct Next {
    pattern: &'static str,
    /// The last answer, and the position it was asked from.
    found: Option<(usize, Option<usize>)>,
}

impl Next {
    fn new(pattern: &'static str) -> Next {
        Next { pattern, found: None }
    }

    fn from(&mut self, text: &str, at: usize) -> Option<usize> {
        match self.found {
            Some((asked, answer)) if asked <= at && answer.is_none_or(|a| a >= at) => answer,
            _ => {
                let answer = text[at..].find(self.pattern).map(|p| p + at);
                self.found = Some((at, answer));
                answer
            }
        }
    }
}

/// The rendered form of a reference.
pub fn rendered(body: &str, value: &str) -> String {
    format!("<!--{{{{{body}}}}}-->**{value}**<!--/-->")
}

/// Renders every reference of a new entry's text. An unknown run or key,
/// or a malformed reference, is an error naming it. Returns the text and
/// the runs the references are about.
pub(crate) fn render_new(index: &Index, text: &str) -> Result<(String, Vec<String>)> {
    let nb = Notebook::parse(PathBuf::new(), text.to_string());
    let mut edits = Vec::new();
    let mut cited = Vec::new();
    for f in find(&nb.scannable()) {
        let reference = Reference::parse(&f.body)
            .map_err(|why| Error::invalid("reference", format!("{{{{{}}}}}: {why}", f.body)))?;
        let (value, runs) = reference.value(index).map_err(|e| in_reference(&f.body, e))?;
        edits.push((f.range.clone(), rendered(&f.body, &value)));
        cited.extend(runs.into_iter().filter(|r| !cited.contains(r)).collect::<Vec<_>>());
    }
    Ok((apply(text, edits), cited))
}

/// A user's mistake in a reference, named by the reference.
pub(crate) fn in_reference(body: &str, e: Error) -> Error {
    if e.kind().is_user() { e.within(format!("{{{{{body}}}}}")) } else { e }
}

/// Replaces byte ranges (not overlapping) of `text`.
pub(crate) fn apply(text: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (r, new) in edits {
        out.push_str(&text[at..r.start]);
        out.push_str(&new);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The text with rendered references shown as their values alone (for reading).
pub fn plain(text: &str) -> String {
    let edits = find(text)
        .into_iter()
        .filter_map(|f| f.rendered.map(|v| (f.range, v)))
        .collect::<Vec<(Range<usize>, String)>>();
    apply(text, edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let r = Reference::parse("lr0.01-s1.metrics.val_loss.min").unwrap();
        assert_eq!(r, Reference::Run { run: "lr0.01-s1".into(), path: Path::parse("metrics.val_loss.min").unwrap() });
        let r = Reference::parse("r-7fk2.config.optim.lr").unwrap();
        assert_eq!(r, Reference::Run { run: "r-7fk2".into(), path: Path::parse("config.optim.lr").unwrap() });
        let r = Reference::parse("group:config.lr=3e-4 .metrics.val_loss.min.mean").unwrap();
        assert_eq!(
            r,
            Reference::Group {
                side: "config.lr=3e-4".into(),
                path: Path::parse("metrics.val_loss.min").unwrap(),
                stat: "mean".into()
            }
        );
        let r = Reference::parse("compare a b val_loss").unwrap();
        assert_eq!(
            r,
            Reference::Compare { a: "a".into(), b: "b".into(), path: Path::parse("metrics.val_loss").unwrap() }
        );
        assert!(Reference::parse("group:config.lr=3 .metrics.loss.median").unwrap_err().contains("STAT"));
        assert!(Reference::parse("just words").is_err());
    }

    #[test]
    fn plain_and_rendered_references_are_found() {
        let text = "a {{x.config.lr}} b <!--{{y.config.lr}}-->**0.1**<!--/--> c {{ }} {{open";
        let found = find(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].body, "x.config.lr");
        assert_eq!(&text[found[0].range.clone()], "{{x.config.lr}}");
        assert_eq!(found[1].rendered.as_deref(), Some("0.1"));
        assert_eq!(&text[found[1].range.clone()], "<!--{{y.config.lr}}-->**0.1**<!--/-->");
        assert_eq!(plain(text), "a {{x.config.lr}} b 0.1 c {{ }} {{open");
        assert_eq!(rendered("y.config.lr", "0.1"), "<!--{{y.config.lr}}-->**0.1**<!--/-->");
    }
}
