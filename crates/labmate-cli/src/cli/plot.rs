//! `labmate plot RUN... --metric KEY -o FILE.svg|FILE.png`: metric curves,
//! one per run, or one per group (mean with a min–max band).

use std::path::PathBuf;
use std::process::ExitCode;

use labmate::axis::Axis;
use labmate::charts;
use labmate::plot::{self, Format};
use labmate::query::Expr;
use labmate::registry;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Runs to draw (ids, prefixes, names); with --where, added to its selection.
    runs: Vec<String>,
    /// Metrics to draw, one panel each.
    #[arg(long = "metric", value_name = "KEY", required = true)]
    metrics: Vec<String>,
    /// Runs for which EXPR holds.
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// The x axis: step, time (seconds since the run's first point) or a metric; by default the
    /// metric's step metric when every run drawn has the same one (its metric definitions), else step.
    #[arg(long, value_name = "AXIS")]
    x: Option<String>,
    /// Exponential smoothing weight of each new point, in (0, 1]; 1 draws the raw curve.
    #[arg(long, value_name = "ALPHA")]
    smooth: Option<f64>,
    /// A logarithmic y axis.
    #[arg(long)]
    log_y: bool,
    /// Draw one curve per group of runs sharing these paths' values: their mean, with a min–max band.
    #[arg(long = "group-by", value_name = "PATHS")]
    group_by: Vec<String>,
    /// The image to write: .svg or .png.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Image width in pixels.
    #[arg(long, default_value_t = 900)]
    width: u32,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let out = ctx.cwd.join(&args.output);
    let format = Format::from_path(&out)?;
    let index = ctx.index()?;
    let mut runs = match &args.filter {
        Some(f) => registry::select(&index, Some(&Expr::parse(f)?), &[], None)?,
        None => Vec::new(),
    };
    for r in &args.runs {
        let id = index.resolve(r)?;
        if !runs.iter().any(|x| x.id == id) {
            runs.push(index.run(&id)?);
        }
    }
    if runs.is_empty() {
        return Err(match &args.filter {
            Some(f) => labmate::Error::not_found("runs", format!("no run matches --where '{f}'")),
            None => labmate::Error::invalid("runs", "no runs to plot: name some, or select them with --where"),
        }
        .into());
    }
    let options = charts::Options {
        x: args.x.as_deref().map(|x| if x == "relative" { Axis::Time } else { Axis::named(x) }),
        smooth: args.smooth,
        log_y: args.log_y,
        group_by: registry::parse_paths(&args.group_by, &runs, "--group-by")?,
        width: args.width,
    };
    let figure = charts::figure(&index, &runs, &args.metrics, &options)?;
    plot::render(&figure, format, &out)?;
    say!("labmate: wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
