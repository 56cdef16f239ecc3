//! Statistics for comparing runs across seeds: descriptive summaries, t-based
//! confidence intervals, Welch's t-test, a seeded bootstrap, and the one-sentence
//! verdict that says whether a difference is real or seed noise. Pure std; the
//! Student t distribution is computed here (regularized incomplete beta by
//! continued fraction, Lanczos log-gamma), so no numeric crate is needed.
//!
//! # Which values count
//!
//! NaN and ±Inf are excluded before anything is computed and counted in
//! [`Summary::nan_excluded`] / [`Summary::inf_excluded`]: a mean with an Inf in
//! it says nothing about the other seeds. Every verdict names what was excluded.
//!
//! # Method rule (what [`compare`] does)
//!
//! 1. Either side with fewer than 2 finite values: method `"none"`, no p-value;
//!    without a variance estimate there is no honest verdict, only the raw difference.
//! 2. Neither side varies (zero sample variance on both): method `"none"`, no p-value;
//!    the difference is exact for the observed runs ("no difference" when it is 0).
//! 3. Welch's t-test by default. It is the right tool for few seeds: the t
//!    distribution widens the interval for small n, and with 2–4 values per side
//!    skewness cannot even be estimated meaningfully.
//! 4. Bootstrap only when both sides have at least [`BOOTSTRAP_MIN_N`] values and
//!    either side is clearly skewed (|sample skewness| >= 1), where normality is
//!    doubtful and there is enough data to resample. We deliberately do *not*
//!    bootstrap tiny samples: with n = 2 a resampled mean takes only 3 values, and
//!    percentile intervals are too narrow by a factor of about sqrt((n-1)/n).
//!    The CI is the percentile interval of [`BOOTSTRAP_RESAMPLES`] resampled mean
//!    differences; the p-value is the shifted-null bootstrap (each side shifted to
//!    a common mean, i.e. equal means, not equal distributions), with the
//!    fixed [`BOOTSTRAP_SEED`] so a report is reproducible.
//!
//! Significance is judged at [`ALPHA`] = 0.05.

use serde::Serialize;

use crate::text::sig;

pub const ALPHA: f64 = 0.05;
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
pub const BOOTSTRAP_SEED: u64 = 0x1AB_3A7E;
pub const BOOTSTRAP_MIN_N: usize = 10;
/// Fewer seeds than this per side: a non-significant verdict says "run more seeds".
const FEW_SEEDS: usize = 5;

/// Descriptive statistics of a sample; NaN and ±Inf values are excluded and counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Finite values used.
    pub n: usize,
    pub nan_excluded: usize,
    pub inf_excluded: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); NaN when n < 2.
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// t-based 95% CI of the mean; None when n < 2.
    pub ci95: Option<(f64, f64)>,
}

pub fn summarize(values: &[f64]) -> Summary {
    let xs = finite(values);
    let n = xs.len();
    let nan_excluded = values.iter().filter(|v| v.is_nan()).count();
    let inf_excluded = values.iter().filter(|v| v.is_infinite()).count();
    let (min, max) = xs.iter().fold((f64::NAN, f64::NAN), |(lo, hi), &x| (x.min(lo), x.max(hi)));
    // Clamping keeps a constant sample's mean equal to its value despite rounding in the sum.
    let mean = if n == 0 { f64::NAN } else { (xs.iter().sum::<f64>() / n as f64).clamp(min, max) };
    let std = if n < 2 {
        f64::NAN
    } else if min == max {
        0.0
    } else {
        // Scaled by the largest deviation, so that values near f64's range
        // (a diverged run's 1e270 loss) do not overflow when squared.
        let scale = xs.iter().map(|x| (x - mean).abs()).fold(0.0, f64::max);
        scale * (xs.iter().map(|x| ((x - mean) / scale).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    let ci95 = (n >= 2).then(|| {
        let h = t_quantile(0.975, (n - 1) as f64) * std / (n as f64).sqrt();
        (mean - h, mean + h)
    });
    Summary { n, nan_excluded, inf_excluded, mean, std, min, max, ci95 }
}

/// Sample skewness g1 = m3 / m2^1.5 (biased, as `scipy.stats.skew`); 0 when n < 3 or constant.
pub fn skewness(values: &[f64]) -> f64 {
    let xs = finite(values);
    let n = xs.len() as f64;
    if xs.len() < 3 {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / n;
    let m2 = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let m3 = xs.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / n;
    if m2 == 0.0 { 0.0 } else { m3 / m2.powf(1.5) }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WelchResult {
    /// (mean(b) - mean(a)) / se.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// mean(b) - mean(a).
    pub diff: f64,
    pub se: f64,
    pub ci95: (f64, f64),
}

/// Welch's unequal-variance t-test of mean(b) - mean(a) on the finite values.
/// None when either side has fewer than 2 values or both have zero variance (t undefined).
pub fn welch(a: &[f64], b: &[f64]) -> Option<WelchResult> {
    let (sa, sb) = (summarize(a), summarize(b));
    if sa.n < 2 || sb.n < 2 {
        return None;
    }
    let (va, vb) = (sa.std.powi(2) / sa.n as f64, sb.std.powi(2) / sb.n as f64);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return None;
    }
    let df = (va + vb).powi(2) / (va.powi(2) / (sa.n - 1) as f64 + vb.powi(2) / (sb.n - 1) as f64);
    let diff = sb.mean - sa.mean;
    let t = diff / se;
    let h = t_quantile(0.975, df) * se;
    Some(WelchResult { t, df, p: t_two_sided_p(t, df), diff, se, ci95: (diff - h, diff + h) })
}

/// Student t CDF with `df` > 0 degrees of freedom (fractional allowed); NaN for bad input.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = t_two_sided_p(t, df) / 2.0;
    if t > 0.0 { 1.0 - tail } else { tail }
}

/// P(|T| >= |t|) = I_{df/(df+t²)}(df/2, 1/2). Computed directly rather than as 1 - cdf so
/// that tiny p-values keep their relative precision.
fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let t2 = t * t;
    // x and 1 - x both computed without cancellation; t² = inf gives x = 0, y = 1.
    let x = df / (df + t2);
    let y = if t2 == 0.0 { 0.0 } else { 1.0 / (1.0 + df / t2) };
    inc_beta(df / 2.0, 0.5, x, y)
}

/// Inverse of [`t_cdf`]: the t with t_cdf(t, df) = p. NaN outside 0 < p < 1.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    // Solve in the upper tail on the two-sided p, which is monotone decreasing in t >= 0,
    // then mirror; bisection is slow-ish but cannot diverge, and 200 halvings exhaust f64.
    let target = 2.0 * p.min(1.0 - p);
    let mut hi = 1.0;
    while t_two_sided_p(hi, df) > target && hi < 1e300 {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid == lo || mid == hi {
            break;
        }
        if t_two_sided_p(mid, df) > target { lo = mid } else { hi = mid }
    }
    let t = 0.5 * (lo + hi);
    if p < 0.5 { -t } else { t }
}

/// Regularized incomplete beta I_x(a, b), with y = 1 - x passed in precisely.
fn inc_beta(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * y.ln()).exp();
    // The continued fraction converges fast only below (a+1)/(a+b+2); use symmetry above it.
    if x < (a + 1.0) / (a + b + 2.0) { front * beta_cf(a, b, x) / a } else { 1.0 - front * beta_cf(b, a, y) / b }
}

/// Continued fraction for the incomplete beta, modified Lentz (Numerical Recipes `betacf`).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=500 {
        let (m, m2) = (m as f64, 2.0 * m as f64);
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0: Lanczos (g = 7, 9 terms), about 1e-15 relative; reflection below 0.5.
fn ln_gamma(x: f64) -> f64 {
    use std::f64::consts::PI;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let s = C[0] + (1..9).map(|i| C[i] / (x + i as f64)).sum::<f64>();
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}

/// splitmix64: tiny, fast, and good enough to pick resampling indices reproducibly.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform index below n by multiply-shift; the bias is ~n/2^64, negligible here.
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
}

/// Bootstrap of mean(b) - mean(a) on the finite values: (CI95 lo, hi, two-sided p).
/// CI: percentile interval. p: shifted-null bootstrap; shifting both sides to a common
/// mean makes each resampled null difference equal d* - d, so one loop gives both:
/// p = (1 + #{|d* - d| >= |d|}) / (resamples + 1). NaNs when a side has no values.
pub fn bootstrap_diff(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> (f64, f64, f64) {
    let (xa, xb) = (finite(a), finite(b));
    if xa.is_empty() || xb.is_empty() || resamples == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let d = mean(&xb) - mean(&xa);
    let mut rng = SplitMix64(seed);
    let mut resample_mean = |xs: &[f64]| (0..xs.len()).map(|_| xs[rng.below(xs.len())]).sum::<f64>() / xs.len() as f64;
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let ma = resample_mean(&xa);
            resample_mean(&xb) - ma
        })
        .collect();
    // The tolerance keeps rounding noise in d* - d from counting as "less extreme" when d == 0.
    let extreme = diffs.iter().filter(|&&ds| (ds - d).abs() >= d.abs() * (1.0 - 1e-12)).count();
    let p = (1 + extreme) as f64 / (resamples + 1) as f64;
    diffs.sort_by(f64::total_cmp);
    let pick = |q: f64| diffs[((q * resamples as f64).floor() as usize).min(resamples - 1)];
    (pick(0.025), pick(0.975), p)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: Summary,
    pub b: Summary,
    /// mean(b) - mean(a).
    pub diff: f64,
    /// 95% CI of the difference.
    pub ci95: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    /// "welch", "bootstrap" or "none".
    pub method: &'static str,
    /// One honest sentence.
    pub verdict: String,
}

/// Compares B against A following the method rule in the module header.
pub fn compare(a: &[f64], b: &[f64], lower_is_better: bool) -> Comparison {
    let (sa, sb) = (summarize(a), summarize(b));
    let diff = sb.mean - sa.mean;
    let seeds = if sa.n == sb.n { format!("{} seeds each", sa.n) } else { format!("{} vs {} seeds", sa.n, sb.n) };
    let direction = |d: f64| {
        let (word, good) = if d < 0.0 { ("lower", lower_is_better) } else { ("higher", !lower_is_better) };
        (format!("B is {word} by {}", sig3(d.abs())), if good { "B is better" } else { "B is worse" })
    };
    let (ci95, p_value, method, mut verdict) = if sa.n == 0 || sb.n == 0 {
        let side = if sa.n == 0 { "A" } else { "B" };
        (None, None, "none", format!("no finite values for {side}: nothing to compare"))
    } else if sa.n < 2 || sb.n < 2 {
        let who = match (sa.n, sb.n) {
            (1, 1) => "one run per side".to_string(),
            (1, _) => "only one run for A".to_string(),
            _ => "only one run for B".to_string(),
        };
        let v = format!(
            "{who}: no variance estimate, so no verdict; the difference (B - A) is {} — run more seeds",
            sig3(diff)
        );
        (None, None, "none", v)
    } else if let Some(w) = welch(a, b) {
        let skewed = skewness(a).abs() >= 1.0 || skewness(b).abs() >= 1.0;
        let (ci, p, method) = if sa.n.min(sb.n) >= BOOTSTRAP_MIN_N && skewed {
            let (lo, hi, p) = bootstrap_diff(a, b, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
            ((lo, hi), p, "bootstrap")
        } else {
            (w.ci95, w.p, "welch")
        };
        let label = if method == "welch" { "Welch" } else { "bootstrap" };
        // Welch's CI is symmetric, so "±" is exact; a percentile CI is shown as an interval.
        let spread = |d: String| {
            if method == "welch" {
                format!("{d} ± {}", sig3((ci.1 - ci.0) / 2.0))
            } else {
                format!("{d}, 95% CI of B - A [{}, {}]", sig3(ci.0), sig3(ci.1))
            }
        };
        let v = if p < ALPHA {
            let (what, judgement) = direction(diff);
            format!("{} (p={}, {label}, {} vs {} seeds): {judgement}", spread(what), fmt_p(p), sa.n, sb.n)
        } else if sa.n.min(sb.n) < FEW_SEEDS {
            let d = spread(format!("diff {}", sig3(diff)));
            format!("no detectable difference with {seeds} ({d}, p={}, {label}); run more seeds", fmt_p(p))
        } else {
            let d = spread(format!("diff {}", sig3(diff)));
            format!("no detectable difference ({d}, p={}, {label}, {seeds}); more seeds would narrow it", fmt_p(p))
        };
        (Some(ci), Some(p), method, v)
    } else {
        // welch() is None with n >= 2 only when neither side varies: no noise was observed.
        let v = if diff == 0.0 {
            format!("no difference: every run on both sides gave {} ({seeds})", sig3(sa.mean))
        } else {
            let (what, judgement) = direction(diff);
            let (ma, mb) = (sig3(sa.mean), sig3(sb.mean));
            format!(
                "values are constant per side (A = {ma}, B = {mb}), so the difference is exact: {what} ({seeds}): {judgement}"
            )
        };
        (None, None, "none", v)
    };
    let nan = sa.nan_excluded + sb.nan_excluded;
    let inf = sa.inf_excluded + sb.inf_excluded;
    for (k, what) in [(nan, "NaN"), (inf, "infinite")] {
        if k > 0 {
            verdict += &format!(" ({k} {what} value{} excluded)", if k == 1 { "" } else { "s" });
        }
    }
    Comparison { a: sa, b: sb, diff, ci95, p_value, method, verdict }
}

fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

fn sig3(x: f64) -> String {
    sig(x, 3)
}

/// p to 2 significant digits, more when rounding would carry it across ALPHA (0.0496 is not "0.05").
fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        return "<0.001".into();
    }
    (2..8)
        .map(|d| sig(p, d))
        .find(|s| (s.parse::<f64>().unwrap_or(p) < ALPHA) == (p < ALPHA))
        .unwrap_or_else(|| sig(p, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        assert!((got - want).abs() <= rel * want.abs().max(1e-300), "got {got}, want {want}");
    }

    // Reference values: scipy 1.17.1 (numpy 2.4.6), `from scipy import stats`.
    #[test]
    fn huge_values_do_not_overflow_the_spread() {
        let s = summarize(&[4.59e272, 7.23e276]);
        assert!(s.std.is_finite() && s.std > 5e276, "{s:?}");
    }

    #[test]
    fn t_cdf_matches_scipy() {
        // stats.t.cdf(t, df)
        for (t, df, want) in [
            (2.1, 7.3, 0.9638766432875733),
            (-0.5, 1.5, 0.34028355533497),
            (10.0, 30.0, 0.9999999999771237),
            (0.0, 3.0, 0.5),
            (-3.0, 2.5, 0.036288047774515914),
            (1.0, 1.0, 0.75),
        ] {
            close(t_cdf(t, df), want, 1e-9);
        }
        // stats.t.sf(10, 30): the far tail keeps relative precision.
        close(t_two_sided_p(10.0, 30.0) / 2.0, 2.287625704114809e-11, 1e-8);
        assert_eq!(t_cdf(f64::INFINITY, 3.0), 1.0);
        assert!(t_cdf(1.0, 0.0).is_nan());
    }

    #[test]
    fn t_quantile_matches_scipy() {
        // stats.t.ppf(0.975, df) and stats.t.ppf(0.001, 4)
        for (p, df, want) in [
            (0.975, 1.0, 12.706204736174694),
            (0.975, 2.5, 3.5746548420036817),
            (0.975, 10.0, 2.228138851986274),
            (0.975, 100.0, 1.9839715185235518),
            (0.001, 4.0, -7.1731822197823085),
        ] {
            close(t_quantile(p, df), want, 1e-9);
        }
        assert_eq!(t_quantile(0.5, 7.0), 0.0);
        assert!(t_quantile(1.0, 7.0).is_nan());
    }

    #[test]
    fn welch_matches_scipy() {
        // r = stats.ttest_ind(b, a, equal_var=False); r.statistic, r.pvalue, r.df,
        // r.confidence_interval(0.95). Arguments are (b, a) because our t is of mean(b) - mean(a).
        let cases: [(&[f64], &[f64], [f64; 5]); 3] = [
            (
                &[2.31, 2.28, 2.35, 2.30, 2.33],
                &[2.27, 2.25, 2.29, 2.26, 2.24],
                [
                    -3.505839284808824,
                    0.00942061823959627,
                    7.22603762317107,
                    -0.08685186044647841,
                    -0.017148139553520785,
                ],
            ),
            (
                &[0.81, 0.84, 0.79],
                &[0.90, 0.72, 0.95, 0.88],
                [
                    0.9490241464422295,
                    0.40348888318917325,
                    3.4958630881686994,
                    -0.10323622861911474,
                    0.20156956195244813,
                ],
            ),
            (
                &[1.0, 2.0],
                &[1.5, 3.5],
                [0.8944271909999159, 0.49313270812084714, 1.4705882352941178, -5.918522830071064, 7.918522830071064],
            ),
        ];
        for (a, b, [t, p, df, lo, hi]) in cases {
            let w = welch(a, b).unwrap();
            close(w.t, t, 1e-9);
            close(w.p, p, 1e-8);
            close(w.df, df, 1e-9);
            close(w.ci95.0, lo, 1e-8);
            close(w.ci95.1, hi, 1e-8);
        }
    }

    #[test]
    fn summary_matches_scipy() {
        // x = [...]; np.mean(x), np.std(x, ddof=1),
        // stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
        let s = summarize(&[0.912, 0.905, 0.921, 0.899, 0.915, 0.908, f64::NAN, f64::INFINITY]);
        assert_eq!((s.n, s.nan_excluded, s.inf_excluded), (6, 1, 1));
        close(s.mean, 0.9100000000000001, 1e-12);
        close(s.std, 0.007745966692414842, 1e-9);
        let (lo, hi) = s.ci95.unwrap();
        close(lo, 0.9018711064875328, 1e-9);
        close(hi, 0.9181288935124675, 1e-9);
        assert_eq!((s.min, s.max), (0.899, 0.921));
        // stats.skew([1.0, 1.1, 1.2, 5.0])
        close(skewness(&[1.0, 1.1, 1.2, 5.0]), 1.1486417727693632, 1e-9);
        let one = summarize(&[3.0]);
        assert!(one.std.is_nan() && one.ci95.is_none());
    }

    #[test]
    fn one_run_per_side_gives_no_verdict() {
        let c = compare(&[0.50], &[0.531], true);
        assert_eq!((c.method, c.p_value, c.ci95), ("none", None, None));
        assert_eq!(
            c.verdict,
            "one run per side: no variance estimate, so no verdict; the difference (B - A) is 0.031 — run more seeds"
        );
        assert!(compare(&[0.5, 0.6], &[0.4], true).verdict.starts_with("only one run for B"));
    }

    #[test]
    fn constant_values_need_no_division() {
        let same = compare(&[0.5; 3], &[0.5; 3], true);
        assert_eq!((same.diff, same.method, same.p_value), (0.0, "none", None));
        assert_eq!(same.verdict, "no difference: every run on both sides gave 0.5 (3 seeds each)");
        let exact = compare(&[0.5; 3], &[0.47; 3], true);
        assert!(exact.verdict.contains("constant per side") && exact.verdict.ends_with("B is better"));
        assert!(welch(&[1.0, 1.0], &[2.0, 2.0]).is_none());
    }

    #[test]
    fn nan_values_are_excluded_and_reported() {
        let c = compare(&[0.5, f64::NAN, 0.52, 0.49], &[0.51, 0.5, f64::NAN, 0.53, f64::NEG_INFINITY], true);
        assert_eq!((c.a.n, c.a.nan_excluded, c.b.n, c.b.nan_excluded, c.b.inf_excluded), (3, 1, 3, 1, 1));
        assert!(c.verdict.ends_with("(2 NaN values excluded) (1 infinite value excluded)"), "{}", c.verdict);
        assert!(!c.diff.is_nan() && c.p_value.unwrap().is_finite());
    }

    #[test]
    fn bootstrap_is_deterministic_and_covers_the_truth() {
        let a: Vec<f64> = (0..12).map(|i| 1.0 + 0.01 * (i % 4) as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x - 0.1).collect();
        let r = bootstrap_diff(&a, &b, 10_000, 7);
        assert_eq!(r, bootstrap_diff(&a, &b, 10_000, 7));
        assert_ne!(r, bootstrap_diff(&a, &b, 10_000, 8));
        let (lo, hi, p) = r;
        assert!(lo < -0.1 && -0.1 < hi && hi < 0.0, "{lo} {hi}");
        assert!(p < 0.001);
        // Identical samples: d = 0, so every null resample is as extreme: p = 1.
        assert_eq!(bootstrap_diff(&a, &a, 1000, 1).2, 1.0);
    }

    #[test]
    fn skewed_large_samples_use_the_bootstrap() {
        let a = [1.0, 1.0, 1.1, 1.0, 1.2, 1.0, 1.1, 3.0, 1.0, 1.1];
        let b = [0.5, 0.6, 0.5, 0.55, 0.5, 0.6, 0.5, 0.55, 0.5, 0.6];
        let c = compare(&a, &b, true);
        assert_eq!(c.method, "bootstrap");
        assert!(c.verdict.starts_with("B is lower by 0.71, 95% CI of B - A [-1.12, -0.48] (p="), "{}", c.verdict);
        assert_eq!(compare(&a[..4], &b[..4], true).method, "welch");
    }

    #[test]
    fn verdicts_read_honestly() {
        let a = [2.31, 2.28, 2.35, 2.30, 2.33];
        let b = [2.27, 2.25, 2.29, 2.26, 2.24];
        // diff -0.052, CI half-width 0.0349, p 0.0094 (scipy values above).
        assert_eq!(
            compare(&a, &b, true).verdict,
            "B is lower by 0.052 ± 0.0349 (p=0.0094, Welch, 5 vs 5 seeds): B is better"
        );
        assert!(compare(&a, &b, false).verdict.ends_with("B is worse"));
        assert_eq!(
            compare(&[0.81, 0.84, 0.79], &[0.90, 0.72, 0.95, 0.88], true).verdict,
            "no detectable difference with 3 vs 4 seeds (diff 0.0492 ± 0.152, p=0.4, Welch); run more seeds"
        );
        let a8 = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.15, 0.85];
        let b8 = [1.02, 1.18, 0.93, 1.08, 1.0, 0.99, 1.12, 0.9];
        let v = compare(&a8, &b8, true).verdict;
        assert!(
            v.starts_with("no detectable difference (diff") && v.ends_with("8 seeds each); more seeds would narrow it")
        );
    }

    #[test]
    fn numbers_are_formatted_to_significant_digits() {
        assert_eq!(sig3(0.031234), "0.0312");
        assert_eq!(sig3(-123456.0), "-123000");
        assert_eq!(sig3(9.996), "10");
        assert_eq!(sig3(1.5e-7), "1.50e-7");
        assert_eq!(fmt_p(0.0004), "<0.001");
        assert_eq!(fmt_p(0.7149), "0.71");
        assert_eq!(fmt_p(0.0496), "0.0496");
    }
}
