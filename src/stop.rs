//! Stopping a run from another process: leave the reason in the run folder,
//! signal its supervisor, and let the supervisor end it (SIGTERM, then SIGKILL
//! after its grace period). A run whose supervisor is gone is stopped here.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::clock;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::record::Record;
use crate::rundir::{RunDir, SUPERVISOR_STREAM};
use crate::supervisor::signals::STOP_FILE;

/// What `stop` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// The run had already ended, with this status.
    AlreadyEnded(String),
    /// Its supervisor was asked to stop it.
    Asked,
    /// The supervisor was gone; the command's process group was signalled here.
    Killed,
}

/// Asks the run's supervisor to stop it for `reason`.
pub fn stop(index: &Index, id: &str, reason: &str, by: &str, grace: Duration) -> Result<Stopped> {
    let run = index.run(id)?;
    if run.status != "running" && run.status != "queued" {
        return Ok(Stopped::AlreadyEnded(run.status));
    }
    let dir = RunDir::at(index.lab().run_dir(id));
    let spec = dir.read_spec()?;
    if spec.host != crate::spec::hostname() {
        return Err(Error::Invalid(format!("run {id} runs on host {}; stop it from there", spec.host)));
    }
    let (supervisor, pgid) = owner_pids(&dir);
    let request = serde_json::json!({"time": clock::now(), "reason": reason, "by": by});
    match OpenOptions::new().write(true).create_new(true).open(dir.file(STOP_FILE)) {
        Ok(mut f) => f.write_all(format!("{request}\n").as_bytes()).map_err(|e| Error::io(dir.file(STOP_FILE), e))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {} // the first reason stands
        Err(e) => return Err(Error::io(dir.file(STOP_FILE), e)),
    }
    if !dir.owner_gone() {
        let pid = supervisor
            .ok_or_else(|| Error::Invalid(format!("run {id} has no supervisor to stop it (a run made by a client)")))?;
        // SAFETY: sending a signal has no memory effects.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        return Ok(Stopped::Asked);
    }
    let Some(pgid) = pgid else {
        return Ok(Stopped::AlreadyEnded(run.status));
    };
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    // SAFETY: signal 0 only checks that the group exists.
    while Instant::now() < deadline && unsafe { libc::kill(-pgid, 0) } == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    Ok(Stopped::Killed)
}

/// The supervisor's pid and the command's process group, from the run's
/// `queued` or `start` records.
fn owner_pids(dir: &RunDir) -> (Option<i32>, Option<i32>) {
    let text = std::fs::read_to_string(dir.file(SUPERVISOR_STREAM)).unwrap_or_default();
    let (mut pid, mut pgid) = (None, None);
    for line in text.lines().take(50) {
        match Record::parse(line) {
            Ok(Record::Start { pid: p, pgid: g, .. }) => {
                pid = pid.or(p.map(|p| p as i32));
                pgid = g;
                break;
            }
            Ok(Record::Queued { pid: p, .. }) => pid = Some(p as i32),
            _ => {}
        }
    }
    (pid, pgid)
}
