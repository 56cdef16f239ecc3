//! Plot benchmark (issue target: thinning + rendering 20 runs x 1,000,000
//! points to SVG in under 2 s).
//!
//! Run with `cargo bench --bench plot`. Data generation is not timed; the
//! timed part is what `labmate plot` does after loading: `render`, which
//! thins every curve (`thin`, ~2,000 points per curve) and draws the file
//! into a temp folder. Best of 3; thinning alone is reported too.

use std::time::Instant;

use labmate::plot::{Curve, Figure, Format, MAX_DRAWN_POINTS, Panel, render, thin};

const RUNS: usize = 20;
const POINTS: usize = 1_000_000;

fn main() {
    let curves: Vec<Curve> = (0..RUNS).map(|r| Curve::new(format!("run-{r:02}"), series(r))).collect();
    let fig = Figure::new(vec![Panel {
        title: "train/loss".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: false,
        curves,
    }]);
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let mut sizes = Vec::new();

    let thin_ms = best_of(3, || {
        for c in &fig.panels[0].curves {
            std::hint::black_box(thin(&c.points, MAX_DRAWN_POINTS));
        }
    });
    for (format, ext) in [(Format::Svg, "svg"), (Format::Png, "png")] {
        let out = tmp.path().join(format!("plot.{ext}"));
        let ms = best_of(3, || render(&fig, format, &out).unwrap());
        let kib = std::fs::metadata(&out).unwrap().len() as f64 / 1024.0;
        let target = if format == Format::Svg { "< 2 s" } else { "-" };
        rows.push((format!("plot {RUNS} runs x 1M points to {}", ext.to_uppercase()), format!("{ms:.0} ms"), target));
        sizes.push(format!("{} {kib:.0} KiB", ext.to_uppercase()));
    }
    rows.push((format!("`thin` alone, {RUNS} x 1M points"), format!("{thin_ms:.0} ms"), "-"));

    println!("| benchmark | result | target |\n|---|---|---|");
    for (name, result, target) in rows {
        println!("| {name} | {result} | {target} |");
    }
    println!("\nfile sizes: {}", sizes.join(", "));
}

/// A noisy decaying loss with a NaN every ~50k steps and one +Inf spike.
fn series(run: usize) -> Vec<(f64, f64)> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (run as u64 + 1);
    let tau = 150_000.0 + 10_000.0 * run as f64;
    (0..POINTS)
        .map(|i| {
            // xorshift64: deterministic noise without a crate.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let y = if i % 49_999 == 7 {
                f64::NAN
            } else if i == 700_000 + run {
                f64::INFINITY
            } else {
                2.5 * (-(i as f64) / tau).exp() + 0.2 + 0.05 * noise
            };
            (i as f64, y)
        })
        .collect()
}

/// The best wall time of `reps` calls, in milliseconds.
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}
