//! `labmate plot RUN... --metric KEY -o FILE.svg|FILE.png`: metric curves,
//! one per run, or one per group (mean with a min–max band).

use std::path::PathBuf;
use std::process::ExitCode;

use labmate::plot::{self, Curve, Figure, Format, Panel};
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
    /// The x axis: step or time (seconds since the run's first point).
    #[arg(long, default_value = "step", value_parser = ["step", "time"])]
    x: String,
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

/// Points a group's curve is computed on.
const GRID: usize = 1000;

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let out = ctx.cwd.join(&args.output);
    let format = Format::from_path(&out).map_err(labmate::Error::Invalid)?;
    if let Some(a) = args.smooth.filter(|a| !(*a > 0.0 && *a <= 1.0)) {
        return Err(labmate::Error::Invalid(format!("--smooth {a}: use a weight in (0, 1]")).into());
    }
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
        return Err(labmate::Error::Invalid("no runs to plot: name some, or select them with --where".into()).into());
    }
    let by = registry::parse_paths(&args.group_by, &runs, "--group-by")?;
    let mut panels = Vec::new();
    for key in &args.metrics {
        if !runs.iter().any(|r| r.metrics.contains_key(key)) {
            let known: Vec<String> = runs.iter().flat_map(|r| r.metrics.keys().cloned()).collect();
            let path = labmate::query::Path::Metric { key: key.clone(), field: "last".into() };
            let known: Vec<String> = known.into_iter().map(|k| format!("metrics.{k}.last")).collect();
            let why = labmate::query::check_known(&path, &known).err().unwrap_or_default();
            return Err(labmate::Error::Invalid(format!("--metric {key}: {why}")).into());
        }
        let series = |id: &str| -> labmate::Result<Vec<(f64, f64)>> {
            let pts = index.series(id, key)?;
            let t0 = pts.iter().map(|p| p.time).find(|t| t.is_finite()).unwrap_or(0.0);
            Ok(pts.iter().map(|p| (if args.x == "time" { p.time - t0 } else { p.step as f64 }, p.value)).collect())
        };
        let mut curves = Vec::new();
        if by.is_empty() {
            for r in runs.iter().filter(|r| r.metrics.contains_key(key)) {
                let points = plot::thin(&series(&r.id)?, 4 * GRID);
                curves.push(Curve { label: r.name.clone().unwrap_or_else(|| r.id.clone()), points, band: None });
            }
        } else {
            for g in registry::group(&index, &runs, &by, &[], "seed") {
                let members: Vec<Vec<(f64, f64)>> =
                    g.runs.iter().map(|id| series(id)).collect::<labmate::Result<_>>()?;
                let label = g.key.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                curves.push(mean_curve(format!("{label} (n={})", members.len()), &members));
            }
        }
        if let Some(alpha) = args.smooth {
            for c in &mut curves {
                c.points = plot::smooth(&c.points, alpha);
            }
        }
        let x_label = if args.x == "time" { "time (s)".to_string() } else { "step".to_string() };
        panels.push(Panel { title: key.clone(), x_label, y_label: key.clone(), log_y: args.log_y, curves });
    }
    let figure = Figure { panels, width: args.width, height_per_panel: 500 };
    plot::render(&figure, format, &out).map_err(labmate::Error::Invalid)?;
    eprintln!("labmate: wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// A group's curve on a common grid of x: the mean of the runs' latest
/// values at each x, with their min and max as the band. A non-finite value
/// in any run makes that point non-finite, so it is marked, not hidden.
fn mean_curve(label: String, members: &[Vec<(f64, f64)>]) -> Curve {
    let (lo, hi) =
        members.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| (lo.min(*x), hi.max(*x)));
    if !(lo.is_finite() && hi.is_finite()) {
        return Curve { label, points: Vec::new(), band: None };
    }
    let steps = if hi > lo { GRID } else { 1 };
    let mut points = Vec::with_capacity(steps);
    let mut band = Vec::with_capacity(steps);
    for i in 0..steps {
        let x = lo + (hi - lo) * i as f64 / (steps.max(2) - 1) as f64;
        let values: Vec<f64> = members
            .iter()
            .filter_map(|s| {
                let at = s.partition_point(|(px, _)| *px <= x);
                at.checked_sub(1).map(|j| s[j].1)
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        if values.iter().any(|v| !v.is_finite()) {
            points.push((x, values.iter().copied().find(|v| !v.is_finite()).unwrap_or(f64::NAN)));
            continue;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let (mn, mx) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        points.push((x, mean));
        band.push((x, mn, mx));
    }
    Curve { label, points, band: Some(band) }
}
