//! Detached runs: `labmate run --detach` hands the run (and its lock) to a
//! `labmate __supervise` process in a session of its own, which outlives the
//! terminal and the shell that started it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Outcome, Prepared, supervise};
use crate::error::{Error, Result};
use crate::lab::Lab;
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
