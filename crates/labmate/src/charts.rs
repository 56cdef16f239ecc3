//! Metric curves of runs, or of groups of runs, as a plot [`Figure`]: what
//! `labmate plot` draws and what the demo and the notebook embed.

use crate::axis::{self, Axis, RunAxes};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::model::Run;
use crate::plot::{self, Curve, Figure, Panel};
use crate::query::{Path, check_path};
use crate::registry;

/// Points a group's curve is computed on.
const GRID: usize = 1000;

/// How to draw.
#[derive(Debug, Clone)]
pub struct Options {
    /// The x axis: the step, time (seconds since each run's first point) or
    /// a metric. None: each panel's key's step metric when every run drawn
    /// has the same one, else the step.
    pub x: Option<Axis>,
    /// Exponential smoothing weight of each new point, in (0, 1].
    pub smooth: Option<f64>,
    pub log_y: bool,
    /// One curve per group of runs sharing these paths' values.
    pub group_by: Vec<Path>,
    pub width: u32,
}

/// One panel per metric; one curve per run, or per group (their mean, with a min–max band).
pub fn figure(index: &Index, runs: &[Run], metrics: &[String], opt: &Options) -> Result<Figure> {
    if let Some(a) = opt.smooth.filter(|a| !(*a > 0.0 && *a <= 1.0)) {
        return Err(Error::invalid("smooth", format!("--smooth {a}: use a weight in (0, 1]")));
    }
    if let Some(Axis::Metric(x)) = &opt.x {
        let path = Path::Metric { key: x.clone(), field: "last".into() };
        check_path(&path, runs).map_err(|e| e.within(format!("--x {x}")))?;
    }
    let mut panels = Vec::new();
    for key in metrics {
        let path = Path::Metric { key: key.clone(), field: "last".into() };
        check_path(&path, runs).map_err(|e| e.within(format!("--metric {key}")))?;
        let drawn: Vec<&Run> = runs.iter().filter(|r| r.metrics.contains_key(key)).collect();
        let x = opt.x.clone().unwrap_or_else(|| common_axis(&drawn, key));
        let series = |run: &Run| -> Result<Vec<(f64, f64)>> {
            let pts = index.series(&run.id, key)?;
            if matches!(x, Axis::Metric(_)) {
                let (_, placed) = RunAxes::new(index, run).place(key, pts, Some(&x), 0.0, (None, None))?;
                return Ok((0..placed.len()).map(|i| (placed.x(i), placed.point(i).value)).collect());
            }
            let t0 = pts.iter().map(|p| p.time).find(|t| t.is_finite()).unwrap_or(0.0);
            let x_time = matches!(x, Axis::Time | Axis::Relative);
            Ok(pts.iter().map(|p| (if x_time { p.time - t0 } else { p.step as f64 }, p.value)).collect())
        };
        let mut curves = Vec::new();
        if opt.group_by.is_empty() {
            // Whole series: smoothing sees every point, and the legend counts
            // every non-finite one; drawing thins them (`plot::thin`).
            for r in &drawn {
                let points = series(r)?;
                curves.push(Curve { label: r.name.clone().unwrap_or_else(|| r.id.clone()), points, band: None });
            }
        } else {
            for g in registry::group(index, runs, &opt.group_by, &[], "seed") {
                let members: Vec<Vec<(f64, f64)>> = g
                    .runs
                    .iter()
                    .filter_map(|id| runs.iter().find(|r| &r.id == id))
                    .map(series)
                    .collect::<Result<_>>()?;
                let label = g.key.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                curves.push(mean_curve(format!("{label} (n={})", members.len()), &members));
            }
        }
        if let Some(alpha) = opt.smooth {
            for c in &mut curves {
                c.points = plot::smooth(&c.points, alpha);
            }
        }
        let x_label = match &x {
            Axis::Step => "step".to_string(),
            Axis::Time | Axis::Relative => "time (s)".to_string(),
            Axis::Metric(k) => k.clone(),
        };
        panels.push(Panel { title: key.clone(), x_label, y_label: key.clone(), log_y: opt.log_y, curves });
    }
    Ok(Figure { panels, width: opt.width, height_per_panel: plot::DEFAULT_PANEL_HEIGHT })
}

/// The axis a panel of `key` is drawn on by default: the key's step metric
/// when every run drawn has the same one, else the step.
fn common_axis(drawn: &[&Run], key: &str) -> Axis {
    let mut each = drawn.iter().map(|r| axis::default_for(r, key));
    match each.next() {
        Some(first) if each.all(|a| a == first) => first,
        _ => Axis::Step,
    }
}

/// A group's curve on a common grid of x: the mean of the runs' latest
/// values at each x, with their min and max as the band. The grid is the
/// x the runs logged at when they are few (a metric logged every 10 steps
/// is drawn at those steps, not held flat between them), else `GRID` even
/// steps. A non-finite value in any run makes that point non-finite, so it
/// is marked, not hidden.
fn mean_curve(label: String, members: &[Vec<(f64, f64)>]) -> Curve {
    let (lo, hi) =
        members.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| (lo.min(*x), hi.max(*x)));
    if !(lo.is_finite() && hi.is_finite()) {
        return Curve { label, points: Vec::new(), band: None };
    }
    let mut logged: Vec<f64> = members.iter().flatten().map(|(x, _)| *x).filter(|x| x.is_finite()).collect();
    logged.sort_by(f64::total_cmp);
    logged.dedup();
    let grid: Vec<f64> = if logged.len() <= GRID {
        logged
    } else {
        (0..GRID).map(|i| lo + (hi - lo) * i as f64 / (GRID - 1) as f64).collect()
    };
    let mut points = Vec::with_capacity(grid.len());
    let mut band = Vec::with_capacity(grid.len());
    for x in grid {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_drawn_at_the_steps_its_runs_logged() {
        let a = vec![(10.0, 4.0), (20.0, 2.0), (30.0, 1.0)];
        let b = vec![(10.0, 6.0), (20.0, 4.0), (30.0, f64::NAN)];
        let c = mean_curve("g".into(), &[a, b]);
        assert_eq!(c.points[..2], [(10.0, 5.0), (20.0, 3.0)]);
        assert!(c.points[2].0 == 30.0 && c.points[2].1.is_nan(), "a NaN in one run is marked: {:?}", c.points);
        assert_eq!(c.band.unwrap(), [(10.0, 4.0, 6.0), (20.0, 2.0, 4.0)]);
        let long: Vec<(f64, f64)> = (0..5000).map(|i| (i as f64, 1.0)).collect();
        assert_eq!(mean_curve("l".into(), &[long]).points.len(), GRID);
    }
}
