//! Tool results as a model reads them: a few lines, never more than about
//! [`BUDGET`] characters, with a note of what was cut and how to ask for
//! it; and the same data as JSON.

use labmate::compare::Report;
use labmate::facade::Noted;
use labmate::index::Index;
use labmate::model::{Run, RunDetail, RunEvent, key_metrics};
use labmate::notebook::{CheckReport, EntryView};
use labmate::query::Path;
use labmate::registry;
use labmate::status::Compact;
use labmate::text::{escape_controls as esc, num};
use serde_json::{Value, json};

use crate::Answer;

/// Characters a text result stays under.
pub const BUDGET: usize = 2_000;

/// A core error as the CLI words it.
pub fn error(e: &labmate::Error) -> String {
    e.to_string()
}

/// Lines up to the budget, then how many were left out and how to ask.
fn fit(lines: Vec<String>, more: usize, ask: &str) -> String {
    let mut out = String::new();
    let mut cut = more;
    for (i, line) in lines.iter().enumerate() {
        if out.len() + line.len() + 1 > BUDGET - 80 {
            cut += lines.len() - i;
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    if cut > 0 {
        out.push_str(&format!("… {cut} more; ask with {ask}\n"));
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n).collect::<String>()) }
}

pub fn runs(
    index: &Index,
    runs: &[Run],
    columns: &[String],
    group_by: &[String],
    limit: usize,
) -> labmate::Result<Answer> {
    if runs.is_empty() {
        return Ok(Answer { text: "no runs match\n".into(), data: json!({"runs": [], "total": 0}) });
    }
    let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();
    if !group_by.is_empty() {
        let by = registry::parse_paths(group_by, runs, "group_by")?;
        let of = if columns.is_empty() {
            key_metrics(runs, 2).into_iter().map(|k| Path::Metric { key: k, field: "last".into() }).collect()
        } else {
            registry::parse_paths(columns, runs, "columns")?
        };
        let seed_key = labmate::policy::Policy::load(index.lab())?.runs.seed_key;
        let groups = registry::group(index, runs, &by, &of, &seed_key);
        let mut lines = Vec::new();
        for g in groups.iter().take(limit) {
            let key: Vec<String> = g.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let stats: Vec<String> =
                g.stats.iter().map(|(p, s)| format!("{p} {}±{} (n={})", num(s.mean), num(s.std), s.n)).collect();
            lines.push(format!("{}  runs={}  {}", key.join(" "), g.runs.len(), stats.join("  ")));
        }
        let more = groups.len().saturating_sub(limit);
        return Ok(Answer { text: fit(lines, more, "limit"), data: json!({"groups": groups, "total": groups.len()}) });
    }
    let paths = if columns.is_empty() {
        key_metrics(runs, 3).into_iter().map(|k| Path::Metric { key: k, field: "last".into() }).collect()
    } else {
        registry::parse_paths(columns, runs, "columns")?
    };
    let mut lines =
        vec![format!("id  name  status  {}", paths.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("  "))];
    let mut rows = Vec::new();
    for r in runs.iter().take(limit) {
        let values: Vec<Value> = paths.iter().map(|p| p.get(r, &value_at)).collect();
        let shown: Vec<String> = values.iter().map(short).collect();
        let status = match &r.reason {
            Some(why) => format!("{} ({})", r.status, clip(why, 40)),
            None => r.status.to_string(),
        };
        lines.push(format!(
            "{}  {}  {}  {}",
            r.id,
            esc(r.name.as_deref().unwrap_or("-")),
            esc(&status),
            shown.join("  ")
        ));
        let mut row = serde_json::Map::new();
        row.insert("id".into(), json!(r.id));
        row.insert("name".into(), json!(r.name));
        row.insert("status".into(), json!(r.status));
        for (p, v) in paths.iter().zip(values) {
            row.insert(p.to_string(), v);
        }
        rows.push(Value::Object(row));
    }
    let more = runs.len().saturating_sub(limit);
    Ok(Answer { text: fit(lines, more, "limit or where"), data: json!({"runs": rows, "total": runs.len()}) })
}

fn short(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), num),
        Value::String(s) => clip(&esc(s), 30),
        Value::Null => "-".into(),
        other => clip(&other.to_string(), 30),
    }
}

pub fn show_run(d: &RunDetail) -> labmate::Result<Answer> {
    let r = &d.run;
    let mut lines = vec![format!("{} {}  {}", r.id, esc(r.name.as_deref().unwrap_or("")), r.status)];
    if let Some(why) = &r.reason {
        lines.push(format!("ended: {}", clip(&esc(why), 200)));
    }
    lines.push(format!("command: {}", clip(&esc(&r.command.join(" ")), 200)));
    if !r.config.is_empty() {
        lines.push(format!("config: {}", clip(&Value::Object(r.config.clone()).to_string(), 300)));
    }
    if let Some(g) = &r.git {
        lines.push(format!(
            "git: {} on {}{}",
            g.commit.as_deref().map_or("-", |c| &c[..c.len().min(12)]),
            g.branch.as_deref().unwrap_or("(detached)"),
            if g.dirty { format!(", dirty ({} bytes of patch)", d.patch_bytes) } else { String::new() }
        ));
    }
    let alerts: Vec<_> = d.events.iter().filter(|e| e.kind == "alert").collect();
    for (k, m) in &r.metrics {
        let nan = if m.nan_count > 0 { format!(" ({} NaN)", m.nan_count) } else { String::new() };
        lines.push(format!(
            "{}: last {} min {} max {} at step {} ({} points{nan})",
            esc(k),
            num(m.last),
            num(m.min),
            num(m.max),
            m.last_step,
            m.count
        ));
    }
    for a in alerts.iter().take(5) {
        lines.push(format!("alert {}: {}", a.time, clip(&esc(&a.message), 200)));
    }
    let more = alerts.len().saturating_sub(5);
    let data = serde_json::to_value(d).unwrap_or_default();
    Ok(Answer { text: fit(lines, more, "events"), data })
}

pub fn status(all: &[Compact]) -> Answer {
    let text = if all.is_empty() {
        "no active runs, and none ended in the last hour\n".to_string()
    } else {
        let lines: Vec<String> = all.iter().map(|s| labmate::status::render(s).trim_end().to_string()).collect();
        fit(lines, 0, "runs")
    };
    Answer { text, data: json!({"runs": all}) }
}

pub fn metrics(index: &Index, id: &str, keys: &[String], points: usize, since: Option<i64>) -> labmate::Result<Answer> {
    let known = index.metric_keys(id)?;
    let keys: Vec<String> = if keys.is_empty() {
        let run = index.run(id)?;
        key_metrics(std::slice::from_ref(&run), 3)
    } else {
        keys.to_vec()
    };
    let mut lines = Vec::new();
    let mut data = serde_json::Map::new();
    for key in &keys {
        if !known.contains(key) {
            return Err(labmate::Error::not_found(
                "metric",
                format!(
                    "run {id} has no metric '{key}'; it has: {}",
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                ),
            ));
        }
        let mut pts = index.series(id, key)?;
        if let Some(s) = since {
            pts.retain(|p| p.step > s);
        }
        let all = pts.len();
        let pts = labmate::series::downsample(&pts, points.max(4));
        let shown: Vec<String> = pts.iter().map(|p| format!("{}:{}", p.step, num(p.value))).collect();
        lines.push(format!("{} ({} of {all} points, step:value): {}", esc(key), pts.len(), shown.join(" ")));
        data.insert(
            key.clone(),
            json!(pts.iter().map(|p| json!({"step": p.step, "time": labmate::record::Num(p.time), "value": labmate::record::Num(p.value)})).collect::<Vec<_>>()),
        );
    }
    let mut text = lines.join("\n");
    if text.len() > BUDGET {
        text = format!(
            "{}…\n(cut at {BUDGET} characters; ask with fewer points, keys or since_step)\n",
            clip(&text, BUDGET - 100)
        );
    } else {
        text.push('\n');
    }
    Ok(Answer { text, data: Value::Object(data) })
}

/// `text` is the output from where it was read; `before` says whether
/// lines came before that.
pub fn logs(id: &str, text: &str, before: bool, tail: usize, grep: Option<&regex_lite::Regex>) -> Answer {
    let lines: Vec<&str> = text.lines().filter(|l| grep.is_none_or(|g| g.is_match(l))).collect();
    let start = lines.len().saturating_sub(tail);
    let kept = &lines[start..];
    // From the end back, as much as the budget holds.
    let mut shown = Vec::new();
    let mut size = 0;
    for line in kept.iter().rev() {
        let line = clip(&esc(line), 300);
        if size + line.len() + 1 > BUDGET - 100 {
            break;
        }
        size += line.len() + 1;
        shown.push(line);
    }
    shown.reverse();
    let cut = lines.len() - shown.len();
    let mut out = String::new();
    if cut > 0 {
        out.push_str(&format!(
            "… {cut}{} earlier lines; ask with tail or grep\n",
            if before { " and more" } else { "" }
        ));
    } else if before {
        out.push_str("… earlier lines; ask with tail or grep\n");
    }
    for l in &shown {
        out.push_str(l);
        out.push('\n');
    }
    if lines.is_empty() {
        out.push_str(if grep.is_some() { "no line matches\n" } else { "no output yet\n" });
    }
    Answer { text: out, data: json!({"run": id, "lines": shown, "matching": lines.len()}) }
}

pub fn events(events: &[RunEvent]) -> Answer {
    let start = events.len().saturating_sub(30);
    let lines: Vec<String> = events[start..]
        .iter()
        .map(|e| format!("{} {} {}: {}", e.event.time, e.run, e.event.kind, clip(&esc(&e.event.message), 200)))
        .collect();
    let text = if lines.is_empty() { "no events\n".into() } else { fit(lines, start, "since or run") };
    Answer { text, data: json!({"events": events}) }
}

pub fn compare(r: &Report) -> labmate::Result<Answer> {
    let letter = |i: usize| (b'A' + (i % 26) as u8) as char;
    let mut lines: Vec<String> = r
        .sides
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}: {} ({} runs)", letter(i), esc(&s.label), s.runs.len()))
        .collect();
    for c in &r.config {
        let values: Vec<String> = c.values.iter().map(|v| clip(&v.to_string(), 40)).collect();
        lines.push(format!("config {}: {}", c.key, values.join(" | ")));
    }
    for m in &r.metrics {
        for (i, c) in m.comparisons.iter().enumerate() {
            lines.push(format!("{} {} vs A: {}", m.metric, letter(i + 1), c.verdict));
        }
    }
    Ok(Answer { text: fit(lines, 0, "fewer sides or metrics"), data: serde_json::to_value(r).unwrap_or_default() })
}

pub fn notebook(entries: &[EntryView], limit: usize) -> Answer {
    let start = entries.len().saturating_sub(limit);
    let shown = &entries[start..];
    let lines: Vec<String> = shown
        .iter()
        .map(|e| {
            let text = labmate::notebook::refs::plain(&e.text);
            format!("{} {} {} by {}: {}", e.id, e.time, e.kind, esc(&e.author), clip(&esc(&text), 300))
        })
        .collect();
    let text = if lines.is_empty() { "no entries\n".into() } else { fit(lines, start, "limit, kind, since or run") };
    Answer { text, data: json!({"entries": shown, "total": entries.len()}) }
}

pub fn check(report: &CheckReport) -> Answer {
    let mut lines = vec![format!(
        "{} claims and {} live references checked: {} mismatches",
        report.claims,
        report.references,
        report.mismatches.len()
    )];
    for m in &report.mismatches {
        lines.push(format!(
            "line {} ({}): {:?} says {}, the registry {}{}",
            m.line,
            m.entry.as_deref().unwrap_or("-"),
            clip(&m.text, 80),
            m.claimed,
            m.real,
            m.amended_by.as_deref().map_or(String::new(), |a| format!(" (amended by {a})"))
        ));
    }
    for p in &report.problems {
        lines.push(format!("problem: {}", clip(p, 200)));
    }
    Answer {
        text: fit(lines, 0, "the CLI: labmate notebook check"),
        data: serde_json::to_value(report).unwrap_or_default(),
    }
}

pub fn noted(n: &Noted) -> Answer {
    let mut text = format!(
        "wrote {} ({}) by {}: {}\n",
        n.entry.id,
        n.entry.kind,
        n.entry.author,
        clip(&labmate::notebook::refs::plain(&n.entry.text), 300)
    );
    if let Some(item) = &n.item {
        text.push_str(&format!("it waits for a human's review: item {}\n", item.id));
    }
    for w in &n.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    Answer {
        text,
        data: json!({
            "id": n.entry.id, "kind": n.entry.kind, "author": n.entry.author, "runs": n.entry.runs,
            "text": n.entry.text, "review_item": n.item.as_ref().map(|i| i.id.clone()), "warnings": n.warnings,
        }),
    }
}

pub fn launched(id: &str, notices: &[String]) -> Answer {
    let mut text = format!("run {id} started (detached, supervised); follow it with wait or status\n");
    for n in notices {
        text.push_str(&format!("note: {}\n", clip(n, 300)));
    }
    Answer { text, data: json!({"run": id, "notices": notices}) }
}

pub fn held(request: &labmate::review::Request) -> Answer {
    Answer {
        text: format!(
            "the launch waits for a human's approval ({}): request {}; the run starts only once they approve it\n",
            request.reason.join("; "),
            request.id
        ),
        data: json!({"request": request.id, "reason": request.reason, "pending": true}),
    }
}

pub fn waited(end: &labmate::wait::WaitEnd, states: &[Compact]) -> Answer {
    let mut lines = vec![format!("wait: {}", end.describe())];
    lines.extend(states.iter().map(|s| labmate::status::render(s).trim_end().to_string()));
    Answer {
        text: fit(lines, 0, "status"),
        data: json!({"end": end.describe(), "exit_code": end.exit_code(), "runs": states}),
    }
}
