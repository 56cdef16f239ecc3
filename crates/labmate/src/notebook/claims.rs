//! `notebook check`: every number the notebook cites, re-derived from the
//! registry. Two kinds of citation are checked:
//!
//! - **References** (`{{...}}`): each is derived again; a rendered one whose
//!   value changed, or one that no longer resolves, is a mismatch.
//! - **Claims**: a number written by hand next to a run. Within one sentence,
//!   a run (its full id, `r-` and a unique id prefix of 4 or more characters,
//!   `r-` and its last 4 characters, or its name as a whole word) followed by
//!   one of that run's metric keys and then a number — the first number after
//!   the key, at most 4 words on, skipping one that follows `step`, `epoch`,
//!   `seed` and the like — is a claim: `r-7fk2 reached val_loss 2.31`,
//!   `lr0.01-s1: val_loss = 0.27`. It holds when the number equals the
//!   metric's last, min, max or mean value within a tolerance of half a unit
//!   of its last written digit (2.31: ±0.005) or 1% of it, whichever is
//!   larger; `91.3%` also matches 0.913.
//!
//! Sentences end at `.`, `!`, `?` or `;` before a space, at a blank line, and
//! before a list item, heading, quote or table row. Code (inline or fenced),
//! headings and metadata of entries and the results table are not scanned.
//! A mismatch in an entry that a later entry amends is reported, but does not
//! fail the check: the amending entry is the correction.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use serde::Serialize;

use super::file::Notebook;
use super::refs::{self, Reference};
use crate::error::Result;
use crate::index::Index;
use crate::lab::Lab;
use crate::model::Run;
use crate::text::num;

/// Words after which a number is a position, not a value.
const POSITION_WORDS: [&str; 12] =
    ["step", "steps", "epoch", "epochs", "iter", "iters", "iteration", "iterations", "seed", "seeds", "batch", "n"];
const MAX_WORDS_BETWEEN: usize = 4;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Hand-written numbers next to a run that were checked.
    pub claims: usize,
    /// Live references that were derived again.
    pub references: usize,
    pub mismatches: Vec<Mismatch>,
    /// Lines of the notebook labmate could not read.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// Whether the check fails: a mismatch that no later entry amends.
    pub fn failed(&self) -> bool {
        self.mismatches.iter().any(|m| m.amended_by.is_none())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// The entry holding it (None for text outside entries).
    pub entry: Option<String>,
    /// The line in the notebook file, from 1.
    pub line: usize,
    /// `claim` (a number written next to a run) or `reference` (a live reference).
    pub what: &'static str,
    /// The claim's sentence, or the reference.
    pub text: String,
    pub run: Option<String>,
    pub metric: Option<String>,
    /// What the notebook says.
    pub claimed: String,
    /// What the registry says (or why it cannot say).
    pub real: String,
    /// The later entry amending this one, if any.
    pub amended_by: Option<String>,
}

/// Checks the lab's notebook against the registry.
pub fn check(lab: &Lab, index: &Index) -> Result<CheckReport> {
    let nb = Notebook::load(lab)?;
    let runs = index.runs(None)?;
    Ok(check_notebook(&nb, index, &runs, None))
}

/// Checks one entry (what `note` warns about right after writing it).
pub fn check_entry(lab: &Lab, index: &Index, id: &str) -> Result<CheckReport> {
    let nb = Notebook::load(lab)?;
    let runs = index.runs(None)?;
    let span = nb.entries.iter().find(|e| e.id == id).map(|e| e.span.clone());
    let Some(span) = span else { return Ok(CheckReport::default()) };
    Ok(check_notebook(&nb, index, &runs, Some(span)))
}

/// Checks the notebook, or only the bytes `within`.
fn check_notebook(nb: &Notebook, index: &Index, runs: &[Run], within: Option<Range<usize>>) -> CheckReport {
    let inside = |r: &Range<usize>| within.as_ref().is_none_or(|w| w.contains(&r.start));
    let mut report = CheckReport { problems: nb.problems.clone(), ..CheckReport::default() };
    let amended_by: HashMap<&str, &str> =
        nb.entries.iter().filter_map(|e| e.amends.as_deref().map(|a| (a, e.id.as_str()))).collect();
    let push = |report: &mut CheckReport, offset: usize, m: Mismatch| {
        let entry = nb.entry_at(offset).map(|e| e.id.clone());
        let amended = entry.as_deref().and_then(|e| amended_by.get(e)).map(|a| a.to_string());
        report.mismatches.push(Mismatch { entry, line: nb.line_of(offset), amended_by: amended, ..m });
    };
    let blank = Mismatch {
        entry: None,
        line: 0,
        what: "reference",
        text: String::new(),
        run: None,
        metric: None,
        claimed: String::new(),
        real: String::new(),
        amended_by: None,
    };

    let mut scan = nb.scannable();
    let found = refs::find(&scan);
    for f in found.iter().filter(|f| inside(&f.range)) {
        report.references += 1;
        let derived = Reference::parse(&f.body)
            .map_err(|why| format!("cannot be read: {why}"))
            .and_then(|r| r.value(index).map(|(v, _)| v).map_err(|e| format!("cannot be derived: {e}")));
        let text = format!("{{{{{}}}}}", f.body);
        match (derived, &f.rendered) {
            (Err(why), claimed) => {
                let claimed = claimed.clone().unwrap_or_default();
                push(&mut report, f.range.start, Mismatch { text, claimed, real: why, ..blank.clone() });
            }
            (Ok(v), Some(shown)) if *shown != v => {
                push(&mut report, f.range.start, Mismatch { text, claimed: shown.clone(), real: v, ..blank.clone() });
            }
            _ => {}
        }
    }
    // References are checked above; their text and values are not claims.
    let mut bytes = std::mem::take(&mut scan).into_bytes();
    for f in &found {
        for b in &mut bytes[f.range.clone()] {
            *b = b' ';
        }
    }
    let scan = String::from_utf8(bytes).expect("whole characters are blanked");

    let matcher = RunMatcher::new(runs);
    for sentence in sentences(&scan).into_iter().filter(|s| inside(s)) {
        for c in claims_in(&scan, sentence.clone(), &matcher) {
            report.claims += 1;
            let run = &runs[c.run];
            let m = &run.metrics[&c.key];
            if holds(&c.literal, [m.last, m.min, m.max, m.mean]) {
                continue;
            }
            let real = if m.min == m.max || m.min.is_nan() {
                num(m.last)
            } else {
                format!("last {} (min {}, max {}, mean {})", num(m.last), num(m.min), num(m.max), num(m.mean))
            };
            let text = nb.text[sentence.clone()].split_whitespace().collect::<Vec<_>>().join(" ");
            push(
                &mut report,
                sentence.start,
                Mismatch {
                    what: "claim",
                    text,
                    run: Some(run.name.as_ref().map_or(run.id.clone(), |n| format!("{} ({n})", run.id))),
                    metric: Some(c.key.clone()),
                    claimed: c.literal.clone(),
                    real,
                    ..blank.clone()
                },
            );
        }
    }
    report
}

/// Whether a written number agrees with one of the values, within the
/// tolerance the module header states.
pub fn holds(literal: &str, values: [f64; 4]) -> bool {
    let (digits, percent) = match literal.strip_suffix('%') {
        Some(d) => (d, true),
        None => (literal, false),
    };
    let Ok(claimed) = digits.parse::<f64>() else { return false };
    let (mantissa, exp) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (digits, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len() as i32);
    let tol = (0.5 * 10f64.powi(exp - decimals)).max(0.01 * claimed.abs());
    let near = |c: f64, t: f64| values.iter().any(|v| v.is_finite() && (v - c).abs() <= t * (1.0 + 1e-9));
    near(claimed, tol) || (percent && near(claimed / 100.0, tol / 100.0))
}

/// The sentences of a text, as byte ranges.
pub(crate) fn sentences(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let cut = |out: &mut Vec<Range<usize>>, start: &mut usize, end: usize| {
        if !text[*start..end].trim().is_empty() {
            out.push(*start..end);
        }
        *start = end;
    };
    for i in 0..b.len() {
        let next_space = b.get(i + 1).is_none_or(|c| c.is_ascii_whitespace());
        if matches!(b[i], b'.' | b'!' | b'?' | b';') && next_space {
            cut(&mut out, &mut start, i + 1);
        } else if b[i] == b'\n' {
            let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
            let this = text[line_start..i].trim();
            let next = text[i + 1..].split('\n').next().unwrap_or("").trim();
            let breaks = this.is_empty()
                || this.ends_with('|')
                || next.is_empty()
                || next.starts_with(['-', '*', '+', '#', '>', '|'])
                || next
                    .split_once(['.', ')'])
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
            if breaks {
                cut(&mut out, &mut start, i + 1);
            }
        }
    }
    cut(&mut out, &mut start, b.len());
    out
}

/// Finds the runs a text names.
pub(crate) struct RunMatcher<'a> {
    runs: &'a [Run],
    /// Names held by exactly one run.
    names: Vec<(&'a str, usize)>,
}

static ID_TOKEN: LazyLock<regex_lite::Regex> =
    LazyLock::new(|| regex_lite::Regex::new(r"r-[0-9a-z]{4,10}").expect("valid regex"));

impl<'a> RunMatcher<'a> {
    pub fn new(runs: &'a [Run]) -> RunMatcher<'a> {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for r in runs {
            if let Some(n) = r.name.as_deref() {
                *count.entry(n).or_default() += 1;
            }
        }
        let names = runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.name.as_deref().filter(|n| n.len() >= 2 && count[n] == 1).map(|n| (n, i)))
            .collect();
        RunMatcher { runs, names }
    }

    /// The run an `r-...` token names: a unique id prefix, or `r-` and the last 4 characters.
    fn by_token(&self, token: &str) -> Option<usize> {
        let unique = |hits: Vec<usize>| if hits.len() == 1 { Some(hits[0]) } else { None };
        let prefix: Vec<usize> = (0..self.runs.len()).filter(|&i| self.runs[i].id.starts_with(token)).collect();
        if !prefix.is_empty() {
            return unique(prefix);
        }
        let tail = &token[2..];
        (tail.len() == 4)
            .then(|| unique((0..self.runs.len()).filter(|&i| self.runs[i].id.ends_with(tail)).collect()))?
    }

    /// Every run named in `text[range]`: (bytes, run index), in order, not overlapping.
    fn find(&self, text: &str, range: Range<usize>) -> Vec<(Range<usize>, usize)> {
        let s = &text[range.clone()];
        let mut hits = Vec::new();
        for m in ID_TOKEN.find_iter(s) {
            let (a, b) = (range.start + m.start(), range.start + m.end());
            if word_edge_before(text, a, "_-") && word_edge_after(text, b, "_") {
                if let Some(i) = self.by_token(m.as_str()) {
                    hits.push((a..b, i));
                }
            }
        }
        for (name, i) in &self.names {
            for (at, _) in s.match_indices(name) {
                let (a, b) = (range.start + at, range.start + at + name.len());
                if word_edge_before(text, a, "_-./") && word_edge_after(text, b, "_-/") {
                    hits.push((a..b, *i));
                }
            }
        }
        hits.sort_by_key(|(r, _)| (r.start, std::cmp::Reverse(r.end)));
        let mut out: Vec<(Range<usize>, usize)> = Vec::new();
        for h in hits {
            if out.last().is_none_or(|(r, _)| h.0.start >= r.end) {
                out.push(h);
            }
        }
        out
    }
}

/// No word character (or one of `extra`) right before `at`.
fn word_edge_before(text: &str, at: usize, extra: &str) -> bool {
    text[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || extra.contains(c)))
}

/// No word character (or one of `extra`) right after `at`; a `.` counts only
/// when a word character follows it (`lr0.1-s1.` ends a sentence).
fn word_edge_after(text: &str, at: usize, extra: &str) -> bool {
    let mut rest = text[at..].chars();
    match rest.next() {
        None => true,
        Some('.') => rest.next().is_none_or(|c| !c.is_alphanumeric()),
        Some(c) => !(c.is_alphanumeric() || extra.contains(c)),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claim {
    pub run: usize,
    pub key: String,
    /// The number as written (`2.31`, `1e-3`, `91.3%`).
    pub literal: String,
}

/// The claims of one sentence.
pub(crate) fn claims_in(text: &str, sentence: Range<usize>, matcher: &RunMatcher) -> Vec<Claim> {
    let named = matcher.find(text, sentence.clone());
    let mut out = Vec::new();
    for (k, (at, run)) in named.iter().enumerate() {
        let window_end = named.get(k + 1).map_or(sentence.end, |(r, _)| r.start);
        let window = &text[at.end..window_end];
        // Whole-word occurrences of the run's metric keys, longest first where they overlap.
        let mut keys: Vec<(Range<usize>, &str)> = Vec::new();
        for key in matcher.runs[*run].metrics.keys() {
            for (i, _) in window.match_indices(key.as_str()) {
                let (a, b) = (at.end + i, at.end + i + key.len());
                if word_edge_before(text, a, "_/") && word_edge_after(text, b, "_/") {
                    keys.push((a..b, key));
                }
            }
        }
        keys.sort_by_key(|(r, _)| (r.start, std::cmp::Reverse(r.end)));
        let mut kept: Vec<(Range<usize>, &str)> = Vec::new();
        for k in keys {
            if kept.last().is_none_or(|(r, _)| k.0.start >= r.end) {
                kept.push(k);
            }
        }
        for (j, (r, key)) in kept.iter().enumerate() {
            let limit = kept.get(j + 1).map_or(window_end, |(n, _)| n.start);
            if let Some(literal) = first_number(&text[r.end..limit]) {
                out.push(Claim { run: *run, key: key.to_string(), literal });
            }
        }
    }
    out
}

/// The first number in `s` that is a value (not a step), at most
/// [`MAX_WORDS_BETWEEN`] words in.
fn first_number(s: &str) -> Option<String> {
    static NUMBER: LazyLock<regex_lite::Regex> =
        LazyLock::new(|| regex_lite::Regex::new(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?%?").expect("valid regex"));
    for m in NUMBER.find_iter(s) {
        let before = &s[..m.start()];
        let words: Vec<&str> = before.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).collect();
        if words.len() > MAX_WORDS_BETWEEN {
            return None;
        }
        let glued = before.chars().next_back().is_some_and(|c| c.is_alphanumeric() || "_.@/-".contains(c));
        let after = s[m.end()..].chars().next();
        let glued_after = after.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if glued || glued_after {
            continue;
        }
        let prev = words.last().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_ascii_lowercase());
        if prev.as_deref().is_some_and(|w| POSITION_WORDS.contains(&w)) {
            continue;
        }
        return Some(m.as_str().to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_half_a_digit_or_one_percent() {
        let v = |x: f64| [x, f64::NAN, f64::NAN, f64::NAN];
        assert!(holds("2.31", v(2.3149)));
        assert!(holds("2.31", v(2.33)), "1% of 2.31 is 0.0231");
        assert!(!holds("2.10", v(2.31)));
        assert!(holds("0.3", v(0.34)), "half a unit of 0.3 is 0.05");
        assert!(!holds("0.30", v(0.34)));
        assert!(holds("91.3%", v(0.913)));
        assert!(holds("1.5e-3", v(0.00152)));
        assert!(!holds("1.5e-3", v(0.0016)));
        assert!(holds("3", [2.31, 2.9, 3.0, 2.7]), "any of last, min, max, mean");
    }

    #[test]
    fn sentences_split_where_a_reader_would() {
        let t = "r-7fk2 reached\nval_loss 2.31. Then lr 0.1; more\n- item one\n- item two\n\npara";
        let got: Vec<&str> = sentences(t).into_iter().map(|r| t[r].trim()).collect();
        assert_eq!(got, ["r-7fk2 reached\nval_loss 2.31.", "Then lr 0.1;", "more", "- item one", "- item two", "para"]);
    }

    #[test]
    fn the_first_value_after_a_key_is_taken() {
        assert_eq!(first_number(" of 2.31 at step 100").as_deref(), Some("2.31"));
        assert_eq!(first_number(" at step 1000 was 2.31").as_deref(), Some("2.31"));
        assert_eq!(first_number(" = 0.27,").as_deref(), Some("0.27"));
        assert_eq!(first_number("@1000 is lr0.1"), None);
        assert_eq!(first_number(" went down a lot over the whole run to 2.3"), None);
        assert_eq!(first_number(": 91.3% (best)").as_deref(), Some("91.3%"));
    }
}
