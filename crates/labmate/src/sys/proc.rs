//! OS facts: spawning a command with a timeout and a group kill; sending
//! signals to a process or a group, and taking them. Every command the lab
//! runs on a clock (gates, notifiers, reproducers) runs through [`run`]: in
//! a process group of its own, its output drained as it comes (a chatty
//! command never stalls on a full pipe), and on its timeout the whole group
//! is killed, with whatever it started.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sys::procgroup::{Group, exit_status};

/// How often a running command is looked at.
const POLL: Duration = Duration::from_millis(20);
/// How long processes a command left in its group may run on after it
/// exits (finishing their output) before they are killed.
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

/// Where a command's stdout and stderr go.
pub enum Output {
    /// Kept in memory, interleaved as they came: the last this many bytes.
    Keep(usize),
    /// Kept in memory apart: stdout whole, and the last this many bytes of
    /// stderr (for a command whose output is parsed, and whose complaints
    /// are not).
    Apart(usize),
    /// Written whole to a file.
    File(File),
}

/// How [`run`] runs a command.
pub struct Options<'a> {
    /// Written to the command's stdin, which is then closed; None gives it `/dev/null`.
    pub stdin: Option<&'a [u8]>,
    pub output: Output,
    /// The command's group is killed once it has run this long.
    pub timeout: Duration,
    /// SIGINT, SIGTERM and SIGHUP meanwhile kill the command's group, then
    /// end this process as they would have: a Ctrl-C never leaves the
    /// command running unwatched. Only for a process whose signals are not
    /// taken by someone else (the supervisor takes its own).
    pub pass_signals: bool,
}

/// How a command ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// With [`Output::Keep`], the end of its output; with [`Output::Apart`], its stdout.
    pub output: Vec<u8>,
    /// With [`Output::Apart`], the end of its stderr.
    pub stderr: Vec<u8>,
    /// It was killed at its timeout.
    pub timed_out: bool,
}

/// A timeout of `secs` seconds: none below zero, and a time too long to
/// hold is forever.
pub fn timeout(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
}

/// Runs `cmd` (its program, arguments and folder set by the caller) under
/// `options`. Processes it leaves in its group are killed shortly after it
/// exits. Fails only when the command cannot be started or waited for.
pub fn run(cmd: &mut Command, options: Options) -> io::Result<Finished> {
    let signals = options.pass_signals.then(SignalSet::terminating);
    // Blocked before the spawn, so that no signal falls between the two.
    if let Some(s) = &signals {
        s.block();
    }
    let result = spawn_and_wait(cmd, options, signals.as_ref());
    if let Some(s) = &signals {
        s.unblock();
    }
    result
}

fn spawn_and_wait(cmd: &mut Command, options: Options, signals: Option<&SignalSet>) -> io::Result<Finished> {
    cmd.stdin(if options.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let (cap, stderr_cap) = match options.output {
        Output::Keep(cap) => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            (cap, None)
        }
        Output::Apart(cap) => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            (usize::MAX, Some(cap))
        }
        Output::File(f) => {
            cmd.stdout(f.try_clone()?).stderr(f);
            (0, None)
        }
    };
    cmd.process_group(0);
    // SAFETY: sigemptyset and pthread_sigmask are async-signal-safe. The
    // command gets no blocked signals, whatever this thread blocks.
    unsafe {
        cmd.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pgid = child.id() as i32;

    if let (Some(body), Some(mut pipe)) = (options.stdin, child.stdin.take()) {
        // A thread of its own: a command that does not read must not block us.
        let body = body.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&body);
        });
    }
    let kept = Arc::new(Mutex::new(Kept { bytes: VecDeque::new(), cap }));
    let kept_stderr = match stderr_cap {
        Some(cap) => Arc::new(Mutex::new(Kept { bytes: VecDeque::new(), cap })),
        None => kept.clone(),
    };
    // Every reader holds a sender: the channel disconnects once all pipes closed.
    let (drained_tx, drained_rx) = mpsc::channel::<()>();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (pipe, kept) in pipes.into_iter().zip([&kept, &kept_stderr]) {
        let Some(mut pipe) = pipe else { continue };
        let (kept, drained) = (kept.clone(), drained_tx.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => kept.lock().expect("output lock").push(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            drop(drained);
        });
    }
    drop(drained_tx);

    // None: a timeout too long to reach.
    let deadline = Instant::now().checked_add(options.timeout);
    let mut timed_out = false;
    // The command's exit is seen without reaping it: until it is reaped, its
    // pid (the group's id) cannot be given to another process, so the group
    // is safe to signal.
    let group = Group::of_leader(pgid);
    // Short at first, so that a quick command (a git query) costs no full POLL.
    let mut pause = Duration::from_millis(1);
    loop {
        match exit_status(pgid, false) {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) => {
                kill_group(pgid);
                return Err(e);
            }
        }
        if !timed_out && deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            kill_group(pgid);
        }
        match signals {
            Some(s) => {
                if let Some(sig) = s.wait(pause) {
                    kill_group(pgid);
                    let _ = child.wait();
                    s.unblock();
                    // SAFETY: raising a signal at ourselves; its default action ends the process.
                    unsafe {
                        libc::signal(sig, libc::SIG_DFL);
                        libc::raise(sig);
                    }
                }
            }
            None => std::thread::sleep(pause),
        }
        pause = (pause * 2).min(POLL);
    }

    // What it left in its group may finish its output, then it is ended.
    let until = Instant::now() + LEFTOVER_GRACE;
    let mut drained = false;
    loop {
        drained = drained || matches!(drained_rx.recv_timeout(POLL), Err(RecvTimeoutError::Disconnected));
        if drained && group.members().is_empty() {
            break;
        }
        if Instant::now() >= until {
            kill_group(pgid);
            if !drained {
                let _ = drained_rx.recv_timeout(LEFTOVER_GRACE);
            }
            break;
        }
        if drained {
            std::thread::sleep(POLL);
        }
    }
    let status = child.wait()?;
    let output = kept.lock().expect("output lock").bytes.iter().copied().collect();
    let stderr = match stderr_cap {
        Some(_) => kept_stderr.lock().expect("output lock").bytes.iter().copied().collect(),
        None => Vec::new(),
    };
    Ok(Finished { status, output, stderr, timed_out })
}

/// The last `cap` bytes of what came.
struct Kept {
    bytes: VecDeque<u8>,
    cap: usize,
}

impl Kept {
    fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(self.cap)..];
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(self.cap);
        self.bytes.drain(..excess);
    }
}

/// Kills every process of the group `pgid`.
fn kill_group(pgid: i32) {
    signal_group(pgid, libc::SIGKILL);
}

/// Sends `sig` to the process `pid`, as kill(2) does; false when it could
/// not be sent (no such process, or not this user's).
pub fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: sending a signal has no memory effects.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Sends `sig` to every process of the group `pgid`; false when it could
/// not be sent.
pub fn signal_group(pgid: i32, sig: i32) -> bool {
    // SAFETY: sending a signal has no memory effects.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

/// A set of signals a process takes over (blocks, then waits for).
pub struct SignalSet(libc::sigset_t);

// SAFETY: a sigset_t is plain data.
unsafe impl Send for SignalSet {}

impl SignalSet {
    pub fn terminating() -> SignalSet {
        // SAFETY: sigemptyset/sigaddset initialise and fill the set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            SignalSet(set)
        }
    }

    pub fn block(&self) {
        // SAFETY: the set is initialised.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
    }

    pub fn unblock(&self) {
        // SAFETY: the set is initialised.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &self.0, std::ptr::null_mut()) };
    }

    /// Waits up to `timeout` for one of the signals.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the set is initialised and the signals are blocked in this thread.
        let sig = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        (sig > 0).then_some(sig)
    }
}

/// The name of a signal, as people know it (`SIGTERM`).
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGFPE => "SIGFPE".into(),
        other => format!("signal {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    fn keep(stdin: Option<&[u8]>, timeout: f64) -> Options<'_> {
        Options { stdin, output: Output::Keep(1000), timeout: Duration::from_secs_f64(timeout), pass_signals: false }
    }

    #[test]
    fn output_is_drained_and_its_end_kept() {
        let done =
            run(&mut sh("cat >&2; head -c 3000000 /dev/zero >&2; echo end >&2"), keep(Some(b"in\n"), 60.0)).unwrap();
        assert!(done.status.success() && !done.timed_out, "{done:?}");
        assert_eq!(done.output.len(), 1000);
        assert!(done.output.ends_with(b"\0\0end\n"), "{:?}", String::from_utf8_lossy(&done.output[990..]));
        let done = run(&mut sh("cat >/dev/null; echo in; exit 4"), keep(None, 60.0)).unwrap();
        assert_eq!((done.status.code(), &done.output[..]), (Some(4), &b"in\n"[..]));
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        let done = run(&mut sh("sleep 300 & sleep 300"), keep(None, 0.5)).unwrap();
        assert!(done.timed_out, "{done:?}");
        assert_eq!(done.status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn output_to_a_file_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let options = Options {
            stdin: None,
            output: Output::File(File::create(&path).unwrap()),
            timeout: Duration::from_secs(60),
            pass_signals: false,
        };
        let done = run(&mut sh("head -c 5000 /dev/zero; echo err >&2"), options).unwrap();
        assert!(done.status.success() && done.output.is_empty(), "{done:?}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 5004);
    }

    #[test]
    fn any_timeout_is_taken() {
        assert_eq!(timeout(-1.0), Duration::ZERO);
        assert_eq!(timeout(f64::NAN), Duration::ZERO);
        assert_eq!(timeout(1e300), Duration::MAX);
        let done = run(&mut sh("exit 0"), Options { timeout: Duration::MAX, ..keep(None, 1.0) }).unwrap();
        assert!(done.status.success() && !done.timed_out);
    }

    #[test]
    fn a_program_that_cannot_start_is_an_error() {
        assert!(run(&mut Command::new("/no/such/program"), keep(None, 1.0)).is_err());
    }
}
