//! `labmate diffstat [RUN] [--since RUN|COMMIT]`: how much the code changed
//! (an architecture checkpoint), in files, lines and new dependencies.

use std::fmt::Write as _;
use std::process::ExitCode;

use labmate::diffstat::{self, CodeState, DiffStat};
use labmate::text::escape_controls as esc;

use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    /// The run whose code state to measure (default: the working tree).
    run: Option<String>,
    /// Measure against this run's code state or this commit (default: the baseline's run, else the
    /// run before).
    #[arg(long, value_name = "RUN|COMMIT")]
    since: Option<String>,
    /// Print the diffstat object.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let lab = index.lab().clone();
    let to = match &args.run {
        Some(r) => CodeState::Run(index.resolve(r)?),
        None => CodeState::WorkingTree,
    };
    let (from, label) = match &args.since {
        Some(s) => match index.resolve(s) {
            Ok(id) => (CodeState::Run(id.clone()), format!("run {id}")),
            Err(e @ labmate::Error::AmbiguousRun { .. }) => return Err(e.into()),
            Err(_) => (CodeState::Commit(s.clone()), format!("commit {s}")),
        },
        None => {
            let before = match &to {
                CodeState::Run(id) => Some(id.as_str()),
                _ => None,
            };
            diffstat::default_base(&lab, &index, before)?.ok_or_else(|| {
                labmate::Error::invalid(
                    "since",
                    "nothing to compare with: no baseline and no earlier run with a git state; give --since RUN|COMMIT",
                )
            })?
        }
    };
    let mut stat = diffstat::diffstat(&lab, &from, &to)?;
    stat.from = label;
    if args.json {
        print_json(&stat)?;
    } else {
        super::print_text(&render(&stat))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn render(d: &DiffStat) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} since {}: {}", d.to, d.from, d.brief());
    let paths: Vec<_> = d.files.iter().map(|f| esc(&f.path)).collect();
    let width = paths.iter().map(|p| p.chars().count()).max().unwrap_or(0);
    for (f, path) in d.files.iter().zip(&paths) {
        let lines = match (f.added, f.removed) {
            (Some(a), Some(r)) => format!("+{a} -{r}"),
            _ => "binary".into(),
        };
        let mark = match f.status.as_str() {
            "added" => "  (new)",
            "deleted" => "  (deleted)",
            _ => "",
        };
        let _ = writeln!(s, "  {path:width$}  {lines}{mark}");
    }
    for (title, deps) in [("new dependencies", &d.new_dependencies), ("removed dependencies", &d.removed_dependencies)]
    {
        if !deps.is_empty() {
            let _ = writeln!(s, "{title}:");
            for dep in deps.iter() {
                let _ = writeln!(s, "  {}  ({})", esc(&dep.spec), esc(&dep.file));
            }
        }
    }
    s
}
