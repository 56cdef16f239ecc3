//! `labmate reindex`: rebuild the derived index from the run folders.

use std::process::ExitCode;

use labmate::Index;

use super::Context;

pub fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let start = std::time::Instant::now();
    let (index, report) = Index::rebuild(&ctx.lab()?)?;
    for problem in &report.problems {
        say!("labmate: warning: {problem}");
    }
    say!(
        "labmate: reindexed {} runs, {} points in {:.2}s",
        report.runs_updated,
        report.points,
        start.elapsed().as_secs_f64()
    );
    if index.is_outside_lab() {
        say!("labmate: the index is kept outside the lab, in {}", index.path().display());
    }
    Ok(ExitCode::SUCCESS)
}
