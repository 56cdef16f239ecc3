//! Sweeps: the points of a grid (a cartesian product) or of seeded random
//! draws over config keys, `{key}` put into a command's argv and a run's
//! name, and the sweep's record (`sweeps/<id>.json`, written whole).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::lab::Lab;
use crate::query::Path;
use crate::record::RunStatus;
use crate::registry::{self, Group};
use crate::review::{self, ReviewState};

/// Sweep ids: run ids' shape with a prefix of their own.
pub const PREFIX: &str = "s-";
/// The lab's folder of sweep records.
pub const DIR: &str = "sweeps";

/// One point: config keys (as given, dots and all) and their values.
pub type Point = Map<String, Value>;

/// A distribution a random sweep draws a key from.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    Uniform(f64, f64),
    LogUniform(f64, f64),
    /// Whole numbers from the first to the second, both included.
    Int(i64, i64),
    Choice(Vec<Value>),
}

/// What a sweep ranges over, as given on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Space {
    pub grid: Vec<(String, Vec<Value>)>,
    pub dists: Vec<(String, Dist)>,
    /// How many random points to draw (each crossed with the grid).
    pub random: Option<usize>,
}

/// A sweep as the lab records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub id: String,
    pub time: f64,
    pub author: String,
    /// The name template of its runs, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The command with its `{key}` placeholders.
    pub command: Vec<String>,
    /// `--grid` and `--dist` as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dist: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<usize>,
    /// The seed of the random draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub queue: bool,
    pub points: Vec<Point>,
    /// The run of each point, in the points' order; empty while the sweep
    /// waits for approval.
    pub runs: Vec<String>,
    /// The approval request the sweep waits on, if it needed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// On Slurm: the job array its runs are the tasks of, once submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array: Option<String>,
    /// On Slurm: how many of its tasks may run at once (the array's `%K`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
}

impl Sweep {
    /// The tag every run of the sweep carries: its id.
    pub fn tag(&self) -> &str {
        &self.id
    }
}

/// True for strings of a sweep id's shape.
pub fn looks_like_sweep_id(s: &str) -> bool {
    s.strip_prefix(PREFIX).is_some_and(|rest| crate::id::looks_like_run_id(&format!("{}{rest}", crate::id::PREFIX)))
}

fn bad(what: &'static str, arg: &str, why: &str) -> Error {
    Error::invalid(what, format!("{} '{}': {why}", flag(what), crate::text::clip(arg, 120)))
}

fn flag(what: &str) -> &str {
    match what {
        "grid" => "--grid",
        "dist" => "--dist",
        _ => "the argument",
    }
}

fn key_of<'a>(what: &'static str, arg: &'a str) -> Result<(&'a str, &'a str)> {
    let (key, rest) = arg.split_once('=').ok_or_else(|| bad(what, arg, "expected KEY=..., found no '='"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(bad(what, arg, "the key is empty"));
    }
    if key.contains(['{', '}', ',', ' ']) {
        return Err(bad(what, arg, "a key is letters, digits, '_', '-' and '.'"));
    }
    Ok((key, rest))
}

/// A value as `--config` reads one: JSON where it parses, else a string.
fn value(raw: &str) -> Value {
    serde_json::from_str(raw.trim()).unwrap_or_else(|_| Value::String(raw.trim().to_string()))
}

/// Reads `--grid KEY=V1,V2,...` and `--dist KEY=DIST`; a key given twice
/// (in either) is refused.
pub fn parse(grid: &[String], dists: &[String], random: Option<usize>) -> Result<Space> {
    let mut space = Space { random, ..Default::default() };
    let mut seen = Vec::<String>::new();
    let mut once = |what: &'static str, arg: &str, key: &str| {
        if seen.iter().any(|k| k == key) {
            return Err(bad(what, arg, &format!("the key '{key}' is given twice")));
        }
        seen.push(key.to_string());
        Ok(())
    };
    for arg in grid {
        let (key, values) = key_of("grid", arg)?;
        once("grid", arg, key)?;
        let values: Vec<Value> = values.split(',').filter(|v| !v.trim().is_empty()).map(value).collect();
        if values.is_empty() {
            return Err(bad("grid", arg, "no values: give KEY=V1,V2,..."));
        }
        space.grid.push((key.to_string(), values));
    }
    for arg in dists {
        let (key, text) = key_of("dist", arg)?;
        once("dist", arg, key)?;
        space.dists.push((key.to_string(), parse_dist(arg, text.trim())?));
    }
    match (random, space.dists.is_empty()) {
        (Some(_), true) => return Err(Error::invalid("random", "--random needs at least one --dist KEY=DIST")),
        (None, false) => return Err(Error::invalid("dist", "--dist needs --random N (how many points to draw)")),
        (Some(0), _) => return Err(Error::invalid("random", "--random must draw at least one point")),
        _ => {}
    }
    if space.grid.is_empty() && space.dists.is_empty() {
        return Err(Error::invalid("grid", "a sweep needs --grid KEY=V1,V2,... or --random N with --dist"));
    }
    Ok(space)
}

fn parse_dist(arg: &str, text: &str) -> Result<Dist> {
    let expected = "expected uniform(a,b), loguniform(a,b), int(a,b) or choice(v1,v2,...)";
    let (kind, rest) = text.split_once('(').ok_or_else(|| bad("dist", arg, expected))?;
    let inner = rest.strip_suffix(')').ok_or_else(|| bad("dist", arg, "no closing ')'"))?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let two = |parts: &[&str]| -> Result<(f64, f64)> {
        let [a, b] = parts else { return Err(bad("dist", arg, "takes two numbers, (low,high)")) };
        let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let (Some(a), Some(b)) = (num(a), num(b)) else {
            return Err(bad("dist", arg, "its bounds must be finite numbers"));
        };
        if a >= b {
            return Err(bad("dist", arg, "the low bound must be below the high one"));
        }
        Ok((a, b))
    };
    match kind.trim() {
        "uniform" => two(&parts).map(|(a, b)| Dist::Uniform(a, b)),
        "loguniform" => {
            let (a, b) = two(&parts)?;
            if a <= 0.0 {
                return Err(bad("dist", arg, "loguniform's bounds must be above 0"));
            }
            Ok(Dist::LogUniform(a, b))
        }
        "int" => {
            let [a, b] = parts[..] else { return Err(bad("dist", arg, "takes two whole numbers, (low,high)")) };
            let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) else {
                return Err(bad("dist", arg, "int's bounds must be whole numbers"));
            };
            if a > b {
                return Err(bad("dist", arg, "the low bound must not be above the high one"));
            }
            Ok(Dist::Int(a, b))
        }
        "choice" => {
            let values: Vec<Value> = parts.iter().filter(|p| !p.is_empty()).map(|p| value(p)).collect();
            if values.is_empty() {
                return Err(bad("dist", arg, "choice needs at least one value"));
            }
            Ok(Dist::Choice(values))
        }
        other => Err(bad("dist", arg, &format!("unknown distribution '{}'; {expected}", crate::text::clip(other, 40)))),
    }
}

/// The points of a space: the grid's product in the order given (the last
/// key varying fastest), each random draw crossed with it. Draws come from
/// `seed` alone: the same seed, the same points.
pub fn points(space: &Space, seed: u64) -> Vec<Point> {
    let mut grid = vec![Point::new()];
    for (key, values) in &space.grid {
        grid = grid
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.insert(key.clone(), v.clone());
                    p
                })
            })
            .collect();
    }
    let Some(n) = space.random else { return grid };
    let mut rng = SplitMix(seed);
    let mut all = Vec::new();
    for _ in 0..n {
        let mut draw = Point::new();
        for (key, dist) in &space.dists {
            draw.insert(key.clone(), rng.draw(dist));
        }
        for g in &grid {
            let mut p = g.clone();
            p.extend(draw.clone());
            all.push(p);
        }
    }
    all
}

/// splitmix64: small, seeded, and the same on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn draw(&mut self, dist: &Dist) -> Value {
        match dist {
            Dist::Uniform(a, b) => number(a + (b - a) * self.unit()),
            Dist::LogUniform(a, b) => number((a.ln() + (b.ln() - a.ln()) * self.unit()).exp()),
            Dist::Int(a, b) => {
                let span = (b - a) as u64 + 1;
                Value::from(a + (self.next() % span) as i64)
            }
            Dist::Choice(values) => values[(self.next() % values.len() as u64) as usize].clone(),
        }
    }
}

/// A drawn number, to 6 significant digits: what names and argv show is
/// what the config holds.
fn number(v: f64) -> Value {
    let rounded: f64 = format!("{v:.5e}").parse().unwrap_or(v);
    serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
}

/// A value as it goes into argv and names: strings as they are, the rest as JSON.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Puts a point's values into `template` at each `{key}`; `{{` and `}}` are
/// braces. A key the point does not have is an error naming it.
pub fn substitute(template: &str, point: &Point) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    let bad = |why: String| Error::invalid("placeholder", format!("in '{}': {why}", crate::text::clip(template, 120)));
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut key = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => key.push(c),
                        None => return Err(bad("a '{' with no '}' (write '{{' for a brace)".into())),
                    }
                }
                let value = point.get(&key).ok_or_else(|| {
                    let keys: Vec<&str> = point.keys().map(String::as_str).collect();
                    let key = crate::text::clip(&key, 40);
                    bad(format!(
                        "unknown key {{{key}}}; the sweep's keys are {} (write '{{{{' for a brace)",
                        keys.join(", ")
                    ))
                })?;
                out.push_str(&show(value));
            }
            '}' => return Err(bad("a lone '}' (write '}}' for a brace)".into())),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The name of a point's run without a template: `lr=0.001,seed=1`.
pub fn default_name(point: &Point) -> String {
    point.iter().map(|(k, v)| format!("{k}={}", show(v))).collect::<Vec<_>>().join(",")
}

/// The `--config` strings that put a point into a run's config.
pub fn config_args(point: &Point) -> Vec<String> {
    point.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn path(lab: &Lab, id: &str) -> PathBuf {
    lab.root().join(DIR).join(format!("{id}.json"))
}

/// Whether the lab has a sweep `id`.
pub fn exists(lab: &Lab, id: &str) -> bool {
    path(lab, id).exists()
}

/// Writes a sweep's record whole: under a temporary name, then renamed.
pub fn write(lab: &Lab, sweep: &Sweep) -> Result<()> {
    let dir = lab.root().join(DIR);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let target = path(lab, &sweep.id);
    let tmp = dir.join(format!(".{}.json.tmp", sweep.id));
    let text = serde_json::to_string_pretty(sweep).map_err(|e| Error::internal("sweep", e.to_string()))? + "\n";
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))
}

/// Reads the sweep `id`.
pub fn read(lab: &Lab, id: &str) -> Result<Sweep> {
    let file = path(lab, id);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::not_found("sweep", format!("no sweep {}", crate::text::clip(id, 40))));
        }
        Err(e) => return Err(Error::io(&file, e)),
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::invalid("sweep", format!("{} is not a sweep record: {e}", file.display())))
}

/// One point of a sweep and where its run stands.
#[derive(Debug, Clone, Serialize)]
pub struct PointState {
    pub point: Point,
    pub run: String,
    pub name: Option<String>,
    pub status: RunStatus,
    /// On Slurm: the run's task of the job array, as the index last saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::model::SlurmJob>,
}

/// Where a sweep stands.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub sweep: String,
    /// On Slurm: the job array of its runs, and how many run at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm_array: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// The approval request it waits on, while its runs do not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Where that request stands: `pending`, or `rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_state: Option<ReviewState>,
    pub points: Vec<PointState>,
    /// How many runs are in each status.
    pub counts: BTreeMap<String, usize>,
    /// The key whose values are seeds, left out of the grouping.
    pub seed_key: String,
    /// The points' keys the comparison groups by: every one but the seed.
    pub group_by: Vec<String>,
    /// The metrics compared.
    pub metrics: Vec<String>,
    /// Runs grouped by the keys that are not the seed, across seeds; once
    /// every run has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
}

/// How many metrics the comparison shows at most.
const COMPARED_METRICS: usize = 3;

/// Where the sweep's runs stand, and, once they have all ended, their
/// comparison grouped by every key but `seed_key`.
pub fn progress(index: &Index, sweep: &Sweep, seed_key: &str) -> Result<Progress> {
    let runs = sweep.runs.iter().map(|id| index.run(id)).collect::<Result<Vec<_>>>()?;
    let points: Vec<PointState> = sweep
        .points
        .iter()
        .zip(&runs)
        .map(|(point, run)| PointState {
            point: point.clone(),
            run: run.id.clone(),
            name: run.name.clone(),
            status: run.status.clone(),
            slurm: run.slurm.clone(),
        })
        .collect();
    let mut counts = BTreeMap::new();
    for p in &points {
        *counts.entry(p.status.to_string()).or_default() += 1;
    }
    let keys: Vec<String> = sweep.points.first().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    let group_by: Vec<String> = keys.into_iter().filter(|k| k != seed_key).map(|k| format!("config.{k}")).collect();
    let metrics = crate::model::key_metrics(&runs, COMPARED_METRICS);
    let ended = !runs.is_empty() && runs.iter().all(|r| !r.status.is_live());
    let groups = if ended {
        let by = registry::parse_paths(&group_by, &runs, "the sweep's keys")?;
        let of: Vec<Path> = metrics.iter().map(|k| Path::Metric { key: k.clone(), field: "last".into() }).collect();
        Some(registry::group(index, &runs, &by, &of, seed_key))
    } else {
        None
    };
    let request = sweep.request.clone().filter(|_| sweep.runs.is_empty());
    let request_state = match &request {
        Some(id) => review::load(index.lab())?.requests.into_iter().find(|r| r.request.id == *id).map(|r| r.state),
        None => None,
    };
    Ok(Progress {
        sweep: sweep.id.clone(),
        slurm_array: sweep.slurm_array.clone(),
        max_concurrent: sweep.max_concurrent,
        request,
        request_state,
        points,
        counts,
        seed_key: seed_key.to_string(),
        group_by,
        metrics,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_grid_is_the_product_in_the_order_given() {
        let space = parse(&strings(&["lr=1e-3,3e-3", "seed=1,2"]), &[], None).unwrap();
        let names: Vec<String> = points(&space, 0).iter().map(default_name).collect();
        assert_eq!(names, ["lr=0.001,seed=1", "lr=0.001,seed=2", "lr=0.003,seed=1", "lr=0.003,seed=2"]);
    }

    #[test]
    fn draws_repeat_with_their_seed_and_stay_in_bounds() {
        let dists = strings(&["lr=loguniform(1e-4,1e-2)", "n=int(1,3)", "opt=choice(adam,sgd)", "m=uniform(0,1)"]);
        let space = parse(&[], &dists, Some(20)).unwrap();
        let (a, b) = (points(&space, 7), points(&space, 7));
        assert_eq!(a, b);
        assert_ne!(a, points(&space, 8));
        for p in &a {
            let lr = p["lr"].as_f64().unwrap();
            assert!((1e-4..=1e-2).contains(&lr), "{lr}");
            assert!((1..=3).contains(&p["n"].as_i64().unwrap()));
            assert!(["adam", "sgd"].contains(&p["opt"].as_str().unwrap()));
        }
    }

    #[test]
    fn placeholders_take_the_points_values_and_braces_escape() {
        let mut p = Point::new();
        p.insert("lr".into(), Value::from(0.001));
        p.insert("opt".into(), Value::from("adam"));
        assert_eq!(substitute("--lr={lr} {{x}} {opt}", &p).unwrap(), "--lr=0.001 {x} adam");
        let err = substitute("{seed}", &p).unwrap_err().to_string();
        assert!(err.contains("unknown key {seed}"), "{err}");
        let err = substitute("x{lr", &p).unwrap_err().to_string();
        assert!(err.contains("a '{' with no '}'"), "{err}");
        let err = substitute("x}", &p).unwrap_err().to_string();
        assert!(err.contains("a lone '}'"), "{err}");
    }

    #[test]
    fn bad_spaces_are_named() {
        type Case<'a> = (&'a [&'a str], &'a [&'a str], Option<usize>, &'a str);
        let cases: [Case; 7] = [
            (&["lr="], &[], None, "no values"),
            (&["lr=1,2", "lr=3"], &[], None, "given twice"),
            (&["lr=1"], &["lr=uniform(0,1)"], Some(2), "given twice"),
            (&[], &[], Some(3), "--random needs at least one --dist"),
            (&[], &["lr=normal(0,1)"], Some(3), "unknown distribution 'normal'"),
            (&[], &["lr=uniform(1,0)"], Some(3), "low bound"),
            (&[], &["lr=loguniform(0,1)"], Some(3), "above 0"),
        ];
        for (grid, dists, random, want) in cases {
            let err = parse(&strings(grid), &strings(dists), random).unwrap_err().to_string();
            assert!(err.contains(want), "{grid:?} {dists:?}: {err}");
        }
    }
}
