//! Stopping a run from another process: leave the reason in the run folder,
//! signal its supervisor, and let the supervisor end it (SIGTERM, then SIGKILL
//! after its grace period). A run whose supervisor is gone is stopped here.
//! Cancelling a queued run is stopping it before it starts.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::record::{Record, RunStatus};
use crate::rundir::{RunDir, STOP_FILE, SUPERVISOR_STREAM};
use crate::sys::procgroup::Group;

/// What `stop` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// The run had already ended, with this status.
    AlreadyEnded(RunStatus),
    /// Its supervisor was asked to stop it; a run on Slurm, by cancelling
    /// its job (`scancel`), queued or running.
    Asked,
    /// The supervisor was gone; what lived of the run's process group was
    /// ended here (SIGTERM, then SIGKILL after the grace period).
    Killed { processes: usize },
}

/// Why a run was stopped, as its record says it: who, and their words.
pub fn reason(by: &str, why: Option<&str>) -> String {
    match why {
        Some(w) => format!("stopped by {by}: {w}"),
        None => format!("stopped by {by}"),
    }
}

/// Asks the run's supervisor to stop it for `reason`.
pub fn stop(index: &Index, id: &str, reason: &str, by: &str, grace: Duration) -> Result<Stopped> {
    let run = index.run(id)?;
    let dir = RunDir::at(index.lab().run_dir(id));
    let spec = dir.read_spec()?;
    // A run pushed here from another lab is that lab's to stop: its folder
    // holds the writer's bytes alone, and its processes are elsewhere even
    // when the host's name is the same.
    if crate::rundir::heard(index.lab(), id).is_some() {
        return Err(Error::conflict("run", format!("run {id} was pushed here from another lab; stop it there")));
    }
    if spec.scheduler.is_some() {
        return stop_job(index, &dir, id, &run, reason, by);
    }
    let local = spec.host == crate::sys::host::hostname();
    let (supervisor, group) = owner(&dir, id);
    if !run.status.is_live() {
        // A run that ended without its supervisor may have left processes.
        return Ok(match group.filter(|_| local).map(|g| g.end(grace).found) {
            Some(n) if n > 0 => Stopped::Killed { processes: n },
            _ => Stopped::AlreadyEnded(run.status),
        });
    }
    if !local {
        return Err(Error::conflict("host", format!("run {id} runs on host {}; stop it from there", spec.host)));
    }
    leave_request(index, &dir, reason, by)?;
    if !dir.owner_gone() {
        let pid = supervisor.ok_or_else(|| {
            Error::conflict("supervisor", format!("run {id} has no supervisor to stop it (a run made by a client)"))
        })?;
        crate::sys::proc::signal(pid, libc::SIGTERM);
        return Ok(Stopped::Asked);
    }
    match group {
        Some(g) => Ok(Stopped::Killed { processes: g.end(grace).found }),
        None => Ok(Stopped::AlreadyEnded(run.status)),
    }
}

/// Leaves the reason for the supervisor (or the reader) to record.
fn leave_request(index: &Index, dir: &RunDir, reason: &str, by: &str) -> Result<()> {
    let request = serde_json::json!({"time": index.lab().now(), "reason": reason, "by": by});
    match OpenOptions::new().write(true).create_new(true).open(dir.file(STOP_FILE)) {
        Ok(mut f) => f.write_all(format!("{request}\n").as_bytes()).map_err(|e| Error::io(dir.file(STOP_FILE), e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()), // the first reason stands
        Err(e) => Err(Error::io(dir.file(STOP_FILE), e)),
    }
}

/// Stops a run on Slurm: the reason left, its job cancelled. A running
/// job's supervisor gets SIGTERM and records the stop; a queued job never
/// starts, and the next reader ends its run `stopped` with the reason.
fn stop_job(index: &Index, dir: &RunDir, id: &str, run: &crate::model::Run, reason: &str, by: &str) -> Result<Stopped> {
    if !run.status.is_live() {
        return Ok(Stopped::AlreadyEnded(run.status.clone()));
    }
    let job = dir.slurm_job().ok_or_else(|| {
        Error::conflict("run", format!("run {id} is still being submitted to Slurm; stop it once it has a job id"))
    })?;
    leave_request(index, dir, reason, by)?;
    crate::slurm::cancel(&job.job_id)?;
    Ok(Stopped::Asked)
}

/// Stops the live runs of a sweep submitted as the job array `array`: each
/// one's reason left, then the whole array cancelled with one `scancel`.
pub fn stop_array(
    index: &Index,
    runs: &[String],
    array: &str,
    reason: &str,
    by: &str,
) -> Result<Vec<(String, Stopped)>> {
    let mut stopped = Vec::new();
    for id in runs {
        let run = index.run(id)?;
        if run.status.is_live() {
            leave_request(index, &RunDir::at(index.lab().run_dir(id)), reason, by)?;
            stopped.push((id.clone(), Stopped::Asked));
        }
    }
    if !stopped.is_empty() {
        crate::slurm::cancel(array)?;
    }
    Ok(stopped)
}

/// Takes a queued run out of the queue for `by`: it ends `stopped`, at once.
/// Only a queued run can be cancelled; stopping a started one is [`stop`]'s.
pub fn cancel(index: &Index, id: &str, by: &str) -> Result<Stopped> {
    let status = index.run(id)?.status;
    if status != RunStatus::Queued {
        return Err(Error::conflict("run", format!("run {id} is not queued (it is {status})")));
    }
    stop(index, id, &format!("cancelled from the queue by {by}"), by, Duration::ZERO)
}

/// The supervisor's pid and the command's process group, from the run's
/// `queued` or `start` records.
fn owner(dir: &RunDir, run_id: &str) -> (Option<i32>, Option<Group>) {
    let text = std::fs::read_to_string(dir.file(SUPERVISOR_STREAM)).unwrap_or_default();
    let (mut pid, mut group) = (None, None);
    for line in text.lines().take(50) {
        match Record::parse(line) {
            Ok(Record::Start { pid: p, pgid, leader, .. }) => {
                pid = pid.or(p.and_then(process_id));
                group = pgid.filter(|g| *g > 1).map(|pgid| {
                    Group::recorded(run_id, pgid, leader.as_ref().map(|l| l.start), leader.and_then(|l| l.boot_id))
                });
                break;
            }
            Ok(Record::Queued { pid: p, .. }) => pid = process_id(p),
            _ => {}
        }
    }
    (pid, group)
}

/// A recorded pid that can be signalled as one process: never 0 or 1 (the
/// caller's own group, init) nor one that reads as negative (a whole group).
fn process_id(recorded: u32) -> Option<i32> {
    i32::try_from(recorded).ok().filter(|p| *p > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_or_forged_pid_is_never_signalled() {
        assert_eq!(process_id(0), None);
        assert_eq!(process_id(1), None);
        assert_eq!(process_id(u32::MAX), None);
        assert_eq!(process_id(4242), Some(4242));
    }
    use crate::follow::testing::{end, lab, live_run};

    #[test]
    fn only_a_queued_run_can_be_cancelled() {
        let (_tmp, lab) = lab();
        let (dir, lock) = live_run(&lab, "r-00000000c1");
        let mut index = Index::open(&lab).unwrap();
        index.sync().unwrap();
        let e = cancel(&index, "r-00000000c1", "tester").unwrap_err();
        assert_eq!(e.to_string(), "run r-00000000c1 is not queued (it is running)");
        end(&dir, Some(lock), "finished", 0);
        index.sync().unwrap();
        let e = cancel(&index, "r-00000000c1", "tester").unwrap_err();
        assert_eq!(e.to_string(), "run r-00000000c1 is not queued (it is finished)");
        assert!(!dir.file(STOP_FILE).exists(), "a refused cancel leaves no stop request");
    }
}
