//! The plain settings a run is launched with, as `labmate.toml` spells them
//! and `run.json` freezes them (`babysit`): the rules' thresholds and
//! actions, where alerts go, how the supervisor samples and stops. Data
//! only: the rules' logic is [`crate::rules`], delivery [`crate::notify`],
//! reading `labmate.toml` [`crate::policy`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// What a supervised run babysits with, frozen into its `run.json` at launch
/// so that the run behaves as launched wherever its supervisor runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Babysit {
    pub rules: RulesConfig,
    pub notify: NotifyConfig,
    pub supervisor: SupervisorConfig,
    /// The run is stopped once it has run this long (the budget of its author).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_run_minutes: Option<f64>,
}

/// The rules of a run, as configured in `labmate.toml` `[rules]` and frozen
/// into the run's `run.json` at launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    pub nonfinite: Nonfinite,
    pub diverge: Diverge,
    pub stall: Stall,
    pub slowdown: Slowdown,
    pub crash: Toggle,
    pub oom: Toggle,
    /// User rules, e.g. `val_loss > 5 after step 1000 => stop`.
    pub custom: Vec<String>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            nonfinite: Nonfinite::default(),
            diverge: Diverge::default(),
            stall: Stall::default(),
            slowdown: Slowdown::default(),
            crash: Toggle { enabled: true },
            oom: Toggle { enabled: true },
            custom: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Toggle {
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// A metric becomes NaN or ±Inf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Nonfinite {
    pub enabled: bool,
    pub action: Action,
}

impl Default for Nonfinite {
    fn default() -> Self {
        Nonfinite { enabled: true, action: Action::Stop }
    }
}

/// A loss-like metric rises far above its best level and stays there.
///
/// The level is an exponential moving average (weight 0.1) of the metric; its
/// noise is the moving average of the absolute deviations. After `warmup`
/// points, the rule fires when `points` points in a row exceed
/// `best + factor * max(|best|, 3 * noise at best)`, where `best` is the
/// lowest level seen. Single spikes and ordinary noise stay far below that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Diverge {
    pub enabled: bool,
    /// Metrics whose name contains one of these are watched.
    pub metrics: Vec<String>,
    pub factor: f64,
    pub points: u32,
    pub warmup: u32,
    pub action: Action,
}

impl Default for Diverge {
    fn default() -> Self {
        Diverge {
            enabled: true,
            metrics: vec!["loss".into()],
            factor: 3.0,
            points: 5,
            warmup: 20,
            action: Action::Stop,
        }
    }
}

/// No metric and no output for much longer than the run's own cadence: the
/// 90th percentile of its recent gaps times `factor`, kept between `floor`
/// and `ceiling`. Until 5 gaps are known, `ceiling` applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stall {
    pub enabled: bool,
    pub factor: f64,
    #[serde(deserialize_with = "seconds")]
    pub floor: f64,
    #[serde(deserialize_with = "seconds")]
    pub ceiling: f64,
    pub action: Action,
}

impl Default for Stall {
    fn default() -> Self {
        Stall { enabled: true, factor: 10.0, floor: 60.0, ceiling: 1800.0, action: Action::Alert }
    }
}

/// Throughput (steps per second, or a metric named like `throughput`,
/// `tokens_per_s`, `samples_per_s`) measured over windows of `window`; the
/// rule fires when `windows` windows in a row fall below `factor` times the
/// median of the earlier ones (at least 3 of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slowdown {
    pub enabled: bool,
    pub factor: f64,
    #[serde(deserialize_with = "seconds")]
    pub window: f64,
    pub windows: u32,
    pub action: Action,
}

impl Default for Slowdown {
    fn default() -> Self {
        Slowdown { enabled: true, factor: 0.5, window: 10.0, windows: 3, action: Action::Alert }
    }
}

/// A duration in seconds, written as a number or a string like `"90s"`.
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) if n < 0.0 => Err(serde::de::Error::custom(format!("a duration cannot be negative ({n})"))),
        Raw::Number(n) if n.is_nan() || n > crate::clock::MAX_DURATION_S => {
            Err(serde::de::Error::custom(format!("a duration is a number of seconds up to 100 years, not {n}")))
        }
        Raw::Number(n) => Ok(n),
        Raw::Text(t) => crate::clock::parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Record an alert (and notify).
    Alert,
    /// Record an alert, notify, and stop the run.
    Stop,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Action::Alert => "alert",
            Action::Stop => "stop",
        })
    }
}

/// Where alerts go besides the run's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// A command (argv) run with the alert as JSON on stdin.
    pub command: Option<Vec<String>>,
    /// A URL the alert is POSTed to as JSON.
    pub webhook: Option<String>,
    /// How long one notification may take.
    #[serde(deserialize_with = "seconds")]
    pub timeout: f64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig { command: None, webhook: None, timeout: 10.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    /// How often system metrics (`sys/...`) are sampled.
    #[serde(deserialize_with = "seconds")]
    pub sys_interval: f64,
    /// How long a stopped run has between SIGTERM and SIGKILL.
    #[serde(deserialize_with = "seconds")]
    pub stop_grace: f64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig { sys_interval: 5.0, stop_grace: 10.0 }
    }
}
