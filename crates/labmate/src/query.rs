//! The query language of `runs --where` and of columns: run fields, config
//! and metric summaries, by path.
//!
//! ```text
//! status == "finished" and config.lr < 1e-3 and metrics.val_loss.min < 2.1 and tags contains "baseline"
//! not (config.warmup exists) or name ~ "^lr[0-9]"
//! ```
//!
//! Paths: `id`, `name`, `status`, `exit_code`, `signal`, `reason`, `tags`,
//! `command`, `created_at`, `ended_at`, `duration_s`, `git.commit`,
//! `git.branch`, `git.dirty`, `project`, `group`, `job_type`, `notes`, `config.<key>[.<key>...]`, `summary.<key>`,
//! `metrics.<key>.<last|min|max|mean|count|last_step|nan_count>` and
//! `metrics.<key>@<step>` (the value at the last logged step at or before
//! it). A path a run lacks compares false (and `exists` tells).
//!
//! An expression nests at most [`MAX_NESTING`](crate::limits::MAX_NESTING)
//! levels of parentheses and `not`, and is at most
//! [`MAX_EXPRESSION_BYTES`](crate::limits::MAX_EXPRESSION_BYTES) long.

use std::fmt;

use serde_json::Value;

use crate::error::Error;
use crate::limits::{MAX_NESTING, check_length};
use crate::model::Run;

pub const RUN_FIELDS: [&str; 18] = [
    "id",
    "name",
    "status",
    "exit_code",
    "signal",
    "reason",
    "tags",
    "command",
    "created_at",
    "ended_at",
    "duration_s",
    "git.commit",
    "git.branch",
    "git.dirty",
    "project",
    "group",
    "job_type",
    "notes",
];
pub const SUMMARY_FIELDS: [&str; 7] = ["last", "min", "max", "mean", "count", "last_step", "nan_count"];

/// A path into a run: the thing columns, sorts, groups and conditions name.
#[derive(Debug, Clone, PartialEq)]
pub enum Path {
    Field(String),
    Config(Vec<String>),
    Summary(Vec<String>),
    Metric {
        key: String,
        field: String,
    },
    /// `metrics.KEY@STEP`
    MetricAt {
        key: String,
        step: i64,
    },
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Path::Field(s) => f.write_str(s),
            Path::Config(p) => write!(f, "config.{}", p.join(".")),
            Path::Summary(p) => write!(f, "summary.{}", p.join(".")),
            Path::Metric { key, field } => write!(f, "metrics.{key}.{field}"),
            Path::MetricAt { key, step } => write!(f, "metrics.{key}@{step}"),
        }
    }
}

impl Path {
    /// Parses a path. Metric keys may hold dots and slashes
    /// (`metrics.train/loss.min`): the summary field is the last part.
    pub fn parse(text: &str) -> Result<Path, String> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("metrics.") {
            if let Some((key, step)) = rest.rsplit_once('@') {
                let step = step.parse().map_err(|_| format!("'{step}' after '@' is not a step number"))?;
                return Ok(Path::MetricAt { key: key.to_string(), step });
            }
            return match rest.rsplit_once('.') {
                Some((key, field)) if SUMMARY_FIELDS.contains(&field) => {
                    Ok(Path::Metric { key: key.to_string(), field: field.to_string() })
                }
                // `metrics.loss` alone means its last value.
                _ => Ok(Path::Metric { key: rest.to_string(), field: "last".into() }),
            };
        }
        let split = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        if let Some(rest) = t.strip_prefix("config.") {
            return Ok(Path::Config(split(rest)));
        }
        if let Some(rest) = t.strip_prefix("summary.") {
            return Ok(Path::Summary(split(rest)));
        }
        if RUN_FIELDS.contains(&t) {
            return Ok(Path::Field(t.to_string()));
        }
        Err(format!("unknown key '{t}'"))
    }

    /// The value of this path for a run (`Value::Null` when it has none).
    /// `value_at` answers `metrics.KEY@STEP`.
    pub fn get(&self, run: &Run, value_at: &dyn Fn(&str, &str, i64) -> Option<f64>) -> Value {
        let num = |v: f64| serde_json::to_value(crate::record::Num(v)).unwrap_or(Value::Null);
        match self {
            Path::Field(f) => match f.as_str() {
                "id" => run.id.clone().into(),
                "name" => run.name.clone().into(),
                "status" => run.status.as_str().into(),
                "exit_code" => run.exit_code.into(),
                "signal" => run.signal.into(),
                "reason" => run.reason.clone().into(),
                "tags" => run.tags.clone().into(),
                "command" => run.command.join(" ").into(),
                "created_at" => run.created_at.clone().into(),
                "ended_at" => run.ended_at.clone().into(),
                "duration_s" => num(run.duration_s),
                "git.commit" => run.git.as_ref().and_then(|g| g.commit.clone()).into(),
                "git.branch" => run.git.as_ref().and_then(|g| g.branch.clone()).into(),
                "git.dirty" => run.git.as_ref().map(|g| g.dirty).into(),
                "project" => run.project.clone().into(),
                "group" => run.group.clone().into(),
                "job_type" => run.job_type.clone().into(),
                "notes" => run.notes.clone().into(),
                _ => Value::Null,
            },
            Path::Config(p) => lookup(&run.config, p),
            Path::Summary(p) => lookup(&run.summary, p),
            Path::Metric { key, field } => run.metrics.get(key).map_or(Value::Null, |m| match field.as_str() {
                "last" => num(m.last),
                "min" => num(m.min),
                "max" => num(m.max),
                "mean" => num(m.mean),
                "count" => m.count.into(),
                "last_step" => m.last_step.into(),
                "nan_count" => m.nan_count.into(),
                _ => Value::Null,
            }),
            Path::MetricAt { key, step } => value_at(&run.id, key, *step).map_or(Value::Null, num),
        }
    }
}

fn lookup(map: &serde_json::Map<String, Value>, path: &[String]) -> Value {
    let mut at = map.get(&path[0]);
    for part in &path[1..] {
        at = at.and_then(|v| v.get(part));
    }
    at.cloned().unwrap_or(Value::Null)
}

/// Every path the given runs have: what unknown keys are checked against.
pub fn known_paths(runs: &[Run]) -> Vec<String> {
    let mut out: std::collections::BTreeSet<String> = RUN_FIELDS.iter().map(|s| s.to_string()).collect();
    fn walk(prefix: &str, map: &serde_json::Map<String, Value>, out: &mut std::collections::BTreeSet<String>) {
        for (k, v) in map {
            let p = format!("{prefix}.{k}");
            if let Value::Object(inner) = v {
                walk(&p, inner, out);
            }
            out.insert(p);
        }
    }
    for run in runs {
        walk("config", &run.config, &mut out);
        walk("summary", &run.summary, &mut out);
        for key in run.metrics.keys() {
            out.insert(format!("metrics.{key}"));
            for f in SUMMARY_FIELDS {
                out.insert(format!("metrics.{key}.{f}"));
            }
        }
    }
    out.into_iter().collect()
}

/// Checks that some run has the path; the error suggests the closest one
/// (which takes a walk over every run, so only when the path is unknown).
pub fn check_path(path: &Path, runs: &[Run]) -> Result<(), Error> {
    let has = |run: &Run| match path {
        Path::Field(_) => true,
        Path::Config(p) => !lookup(&run.config, p).is_null(),
        Path::Summary(p) => !lookup(&run.summary, p).is_null(),
        Path::Metric { key, .. } | Path::MetricAt { key, .. } => run.metrics.contains_key(key),
    };
    if runs.is_empty() || runs.iter().any(has) {
        return Ok(());
    }
    check_known(path, &known_paths(runs))
}

/// Checks that a path is among `known`; the error suggests the closest one.
pub fn check_known(path: &Path, known: &[String]) -> Result<(), Error> {
    let text = match path {
        Path::MetricAt { key, .. } => format!("metrics.{key}"),
        p => p.to_string(),
    };
    if known.contains(&text) {
        return Ok(());
    }
    let closest = known
        .iter()
        .min_by_key(|k| edit_distance(k, &text))
        .filter(|c| edit_distance(c, &text) <= text.len().max(3) / 2);
    Err(Error::UnknownKey { closest: closest.cloned(), key: text })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A parsed `--where` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every one holds. A chain of `and` is one list, so that a long chain
    /// is no deeper than a short one.
    And(Vec<Expr>),
    /// At least one holds.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare(Path, CmpOp, Value),
    Contains(Path, Value),
    Matches(Path, Pattern),
    Exists(Path),
}

/// A regular expression, compared by its text.
#[derive(Debug, Clone)]
pub struct Pattern(regex_lite::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, Error> {
        check_length("expression", text)?;
        let tokens = lex(text)?;
        let mut p = Parser { text, tokens, at: 0, depth: 0 };
        let e = p.or()?;
        if p.at < p.tokens.len() {
            return Err(p.error_here("expected 'and', 'or' or the end"));
        }
        Ok(e)
    }

    /// Every path the expression names.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Expr::And(all) | Expr::Or(all) => all.iter().flat_map(Expr::paths).collect(),
            Expr::Not(e) => e.paths(),
            Expr::Compare(p, ..) | Expr::Contains(p, _) | Expr::Matches(p, _) | Expr::Exists(p) => vec![p],
        }
    }

    pub fn eval(&self, run: &Run, value_at: &dyn Fn(&str, &str, i64) -> Option<f64>) -> bool {
        match self {
            Expr::And(all) => all.iter().all(|e| e.eval(run, value_at)),
            Expr::Or(any) => any.iter().any(|e| e.eval(run, value_at)),
            Expr::Not(e) => !e.eval(run, value_at),
            Expr::Exists(p) => !p.get(run, value_at).is_null(),
            Expr::Contains(p, needle) => match p.get(run, value_at) {
                Value::Array(items) => items.contains(needle),
                Value::String(s) => needle.as_str().is_some_and(|n| s.contains(n)),
                _ => false,
            },
            Expr::Matches(p, re) => match p.get(run, value_at) {
                Value::String(s) => re.0.is_match(&s),
                Value::Null => false,
                other => re.0.is_match(&other.to_string()),
            },
            Expr::Compare(p, op, rhs) => compare(&p.get(run, value_at), *op, rhs),
        }
    }
}

/// Numbers compare as numbers (NaN never holds), strings as strings; a
/// missing value or a type mismatch is false.
fn compare(lhs: &Value, op: CmpOp, rhs: &Value) -> bool {
    let ord = match (as_number(lhs), as_number(rhs)) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => match (lhs, rhs) {
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        },
    };
    let Some(ord) = ord else { return false };
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Ne => ord.is_ne(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
    }
}

/// A JSON value as a number: numbers, and the strings NaN/Infinity/-Infinity.
pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => crate::record::parse_non_finite(s),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    Open,
    Close,
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, Error> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '(' || c == ')' {
            out.push((pos, if c == '(' { Tok::Open } else { Tok::Close }));
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let mut s = String::new();
            let mut j = i + 1;
            while j < chars.len() && chars[j].1 != c {
                if chars[j].1 == '\\' && j + 1 < chars.len() {
                    j += 1;
                }
                s.push(chars[j].1);
                j += 1;
            }
            if j >= chars.len() {
                return Err(error(text, pos, "this string is not closed"));
            }
            out.push((pos, Tok::Str(s)));
            i = j + 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().map(|(_, c)| c).collect();
        if let Some(op) = ["==", "!=", "<=", ">="].into_iter().find(|o| two == *o) {
            out.push((pos, Tok::Op(op)));
            i += 2;
            continue;
        }
        if let Some(op) = ["<", ">", "~", "="].into_iter().find(|o| o.starts_with(c)) {
            out.push((pos, Tok::Op(if op == "=" { "==" } else { op })));
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && !chars[j].1.is_whitespace() && !"()<>=!~\"'".contains(chars[j].1) {
            j += 1;
        }
        if j == i {
            return Err(error(text, pos, &format!("unexpected '{c}'")));
        }
        let word: String = chars[i..j].iter().map(|(_, c)| c).collect();
        out.push((pos, word.parse::<f64>().map(Tok::Num).unwrap_or(Tok::Word(word))));
        i = j;
    }
    Ok(out)
}

fn error(text: &str, pos: usize, why: &str) -> Error {
    Error::BadExpression {
        what: "expression",
        text: text.to_string(),
        column: text[..pos.min(text.len())].chars().count() + 1,
        why: why.to_string(),
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Tok)>,
    at: usize,
    /// Parentheses and `not`s open around the token at `at`.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn error_here(&self, why: &str) -> Error {
        let pos = self.tokens.get(self.at).map_or(self.text.len(), |(p, _)| *p);
        error(self.text, pos, why)
    }

    fn or(&mut self) -> Result<Expr, Error> {
        let mut any = vec![self.and()?];
        while self.is_word("or") {
            self.at += 1;
            any.push(self.and()?);
        }
        Ok(if any.len() == 1 { any.remove(0) } else { Expr::Or(any) })
    }

    fn and(&mut self) -> Result<Expr, Error> {
        let mut all = vec![self.not()?];
        while self.is_word("and") {
            self.at += 1;
            all.push(self.not()?);
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Expr::And(all) })
    }

    fn not(&mut self) -> Result<Expr, Error> {
        if self.is_word("not") {
            return self.nested(|p| Ok(Expr::Not(Box::new(p.not()?))));
        }
        if self.peek() == Some(&Tok::Open) {
            return self.nested(|p| {
                let e = p.or()?;
                if p.peek() != Some(&Tok::Close) {
                    return Err(p.error_here("expected ')'"));
                }
                p.at += 1;
                Ok(e)
            });
        }
        self.test()
    }

    /// Reads what follows the `not` or `(` at `at`, one level deeper; the
    /// limit keeps the recursion (here and in every walk of the tree) shallow.
    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Result<Expr, Error>) -> Result<Expr, Error> {
        if self.depth == MAX_NESTING {
            return Err(self.error_here(&format!("nested deeper than {MAX_NESTING} levels of parentheses and 'not'")));
        }
        self.depth += 1;
        self.at += 1;
        let e = inner(self);
        self.depth -= 1;
        e
    }

    fn test(&mut self) -> Result<Expr, Error> {
        let start = self.at;
        let path = match self.peek() {
            Some(Tok::Word(w)) => Path::parse(w).map_err(|why| self.error_here(&why))?,
            _ => return Err(self.error_here("expected a key such as status, config.lr or metrics.loss.min")),
        };
        self.at += 1;
        let e = match self.peek().cloned() {
            Some(Tok::Word(w)) if w == "exists" => {
                self.at += 1;
                Expr::Exists(path)
            }
            Some(Tok::Word(w)) if w == "contains" => {
                self.at += 1;
                Expr::Contains(path, self.value()?)
            }
            Some(Tok::Op("~")) => {
                self.at += 1;
                let pattern = match self.peek().cloned() {
                    Some(Tok::Str(s)) | Some(Tok::Word(s)) => s,
                    _ => return Err(self.error_here("expected a regular expression in quotes after '~'")),
                };
                let re = regex_lite::Regex::new(&pattern)
                    .map_err(|e| self.error_here(&format!("bad regular expression: {e}")))?;
                self.at += 1;
                Expr::Matches(path, Pattern(re))
            }
            Some(Tok::Op(op)) => {
                self.at += 1;
                let op = match op {
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    "<" => CmpOp::Lt,
                    "<=" => CmpOp::Le,
                    ">" => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                Expr::Compare(path, op, self.value()?)
            }
            _ => {
                self.at = start + 1;
                return Err(self.error_here("expected a comparison (== != < <= > >=), 'contains', '~' or 'exists'"));
            }
        };
        Ok(e)
    }

    fn value(&mut self) -> Result<Value, Error> {
        let v = match self.peek().cloned() {
            Some(Tok::Num(n)) => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
            Some(Tok::Str(s)) => Value::String(s),
            Some(Tok::Word(w)) if w == "true" || w == "false" => Value::Bool(w == "true"),
            Some(Tok::Word(w)) if crate::record::parse_non_finite(&w).is_some() => Value::String(w),
            Some(Tok::Word(w)) => {
                return Err(self.error_here(&format!("expected a number or a \"string\", found '{w}' (quote strings)")));
            }
            _ => return Err(self.error_here("expected a number or a \"string\"")),
        };
        self.at += 1;
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
