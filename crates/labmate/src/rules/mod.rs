//! Babysitting rules: what a careful researcher notices in a live run, as
//! pure logic over the run's metric points, its activity and its exit. The
//! supervisor feeds a [`Babysitter`] and carries out the [`Alert`]s it
//! returns; time always comes in as an argument, so tests need no clock.
//!
//! Default rules (each can be tuned or switched off in `labmate.toml`):
//! `nonfinite`, `diverge`, `stall`, `slowdown`, `crash`, `oom`; plus user
//! rules in the syntax of [`expr::parse_rule`].

pub mod detect;
pub mod expr;

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value, json};

use crate::clock::human_duration;
use crate::error::Error;
use crate::record::{Event, Num, how_ended};
use crate::settings::{Action, RulesConfig};
pub use expr::{Condition, UserRule, parse_condition, parse_rule};

/// What a rule saw, and what should be done about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub rule: String,
    pub action: Action,
    pub message: String,
    pub evidence: Map<String, Value>,
}

impl Alert {
    /// The event recorded in the run: kind `alert`, with rule, action and evidence.
    pub fn to_event(&self, time: f64) -> Event {
        let mut data = Map::new();
        data.insert("rule".into(), self.rule.clone().into());
        data.insert("action".into(), self.action.to_string().into());
        data.extend(self.evidence.clone());
        Event { time, kind: "alert".into(), message: self.message.clone(), data: Some(Value::Object(data)) }
    }
}

/// How the run's command ended, for the crash and oom rules.
pub struct Exit<'a> {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Stopped by labmate: not a crash.
    pub stopped: bool,
    /// The end of its output (stderr first when it wrote any).
    pub tail: &'a str,
    /// The last memory sample was near the machine's limit.
    pub memory_high: bool,
}

const RECENT: usize = 6;
/// Names of metrics that are themselves a throughput.
const THROUGHPUT_NAMES: [&str; 6] =
    ["throughput", "tokens_per_s", "samples_per_s", "steps_per_s", "it_per_s", "examples_per_s"];

pub struct Babysitter {
    cfg: RulesConfig,
    user: Vec<(UserRule, u32, bool)>,
    series: HashMap<String, Series>,
    last_activity: f64,
    gaps: VecDeque<f64>,
    stall_fired: bool,
    steps: Level,
    named: HashMap<String, Level>,
    last_step: Option<(f64, i64)>,
}

#[derive(Default)]
struct Series {
    recent: VecDeque<(i64, f64)>,
    nonfinite_fired: bool,
    diverge: Option<DivergeState>,
}

#[derive(Default)]
struct DivergeState {
    n: u32,
    ema: f64,
    dev: f64,
    best: f64,
    noise_at_best: f64,
    above: u32,
    fired: bool,
}

/// A rate measured over fixed windows, for the slowdown rule.
#[derive(Default)]
struct Level {
    start: Option<f64>,
    acc: f64,
    n: u32,
    rates: Vec<f64>,
    fired: bool,
}

impl Babysitter {
    /// Rules for a run starting at `now`. A bad user rule is an error here,
    /// at launch, with the column of the mistake.
    pub fn new(cfg: &RulesConfig, now: f64) -> Result<Babysitter, Error> {
        let user = cfg.custom.iter().map(|r| parse_rule(r).map(|r| (r, 0, false))).collect::<Result<_, _>>()?;
        Ok(Babysitter {
            cfg: cfg.clone(),
            user,
            series: HashMap::new(),
            last_activity: now,
            gaps: VecDeque::new(),
            stall_fired: false,
            steps: Level::default(),
            named: HashMap::new(),
            last_step: None,
        })
    }

    /// One logged record: every rule that watches points sees it.
    pub fn on_log(&mut self, step: i64, time: f64, values: &[(String, f64)]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for (key, value) in values {
            let (key, v) = (key.as_str(), *value);
            if !key.starts_with("sys/") {
                self.watch_point(key, step, time, v, &mut alerts);
            }
            for (rule, held, fired) in &mut self.user {
                if rule.when.key != key {
                    continue;
                }
                let counts = rule.after_step.is_none_or(|s| step >= s) && rule.when.op.holds(v, rule.when.value);
                *held = if counts { *held + 1 } else { 0 };
                if !counts {
                    *fired = false; // re-armed once the condition lets go
                } else if *held >= rule.for_points && !*fired {
                    *fired = true;
                    alerts.push(Alert {
                        rule: "custom".into(),
                        action: rule.action,
                        message: format!("rule `{}` held at step {step} ({key} = {})", rule.text, fmt(v)),
                        evidence: obj(json!({"rule_text": rule.text, "metric": key, "step": step, "value": Num(v)})),
                    });
                }
            }
        }
        if self.cfg.slowdown.enabled && !values.is_empty() {
            if let Some((t0, s0)) = self.last_step {
                if time > t0 && step > s0 {
                    let factor = self.cfg.slowdown.factor;
                    let (window, windows) = (self.cfg.slowdown.window, self.cfg.slowdown.windows);
                    if let Some(a) =
                        self.steps.push(time, step.abs_diff(s0) as f64, time - t0, window, windows, factor, "steps/s")
                    {
                        alerts.push(a.with_action(self.cfg.slowdown.action));
                    }
                }
            }
            if self.last_step.is_none_or(|(_, s)| step > s) {
                self.last_step = Some((time, step));
            }
            for (key, v) in values.iter().filter(|(k, _)| THROUGHPUT_NAMES.iter().any(|n| k.contains(n))) {
                if !v.is_finite() {
                    continue;
                }
                let (window, windows, factor) =
                    (self.cfg.slowdown.window, self.cfg.slowdown.windows, self.cfg.slowdown.factor);
                let level = self.named.entry(key.clone()).or_default();
                if let Some(a) = level.push(time, *v, 1.0, window, windows, factor, key) {
                    alerts.push(a.with_action(self.cfg.slowdown.action));
                }
            }
        }
        alerts
    }

    fn watch_point(&mut self, key: &str, step: i64, _time: f64, v: f64, alerts: &mut Vec<Alert>) {
        let cfg = &self.cfg;
        let s = match self.series.get_mut(key) {
            Some(s) => s,
            None => self.series.entry(key.to_string()).or_default(),
        };
        if s.recent.len() == RECENT {
            s.recent.pop_front();
        }
        s.recent.push_back((step, v));
        let recent = || Value::Array(s.recent.iter().map(|(st, v)| json!({"step": st, "value": Num(*v)})).collect());
        if !v.is_finite() {
            if cfg.nonfinite.enabled && !s.nonfinite_fired {
                s.nonfinite_fired = true;
                alerts.push(Alert {
                    rule: "nonfinite".into(),
                    action: cfg.nonfinite.action,
                    message: format!("{key} is {} at step {step}", fmt(v)),
                    evidence: obj(json!({"metric": key, "step": step, "value": Num(v), "recent": recent()})),
                });
            }
            return;
        }
        if !cfg.diverge.enabled || !cfg.diverge.metrics.iter().any(|m| key.contains(m.as_str())) {
            return;
        }
        let d = s.diverge.get_or_insert_with(DivergeState::default);
        if d.n >= 2 && d.dev == 0.0 && v != d.ema {
            // Constant until now (a loss term not switched on yet): its
            // level starts with the first value that moves.
            *d = DivergeState::default();
        }
        const A: f64 = 0.1;
        if d.n == 0 {
            d.ema = v;
        } else {
            d.dev = (1.0 - A) * d.dev + A * (v - d.ema).abs();
            d.ema = (1.0 - A) * d.ema + A * v;
        }
        d.n += 1;
        if d.n == 1 || d.ema < d.best {
            d.best = d.ema;
            d.noise_at_best = d.dev;
        }
        if d.n <= cfg.diverge.warmup {
            return;
        }
        let scale = d.best.abs().max(3.0 * d.noise_at_best).max(1e-12);
        let limit = d.best + cfg.diverge.factor * scale;
        if v > limit {
            d.above += 1;
        } else {
            d.above = 0;
            d.fired = false;
        }
        if d.above >= cfg.diverge.points && !d.fired {
            d.fired = true;
            alerts.push(Alert {
                rule: "diverge".into(),
                action: cfg.diverge.action,
                message: format!(
                    "{key} diverged: {} at step {step}, above {} ({}x past its best level {}) for {} points",
                    fmt(v),
                    fmt(limit),
                    cfg.diverge.factor,
                    fmt(d.best),
                    d.above
                ),
                evidence: obj(json!({"metric": key, "step": step, "value": Num(v), "best_level": Num(d.best), "limit": Num(limit), "recent": recent()})),
            });
        }
    }

    /// Something happened (a record, output) at `time`.
    pub fn on_activity(&mut self, time: f64) {
        if time <= self.last_activity {
            return;
        }
        if self.gaps.len() == 50 {
            self.gaps.pop_front();
        }
        self.gaps.push_back(time - self.last_activity);
        self.last_activity = time;
        self.stall_fired = false;
    }

    /// How long silence may last before it is a stall.
    pub fn stall_limit(&self) -> f64 {
        let c = &self.cfg.stall;
        if self.gaps.len() < 5 {
            return c.ceiling;
        }
        let mut g: Vec<f64> = self.gaps.iter().copied().collect();
        g.sort_by(f64::total_cmp);
        let p90 = g[(g.len() * 9 / 10).min(g.len() - 1)];
        (c.factor * p90).clamp(c.floor, c.ceiling.max(c.floor))
    }

    /// Time passes: the stall rule looks at the silence so far.
    pub fn on_tick(&mut self, now: f64) -> Vec<Alert> {
        let silent = now - self.last_activity;
        if !self.cfg.stall.enabled || self.stall_fired || silent <= self.stall_limit() {
            return Vec::new();
        }
        self.stall_fired = true;
        let usual = if self.gaps.len() >= 5 {
            format!(", usual gap under {}", human_duration(self.stall_limit() / self.cfg.stall.factor))
        } else {
            String::new()
        };
        vec![Alert {
            rule: "stall".into(),
            action: self.cfg.stall.action,
            message: format!("no metric and no output for {}{usual}", human_duration(silent)),
            evidence: obj(
                json!({"silent_s": silent.round(), "limit_s": self.stall_limit().round(), "last_step": self.last_step.map(|(_, s)| s)}),
            ),
        }]
    }

    /// The command ended: the crash and oom rules read how.
    pub fn on_exit(&mut self, exit: &Exit) -> Vec<Alert> {
        if exit.stopped || exit.exit_code == Some(0) {
            return Vec::new();
        }
        let how = how_ended(exit.exit_code, exit.signal);
        let oom = detect::oom_lines(exit.tail);
        if self.cfg.oom.enabled && (!oom.is_empty() || (exit.signal == Some(libc::SIGKILL) && exit.memory_high)) {
            let why = oom.last().cloned().unwrap_or_else(|| "killed while memory was nearly full".into());
            return vec![Alert {
                rule: "oom".into(),
                action: Action::Alert,
                message: format!("out of memory ({how}): {why}"),
                evidence: obj(json!({"exit_code": exit.exit_code, "signal": exit.signal, "lines": oom})),
            }];
        }
        if !self.cfg.crash.enabled {
            return Vec::new();
        }
        let lines = detect::crash_lines(exit.tail, 40);
        let last = detect::last_error_line(exit.tail).or_else(|| lines.last().cloned());
        vec![Alert {
            rule: "crash".into(),
            action: Action::Alert,
            message: match &last {
                Some(l) => format!("crashed ({how}): {l}"),
                None => format!("crashed ({how})"),
            },
            evidence: obj(json!({"exit_code": exit.exit_code, "signal": exit.signal, "lines": lines})),
        }]
    }
}

impl Alert {
    fn with_action(mut self, action: Action) -> Alert {
        self.action = action;
        self
    }
}

impl Level {
    /// Adds `amount` over `span` seconds ending at `time`; closes windows of
    /// `window` seconds and checks the last `windows` against the rest.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        time: f64,
        amount: f64,
        span: f64,
        window: f64,
        windows: u32,
        factor: f64,
        unit: &str,
    ) -> Option<Alert> {
        let start = *self.start.get_or_insert(time - span);
        self.acc += amount;
        self.n += 1;
        let elapsed = time - start;
        if elapsed < window {
            return None;
        }
        // Steps are a count over time; named throughputs are averaged values.
        let rate = if unit == "steps/s" { self.acc / elapsed } else { self.acc / f64::from(self.n) };
        self.rates.push(rate);
        self.start = Some(time);
        self.acc = 0.0;
        self.n = 0;
        let k = windows as usize;
        if self.rates.len() < k + 3 {
            return None;
        }
        let mut earlier: Vec<f64> = self.rates[..self.rates.len() - k].to_vec();
        earlier.sort_by(f64::total_cmp);
        let base = earlier[earlier.len() / 2];
        let last = &self.rates[self.rates.len() - k..];
        let slow = base > 0.0 && last.iter().all(|r| *r < factor * base);
        if !slow {
            self.fired = false;
            return None;
        }
        if self.fired {
            return None;
        }
        self.fired = true;
        let now_rate = *last.last().expect("k >= 1");
        let (label, per) = if unit == "steps/s" { ("throughput", " steps/s") } else { (unit, "") };
        Some(Alert {
            rule: "slowdown".into(),
            action: Action::Alert,
            message: format!("{label} fell to {}{per} from {}{per}", fmt(now_rate), fmt(base)),
            evidence: obj(
                json!({"metric": label, "rate": Num(now_rate), "baseline": Num(base), "windows": last.iter().map(|r| Num(*r)).collect::<Vec<_>>()}),
            ),
        })
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        format!("{}", (v * 1e4).round() / 1e4)
    }
}

#[cfg(test)]
mod tests;
