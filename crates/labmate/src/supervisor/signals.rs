//! Signals while a run lives: one thread takes SIGINT, SIGTERM and SIGHUP
//! for the supervisor and passes them on to the command's process group; a
//! [`Stopper`] ends the run with SIGTERM, then SIGKILL after a grace period.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::rundir::RunDir;
use crate::sys::proc::signal_group;
pub use crate::sys::proc::{SignalSet, signal_name};

pub use crate::rundir::STOP_FILE;

/// Stops a run's process group, once, with the first reason given.
pub struct Stopper {
    pgid: i32,
    grace: Duration,
    state: Mutex<StopState>,
}

#[derive(Default)]
struct StopState {
    reason: Option<String>,
    /// The stop came from a SIGTERM nobody asked for through labmate (a
    /// scheduler ending its job).
    unasked: bool,
    kill_at: Option<Instant>,
    killed: bool,
}

impl Stopper {
    pub fn new(pgid: i32, grace: Duration) -> Stopper {
        Stopper { pgid, grace, state: Mutex::default() }
    }

    /// SIGTERM to the group now, SIGKILL when the grace period is over.
    pub fn stop(&self, reason: String) {
        let mut st = self.state.lock().expect("stop lock");
        st.reason.get_or_insert(reason);
        st.kill_at.get_or_insert(Instant::now() + self.grace);
        signal_group(self.pgid, libc::SIGTERM);
    }

    /// Passes a signal on, and records why the run is ending.
    pub fn forward(&self, sig: i32, reason: String) {
        self.state.lock().expect("stop lock").reason.get_or_insert(reason);
        signal_group(self.pgid, sig);
    }

    /// Sends SIGKILL once the grace period of a stop is over.
    pub fn tick(&self) {
        let mut st = self.state.lock().expect("stop lock");
        if !st.killed && st.kill_at.is_some_and(|t| Instant::now() >= t) {
            st.killed = true;
            signal_group(self.pgid, libc::SIGKILL);
        }
    }

    /// Like [`Stopper::stop`], for a SIGTERM that came without a stop request.
    pub fn stop_unasked(&self, reason: String) {
        {
            let mut st = self.state.lock().expect("stop lock");
            if st.reason.is_none() {
                st.unasked = true;
            }
        }
        self.stop(reason);
    }

    /// Whether the run was stopped by a SIGTERM that no stop request explains.
    pub fn unasked(&self) -> bool {
        self.state.lock().expect("stop lock").unasked
    }

    pub fn reason(&self) -> Option<String> {
        self.state.lock().expect("stop lock").reason.clone()
    }
}

/// Takes the supervisor's signals until `done`: SIGTERM stops the run (with
/// the reason `labmate stop` left, if any); SIGINT and SIGHUP are passed on.
pub fn take_signals(signals: SignalSet, stopper: &Stopper, dir: &RunDir, done: &AtomicBool) {
    while !done.load(Ordering::SeqCst) {
        match signals.wait(Duration::from_millis(100)) {
            Some(libc::SIGTERM) => match stop_request(dir) {
                Some(reason) => stopper.stop(reason),
                None => stopper.stop_unasked("received SIGTERM".into()),
            },
            Some(sig) => stopper.forward(sig, format!("interrupted by {}", signal_name(sig))),
            None => {}
        }
    }
}

/// The reason in a run's stop request, if there is one.
pub fn stop_request(dir: &RunDir) -> Option<String> {
    crate::rundir::stop_reason(dir)
}
