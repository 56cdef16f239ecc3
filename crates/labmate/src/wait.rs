//! Waiting on runs until something worth reacting to happens: they all end,
//! an alert fires, a condition holds, or time runs out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::index::Index;
use crate::model::Run;
use crate::rules::Condition;

/// Why a wait returned. Each reason has its own exit code.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitEnd {
    /// Every run ended `finished`.
    Finished,
    /// The `--until` condition held for every run.
    ConditionHeld,
    /// Every run ended, and this one not `finished`.
    EndedOtherwise {
        run: String,
        status: String,
    },
    /// A run had a new alert.
    Alert {
        run: String,
        message: String,
    },
    TimedOut,
}

impl WaitEnd {
    /// 0 finished or condition held, 3 a run ended otherwise, 4 an alert, 5 the timeout.
    pub fn exit_code(&self) -> u8 {
        match self {
            WaitEnd::Finished | WaitEnd::ConditionHeld => 0,
            WaitEnd::EndedOtherwise { .. } => 3,
            WaitEnd::Alert { .. } => 4,
            WaitEnd::TimedOut => 5,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            WaitEnd::Finished => "every run finished".into(),
            WaitEnd::ConditionHeld => "the condition holds".into(),
            WaitEnd::EndedOtherwise { run, status } => format!("run {run} ended {status}"),
            WaitEnd::Alert { run, message } => format!("alert on {run}: {message}"),
            WaitEnd::TimedOut => "timed out".into(),
        }
    }
}

/// Blocks until one of the [`WaitEnd`] reasons, checking every `poll`. Alerts
/// count from the moment the wait starts.
pub fn wait(
    index: &mut Index,
    ids: &[String],
    until: Option<&Condition>,
    timeout: Option<Duration>,
    poll: Duration,
) -> Result<WaitEnd> {
    let started = Instant::now();
    index.sync()?;
    let mut alerts_before = HashMap::new();
    for id in ids {
        alerts_before.insert(id.clone(), index.alert_count(id)?);
    }
    loop {
        let runs: Vec<Run> = ids.iter().map(|id| index.run(id)).collect::<Result<_>>()?;
        if runs.iter().all(|r| r.status != "running" && r.status != "queued") {
            return Ok(match runs.iter().find(|r| r.status != "finished") {
                Some(r) => WaitEnd::EndedOtherwise { run: r.id.clone(), status: r.status.clone() },
                None => WaitEnd::Finished,
            });
        }
        for id in ids {
            if index.alert_count(id)? > alerts_before[id] {
                let message = index
                    .events(id)?
                    .into_iter()
                    .rev()
                    .find(|e| e.kind == "alert")
                    .map(|e| e.message)
                    .unwrap_or_default();
                return Ok(WaitEnd::Alert { run: id.clone(), message });
            }
        }
        if let Some(cond) = until {
            if runs.iter().all(|r| cond.holds(|key| value_of(r, key))) {
                return Ok(WaitEnd::ConditionHeld);
            }
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return Ok(WaitEnd::TimedOut);
        }
        std::thread::sleep(poll);
        index.sync()?;
    }
}

/// A key of a condition, for one run: `step` is the highest step any metric
/// reached; anything else is a metric's latest value.
pub fn value_of(run: &Run, key: &str) -> Option<f64> {
    if key == "step" {
        return run
            .metrics
            .iter()
            .filter(|(k, _)| !k.starts_with("sys/"))
            .map(|(_, m)| m.last_step as f64)
            .reduce(f64::max);
    }
    run.metrics.get(key).map(|m| m.last)
}
