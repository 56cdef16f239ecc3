//! Metric series in step order, and downsampling that keeps every spike.
//! The index stores them in the compact form of [`crate::chunk`].

use crate::model::Point;

/// Reduces `points` (in step order) to about `target` points. The series is
/// cut into equal buckets and each keeps its lowest and highest value (a
/// spike never vanishes) and its first non-finite value of each kind (NaN,
/// +Inf, -Inf), plus the first and last point of the series.
pub fn downsample(points: &[Point], target: usize) -> Vec<Point> {
    let n = points.len();
    if target == 0 || n <= target.max(2) {
        return points.to_vec();
    }
    let buckets = (target.saturating_sub(2) / 2).max(1);
    let mut keep = vec![0, n - 1];
    let inner = 1..n - 1;
    let width = inner.len() as f64 / buckets as f64;
    for b in 0..buckets {
        let lo = inner.start + (b as f64 * width) as usize;
        let hi = (inner.start + ((b + 1) as f64 * width) as usize).min(inner.end);
        if lo >= hi {
            continue;
        }
        let (mut min_i, mut max_i) = (None::<usize>, None::<usize>);
        let (mut nan, mut pos_inf, mut neg_inf) = (None, None, None);
        for i in lo..hi {
            let v = points[i].value;
            if v.is_nan() {
                nan.get_or_insert(i);
            } else if v == f64::INFINITY {
                pos_inf.get_or_insert(i);
            } else if v == f64::NEG_INFINITY {
                neg_inf.get_or_insert(i);
            } else {
                if min_i.is_none_or(|m| v < points[m].value) {
                    min_i = Some(i);
                }
                if max_i.is_none_or(|m| v > points[m].value) {
                    max_i = Some(i);
                }
            }
        }
        keep.extend([min_i, max_i, nan, pos_inf, neg_inf].into_iter().flatten());
    }
    keep.sort_unstable();
    keep.dedup();
    keep.into_iter().map(|i| points[i]).collect()
}

/// Sorts points by step, keeping the logged order among equal steps. Most
/// series are already in order, which costs one pass to see.
pub fn sort_by_step(points: &mut [Point]) {
    if points.windows(2).any(|w| w[0].step > w[1].step) {
        points.sort_by_key(|p| p.step);
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
    fn small_series_are_untouched() {
        let pts = series(&[3.0, 1.0, 2.0]);
        assert_eq!(downsample(&pts, 1000), pts);
        assert_eq!(downsample(&pts, 0), pts);
    }
}
