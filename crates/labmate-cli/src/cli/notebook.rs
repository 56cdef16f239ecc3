//! `labmate notebook render|check|show`: the lab notebook against the registry.

use std::fmt::Write as _;
use std::process::ExitCode;

use labmate::clock;
use labmate::notebook::{self, EntryView, Filter, KINDS, Mismatch, RenderOptions};
use labmate::text::escape_controls as esc;

use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Write current values next to live references and refresh the results table.
    Render {
        /// One row per group of runs sharing these paths' values [default: [notebook] group_by].
        #[arg(long = "group-by", value_name = "PATHS")]
        group_by: Vec<String>,
        /// The table's columns (paths) [default: [notebook] columns, else id, name, status, key config and metrics].
        #[arg(long, value_name = "PATHS")]
        columns: Vec<String>,
        /// Only runs for which EXPR holds [default: [notebook] where].
        #[arg(long = "where", value_name = "EXPR")]
        filter: Option<String>,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-derive every cited value and every number written next to a run; exit 1 on a mismatch.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Entries, oldest first: what was concluded, without reading the whole file.
    Show {
        /// Only entries since then: a date, RFC 3339, or a duration ago (2h, 3d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only entries of this kind (bugs come with their status and reproducer history).
        #[arg(long, value_parser = KINDS)]
        kind: Option<String>,
        /// Only entries about this run.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
        /// Only the last N entries.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
        /// Print an array of entry objects.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Render { group_by, columns, filter, json } => {
            let index = ctx.index()?;
            let report = notebook::render(index.lab(), &index, &RenderOptions { group_by, columns, filter })?;
            if json {
                print_json(&report)?;
            } else {
                for p in &report.problems {
                    say!("labmate: warning: {p}");
                }
                let table = match report.tables {
                    0 => "no results block (put `<!-- labmate:results -->` and `<!-- /labmate:results -->` where the table goes)".to_string(),
                    _ => format!("results table: {} rows", report.rows),
                };
                let done = if report.written { "written" } else { "unchanged" };
                say!(
                    "labmate: {} references rendered ({} changed); {table}; notebook {done}",
                    report.references,
                    report.changed
                );
            }
            Ok(if report.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Action::Check { json } => {
            let index = ctx.index()?;
            let report = notebook::check(index.lab(), &index)?;
            if json {
                print_json(&report)?;
            } else {
                let mut out = String::new();
                for p in &report.problems {
                    let _ = writeln!(out, "problem: {p}");
                }
                for m in &report.mismatches {
                    let _ = writeln!(out, "{}", describe(m));
                }
                let n = report.mismatches.iter().filter(|m| m.amended_by.is_none()).count();
                let _ = writeln!(
                    out,
                    "notebook check: {} claims and {} references checked, {n} mismatch{}",
                    report.claims,
                    report.references,
                    if n == 1 { "" } else { "es" }
                );
                super::print_text(&out)?;
            }
            Ok(if report.failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Action::Show { since, kind, run, last, json } => {
            let lab = ctx.lab()?;
            let since = since
                .map(|s| clock::parse_time(&s, ctx.now()))
                .transpose()
                .map_err(|why| labmate::Error::invalid("since", format!("--since: {why}")))?;
            let run = run.map(|r| ctx.index().and_then(|i| i.resolve(&r))).transpose()?;
            let (mut entries, problems) = notebook::list(&lab, &Filter { since, kind, run })?;
            for p in &problems {
                say!("labmate: warning: notebook {p}");
            }
            if let Some(n) = last {
                entries.drain(..entries.len().saturating_sub(n));
            }
            // Disputed review items stay in sight until resolved: the agent
            // must see the pushback (on stderr with --json, which keeps its shape).
            let disputed = labmate::status::render_disputed(&labmate::review::disputed(&lab)?);
            if json {
                print_json(&entries)?;
                super::eprint_text(&disputed);
            } else {
                let mut text = render(&entries);
                text.push_str(&disputed);
                super::print_text(&text)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One mismatch, in a line or two.
pub(super) fn describe(m: &Mismatch) -> String {
    let at = match &m.entry {
        Some(e) => format!("{e} (line {})", m.line),
        None => format!("line {}", m.line),
    };
    let amended = m.amended_by.as_ref().map_or(String::new(), |a| format!(" [amended by {a}]"));
    match m.what {
        "claim" => format!(
            "{at}: {} {} is written as {}, the registry has {}{amended}\n  \"{}\"",
            m.run.as_deref().unwrap_or("?"),
            m.metric.as_deref().unwrap_or("?"),
            m.claimed,
            m.real,
            m.text
        ),
        _ if m.claimed.is_empty() => format!("{at}: {} {}{amended}", m.text, m.real),
        _ => format!("{at}: {} shows {}, the registry now gives {}{amended}", m.text, m.claimed, m.real),
    }
}

fn render(entries: &[EntryView]) -> String {
    if entries.is_empty() {
        return "no entries\n".into();
    }
    let mut out = String::new();
    for e in entries {
        let _ = write!(out, "{}  {} {}  {}  {}", e.id, &e.time[..10], &e.time[11..16], esc(&e.kind), esc(&e.author));
        if let Some(b) = &e.bug {
            let _ = write!(out, "  [{}]", b.status);
        }
        if !e.runs.is_empty() {
            let _ = write!(out, "  runs: {}", esc(&e.runs.join(", ")));
        }
        if let Some(a) = &e.amends {
            let _ = write!(out, "  amends {}", esc(a));
        }
        if !e.amended_by.is_empty() {
            let _ = write!(out, "  amended by {}", e.amended_by.join(", "));
        }
        out.push('\n');
        if let Some(b) = &e.bug {
            let _ = writeln!(out, "  reproducer: {}", esc(&notebook::bugs::shell_words(&b.repro)));
            let history: Vec<String> = b
                .history
                .iter()
                .map(|r| {
                    let commit =
                        r.commit.as_deref().map_or("no commit".to_string(), |c| c[..c.len().min(10)].to_string());
                    let dirty = if r.dirty { "+dirty" } else { "" };
                    format!("{} {} at {commit}{dirty}", if r.passed { "pass" } else { "fail" }, &r.time[..16])
                })
                .collect();
            match history.as_slice() {
                [] => out.push_str("  never run: `labmate repro` runs it\n"),
                h => {
                    let _ = writeln!(out, "  history: {}", h.join("; "));
                    if !b.reproduced {
                        out.push_str("  it has never failed: it does not reproduce the bug yet\n");
                    }
                }
            }
        }
        for line in notebook::refs::plain(&e.text).lines() {
            let _ = writeln!(out, "  {line}");
        }
        out.push('\n');
    }
    out
}
