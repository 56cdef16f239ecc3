//! Waiting on runs until something worth reacting to happens: they all end,
//! an alert fires, a condition holds, or time runs out.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::Result;
use crate::follow::{self, Clock};
use crate::index::Index;
use crate::model::Run;
use crate::record::RunStatus;
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
        status: RunStatus,
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

/// Blocks until one of the [`WaitEnd`] reasons, looking every `every` on
/// `clock`. Alerts count from the moment the wait starts.
pub fn wait(
    index: &mut Index,
    ids: &[String],
    until: Option<&Condition>,
    timeout: Option<Duration>,
    clock: &impl Clock,
    every: Duration,
) -> Result<WaitEnd> {
    index.sync()?;
    let mut alerts_before = HashMap::new();
    for id in ids {
        alerts_before.insert(id.clone(), index.alert_count(id)?);
    }
    let mut first = true;
    let end = follow::poll_within(clock, every, timeout, || {
        // The first look reads what was synced for the alert counts.
        if !std::mem::take(&mut first) {
            index.sync()?;
        }
        look(index, ids, until, &alerts_before)
    })?;
    Ok(end.unwrap_or(WaitEnd::TimedOut))
}

/// One look at the runs: a reason to return, if there is one yet.
fn look(
    index: &Index,
    ids: &[String],
    until: Option<&Condition>,
    alerts_before: &HashMap<String, u64>,
) -> Result<Option<WaitEnd>> {
    let runs: Vec<Run> = ids.iter().map(|id| index.run(id)).collect::<Result<_>>()?;
    if runs.iter().all(|r| !r.status.is_live()) {
        return Ok(Some(match runs.iter().find(|r| r.status != RunStatus::Finished) {
            Some(r) => WaitEnd::EndedOtherwise { run: r.id.clone(), status: r.status.clone() },
            None => WaitEnd::Finished,
        }));
    }
    for id in ids {
        if index.alert_count(id)? > alerts_before[id] {
            let message =
                index.events(id)?.into_iter().rev().find(|e| e.kind == "alert").map(|e| e.message).unwrap_or_default();
            return Ok(Some(WaitEnd::Alert { run: id.clone(), message }));
        }
    }
    if let Some(cond) = until {
        if runs.iter().all(|r| cond.holds(|key| value_of(r, key))) {
            return Ok(Some(WaitEnd::ConditionHeld));
        }
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::testing::{Steps, end, lab, live_run};

    #[test]
    fn a_wait_times_out_or_sees_the_end_without_sleeping() {
        let (_tmp, lab) = lab();
        let (dir, lock) = live_run(&lab, "r-00000000w1");
        let mut index = Index::open(&lab).unwrap();
        let ids = ["r-00000000w1".to_string()];
        let every = Duration::from_millis(200);
        let clock = Steps::new(|_| {});
        let got = wait(&mut index, &ids, None, Some(Duration::from_secs(2)), &clock, every).unwrap();
        assert_eq!(got, WaitEnd::TimedOut);
        assert_eq!(clock.taken(), 10);

        let mut lock = Some(lock);
        let clock = Steps::new(|n| {
            if n == 5 {
                end(&dir, lock.take(), "failed", 1);
            }
        });
        let got = wait(&mut index, &ids, None, None, &clock, every).unwrap();
        assert_eq!(got, WaitEnd::EndedOtherwise { run: ids[0].clone(), status: "failed".into() });
        assert_eq!(got.exit_code(), 3);
        assert_eq!(clock.taken(), 5);
    }
}
