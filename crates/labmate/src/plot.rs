//! Metric curves to SVG or PNG: the pure rendering layer behind `labmate plot`.
//!
//! This module owns drawing only. The face loads series (and groups runs that
//! differ only by seed into a mean line with a band); here they become a
//! [`Figure`] of stacked [`Panel`]s, one per metric, written to one file.
//! Rendering needs no system fonts or libraries: the DejaVu Sans font embedded
//! by the `dejavu` crate is registered with plotters once, before drawing.
//!
//! What a plot promises:
//! - a non-finite value never silently vanishes: the line breaks there, and a
//!   red marker sits at its x on the panel's top edge (✕ NaN, ▲ +Inf) or
//!   bottom edge (▼ -Inf), explained in the legend, whose curve labels also
//!   count them. On a log axis values ≤ 0 are treated the same way (✕ on the
//!   bottom edge), since they have no place on it;
//! - axis ranges come from finite values only, with a small margin;
//! - long series are thinned to about [`MAX_DRAWN_POINTS`] points per curve
//!   by the lab's one downsampling rule ([`crate::series::keep`]): each
//!   bucket keeps its min and max and its first point of each non-finite
//!   kind, so a spike stays visible, every non-finite value is still marked
//!   where it happened, drawing stays fast and files stay small.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::series;
use crate::text::clip;

/// Default figure width, in pixels: readable embedded in a markdown notebook.
pub const DEFAULT_WIDTH: u32 = 900;
/// Default height of one panel, in pixels.
pub const DEFAULT_PANEL_HEIGHT: u32 = 500;
/// Points per curve (and entries per band) that [`render`] draws at most.
pub const MAX_DRAWN_POINTS: usize = 2000;

/// One line in a panel, optionally with a shaded band (e.g. min–max or a 95%
/// confidence interval of a group of seeds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curve {
    pub label: String,
    /// (x, y); y may be NaN or ±Inf, which is marked on the panel's edge.
    pub points: Vec<(f64, f64)>,
    /// (x, lo, hi), drawn shaded in the curve's colour.
    pub band: Option<Vec<(f64, f64, f64)>>,
}

impl Curve {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Curve {
        Curve { label: label.into(), points, band: None }
    }
}

/// One metric: its curves on shared axes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panel {
    /// Shown above the panel, e.g. the metric key.
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic y axis; values ≤ 0 are then marked like non-finite ones.
    pub log_y: bool,
    pub curves: Vec<Curve>,
}

/// Panels stacked vertically, each `width` x `height_per_panel` pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub panels: Vec<Panel>,
    pub width: u32,
    pub height_per_panel: u32,
}

impl Figure {
    /// A figure of the default size.
    pub fn new(panels: Vec<Panel>) -> Figure {
        Figure { panels, width: DEFAULT_WIDTH, height_per_panel: DEFAULT_PANEL_HEIGHT }
    }
}

impl Default for Figure {
    fn default() -> Figure {
        Figure::new(Vec::new())
    }
}

/// The output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// The format named by `p`'s extension (case-insensitive).
    pub fn from_path(p: &Path) -> Result<Format> {
        match p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(Error::invalid(
                "image format",
                format!("cannot tell the image format of {}: use a .svg or .png extension", p.display()),
            )),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

/// Exponential moving average smoothing: each finite y becomes
/// `alpha * y + (1 - alpha) * previous`, starting from the first finite value
/// (so there is no bias towards zero). Non-finite points pass through
/// unchanged and do not disturb the average: they stay visible as markers. An
/// alpha outside (0, 1] (or NaN) means no smoothing; 1 is none.
pub fn smooth(points: &[(f64, f64)], alpha: f64) -> Vec<(f64, f64)> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return points.to_vec();
    }
    let mut ema: Option<f64> = None;
    points
        .iter()
        .map(|&(x, y)| {
            if !y.is_finite() {
                return (x, y);
            }
            // The convex form cannot overflow where `p + alpha * (y - p)` could.
            let e = ema.map_or(y, |p| alpha * y + (1.0 - alpha) * p);
            ema = Some(e);
            (x, e)
        })
        .collect()
}

/// Reduces a long series for drawing to about `max_points` points, by the
/// lab's one downsampling rule ([`series::keep`]): each bucket keeps its
/// lowest and highest finite point and its first of each non-finite kind, so
/// a spike never vanishes and a non-finite value is still marked where it
/// happened. A point whose x is not finite counts as NaN. `max_points` 0, or
/// a series no longer than it, returns the series as is.
pub fn thin(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let value = |i: usize| if points[i].0.is_finite() { points[i].1 } else { f64::NAN };
    series::keep(points.len(), max_points, |i| (value(i), value(i))).into_iter().map(|i| points[i]).collect()
}

/// Reduces a band to about `max_entries` entries by the same rule, judged by
/// its edges: each bucket keeps its lowest lower edge and its highest upper
/// edge, so the shaded area keeps its extremes, and its first non-finite
/// entry of each kind, which breaks the shaded area there.
fn thin_band(band: &[(f64, f64, f64)], max_entries: usize) -> Vec<(f64, f64, f64)> {
    let edges = |i: usize| {
        let (x, lo, hi) = band[i];
        if x.is_finite() { (lo, hi) } else { (f64::NAN, f64::NAN) }
    };
    series::keep(band.len(), max_entries, edges).into_iter().map(|i| band[i]).collect()
}

/// Renders `fig` to `out` as `format`. The file is written whole or not at
/// all (a temporary file renamed into place), so a notebook that watches it
/// never shows half a plot. A file that cannot be written is an
/// [`Error::Write`]; a figure too large to draw is [`Error::Invalid`].
pub fn render(fig: &Figure, format: Format, out: &Path) -> Result<()> {
    if fig.panels.is_empty() {
        return Err(Error::invalid("figure", "nothing to plot: the figure has no panels"));
    }
    if !(200..=10_000).contains(&fig.width) || !(150..=5_000).contains(&fig.height_per_panel) {
        return Err(Error::invalid(
            "figure",
            format!(
                "cannot draw a {}x{} px panel: width must be 200 to 10000 px, panel height 150 to 5000 px",
                fig.width, fig.height_per_panel
            ),
        ));
    }
    let height = fig.height_per_panel as u64 * fig.panels.len() as u64;
    if height * fig.width as u64 > 100_000_000 || height > u32::MAX as u64 {
        return Err(Error::invalid(
            "figure",
            format!(
                "cannot draw {} panels of {}x{} px: over 100 million pixels",
                fig.panels.len(),
                fig.width,
                fig.height_per_panel
            ),
        ));
    }
    let Some(name) = out.file_name() else {
        return Err(Error::invalid("output", format!("cannot write a plot to {}: it names no file", out.display())));
    };
    register_fonts().map_err(|why| Error::internal("font", why))?;
    let panels: Vec<Prepared> = fig.panels.iter().map(|p| prepare(p, fig.width, fig.height_per_panel)).collect();
    let size = (fig.width, height as u32);

    // A name no other render (thread or process) uses; the extension tells
    // the PNG encoder the format.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = out.with_file_name(format!(
        ".{}.{}-{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        format.extension()
    ));
    let cannot_write = |e: std::io::Error| Error::write(out, e);
    let cannot_draw = |e: String| Error::internal("plot", format!("cannot draw the plot {}: {e}", out.display()));
    let written = (|| match format {
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw_figure(&root, &panels, true).map_err(cannot_draw)?;
                root.present().map_err(|e| cannot_draw(e.to_string()))?;
            }
            std::fs::write(&tmp, svg).map_err(cannot_write)
        }
        Format::Png => {
            // The encoder writes the file only at the end, and says why it
            // could not in words only: try the file first, for the real error.
            std::fs::File::create(&tmp).map_err(cannot_write)?;
            let root = BitMapBackend::new(&tmp, size).into_drawing_area();
            draw_figure(&root, &panels, false).map_err(cannot_draw)?;
            root.present().map_err(|e| cannot_write(std::io::Error::other(e.to_string())))
        }
    })();
    match written.and_then(|()| std::fs::rename(&tmp, out).map_err(cannot_write)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Registers the embedded DejaVu Sans as plotters' "sans-serif", once per
/// process: plotters' ab_glyph text support knows only registered fonts.
fn register_fonts() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bad = |_| "the embedded DejaVu Sans font could not be loaded".to_string();
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).map_err(bad)?;
        plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).map_err(bad)
    })
    .clone()
}

const FONT: &str = "sans-serif";
/// Non-finite markers. Red is left out of [`PALETTE`] so they stand out.
const MARK_COLOR: RGBColor = RGBColor(220, 20, 60);
/// Tableau 10 without its red, plus navy: distinct on white, cycled.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(26, 35, 126),
];
/// Longer legend labels are cut, so the legend covers little of the curves.
const LABEL_CHARS: usize = 48;
/// Plotters' panel layout, in pixels: margins, caption, x label area.
const MARGIN: u32 = 10;
const MARGIN_RIGHT: u32 = 25;
const CAPTION: u32 = 30;
const X_AREA: u32 = 45;
/// Approximate legend geometry, in pixels, to pick the emptiest corner.
const LEGEND_ROW: f64 = 16.5;
const LEGEND_CHAR: f64 = 7.5;

/// Why a point is not on the line, and where its marker goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mark {
    Nan,
    PosInf,
    NegInf,
    /// ≤ 0 on a log axis: it has no place there.
    NonPositive,
}

impl Mark {
    const ALL: [Mark; 4] = [Mark::Nan, Mark::PosInf, Mark::NegInf, Mark::NonPositive];

    fn of(y: f64, log_y: bool) -> Option<Mark> {
        if y.is_nan() {
            Some(Mark::Nan)
        } else if y == f64::INFINITY {
            Some(Mark::PosInf)
        } else if y == f64::NEG_INFINITY {
            Some(Mark::NegInf)
        } else if log_y && y <= 0.0 {
            Some(Mark::NonPositive)
        } else {
            None
        }
    }

    fn on_top(self) -> bool {
        matches!(self, Mark::Nan | Mark::PosInf)
    }

    fn legend(self) -> &'static str {
        match self {
            Mark::Nan => "NaN (top edge)",
            Mark::PosInf => "+Inf (top edge)",
            Mark::NegInf => "-Inf (bottom edge)",
            Mark::NonPositive => "≤ 0, off the log scale (bottom edge)",
        }
    }
}

/// A panel reduced to what is drawn.
struct Prepared {
    title: String,
    x_label: String,
    y_label: String,
    x: Axis,
    y: Axis,
    y_area: u32,
    curves: Vec<Drawn>,
    /// Markers, at most one per kind and pixel column.
    marks: Vec<(f64, Mark)>,
    note: Option<String>,
    legend_at: SeriesLabelPosition,
    /// How many curves get a legend entry; the rest are summed up in one.
    legend_curves: usize,
}

struct Drawn {
    label: String,
    color: RGBColor,
    width: u32,
    /// Runs of drawable points; a run of one point is drawn as a dot.
    runs: Vec<Vec<(f64, f64)>>,
    bands: Vec<Vec<(f64, f64)>>,
}

fn prepare(panel: &Panel, width: u32, panel_height: u32) -> Prepared {
    let log = panel.log_y;
    let drawable = |x: f64, y: f64| x.is_finite() && Mark::of(y, log).is_none();
    type Thinned = (Vec<(f64, f64)>, Option<Vec<(f64, f64, f64)>>);
    let thinned: Vec<Thinned> = panel
        .curves
        .iter()
        .map(|c| (thin(&c.points, MAX_DRAWN_POINTS), c.band.as_deref().map(|b| thin_band(b, MAX_DRAWN_POINTS))))
        .collect();

    // Axis ranges from finite (on a log axis: positive) values only.
    let mut xr = Span::default();
    let mut yr = Span::default();
    for (points, band) in &thinned {
        for &(x, y) in points {
            if x.is_finite() {
                xr.add(x);
                if Mark::of(y, log).is_none() {
                    yr.add(y);
                }
            }
        }
        for &(x, l, h) in band.iter().flatten() {
            if x.is_finite() && l.is_finite() && h.is_finite() {
                xr.add(x);
                for v in [l, h] {
                    if Mark::of(v, log).is_none() {
                        yr.add(v);
                    }
                }
            }
        }
    }
    let has_values = yr.lo.is_some();
    let plot_h = panel_height.saturating_sub(2 * MARGIN + CAPTION + X_AREA).max(50);
    let ny = (plot_h / 50).clamp(3, 10) as usize;
    let (ylo, yhi) = yr.padded(log, 0.06);
    let y = Axis::new(ylo, yhi, log, ny);
    let y_chars = y.ticks.iter().map(|&v| y.label(v).chars().count()).max().unwrap_or(1);
    let y_area = (y_chars as u32 * 8 + 36).clamp(50, 140);
    let plot_w = width.saturating_sub(MARGIN + MARGIN_RIGHT + y_area).max(50);
    let nx = (plot_w / 100).clamp(3, 12) as usize;
    let (xlo, xhi) = xr.padded(false, 0.02);
    let x = Axis::new(xlo, xhi, false, nx);

    let line_width = if panel.curves.len() <= 6 { 2 } else { 1 };
    let mut marks = Vec::new();
    let mut seen = HashSet::new();
    let mut curves = Vec::with_capacity(panel.curves.len());
    for (i, (c, (points, band))) in panel.curves.iter().zip(&thinned).enumerate() {
        let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut open = false;
        for &(px, py) in points {
            if drawable(px, py) {
                if !open {
                    runs.push(Vec::new());
                    open = true;
                }
                runs.last_mut().expect("a run is open").push((px, py));
            } else {
                open = false;
                // A point without a finite x has no place on the x axis; it
                // still counts in the curve's legend label.
                if let (true, Some(m)) = (px.is_finite(), Mark::of(py, log)) {
                    // One marker per kind and pixel column: a million NaNs draw
                    // like one per column, and the file stays small.
                    if seen.insert((m, (x.frac(px) * plot_w as f64).round() as i64)) {
                        marks.push((px, m));
                    }
                }
            }
        }
        let mut bands: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut run: Vec<(f64, f64, f64)> = Vec::new();
        let band_entries = band.iter().flatten().copied().chain(std::iter::once((f64::NAN, f64::NAN, f64::NAN)));
        for (bx, l, h) in band_entries {
            // On a log axis a lower bound ≤ 0 (a mean minus a wide interval)
            // is clipped to the axis bottom rather than losing the band.
            let l = if log && l <= 0.0 { ylo } else { l };
            if bx.is_finite() && l.is_finite() && h.is_finite() && Mark::of(h, log).is_none() {
                run.push((bx, l, h));
            } else if !run.is_empty() {
                let mut poly: Vec<(f64, f64)> = run.iter().map(|&(bx, _, h)| (bx, h)).collect();
                poly.extend(run.iter().rev().map(|&(bx, l, _)| (bx, l)));
                bands.push(poly);
                run.clear();
            }
        }
        // Counted on the full series: thinning keeps one non-finite point of
        // each kind per bucket, and not every value ≤ 0 on a log axis.
        let hidden = c.points.iter().filter(|&&(px, py)| !drawable(px, py)).count();
        let mut label = clip(&c.label, LABEL_CHARS);
        if hidden > 0 {
            let what = if log { "NaN/Inf/≤0" } else { "NaN/Inf" };
            label = format!("{label} [{hidden} {what}]");
        }
        let color = PALETTE[i % PALETTE.len()];
        curves.push(Drawn { label, color, width: line_width, runs, bands });
    }

    let note = if panel.curves.is_empty() {
        Some("no data".to_string())
    } else if !has_values {
        Some(if marks.is_empty() {
            "no finite values to draw".to_string()
        } else {
            "no finite values to draw; non-finite ones are marked on the edges".to_string()
        })
    } else {
        None
    };

    // The legend: as many rows as fit, in the corner the curves use least.
    let present: Vec<Mark> = Mark::ALL.into_iter().filter(|k| marks.iter().any(|(_, m)| m == k)).collect();
    let kinds = present.len();
    let rows_fit = ((plot_h as f64 - 30.0) / LEGEND_ROW).max(2.0) as usize;
    let legend_curves =
        if curves.len() + kinds <= rows_fit { curves.len() } else { rows_fit.saturating_sub(kinds + 1).max(1) };
    let rows = legend_curves + kinds + usize::from(legend_curves < curves.len());
    let chars = curves[..legend_curves.min(curves.len())]
        .iter()
        .map(|c| c.label.chars().count())
        .chain(present.iter().map(|m| m.legend().chars().count()))
        .max()
        .unwrap_or(0);
    let box_w = (50.0 + LEGEND_CHAR * chars as f64) / plot_w as f64;
    let box_h = (22.0 + LEGEND_ROW * rows as f64) / plot_h as f64;
    let legend_at = legend_corner(&curves, &marks, &x, &y, box_w, box_h);

    let mut y_label = panel.y_label.clone();
    if log && !y_label.to_lowercase().contains("log") {
        y_label = if y_label.is_empty() { "log scale".into() } else { format!("{y_label} (log scale)") };
    }
    Prepared {
        title: panel.title.clone(),
        x_label: panel.x_label.clone(),
        y_label,
        x,
        y,
        y_area,
        curves,
        marks,
        note,
        legend_at,
        legend_curves,
    }
}

/// The corner whose legend-sized box covers the least of the curves (points
/// sampled along every segment, band outlines, markers), preferring the upper
/// right, where decaying losses leave room.
fn legend_corner(
    curves: &[Drawn],
    marks: &[(f64, Mark)],
    x: &Axis,
    y: &Axis,
    box_w: f64,
    box_h: f64,
) -> SeriesLabelPosition {
    use SeriesLabelPosition::{LowerLeft, LowerRight, UpperLeft, UpperRight};
    let corners =
        [(UpperRight, true, true), (UpperLeft, false, true), (LowerRight, true, false), (LowerLeft, false, false)];
    let mut cost = [0.0f64; 4];
    let mut add = |tx: f64, ty: f64, w: f64| {
        for (k, &(_, right, upper)) in corners.iter().enumerate() {
            let in_x = if right { tx >= 1.0 - box_w } else { tx <= box_w };
            let in_y = if upper { ty >= 1.0 - box_h } else { ty <= box_h };
            if in_x && in_y {
                cost[k] += w;
            }
        }
    };
    for c in curves {
        for run in &c.runs {
            let mut prev: Option<(f64, f64)> = None;
            for &(px, py) in run {
                let (tx, ty) = (x.frac(px), y.frac(py));
                if let Some((ax, ay)) = prev {
                    // A long segment crosses boxes its ends are not in.
                    let steps = (((tx - ax).abs() + (ty - ay).abs()) * 50.0).ceil().min(50.0) as usize;
                    for s in 1..steps {
                        let f = s as f64 / steps as f64;
                        add(ax + (tx - ax) * f, ay + (ty - ay) * f, 1.0);
                    }
                }
                add(tx, ty, 1.0);
                prev = Some((tx, ty));
            }
        }
        // A band is an area: sample across it, from its upper edge (the
        // polygon's first half) to its lower edge (the second, reversed).
        for poly in &c.bands {
            let k = poly.len() / 2;
            for (&(px, hi), &(_, lo)) in poly[..k].iter().zip(poly[k..].iter().rev()) {
                let (tx, t_hi, t_lo) = (x.frac(px), y.frac(hi), y.frac(lo));
                for s in 0..=4 {
                    add(tx, t_lo + (t_hi - t_lo) * s as f64 / 4.0, 0.3);
                }
            }
        }
    }
    for &(px, m) in marks {
        add(x.frac(px), if m.on_top() { 1.0 } else { 0.0 }, 1.0);
    }
    let best = (0..4).fold(0, |b, k| if cost[k] < cost[b] { k } else { b });
    corners[best].0.clone()
}

/// The finite values seen on one axis.
#[derive(Default)]
struct Span {
    lo: Option<f64>,
    hi: Option<f64>,
}

impl Span {
    fn add(&mut self, v: f64) {
        self.lo = Some(self.lo.map_or(v, |l| l.min(v)));
        self.hi = Some(self.hi.map_or(v, |h| h.max(v)));
    }

    /// The range with `frac` of its span added on each side; a single value
    /// gets a range around it, no value a unit range.
    fn padded(&self, log: bool, frac: f64) -> (f64, f64) {
        let (Some(lo), Some(hi)) = (self.lo, self.hi) else {
            return if log { (1.0, 10.0) } else { (0.0, 1.0) };
        };
        let (lo, hi) = if log {
            let (a, b) = (lo.log10(), hi.log10());
            let pad = if b > a { (b - a) * frac } else { 0.25 };
            (10f64.powf(a - pad).max(f64::MIN_POSITIVE), 10f64.powf(b + pad).min(f64::MAX))
        } else {
            // Halves first: the span of extreme values would overflow.
            let half = hi / 2.0 - lo / 2.0;
            let pad = if half > 0.0 {
                half * 2.0 * frac
            } else if lo == 0.0 {
                1.0
            } else {
                lo.abs() * 0.1
            };
            ((lo - pad).max(-f64::MAX), (hi + pad).min(f64::MAX))
        };
        if lo < hi { (lo, hi) } else { (lo - 1.0, hi + 1.0) }
    }
}

/// One axis: linear or logarithmic, with tick values chosen here (plotters'
/// log axis has no ticks on a range within one decade) and labels formatted
/// compactly (250k, 1.5M, 0.002, 3e-5).
#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
    /// Light grid lines (a superset of `ticks`).
    light: Vec<f64>,
    /// The tick step when ticks are evenly spaced; None for decades.
    step: Option<f64>,
    /// The largest magnitude on the axis: picks the unit suffix.
    scale: f64,
}

impl Axis {
    /// `lo < hi`, both finite (and positive when `log`).
    fn new(lo: f64, hi: f64, log: bool, n: usize) -> Axis {
        let (ticks, light, step) = if log {
            log_ticks(lo, hi, n)
        } else {
            let (t, l, s) = linear_ticks(lo, hi, n);
            (t, l, Some(s))
        };
        Axis { lo, hi, log, ticks, light, step, scale: lo.abs().max(hi.abs()) }
    }

    /// Where `v` lies from the axis start (0) to its end (1).
    fn frac(&self, v: f64) -> f64 {
        let t = if self.log {
            let (a, b) = (self.lo.log10(), self.hi.log10());
            (v.log10() - a) / (b - a)
        } else {
            (v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0)
        };
        if t.is_nan() { 0.0 } else { t.clamp(-2.0, 3.0) }
    }

    fn mid(&self) -> f64 {
        if self.log { 10f64.powf(self.lo.log10() / 2.0 + self.hi.log10() / 2.0) } else { self.lo / 2.0 + self.hi / 2.0 }
    }

    fn label(&self, v: f64) -> String {
        match self.step {
            Some(step) => fmt_tick(v, step, self.scale),
            None => fmt_tick(v, pow10((v.abs().log10() + 1e-9).floor() as i32), v.abs()),
        }
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        (limit.0 as f64 + self.frac(*value) * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let max = hint.max_num_points();
        if hint.weight().allow_light_points() && self.light.len() <= max {
            return self.light.clone();
        }
        if self.ticks.len() <= max {
            return self.ticks.clone();
        }
        let stride = self.ticks.len().div_ceil(max.max(1));
        self.ticks.iter().copied().step_by(stride).collect()
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
    }
}

fn pow10(d: i32) -> f64 {
    10f64.powi(d)
}

/// Multiples of the smallest 1, 2 or 5 x 10^k step that gives at most `n`
/// ticks within `[lo, hi]` (so a short range still gets several), and light
/// lines at fifths (quarters for a step of 2) of it.
fn linear_ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, Vec<f64>, f64) {
    let multiples = |step: f64| -> Vec<f64> {
        let (k0, k1) = ((lo / step).ceil(), (hi / step).floor());
        if !(k0.is_finite() && k1.is_finite()) || k1 - k0 > 1000.0 {
            return Vec::new();
        }
        // -0.0 and 1e-17 for zero would print oddly.
        (k0 as i64..=k1 as i64).map(|k| k as f64 * step).map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v }).collect()
    };
    let n = n.max(2);
    let span = (hi / 2.0 - lo / 2.0) * 2.0;
    let mut base =
        if span > 0.0 && span.is_finite() { pow10((span / n as f64).log10().floor() as i32 - 1) } else { 1.0 };
    for _ in 0..8 {
        for m in [1u32, 2, 5] {
            let step = m as f64 * base;
            let count = (hi / step).floor() - (lo / step).ceil() + 1.0;
            if count <= n as f64 {
                let light = multiples(step / if m == 2 { 4.0 } else { 5.0 });
                return (multiples(step), light, step);
            }
        }
        base *= 10.0;
    }
    (vec![lo, hi], Vec::new(), span.max(f64::MIN_POSITIVE))
}

/// Powers of ten when the range spans three or more; otherwise 1-2-5 (or
/// 1..9) multiples of them, or even steps as a last resort.
fn log_ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, Vec<f64>, Option<f64>) {
    let (a, b) = (lo.log10(), hi.log10());
    let within = |v: f64| v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12);
    let multiples = |ms: &[u32]| -> Vec<f64> {
        let mut out = Vec::new();
        for d in (a.floor() as i32 - 1)..=(b.ceil() as i32) {
            out.extend(ms.iter().map(|&m| m as f64 * pow10(d)).filter(|&v| within(v)));
        }
        out
    };
    let (d0, d1) = ((a - 1e-9).ceil() as i32, (b + 1e-9).floor() as i32);
    let all: Vec<u32> = (1..=9).collect();
    if d1 - d0 >= 2 {
        let stride = ((d1 - d0 + 1) as usize).div_ceil(n.max(1)).max(1);
        let ticks: Vec<f64> = (d0..=d1).step_by(stride).map(pow10).collect();
        let light = if stride == 1 && d1 - d0 < 12 { multiples(&all) } else { ticks.clone() };
        return (ticks, light, None);
    }
    for ms in [&[1, 2, 5][..], &all] {
        let t = multiples(ms);
        if (3..=n).contains(&t.len()) {
            return (t, multiples(&all), None);
        }
    }
    let (t, l, s) = linear_ticks(lo, hi, n);
    (t, l, Some(s))
}

/// A tick label with the decimals the step needs: unit suffixes on axes
/// reaching 10^4 (steps are often in the millions: 250k, 1.5M), scientific
/// on axes below 10^-3.
fn fmt_tick(v: f64, step: f64, scale: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() < step * 1e-6 {
        return "0".into();
    }
    let decimals = |unit: f64| -> usize {
        let r = step / unit;
        if r >= 1.0 - 1e-9 { 0 } else { ((-(r.log10() + 1e-9).floor()) as usize).min(12) }
    };
    if (1e4..1e15).contains(&scale) {
        // Each label takes the unit of its own size ("800k", "1.2M"), which
        // reads better than one unit for all ("0.8M") or none ("800000").
        let mag = v.abs().max(step);
        let (unit, suffix) = if mag >= 1e12 - 0.5 {
            (1e12, "T")
        } else if mag >= 1e9 - 0.5 {
            (1e9, "G")
        } else if mag >= 1e6 - 0.5 {
            (1e6, "M")
        } else {
            (1e3, "k")
        };
        let mut s = format!("{:.*}", decimals(unit), v / unit);
        if s.contains('.') {
            s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
        }
        return s + suffix;
    }
    if !(1e-3..1e15).contains(&scale) {
        let digits = (v.abs().log10() + 1e-9).floor() - (step.log10() + 1e-9).floor();
        return format!("{:.*e}", digits.clamp(0.0, 12.0) as usize, v);
    }
    format!("{:.*}", decimals(1.0), v)
}

fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Prepared],
    joined: bool,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        draw_panel(area, panel, joined).map_err(|e| e.to_string())?;
    }
    Ok(())
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Prepared, joined: bool) -> DrawResult<DB> {
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 18, FontStyle::Bold))
        .margin(MARGIN)
        .margin_right(MARGIN_RIGHT)
        .x_label_area_size(X_AREA)
        .y_label_area_size(p.y_area)
        .build_cartesian_2d(p.x.clone(), p.y.clone())?;
    chart
        .configure_mesh()
        .x_labels(p.x.ticks.len().max(1))
        .y_labels(p.y.ticks.len().max(1))
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()?;

    // Bands under every line, so no band hides another curve's line.
    for c in &p.curves {
        let fill = c.color.mix(0.2).filled();
        chart.draw_series(c.bands.iter().map(|poly| Polygon::new(poly.clone(), fill)))?;
    }
    for (i, c) in p.curves.iter().enumerate() {
        let style = c.color.stroke_width(c.width);
        // Plotters strokes a wide path as one polygon whose inner miter joins
        // are unbounded, so on a bitmap a one-sample spike would shoot far
        // past the panel: there each segment is drawn on its own. SVG keeps
        // one `<polyline>` per run (small files; viewers bound the miters).
        let lines = c.runs.iter().filter(|r| r.len() > 1).flat_map(|r| {
            let parts: Vec<Vec<(f64, f64)>> =
                if joined { vec![r.clone()] } else { r.windows(2).map(<[_]>::to_vec).collect() };
            parts.into_iter().map(move |part| PathElement::new(part, style))
        });
        let anno = chart.draw_series(lines)?;
        if i < p.legend_curves {
            let color = c.color;
            anno.label(c.label.as_str());
            if c.bands.is_empty() {
                anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            } else {
                anno.legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + Rectangle::new([(0, -6), (20, 6)], color.mix(0.2).filled())
                        + PathElement::new(vec![(0, 0), (20, 0)], color.stroke_width(2))
                });
            }
        }
        // An isolated point (e.g. between two NaNs) has no segment to draw.
        let dots = c.runs.iter().filter(|r| r.len() == 1).map(|r| Circle::new(r[0], 3, c.color.filled()));
        chart.draw_series(dots)?;
    }
    let hidden = p.curves.len() - p.legend_curves.min(p.curves.len());
    if hidden > 0 {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(format!("+{hidden} more curves"))
            .legend(|(x, y)| EmptyElement::at((x, y)));
    }

    // Markers for values that are not on the line, on the edge they ran off.
    let mark = MARK_COLOR.stroke_width(2);
    let (top, bottom) = (p.y.hi, p.y.lo);
    let cross = |dy: i32| {
        move |c: (f64, f64)| {
            EmptyElement::at(c)
                + PathElement::new(vec![(-4, dy - 4), (4, dy + 4)], mark)
                + PathElement::new(vec![(-4, dy + 4), (4, dy - 4)], mark)
        }
    };
    let up = |c: (f64, f64)| EmptyElement::at(c) + Polygon::new(vec![(0, 1), (-5, 10), (5, 10)], MARK_COLOR.filled());
    let down =
        |c: (f64, f64)| EmptyElement::at(c) + Polygon::new(vec![(0, -1), (-5, -10), (5, -10)], MARK_COLOR.filled());
    let at = |kind: Mark, y: f64| p.marks.iter().filter(move |(_, m)| *m == kind).map(move |&(x, _)| (x, y));
    let present = |kind: Mark| p.marks.iter().any(|(_, m)| *m == kind);
    if present(Mark::Nan) {
        chart.draw_series(at(Mark::Nan, top).map(cross(7)))?.label(Mark::Nan.legend()).legend(move |(x, y)| {
            EmptyElement::at((x + 10, y))
                + PathElement::new(vec![(-4, -4), (4, 4)], mark)
                + PathElement::new(vec![(-4, 4), (4, -4)], mark)
        });
    }
    if present(Mark::PosInf) {
        chart.draw_series(at(Mark::PosInf, top).map(up))?.label(Mark::PosInf.legend()).legend(|(x, y)| {
            EmptyElement::at((x + 10, y)) + Polygon::new(vec![(0, -5), (-5, 4), (5, 4)], MARK_COLOR.filled())
        });
    }
    if present(Mark::NegInf) {
        chart.draw_series(at(Mark::NegInf, bottom).map(down))?.label(Mark::NegInf.legend()).legend(|(x, y)| {
            EmptyElement::at((x + 10, y)) + Polygon::new(vec![(0, 5), (-5, -4), (5, -4)], MARK_COLOR.filled())
        });
    }
    if present(Mark::NonPositive) {
        chart.draw_series(at(Mark::NonPositive, bottom).map(cross(-7)))?.label(Mark::NonPositive.legend()).legend(
            move |(x, y)| {
                EmptyElement::at((x + 10, y))
                    + PathElement::new(vec![(-4, -4), (4, 4)], mark)
                    + PathElement::new(vec![(-4, 4), (4, -4)], mark)
            },
        );
    }

    if let Some(note) = &p.note {
        let grey = BLACK.mix(0.6);
        let style = TextStyle::from((FONT, 15).into_font()).color(&grey).pos(Pos::new(HPos::Center, VPos::Center));
        chart.draw_series(std::iter::once(Text::new(note.clone(), (p.x.mid(), p.y.mid()), style)))?;
    }
    if !p.curves.is_empty() {
        chart
            .configure_series_labels()
            .position(p.legend_at.clone())
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 13))
            .margin(12)
            .legend_area_size(26)
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three curves: one plain, one with a NaN and a +Inf, one with a band.
    fn sample() -> Figure {
        let plain: Vec<(f64, f64)> = (0..200).map(|i| (i as f64, 2.0 * (-(i as f64) / 60.0).exp() + 0.1)).collect();
        let mut spiky: Vec<(f64, f64)> = (0..200).map(|i| (i as f64, 1.5 * (-(i as f64) / 40.0).exp() + 0.2)).collect();
        spiky[50].1 = f64::NAN;
        spiky[120].1 = f64::INFINITY;
        let mean: Vec<(f64, f64)> = (0..200).map(|i| (i as f64, 1.8 * (-(i as f64) / 80.0).exp() + 0.15)).collect();
        let band = mean.iter().map(|&(x, y)| (x, y - 0.1, y + 0.1)).collect();
        let grouped = Curve { label: "lr=3e-4 (3 seeds)".into(), points: mean, band: Some(band) };
        Figure::new(vec![Panel {
            title: "train/loss".into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            log_y: false,
            curves: vec![Curve::new("baseline", plain), Curve::new("spiky-run", spiky), grouped],
        }])
    }

    #[test]
    fn plot_svg_has_the_structure() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fig.svg");
        render(&sample(), Format::Svg, &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        for text in ["baseline", "spiky-run", "lr=3e-4 (3 seeds)", "train/loss", "step", "loss"] {
            assert!(svg.contains(&format!(">{text}")) || svg.contains(text), "missing text {text}");
        }
        // The spiky run's label counts its two non-finite points.
        assert!(svg.contains("spiky-run [2 NaN/Inf]"));
        // At least one line per curve, in the curve's colour, and the band.
        for c in &PALETTE[..3] {
            let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
            let lines = svg.lines().filter(|l| l.contains("<polyline") && l.contains(&hex)).count();
            assert!(lines >= 1, "no line in {hex}");
        }
        let band_hex = format!("#{:02X}{:02X}{:02X}", PALETTE[2].0, PALETTE[2].1, PALETTE[2].2);
        assert!(svg.lines().any(|l| l.contains("<polygon") && l.contains(&band_hex)), "no band");
        // The spiky run is split at its NaN and +Inf: three runs of its colour.
        let orange = "#FF7F0E";
        let runs = svg.lines().filter(|l| l.contains("<polyline") && l.contains(orange)).count();
        assert!(runs >= 3, "the spiky line is not split: {runs}");
        // The markers, in their colour, explained in the legend.
        assert!(svg.contains("#DC143C"), "no non-finite marker");
        assert!(svg.contains("NaN (top edge)") && svg.contains("+Inf (top edge)"));
    }

    #[test]
    fn plot_png_has_the_expected_size() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fig.png");
        let mut fig = sample();
        fig.panels.push(Panel { title: "val/acc".into(), log_y: true, ..fig.panels[0].clone() });
        render(&fig, Format::Png, &out).unwrap();
        let png = std::fs::read(&out).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), (DEFAULT_WIDTH, 2 * DEFAULT_PANEL_HEIGHT));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn plot_degenerate_panels_render() {
        let dir = tempfile::tempdir().unwrap();
        let all_nan = Curve::new("all-nan", vec![(0.0, f64::NAN), (1.0, f64::NAN), (2.0, f64::NEG_INFINITY)]);
        let single = Curve::new("single", vec![(5.0, 0.5)]);
        let log_neg = Curve::new("log", vec![(0.0, -1.0), (1.0, 0.0), (2.0, 3.0), (3.0, 2.0)]);
        let empty = Curve::new("empty", vec![]);
        let panels = vec![
            Panel { title: "nan".into(), curves: vec![all_nan.clone()], ..Panel::default() },
            Panel { title: "single".into(), curves: vec![single.clone()], log_y: true, ..Panel::default() },
            Panel { title: "log".into(), curves: vec![log_neg], log_y: true, ..Panel::default() },
            Panel { title: "none".into(), ..Panel::default() },
            Panel { title: "empty".into(), curves: vec![empty, all_nan], ..Panel::default() },
        ];
        let fig = Figure::new(panels);
        render(&fig, Format::Png, &dir.path().join("d.png")).unwrap();
        let out = dir.path().join("d.svg");
        render(&fig, Format::Svg, &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.contains("no finite values to draw"));
        assert!(svg.contains("no data"));
        assert!(svg.contains("≤ 0, off the log scale"));
        assert!(svg.contains("-Inf (bottom edge)"));
        // The single point is drawn as a dot.
        assert!(svg.contains("<circle"));
    }

    #[test]
    fn plot_render_errors_are_returned() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/fig.svg");
        let e = render(&sample(), Format::Svg, &missing).unwrap_err();
        assert!(matches!(e, Error::Write { .. }) && e.to_string().contains("fig.svg"), "{e}");
        let e = render(&sample(), Format::Png, &dir.path().join("no/fig.png")).unwrap_err();
        assert!(matches!(e, Error::Write { .. }) && e.to_string().contains("fig.png"), "{e}");
        assert!(render(&Figure::default(), Format::Svg, &dir.path().join("x.svg")).is_err());
        let tiny = Figure { width: 10, ..sample() };
        assert!(render(&tiny, Format::Svg, &dir.path().join("x.svg")).is_err());
    }

    #[test]
    fn plot_thin_keeps_extremes_and_non_finite_points() {
        let n = 1_000_000;
        let mut pts: Vec<(f64, f64)> =
            (0..n).map(|i| (i as f64, ((i as f64) * 0.001).sin() + (i % 7) as f64 * 1e-3)).collect();
        pts[123_457].1 = 50.0; // global max, a one-point spike
        pts[654_321].1 = -50.0; // global min
        let odd = [(10, f64::NAN), (500_001, f64::INFINITY), (500_002, f64::NEG_INFINITY), (999_998, f64::NAN)];
        for (i, v) in odd {
            pts[i].1 = v;
        }
        let out = thin(&pts, 2000);
        assert!(out.len() <= 2000 + odd.len() + 2 && out.len() >= 1900, "{}", out.len());
        assert!(out.contains(&(123_457.0, 50.0)));
        assert!(out.contains(&(654_321.0, -50.0)));
        for (i, v) in odd {
            assert!(out.iter().any(|&(x, y)| x == i as f64 && (y == v || (y.is_nan() && v.is_nan()))), "lost {i}");
        }
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "out of order");
        assert_eq!(out.first(), Some(&pts[0]));
        assert_eq!(out.last(), Some(&pts[n - 1]));
        // Short series and max_points 0 are left alone.
        assert_eq!(thin(&pts[200..300], 2000), pts[200..300].to_vec());
        assert_eq!(thin(&pts[200..300], 0).len(), 100);
    }

    #[test]
    fn plot_thin_counts_a_point_without_a_finite_x_as_nan() {
        let mut pts: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, 1.0)).collect();
        pts[50] = (f64::NAN, 100.0);
        let out = thin(&pts, 10);
        assert!(out.iter().any(|p| p.0.is_nan()), "kept: the line breaks there");
        assert!(out.iter().filter(|p| p.0.is_finite()).all(|p| p.1 == 1.0), "no bucket's highest: {out:?}");
    }

    #[test]
    fn plot_smooth_alpha_one_is_identity_and_skips_non_finite() {
        let pts = vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, f64::INFINITY), (4.0, -2.0)];
        let same = smooth(&pts, 1.0);
        for (a, b) in pts.iter().zip(&same) {
            assert_eq!(a.0, b.0);
            assert!(a.1 == b.1 || (a.1.is_nan() && b.1.is_nan()));
        }
        let s = smooth(&pts, 0.5);
        assert_eq!(s[0], (0.0, 1.0));
        assert!(s[1].1.is_nan());
        assert_eq!(s[2], (2.0, 2.0));
        assert_eq!(s[3].1, f64::INFINITY);
        assert_eq!(s[4], (4.0, 0.0));
    }

    #[test]
    fn plot_format_from_path() {
        assert_eq!(Format::from_path(Path::new("a/b.svg")).unwrap(), Format::Svg);
        assert_eq!(Format::from_path(Path::new("b.PNG")).unwrap(), Format::Png);
        let e = Format::from_path(Path::new("out/fig.jpg")).unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::Invalid);
        let e = e.to_string();
        assert!(e.contains("out/fig.jpg") && e.contains(".svg") && e.contains(".png"), "{e}");
        assert!(Format::from_path(Path::new("noext")).is_err());
    }

    #[test]
    fn plot_tick_labels_are_compact() {
        assert_eq!(fmt_tick(250_000.0, 50_000.0, 1e6), "250k");
        assert_eq!(fmt_tick(1_500_000.0, 500_000.0, 2e6), "1.5M");
        assert_eq!(fmt_tick(1_000_000.0, 200_000.0, 2e6), "1M");
        assert_eq!(fmt_tick(800_000.0, 200_000.0, 2e6), "800k");
        assert_eq!(fmt_tick(500.0, 500.0, 2e4), "0.5k");
        assert_eq!(fmt_tick(0.2, 0.1, 1.0), "0.2");
        assert_eq!(fmt_tick(0.30000000000000004, 0.1, 1.0), "0.3");
        assert_eq!(fmt_tick(-1e-17, 0.1, 1.0), "0");
        assert_eq!(fmt_tick(3e-5, 1e-5, 5e-5), "3e-5");
        let (t, _, _) = linear_ticks(0.0, 1_000_000.0, 8);
        assert_eq!(t.first(), Some(&0.0));
        assert!(t.len() <= 8 && t.len() >= 3);
        // A short range still gets several ticks.
        let (t, _, step) = linear_ticks(0.28, 0.89, 3);
        assert_eq!((t.len(), step), (3, 0.2));
        // A log axis within one decade still gets ticks.
        let a = Axis::new(0.3, 0.9, true, 6);
        assert!(a.ticks.len() >= 3, "{:?}", a.ticks);
        let a = Axis::new(1e-4, 10.0, true, 6);
        assert_eq!(
            a.ticks.iter().map(|&v| a.label(v)).collect::<Vec<_>>(),
            ["1e-4", "0.001", "0.01", "0.1", "1", "10"]
        );
    }
}
