//! The x axis a series is read against: its steps, wall time, time since
//! the run's first point, or another metric (wandb's step metric); which
//! one each key of a run gets by default from its metric definitions; and
//! a series' points placed on an axis, in x order, within a range.
//! `metrics`, `plot` and the dashboard's API all place points here.

use std::collections::HashMap;
use std::ops::Range;

use crate::error::Result;
use crate::index::Index;
use crate::model::{Point, Run};
use crate::record::MetricDef;

/// What a series' x is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Axis {
    Step,
    /// Wall time, seconds since the epoch.
    Time,
    /// Seconds since an origin: the run's first point.
    Relative,
    /// Another metric's value at the point's step.
    Metric(String),
}

impl Axis {
    /// `step`, `time`, `relative`, else the metric of that name.
    pub fn named(text: &str) -> Axis {
        match text {
            "step" => Axis::Step,
            "time" => Axis::Time,
            "relative" => Axis::Relative,
            key => Axis::Metric(key.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Axis::Step => "step",
            Axis::Time => "time",
            Axis::Relative => "relative",
            Axis::Metric(key) => key,
        }
    }
}

/// The definition that says how `key` is read: the one of that very name,
/// else the last one whose glob fits it.
pub fn definition<'a>(defs: &'a [MetricDef], key: &str) -> Option<&'a MetricDef> {
    defs.iter()
        .find(|d| d.metric == key)
        .or_else(|| defs.iter().rev().find(|d| d.metric.contains('*') && d.matches(key)))
}

/// The step metric `key` is plotted against by its definitions; never the key itself.
pub fn step_metric<'a>(defs: &'a [MetricDef], key: &str) -> Option<&'a str> {
    definition(defs, key).and_then(|d| d.step_metric.as_deref()).filter(|x| *x != key)
}

/// The axis `key` of `run` is read against unless one is asked for: its
/// step metric, when the run logged that metric; else its steps.
pub fn default_for(run: &Run, key: &str) -> Axis {
    match step_metric(&run.metric_defs, key) {
        Some(x) if run.metrics.contains_key(x) => Axis::Metric(x.to_string()),
        _ => Axis::Step,
    }
}

/// Where the x of each point comes from.
#[derive(Debug, Clone, Copy)]
pub enum On<'a> {
    Step,
    Time,
    /// Seconds after `origin`.
    Relative {
        origin: f64,
    },
    /// The x metric's series in step order. With `sync`, a point takes its
    /// value at the latest step at or before its own (wandb's step_sync);
    /// without, only a value at the same step.
    Metric {
        x: &'a [Point],
        sync: bool,
    },
}

/// A series' points on an axis: those in the range asked for, with their
/// x, in x order. Points without an x (none yet of the x metric, or a
/// non-finite one) are left out.
#[derive(Debug, Clone)]
pub struct Placed {
    points: Vec<Point>,
    at: At,
}

#[derive(Debug, Clone)]
enum At {
    /// x grows with the series: the points in `range` are the ones placed,
    /// and each x follows from its point.
    Window { range: Range<usize>, x: fn(&Point, f64) -> f64, origin: f64 },
    /// The points were placed one by one: `points` are those kept, sorted
    /// by these x.
    Copied(Vec<f64>),
}

/// Places `points` (in step order) on `on`, keeping those whose x is within
/// `from..=to` (either end open when None).
pub fn place(points: Vec<Point>, on: On, from: Option<f64>, to: Option<f64>) -> Placed {
    let in_range = |x: f64| from.is_none_or(|f| x >= f) && to.is_none_or(|t| x <= t);
    let (x, origin): (fn(&Point, f64) -> f64, f64) = match on {
        On::Step => (|p, _| p.step as f64, 0.0),
        On::Time => (|p, _| p.time, 0.0),
        On::Relative { origin } => (|p, o| p.time - o, origin),
        On::Metric { x: xs, sync } => return copied(&points, xs, sync, in_range),
    };
    // Steps always grow along a series, times nearly always: then the range
    // is a slice found by bisection, and nothing is copied.
    let grows = matches!(on, On::Step) || points.windows(2).all(|w| w[0].time <= w[1].time && w[0].time.is_finite());
    if grows {
        let lo = from.map_or(0, |f| points.partition_point(|p| x(p, origin) < f));
        let hi = to.map_or(points.len(), |t| points.partition_point(|p| x(p, origin) <= t)).max(lo);
        return Placed { points, at: At::Window { range: lo..hi, x, origin } };
    }
    let mut placed: Vec<(f64, Point)> =
        points.into_iter().map(|p| (x(&p, origin), p)).filter(|(x, _)| x.is_finite() && in_range(*x)).collect();
    placed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (xs, points) = placed.into_iter().unzip();
    Placed { points, at: At::Copied(xs) }
}

/// Points paired with another metric's values, the two series walked side by side.
fn copied(points: &[Point], xs: &[Point], sync: bool, in_range: impl Fn(f64) -> bool) -> Placed {
    let mut placed: Vec<(f64, Point)> = Vec::with_capacity(points.len());
    let mut next = 0;
    for p in points {
        // The x points at or before this step: the last of them is its x.
        while next < xs.len() && xs[next].step <= p.step {
            next += 1;
        }
        let Some(x) = next.checked_sub(1).map(|i| xs[i]) else { continue };
        if (sync || x.step == p.step) && x.value.is_finite() && in_range(x.value) {
            placed.push((x.value, *p));
        }
    }
    if placed.windows(2).any(|w| w[0].0 > w[1].0) {
        placed.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let (xs, points) = placed.into_iter().unzip();
    Placed { points, at: At::Copied(xs) }
}

impl Placed {
    pub fn len(&self) -> usize {
        match &self.at {
            At::Window { range, .. } => range.len(),
            At::Copied(xs) => xs.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th point placed.
    pub fn point(&self, i: usize) -> &Point {
        match &self.at {
            At::Window { range, .. } => &self.points[range.start + i],
            At::Copied(_) => &self.points[i],
        }
    }

    /// The `i`th point's x.
    pub fn x(&self, i: usize) -> f64 {
        match &self.at {
            At::Window { range, x, origin } => x(&self.points[range.start + i], *origin),
            At::Copied(xs) => xs[i],
        }
    }

    /// Which points to show so that about `target` remain, by the lab's one
    /// downsampling rule ([`crate::series::keep`]): every spike and every
    /// kind of non-finite value stays. `None` keeps them all.
    pub fn keep(&self, target: Option<usize>) -> Vec<usize> {
        match target {
            Some(n) => crate::series::keep(self.len(), n, |i| {
                let v = self.point(i).value;
                (v, v)
            }),
            None => (0..self.len()).collect(),
        }
    }
}

/// One run's series placed on their axes, each series used as an x read
/// from the index once.
pub struct RunAxes<'a> {
    index: &'a Index,
    run: &'a Run,
    xs: HashMap<String, Vec<Point>>,
}

impl<'a> RunAxes<'a> {
    pub fn new(index: &'a Index, run: &'a Run) -> RunAxes<'a> {
        RunAxes { index, run, xs: HashMap::new() }
    }

    /// `key`'s series (`points`, in step order) on `axis`, or on its
    /// default axis when None; and the axis it is on. `origin` is where
    /// relative time starts.
    pub fn place(
        &mut self,
        key: &str,
        points: Vec<Point>,
        axis: Option<&Axis>,
        origin: f64,
        range: (Option<f64>, Option<f64>),
    ) -> Result<(Axis, Placed)> {
        let axis = axis.cloned().unwrap_or_else(|| default_for(self.run, key));
        let on = match &axis {
            Axis::Step => On::Step,
            Axis::Time => On::Time,
            Axis::Relative => On::Relative { origin },
            Axis::Metric(x) => {
                if !self.xs.contains_key(x) {
                    let series = self.index.series(&self.run.id, x)?;
                    self.xs.insert(x.clone(), series);
                }
                let sync = definition(&self.run.metric_defs, key).is_none_or(|d| d.step_sync != Some(false));
                On::Metric { x: &self.xs[x], sync }
            }
        };
        let placed = place(points, on, range.0, range.1);
        Ok((axis, placed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(metric: &str, step_metric: Option<&str>) -> MetricDef {
        MetricDef {
            metric: metric.into(),
            step_metric: step_metric.map(String::from),
            summary: None,
            goal: None,
            hidden: None,
            step_sync: None,
        }
    }

    fn pts(of: &[(i64, f64)]) -> Vec<Point> {
        of.iter().map(|&(step, value)| Point { step, time: 100.0 + step as f64, value }).collect()
    }

    fn xs_and_steps(p: &Placed) -> Vec<(f64, i64)> {
        (0..p.len()).map(|i| (p.x(i), p.point(i).step)).collect()
    }

    #[test]
    fn a_name_wins_over_globs_and_the_latest_glob_over_earlier_ones() {
        let defs = [
            def("*", Some("global_step")),
            def("train/*", Some("train/step")),
            def("val/loss", Some("epoch")),
            def("val/*", None),
            def("train/*x", Some("train/tokens")),
        ];
        assert_eq!(step_metric(&defs, "train/loss"), Some("train/step"));
        assert_eq!(step_metric(&defs, "train/a/x"), Some("train/tokens"), "the latest glob that fits");
        assert_eq!(step_metric(&defs, "val/loss"), Some("epoch"), "its own definition, though a later glob fits");
        assert_eq!(step_metric(&defs, "val/acc"), None, "the latest glob that fits says none");
        assert_eq!(step_metric(&defs, "lr"), Some("global_step"));
        assert_eq!(step_metric(&defs, "global_step"), None, "never its own axis");
        assert_eq!(step_metric(&defs, "train/step"), None, "train/step is train/*'s own step metric");
        assert_eq!(step_metric(&[], "loss"), None);
    }

    #[test]
    fn on_a_metric_each_point_takes_its_latest_value_at_or_before_its_step() {
        let x = pts(&[(2, 20.0), (4, 40.0), (4, 41.0), (7, f64::NAN), (9, 90.0)]);
        let y = pts(&[(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4), (7, 0.7), (8, 0.8), (9, 0.9), (12, 1.2)]);
        let placed = place(y.clone(), On::Metric { x: &x, sync: true }, None, None);
        // Step 1 comes before any x; 7 and 8 take the NaN at 7; 4 takes the later value at 4.
        assert_eq!(xs_and_steps(&placed), [(20.0, 2), (20.0, 3), (41.0, 4), (90.0, 9), (90.0, 12)]);
        let exact = place(y.clone(), On::Metric { x: &x, sync: false }, None, None);
        assert_eq!(xs_and_steps(&exact), [(20.0, 2), (41.0, 4), (90.0, 9)]);
        let ranged = place(y, On::Metric { x: &x, sync: true }, Some(30.0), Some(90.0));
        assert_eq!(xs_and_steps(&ranged), [(41.0, 4), (90.0, 9), (90.0, 12)]);
        // An x that falls puts the points in x order.
        let falling = pts(&[(0, 3.0), (1, 2.0), (2, 1.0)]);
        let placed = place(pts(&[(0, 0.0), (1, 1.0), (2, 2.0)]), On::Metric { x: &falling, sync: true }, None, None);
        assert_eq!(xs_and_steps(&placed), [(1.0, 2), (2.0, 1), (3.0, 0)]);
    }

    #[test]
    fn steps_and_times_in_order_are_a_window_of_the_series() {
        let y = pts(&[(0, 1.0), (5, 2.0), (10, 3.0), (15, 4.0)]);
        let on_steps = place(y.clone(), On::Step, Some(5.0), Some(12.0));
        assert_eq!(xs_and_steps(&on_steps), [(5.0, 5), (10.0, 10)]);
        assert!(matches!(on_steps.at, At::Window { .. }));
        let relative = place(y.clone(), On::Relative { origin: 100.0 }, Some(10.0), None);
        assert_eq!(xs_and_steps(&relative), [(10.0, 10), (15.0, 15)]);
        let mut shuffled = y;
        shuffled[1].time = 200.0;
        let on_time = place(shuffled, On::Time, None, None);
        assert_eq!(xs_and_steps(&on_time), [(100.0, 0), (110.0, 10), (115.0, 15), (200.0, 5)]);
        assert_eq!(on_time.keep(Some(2)).len(), 4, "few points are all kept");
    }
}
