//! Metric series in step order, and the one downsampling rule (`metrics
//! --points`, plots, charts), which keeps every spike and every kind of
//! non-finite value. The index stores series in the compact form of
//! [`crate::chunk`].

use crate::model::Point;

/// Reduces `points` (in step order) to about `target` points by [`keep`]'s
/// rule: every spike and every kind of non-finite value stays.
pub fn downsample(points: &[Point], target: usize) -> Vec<Point> {
    keep(points.len(), target, |i| (points[i].value, points[i].value)).into_iter().map(|i| points[i]).collect()
}

/// The one downsampling rule of the lab, for `metrics --points`, plots and
/// charts: which of `n` points, in order, to keep so that about `target`
/// remain. `bounds(i)` is point `i`'s value as (the one judged lowest, the
/// one judged highest): a curve gives its value twice, a band its lower and
/// upper edge.
///
/// The first and last points stay. The points between are cut into
/// `(target - 2) / 2` buckets (at least one) of equal count, and each bucket
/// keeps
/// - its lowest and its highest finite point, so that a spike never
///   vanishes, and
/// - its first point of each non-finite kind (NaN, +Inf, -Inf; a point is
///   non-finite when either of its bounds is, of the kind of the first such,
///   lower bound first), so that a non-finite value stays visible where it
///   happened without a long stretch of them defeating the reduction.
///
/// So at most 5 points a bucket, 2 where every value is finite. Indices come
/// back ascending. `target` 0, or `n` at most `target` (or 4), keeps all.
pub fn keep(n: usize, target: usize, bounds: impl Fn(usize) -> (f64, f64)) -> Vec<usize> {
    if target == 0 || n <= target.max(4) {
        return (0..n).collect();
    }
    let buckets = (target.saturating_sub(2) / 2).max(1);
    let inner = n - 2;
    let mut kept = Vec::with_capacity(target + 16);
    kept.push(0);
    for b in 0..buckets {
        // Exact integer bounds: every inner point falls in exactly one bucket.
        let lo = 1 + (b as u128 * inner as u128 / buckets as u128) as usize;
        let hi = 1 + ((b + 1) as u128 * inner as u128 / buckets as u128) as usize;
        let start = kept.len();
        let (mut min_i, mut max_i) = (None::<(usize, f64)>, None::<(usize, f64)>);
        let mut non_finite = [None::<usize>; 3];
        for i in lo..hi {
            let (low, high) = bounds(i);
            match [low, high].into_iter().find(|v| !v.is_finite()) {
                Some(v) => {
                    let kind = if v.is_nan() {
                        0
                    } else if v > 0.0 {
                        1
                    } else {
                        2
                    };
                    non_finite[kind].get_or_insert(i);
                }
                None => {
                    if min_i.is_none_or(|(_, m)| low < m) {
                        min_i = Some((i, low));
                    }
                    if max_i.is_none_or(|(_, m)| high > m) {
                        max_i = Some((i, high));
                    }
                }
            }
        }
        kept.extend([min_i.map(|(i, _)| i), max_i.map(|(i, _)| i)].into_iter().chain(non_finite).flatten());
        // Only this bucket's few indices are out of order.
        kept[start..].sort_unstable();
    }
    kept.push(n - 1);
    // One point can be a bucket's lowest and highest at once.
    kept.dedup();
    kept
}

/// Sorts points by step, keeping the logged order among equal steps. Most
/// series are already in order, which costs one pass to see.
pub fn sort_by_step(points: &mut [Point]) {
    if points.windows(2).any(|w| w[0].step > w[1].step) {
        points.sort_by_key(|p| p.step);
    }
}

/// Several series joined on their steps: one row per step that any of
/// them has (or, with `all`, that every one has), in step order, as wandb's
/// history rows are. A row's time is the earliest of its points'; a series
/// that has a step twice gives the row its later value.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub steps: Vec<i64>,
    pub times: Vec<f64>,
    /// One column per series, `None` where it has no value at the row's step.
    pub columns: Vec<Vec<Option<f64>>>,
}

impl Rows {
    pub fn join(series: &[&[Point]], all: bool) -> Rows {
        let mut at = vec![0usize; series.len()];
        let mut rows = Rows { steps: Vec::new(), times: Vec::new(), columns: vec![Vec::new(); series.len()] };
        while let Some(step) = series.iter().zip(&at).filter_map(|(s, &i)| s.get(i).map(|p| p.step)).min() {
            let mut time = f64::INFINITY;
            let mut present = 0;
            for (k, s) in series.iter().enumerate() {
                let mut value = None;
                while let Some(p) = s.get(at[k]).filter(|p| p.step == step) {
                    value = Some(p.value);
                    time = time.min(p.time);
                    at[k] += 1;
                }
                present += usize::from(value.is_some());
                rows.columns[k].push(value);
            }
            if all && present < series.len() {
                for column in &mut rows.columns {
                    column.pop();
                }
                continue;
            }
            rows.steps.push(step);
            rows.times.push(time);
        }
        rows
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// About `target` rows by [`keep`]'s rule, applied to each column over
    /// the rows that have it: every column's spikes and non-finite values
    /// stay, and so do the first and last rows.
    pub fn downsample(&self, target: usize) -> Rows {
        let n = self.len();
        if target == 0 || n <= target.max(4) {
            return self.clone();
        }
        let mut kept = vec![false; n];
        kept[0] = true;
        kept[n - 1] = true;
        for column in &self.columns {
            let has: Vec<usize> = (0..n).filter(|&i| column[i].is_some()).collect();
            for j in keep(has.len(), target, |j| {
                let v = column[has[j]].unwrap_or(f64::NAN);
                (v, v)
            }) {
                kept[has[j]] = true;
            }
        }
        let pick = |i: &usize| kept[*i];
        let rows: Vec<usize> = (0..n).filter(pick).collect();
        Rows {
            steps: rows.iter().map(|&i| self.steps[i]).collect(),
            times: rows.iter().map(|&i| self.times[i]).collect(),
            columns: self.columns.iter().map(|c| rows.iter().map(|&i| c[i]).collect()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<Point> {
        values.iter().enumerate().map(|(i, v)| Point { step: i as i64, time: i as f64, value: *v }).collect()
    }

    #[test]
    fn downsampling_keeps_spikes_and_non_finite_points() {
        let mut values: Vec<f64> = (0..100_000).map(|i| (i as f64 * 0.01).sin()).collect();
        values[31_337] = 50.0;
        values[77_777] = -50.0;
        values[50_001] = f64::NAN;
        values[60_000] = f64::INFINITY;
        let pts = series(&values);
        let down = downsample(&pts, 1000);
        assert!(down.len() <= 1010, "{}", down.len());
        assert!(down.len() >= 900, "{}", down.len());
        for step in [0, 31_337, 77_777, 50_001, 60_000, 99_999] {
            assert!(down.iter().any(|p| p.step == step), "lost step {step}");
        }
        assert!(down.windows(2).all(|w| w[0].step < w[1].step));
    }

    #[test]
    fn each_bucket_keeps_the_first_point_of_each_non_finite_kind() {
        // 2 + 4 buckets of 5 points each.
        let mut values = vec![0.0; 22];
        values[1..6].copy_from_slice(&[f64::NAN, 3.0, f64::NAN, f64::INFINITY, -1.0]);
        values[6..11].copy_from_slice(&[f64::NEG_INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NAN, 2.0]);
        let kept: Vec<i64> = downsample(&series(&values), 10).iter().map(|p| p.step).collect();
        // Bucket 1: NaN at 1 (not 3), +Inf at 4, lowest -1 at 5, highest 3 at 2.
        // Bucket 2: -Inf at 6 (not 7), +Inf at 8, NaN at 9, the one finite 2 at 10.
        // Buckets 3 and 4 are flat: their first point is both lowest and highest.
        assert_eq!(kept, [0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 16, 21]);
    }

    #[test]
    fn a_long_stretch_of_non_finite_values_is_reduced_too() {
        let mut values = vec![f64::NAN; 100_000];
        values[99_999] = f64::INFINITY;
        let down = downsample(&series(&values), 1000);
        assert_eq!(down.len(), 2 + 499, "the ends and one NaN a bucket");
        assert!(down[..down.len() - 1].iter().all(|p| p.value.is_nan()));
        assert_eq!(down.last().map(|p| p.value), Some(f64::INFINITY), "the last point stays, whatever it is");
        // Non-finite ends stay, and no NaN is ever taken for a bucket's extreme.
        let mut values: Vec<f64> = (0..10_000).map(|i| (i % 10) as f64).collect();
        values[0] = f64::NEG_INFINITY;
        values[5_000] = f64::NAN;
        let down = downsample(&series(&values), 100);
        assert_eq!(down[0].value, f64::NEG_INFINITY);
        assert!(down.iter().any(|p| p.step == 5_000 && p.value.is_nan()));
        assert_eq!(down.iter().filter(|p| p.value.is_nan()).count(), 1);
        assert!(down.iter().filter(|p| p.value.is_finite()).all(|p| p.value == 0.0 || p.value == 9.0));
    }

    #[test]
    fn a_band_keeps_its_lowest_lower_and_highest_upper_edge() {
        // (lo, hi) per entry; 2 + 2 buckets of 4.
        let band = [
            (0.0, 1.0),
            (-1.0, 1.0),
            (-5.0, 0.0),
            (0.0, 7.0),
            (-2.0, 2.0),
            (0.0, f64::NAN),
            (0.0, 1.0),
            (f64::NEG_INFINITY, 1.0),
            (0.0, 3.0),
            (0.0, 1.0),
        ];
        let kept = keep(band.len(), 6, |i| band[i]);
        // Bucket 1 keeps its lowest lo (2) and highest hi (3); bucket 2 its
        // NaN (5), its -Inf (7), and 8 for the highest hi and 6 for the lowest lo.
        assert_eq!(kept, [0, 2, 3, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn small_series_are_untouched() {
        let pts = series(&[3.0, 1.0, 2.0]);
        assert_eq!(downsample(&pts, 1000), pts);
        assert_eq!(downsample(&pts, 0), pts);
    }

    fn at(points: &[(i64, f64)]) -> Vec<Point> {
        points.iter().map(|&(step, value)| Point { step, time: step as f64 / 10.0, value }).collect()
    }

    #[test]
    fn rows_join_series_on_their_steps() {
        let loss = at(&[(0, 1.0), (1, 0.5), (2, 0.25), (2, 0.2), (4, 0.1)]);
        let val = at(&[(0, 2.0), (2, 1.0), (3, 0.9)]);
        let rows = Rows::join(&[&loss, &val], false);
        assert_eq!(rows.steps, vec![0, 1, 2, 3, 4]);
        assert_eq!(rows.columns[0], vec![Some(1.0), Some(0.5), Some(0.2), None, Some(0.1)]);
        assert_eq!(rows.columns[1], vec![Some(2.0), None, Some(1.0), Some(0.9), None]);
        assert_eq!(rows.times[3], 0.3);
        let both = Rows::join(&[&loss, &val], true);
        assert_eq!(both.steps, vec![0, 2]);
        assert_eq!(both.columns, vec![vec![Some(1.0), Some(0.2)], vec![Some(2.0), Some(1.0)]]);
        assert!(Rows::join(&[], false).is_empty());
    }

    #[test]
    fn downsampled_rows_keep_each_columns_spikes() {
        let mut a: Vec<(i64, f64)> = (0..1000).map(|i| (i, 1.0)).collect();
        a[500].1 = 50.0;
        let b: Vec<(i64, f64)> = (0..1000).step_by(2).map(|i| (i, if i == 700 { -9.0 } else { 0.0 })).collect();
        let (a, b) = (at(&a), at(&b));
        let rows = Rows::join(&[&a, &b], false).downsample(20);
        assert!(rows.len() <= 2 * 20 + 2, "{}", rows.len());
        assert_eq!((rows.steps[0], *rows.steps.last().unwrap()), (0, 999));
        assert!(rows.steps.contains(&500) && rows.steps.contains(&700), "{:?}", rows.steps);
        let i = rows.steps.iter().position(|&s| s == 700).unwrap();
        assert_eq!(rows.columns[1][i], Some(-9.0));
    }
}
