//! `labmate repro [BUG]`: runs bugs' reproducers and records pass or fail
//! with the code state; a bug is fixed once its reproducer failed at one
//! code state and passed at a later one.

use std::process::ExitCode;

use labmate::clock;
use labmate::notebook::{self, Bug, bugs::log_path};
use serde_json::json;

use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    /// The bug: its entry id or a unique prefix [default: every open bug].
    bug: Option<String>,
    /// Kill a reproducer that runs longer (it then fails).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    timeout: String,
    /// Print the runs as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = ctx.lab()?;
    let timeout = clock::parse_duration(&args.timeout)
        .map_err(|why| labmate::Error::invalid("timeout", format!("--timeout: {why}")))?;
    let all = notebook::bugs(&lab)?;
    let targets: Vec<&Bug> = match &args.bug {
        Some(q) => {
            let entries = notebook::entries(&lab)?;
            let entry = notebook::find_entry(&entries, q)?;
            if entry.kind != "bug" {
                return Err(labmate::Error::invalid(
                    "bug",
                    format!("{} is a {} entry, not a bug", entry.id, entry.kind),
                )
                .into());
            }
            all.iter().filter(|b| b.entry.id == entry.id).collect()
        }
        None => all.iter().filter(|b| b.status == "open").collect(),
    };
    if targets.is_empty() && !args.json {
        say!("labmate: no open bugs");
    }
    let mut results = Vec::new();
    let mut all_passed = true;
    for bug in targets {
        let run = notebook::run_repro(&lab, &bug.entry, timeout)?;
        all_passed &= run.passed;
        let after = notebook::bugs(&lab)?;
        let now = after.iter().find(|b| b.entry.id == bug.entry.id).expect("the bug is still there");
        let log = log_path(&lab, &bug.entry.id);
        if args.json {
            results.push(json!({
                "bug": run.bug, "passed": run.passed, "exit_code": run.exit_code, "timed_out": run.timed_out,
                "commit": run.commit, "dirty": run.dirty, "status": now.status, "reproduced": now.reproduced,
                "log": log.display().to_string(),
            }));
            continue;
        }
        let how = match (run.passed, run.exit_code, run.timed_out) {
            (true, _, _) => "pass".to_string(),
            (false, _, true) => format!("FAIL (timed out after {})", clock::human_duration(timeout)),
            (false, Some(c), _) => format!("FAIL (exit {c})"),
            (false, None, _) => "FAIL (killed by a signal)".to_string(),
        };
        let commit = run.commit.as_deref().map_or("no commit".to_string(), |c| c[..c.len().min(10)].to_string());
        let dirty = if run.dirty { " (dirty)" } else { "" };
        let mut out = format!("{}: {how} at {commit}{dirty}; bug {}\n", run.bug, now.status);
        if !run.passed {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(5)..] {
                out.push_str(&format!("  | {line}\n"));
            }
            out.push_str(&format!("  output: {}\n", log.display()));
        }
        super::print_text(&out)?;
        if run.passed && !now.reproduced {
            say!("labmate: warning: {} has never failed: its reproducer does not reproduce the bug yet", run.bug);
        }
    }
    if args.json {
        print_json(&results)?;
    }
    Ok(if all_passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
