//! `labmate import tensorboard|mlflow|wandb PATH...`: the runs another tool
//! recorded, as runs of the lab. Each source imported again adds only what
//! is new since, or nothing.

use std::collections::BTreeMap;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use labmate::Lab;
use labmate::import::{self, Existing, Imported, Outcome};
use labmate::text::escape_controls;
use serde_json::json;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    tool: Tool,
}

#[derive(clap::Subcommand)]
enum Tool {
    /// TensorBoard event files (*tfevents*) under each PATH: one run per folder holding them.
    Tensorboard(Common),
    /// MLflow stores: an mlruns/ folder (or the folder holding it), or sqlite:///path/mlflow.db.
    Mlflow(Common),
    /// wandb's offline run folders: a wandb/ folder, or one offline-run-* or run-* folder.
    Wandb(Common),
}

#[derive(clap::Args)]
struct Common {
    /// What to import.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
    /// Tag every imported run (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Print {"created", "updated", "unchanged", "points", "runs": [...]} instead of the summary.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let (tool, common) = match &args.tool {
        Tool::Tensorboard(c) => ("tensorboard", c),
        Tool::Mlflow(c) => ("mlflow", c),
        Tool::Wandb(c) => ("wandb", c),
    };
    for tag in &common.tags {
        if tag.trim().is_empty() {
            return Err(labmate::Error::invalid("tag", "--tag must not be empty").into());
        }
    }
    let lab = ctx.clocked(Lab::find_or_create(&ctx.cwd, ctx.lab_dir.as_deref())?);
    let existing = Existing::scan(&lab)?;
    let mut outcomes = Vec::new();
    for path in &common.paths {
        let spinner = progress(0, &format!("reading {path}"));
        let previous = |id: &str| existing.previous(tool, &source_of(ctx, path), id);
        let runs: Vec<Imported> = match tool {
            "tensorboard" => import::tensorboard::read(&ctx.cwd.join(path), &previous)?,
            "mlflow" => import::mlflow::read(&absolute_uri(ctx, path), &previous)?,
            _ => import::wandb::read(&ctx.cwd.join(path), &previous)?,
        };
        spinner.finish_and_clear();
        if runs.is_empty() {
            let why = format!("nothing to import from {path}: it holds no {tool} runs");
            return Err(labmate::Error::invalid("import", why).into());
        }
        let bar = progress(runs.len() as u64, &format!("writing runs from {path}"));
        for run in &runs {
            outcomes.push(import::write(&lab, &existing, run, &common.tags)?);
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    let count = |change: &str| outcomes.iter().filter(|o| o.change == change).count();
    if count("empty") == outcomes.len() {
        let why: Vec<String> = outcomes.iter().flat_map(|o| o.warnings.iter().cloned()).collect();
        let why = if why.is_empty() { "no point, config or end in it".to_string() } else { why.join("; ") };
        return Err(labmate::Error::invalid("import", format!("nothing could be read: {why}")).into());
    }
    let points: u64 = outcomes.iter().map(|o| o.points).sum();
    if common.json {
        let value = json!({
            "tool": tool,
            "created": count("created"),
            "updated": count("updated"),
            "unchanged": count("unchanged"),
            "points": points,
            "runs": outcomes,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    super::print_text(&summary(tool, &outcomes, points, count))?;
    Ok(ExitCode::SUCCESS)
}

/// The source as the readers name it, to find an earlier import of it.
fn source_of(ctx: &Context, path: &str) -> String {
    if tool_uri(path) { path.to_string() } else { ctx.cwd.join(path).display().to_string() }
}

fn tool_uri(path: &str) -> bool {
    path.contains("://")
}

/// An MLflow store as a URI or an absolute path.
fn absolute_uri(ctx: &Context, path: &str) -> String {
    source_of(ctx, path)
}

fn progress(len: u64, message: &str) -> ProgressBar {
    let bar = if len == 0 { ProgressBar::new_spinner() } else { ProgressBar::new(len) };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if len > 0 {
        if let Ok(style) = ProgressStyle::with_template("{msg} {bar:30} {pos}/{len}") {
            bar.set_style(style);
        }
    }
    bar.set_message(message.to_string());
    bar
}

fn summary(tool: &str, outcomes: &[Outcome], points: u64, count: impl Fn(&str) -> usize) -> String {
    let mut s = format!(
        "imported from {tool}: {} created, {} updated, {} unchanged; {points} points\n",
        plural(count("created"), "run"),
        count("updated"),
        count("unchanged"),
    );
    if outcomes.iter().all(|o| o.change == "unchanged") && !outcomes.is_empty() {
        s.push_str("nothing new: every run was imported before and has not changed at its source\n");
    }
    let width = outcomes.iter().map(|o| display_name(o).chars().count()).max().unwrap_or(0);
    for o in outcomes {
        if o.change == "empty" {
            s.push_str(&format!(
                "  {:12}  {:width$}  not imported: nothing in it could be read\n",
                "-",
                display_name(o)
            ));
            continue;
        }
        s.push_str(&format!(
            "  {}  {:width$}  {:9}  {}\n",
            o.run,
            display_name(o),
            o.change,
            plural(o.points as usize, "point")
        ));
    }
    let mut skipped: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for o in outcomes {
        for (kind, tags) in &o.skipped {
            for (tag, n) in tags {
                *skipped.entry(kind).or_default().entry(tag).or_default() += n;
            }
        }
    }
    for (kind, tags) in skipped {
        let list: Vec<String> = tags.iter().map(|(t, n)| format!("{} ({n})", escape_controls(t))).collect();
        s.push_str(&format!("skipped {kind}: {} (labmate keeps scalars)\n", list.join(", ")));
    }
    for o in outcomes {
        for w in &o.warnings {
            s.push_str(&format!("warning: {}: {}\n", o.run, escape_controls(w)));
        }
    }
    s
}

fn display_name(o: &Outcome) -> String {
    escape_controls(o.name.as_deref().unwrap_or(&o.source_id)).into_owned()
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
