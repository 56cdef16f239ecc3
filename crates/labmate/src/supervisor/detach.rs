//! Detached runs: `labmate run --detach` hands the run (and its lock) to a
//! `labmate __supervise` process in a session of its own, which outlives the
//! terminal and the shell that started it. A run submitted to Slurm is
//! adopted by `labmate __supervise --job` inside its job.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Outcome, Prepared, supervise};
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::record::RunStatus;
use crate::remote::Remote;
use crate::rundir::{OwnerLock, RunDir};
use crate::sys::exec;

/// Starts `exe __supervise <run folder>` in a session of its own, handing it
/// the run's lock, and returns once it reports the run under way.
pub fn spawn_detached(exe: &Path, prepared: Prepared) -> Result<()> {
    let Prepared { dir, lock, remote, .. } = prepared;
    let log_path = dir.file("supervisor.log");
    let log = File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("__supervise").arg(dir.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    if let Some(remote) = remote {
        // The token goes in the environment, which only its user can read, never on argv.
        cmd.arg("--remote").arg(&remote.url).env("LABMATE_TOKEN", &remote.token);
    }
    exec::in_new_session(&mut cmd, &lock.0);
    let mut child = cmd.spawn().map_err(|e| Error::io(exe, e))?;
    let mut first = String::new();
    let _ = BufReader::new(child.stdout.take().expect("piped")).read_line(&mut first);
    // The supervisor holds the lock now (the same open file); ours may go.
    drop(lock);
    match first.trim_end() {
        "started" => Ok(()),
        other => Err(Error::environment(
            "supervisor",
            format!(
                "the run's supervisor did not start{}; see {}",
                if other.is_empty() { String::new() } else { format!(": {other}") },
                log_path.display()
            ),
        )),
    }
}

/// The other side of [`spawn_detached`]: adopts the run folder and its lock,
/// and supervises (pushing the run to `remote` while it lives, if given). Reports "started" on stdout once the run is under way
/// (queued or running), then lets go of stdout.
pub fn supervise_detached(lab: &Lab, run_dir: &Path, remote: Option<Remote>) -> Result<Outcome> {
    // Taken closed on exec, the lock is ours alone: the command must not
    // inherit it, or a dead supervisor would look alive for as long as its
    // command runs.
    let lock = exec::take_handed().ok_or_else(|| Error::internal("supervisor", "the run's lock was already taken"))?;
    let lock = OwnerLock(lock);
    let dir = RunDir::at(run_dir.to_path_buf());
    let spec = dir.read_spec()?;
    let prepared = Prepared { dir, spec, lock, lab: lab.clone(), remote };
    let mut reported = false;
    supervise(prepared, false, |_, _| {
        if std::mem::replace(&mut reported, true) {
            return;
        }
        let mut out = io::stdout().lock();
        let _ = out.write_all(b"started\n").and_then(|_| out.flush());
        // Nothing more goes to the launcher, which is gone soon.
        if let Ok(null) = File::options().write(true).open("/dev/null") {
            exec::redirect_stdout(&null);
        }
    })
}

/// Supervises a run inside the Slurm job it was submitted as: takes the
/// run's lock (nobody hands it over across machines), and runs it as
/// [`supervise`] does, pushing it to `remote` while it lives, if given. A run stopped before its job started ends here.
pub fn supervise_in_job(lab: &Lab, run_dir: &Path, remote: Option<Remote>) -> Result<Outcome> {
    let dir = RunDir::at(run_dir.to_path_buf());
    let spec = dir.read_spec()?;
    let lock = dir
        .take_lock()?
        .ok_or_else(|| Error::conflict("run", format!("run {} is already supervised (its lock is held)", spec.id)))?;
    if let Some(reason) = crate::rundir::stop_reason(&dir) {
        let outcome = Outcome { status: RunStatus::Stopped, exit_code: None, signal: None, reason: Some(reason) };
        let end = super::end_record(&outcome);
        dir.append(crate::rundir::SUPERVISOR_STREAM)?.write_record(&super::stamped(&end, lab.clock()))?;
        drop(lock);
        return Ok(outcome);
    }
    supervise(Prepared { dir, spec, lock, lab: lab.clone(), remote }, false, |_, _| {})
}
