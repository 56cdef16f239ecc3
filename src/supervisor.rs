//! The supervisor owns a run's process: it starts the command in its own
//! process group, tees its output into the run folder, turns `##labmate`
//! lines into metric records, forwards signals, and records how it ended.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::clock;
use crate::error::{Error, Result};
use crate::git;
use crate::id;
use crate::lab::Lab;
use crate::record::{End, Event, Metrics, Record, quote_bare_non_finite};
use crate::rundir::{self, OwnerLock, RunDir};
use crate::spec::{self, RunSpec};

/// The prefix of a metrics line in a program's output.
pub const MARKER: &[u8] = b"##labmate ";
/// How long output may keep flowing after the command exits (from processes
/// it left behind) before the run is closed anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(3);
/// The fd on which a detached supervisor receives the run's lock.
const LOCK_FD: i32 = 3;

/// What the user asked to launch.
#[derive(Debug, Clone, Default)]
pub struct LaunchRequest {
    pub name: Option<String>,
    pub tags: Vec<String>,
    /// `KEY=VALUE` strings, as given on the command line.
    pub config: Vec<String>,
    pub command: Vec<String>,
    pub cwd: PathBuf,
}

/// A run whose folder exists and whose lock is held, not yet started.
#[derive(Debug)]
pub struct Prepared {
    pub dir: RunDir,
    pub spec: RunSpec,
    lock: OwnerLock,
    lab_root: PathBuf,
}

/// How a supervised run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: Option<String>,
}

impl Outcome {
    /// The exit code a shell expects: the child's, or 128 + the signal.
    pub fn shell_code(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 1,
        }
    }
}

/// Validates a launch and creates its run folder. Nothing is written when the
/// request is bad (unparseable config, no such program).
pub fn prepare(lab: &Lab, req: LaunchRequest) -> Result<Prepared> {
    let program = req.command.first().ok_or_else(|| {
        Error::Invalid("no command given: labmate run [OPTIONS] -- CMD [ARGS...]".into())
    })?;
    if req.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(Error::Invalid("--name must not be empty".into()));
    }
    let config = spec::parse_config(&req.config)?;
    spec::resolve_program(program, &req.cwd, std::env::var_os("PATH").as_deref())?;

    let now = clock::now();
    let mut spec = RunSpec::new(id::new_run_id(now), now, &req.cwd);
    spec.name = req.name;
    spec.tags = dedup(req.tags);
    spec.command = req.command;
    spec.config = config;
    let vars: Vec<(String, String)> = std::env::vars().collect();
    spec.env = spec::env_subset(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut patch = Vec::new();
    if let Some((state, p)) = git::capture(&req.cwd) {
        spec.git = Some(state);
        patch = p;
    }
    let (dir, lock) = RunDir::create(lab, &spec, &patch)?;
    Ok(Prepared {
        dir,
        spec,
        lock,
        lab_root: lab.root().to_path_buf(),
    })
}

fn dedup(mut tags: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
    tags
}

/// Runs the prepared command to its end. `echo` tees its output to this
/// process's stdout and stderr; `on_start` is called once the child runs.
pub fn supervise(
    prepared: Prepared,
    echo: bool,
    on_start: impl FnOnce(&RunSpec),
) -> Result<Outcome> {
    let Prepared {
        dir,
        spec,
        lock,
        lab_root,
    } = prepared;
    let stream = Arc::new(Mutex::new(dir.append(rundir::SUPERVISOR_STREAM)?));
    let output = Arc::new(Mutex::new(dir.append(rundir::OUTPUT_LOG)?));
    let stderr_log = dir.append(rundir::STDERR_LOG)?;
    let record = |r: &Record| {
        // A full disk must not kill supervision; the run goes on.
        let _ = stream.lock().expect("stream lock").write_record(r);
    };

    // Signals are taken by one thread (sigwait) and forwarded to the child's
    // process group. Blocking them here, before any thread starts, makes
    // every thread inherit the mask; the child is given a clean one.
    let signals = SignalSet::terminating();
    signals.block();

    let mut child = match spawn_child(&spec, &dir, &lab_root) {
        Ok(c) => c,
        Err(e) => {
            let reason = format!("could not start {}: {e}", spec.command[0]);
            record(&Record::Event(Event::warning(
                clock::now(),
                reason.clone(),
                None,
            )));
            let outcome = Outcome {
                status: "failed".into(),
                exit_code: Some(if e.kind() == io::ErrorKind::NotFound {
                    127
                } else {
                    126
                }),
                signal: None,
                reason: Some(reason),
            };
            record(&end_record(&outcome));
            signals.unblock();
            drop(lock);
            return Ok(outcome);
        }
    };
    let pgid = child.id() as i32;
    record(&Record::Start {
        time: clock::now(),
        pid: Some(std::process::id()),
        child_pid: Some(child.id()),
        pgid: Some(pgid),
    });
    on_start(&spec);

    let done = Arc::new(AtomicBool::new(false));
    let stop_reason: Arc<Mutex<Option<String>>> = Arc::default();
    let signal_thread = {
        let (done, stop_reason) = (done.clone(), stop_reason.clone());
        thread::spawn(move || forward_signals(signals, pgid, &done, &stop_reason))
    };

    let (drained_tx, drained_rx) = mpsc::channel();
    let out_pump = {
        let (output, stream, tx) = (output.clone(), stream.clone(), drained_tx.clone());
        let src = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            let mut scanner = MarkerScanner::default();
            pump(src, echo.then(io::stdout), &output, None, |chunk| {
                let records = scanner.feed(chunk, clock::now());
                if !records.is_empty() {
                    let _ = stream
                        .lock()
                        .expect("stream lock")
                        .write_bytes(records.as_bytes());
                }
            });
            let _ = tx.send(());
        })
    };
    let err_pump = {
        let (output, tx) = (output.clone(), drained_tx);
        let src = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            pump(
                src,
                echo.then(io::stderr),
                &output,
                Some(stderr_log),
                |_| {},
            );
            let _ = tx.send(());
        })
    };

    let status = wait_child(&mut child);
    // Output may still come from processes the command left behind; wait a
    // little for both pipes to close, then close the run regardless.
    let deadline = std::time::Instant::now() + DRAIN_GRACE;
    let mut closed = 0;
    while closed < 2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match drained_rx.recv_timeout(left) {
            Ok(()) => closed += 1,
            Err(_) => break,
        }
    }
    if closed == 2 {
        let _ = out_pump.join();
        let _ = err_pump.join();
    }
    done.store(true, Ordering::SeqCst);
    let _ = signal_thread.join();

    let stop = stop_reason.lock().expect("stop lock").take();
    let outcome = Outcome {
        status: match (&stop, status.code()) {
            (Some(_), _) => "stopped",
            (None, Some(0)) => "finished",
            _ => "failed",
        }
        .into(),
        exit_code: status.code(),
        signal: status.signal(),
        reason: stop,
    };
    record(&end_record(&outcome));
    drop(lock);
    Ok(outcome)
}

fn end_record(o: &Outcome) -> Record {
    Record::End(End {
        time: clock::now(),
        status: o.status.clone(),
        exit_code: o.exit_code,
        signal: o.signal,
        reason: o.reason.clone(),
    })
}

fn spawn_child(spec: &RunSpec, dir: &RunDir, lab_root: &Path) -> io::Result<Child> {
    let mut cmd = Command::new(&spec.command[0]);
    cmd.args(&spec.command[1..])
        .current_dir(&spec.cwd)
        .env("LABMATE_RUN_ID", &spec.id)
        .env("LABMATE_RUN_DIR", dir.path())
        .env("LABMATE_DIR", lab_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Python buffers stdout into a pipe; metric lines should arrive as printed.
    if std::env::var_os("PYTHONUNBUFFERED").is_none() {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    // The child starts with the signals the supervisor forwards deliverable:
    // not blocked (this thread blocks them for sigwait, and exec keeps the
    // mask) and not ignored (a shell starts background jobs with SIGINT
    // ignored, and exec keeps that too).
    // SAFETY: sigemptyset, pthread_sigmask and signal are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.spawn()
}

fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    loop {
        match child.wait() {
            Ok(s) => return s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return std::process::ExitStatus::from_raw(1 << 8),
        }
    }
}

/// Copies a pipe to its sinks until it closes, one chunk at a time.
fn pump(
    mut src: impl Read,
    mut echo: Option<impl Write>,
    output: &Mutex<rundir::Appender>,
    mut own_log: Option<rundir::Appender>,
    mut on_chunk: impl FnMut(&[u8]),
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        if let Some(w) = echo.as_mut() {
            // The terminal may be gone (a closed ssh session); keep recording.
            if w.write_all(chunk).and_then(|_| w.flush()).is_err() {
                echo = None;
            }
        }
        let _ = output.lock().expect("output lock").write_bytes(chunk);
        if let Some(log) = own_log.as_mut() {
            let _ = log.write_bytes(chunk);
        }
        on_chunk(chunk);
    }
}

/// Finds `##labmate {...}` lines in a byte stream of any line length and
/// encoding, and turns them into records (serialised, ready to append).
#[derive(Default)]
pub struct MarkerScanner {
    line: Vec<u8>,
    /// The current line is not a marker line; skip to its end.
    skipping: bool,
    next_step: i64,
}

/// Longest marker line kept; longer ones are reported, not parsed.
const MAX_MARKER_LINE: usize = 1 << 20;

impl MarkerScanner {
    pub fn feed(&mut self, mut chunk: &[u8], now: f64) -> String {
        let mut out = String::new();
        while !chunk.is_empty() {
            let (part, rest, ends) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (&chunk[..i], &chunk[i + 1..], true),
                None => (chunk, &chunk[chunk.len()..], false),
            };
            chunk = rest;
            if !self.skipping {
                self.line.extend_from_slice(part);
                let prefix = self.line.len().min(MARKER.len());
                if self.line[..prefix] != MARKER[..prefix] {
                    self.skipping = true;
                    self.line.clear();
                } else if self.line.len() > MAX_MARKER_LINE {
                    let head = String::from_utf8_lossy(&self.line[..200]).into_owned();
                    out.push_str(
                        &Record::Event(Event::warning(
                            now,
                            "metrics line too long; skipped",
                            Some(Value::from(head)),
                        ))
                        .to_line(),
                    );
                    self.skipping = true;
                    self.line.clear();
                }
            }
            if ends {
                if !self.skipping && self.line.len() >= MARKER.len() {
                    let line = std::mem::take(&mut self.line);
                    for r in self.parse(&line, now) {
                        out.push_str(&r.to_line());
                    }
                }
                self.line.clear();
                self.skipping = false;
            }
        }
        out
    }

    fn parse(&mut self, line: &[u8], now: f64) -> Vec<Record> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let body = &text[MARKER.len()..];
        let parsed =
            serde_json::from_str::<Metrics>(body).or_else(|e| match quote_bare_non_finite(body) {
                Some(fixed) => serde_json::from_str::<Metrics>(&fixed).map_err(|e| e.to_string()),
                None => Err(e.to_string()),
            });
        let mut metrics = match parsed {
            Ok(m) => m,
            Err(e) => {
                return vec![Record::Event(Event::warning(
                    now,
                    format!("malformed metrics line: {e}"),
                    Some(Value::from(text)),
                ))];
            }
        };
        let step = match metrics.values.iter().position(|(k, _)| k == "step") {
            Some(i) => {
                let (_, s) = metrics.values.remove(i);
                if s.fract() != 0.0 || !s.is_finite() {
                    return vec![Record::Event(Event::warning(
                        now,
                        format!("malformed metrics line: step {s} is not an integer"),
                        Some(Value::from(text)),
                    ))];
                }
                s as i64
            }
            None => self.next_step,
        };
        self.next_step = step + 1;
        let mut out = Vec::new();
        if !metrics.dropped.is_empty() {
            out.push(Record::Event(Event::warning(
                now,
                format!(
                    "metrics line: dropped non-numeric value(s) of {}",
                    metrics.dropped.join(", ")
                ),
                Some(Value::from(text)),
            )));
        }
        metrics.dropped.clear();
        out.insert(
            0,
            Record::Log {
                step,
                time: now,
                metrics,
            },
        );
        out
    }
}

/// A set of signals the supervisor takes over while a run lives.
struct SignalSet(libc::sigset_t);

// SAFETY: a sigset_t is plain data.
unsafe impl Send for SignalSet {}

impl SignalSet {
    fn terminating() -> SignalSet {
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

    fn block(&self) {
        // SAFETY: the set is initialised.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
    }

    fn unblock(&self) {
        // SAFETY: the set is initialised.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &self.0, std::ptr::null_mut()) };
    }

    /// Waits up to `timeout` for one of the signals.
    fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the set is initialised and the signals are blocked in this thread.
        let sig = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        (sig > 0).then_some(sig)
    }
}

fn forward_signals(
    signals: SignalSet,
    pgid: i32,
    done: &AtomicBool,
    stop_reason: &Mutex<Option<String>>,
) {
    while !done.load(Ordering::SeqCst) {
        if let Some(sig) = signals.wait(Duration::from_millis(100)) {
            stop_reason
                .lock()
                .expect("stop lock")
                .get_or_insert_with(|| format!("interrupted by {}", signal_name(sig)));
            // SAFETY: sending a signal to a process group has no memory effects.
            unsafe { libc::kill(-pgid, sig) };
        }
    }
}

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

/// Starts `exe __supervise <run folder>` in a session of its own, handing it
/// the run's lock, and returns once it reports the command running.
pub fn spawn_detached(exe: &Path, prepared: Prepared) -> Result<()> {
    let Prepared { dir, lock, .. } = prepared;
    let log_path = dir.file("supervisor.log");
    let log = File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let lock_fd = lock.0.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.arg("__supervise")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    // SAFETY: only async-signal-safe calls (setsid, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            // dup2 onto itself keeps close-on-exec, so clear it by hand then.
            let ok = if lock_fd == LOCK_FD {
                libc::fcntl(LOCK_FD, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(lock_fd, LOCK_FD) >= 0
            };
            if !ok {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::io(exe, e))?;
    let mut first = String::new();
    let _ = BufReader::new(child.stdout.take().expect("piped")).read_line(&mut first);
    // The supervisor holds the lock now (same open file); ours may go.
    drop(lock);
    match first.trim_end() {
        "started" => Ok(()),
        other => Err(Error::Invalid(format!(
            "the run's supervisor did not start{}; see {}",
            if other.is_empty() {
                String::new()
            } else {
                format!(": {other}")
            },
            log_path.display()
        ))),
    }
}

/// The other side of [`spawn_detached`]: adopts the run folder and its lock,
/// and supervises. Reports "started" on stdout, then lets go of it.
pub fn supervise_detached(lab: &Lab, run_dir: &Path) -> Result<Outcome> {
    // SAFETY: fd 3 was set up by spawn_detached and is owned by nobody else here.
    let lock = OwnerLock(unsafe { File::from_raw_fd(LOCK_FD) });
    // The lock is ours alone: the command must not inherit it, or a dead
    // supervisor would look alive for as long as its command runs.
    // SAFETY: fcntl on an fd we own.
    unsafe { libc::fcntl(LOCK_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    let dir = RunDir::at(run_dir.to_path_buf());
    let spec = dir.read_spec()?;
    let prepared = Prepared {
        dir,
        spec,
        lock,
        lab_root: lab.root().to_path_buf(),
    };
    supervise(prepared, false, |_| {
        let mut out = io::stdout().lock();
        let _ = out.write_all(b"started\n").and_then(|_| out.flush());
        // Nothing more goes to the launcher, which is gone soon.
        if let Ok(null) = File::options().write(true).open("/dev/null") {
            // SAFETY: dup2 onto our own stdout.
            unsafe { libc::dup2(null.as_raw_fd(), 1) };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(out: &str) -> Vec<Record> {
        out.lines().map(|l| Record::parse(l).unwrap()).collect()
    }

    #[test]
    fn scanner_finds_marker_lines_across_chunks() {
        let mut s = MarkerScanner::default();
        let mut out = s.feed(b"hello\n##labmate {\"step\": 10, \"lo", 1.0);
        out += &s.feed(
            b"ss\": 0.5}\nnot ##labmate {}\n##labmate {\"loss\": NaN}\n",
            2.0,
        );
        let rs = records(&out);
        assert_eq!(rs.len(), 2);
        let Record::Log { step, metrics, .. } = &rs[0] else {
            panic!()
        };
        assert_eq!(
            (*step, metrics.values.clone()),
            (10, vec![("loss".to_string(), 0.5)])
        );
        let Record::Log { step, metrics, .. } = &rs[1] else {
            panic!()
        };
        assert_eq!(*step, 11);
        assert!(metrics.values[0].1.is_nan());
    }

    #[test]
    fn scanner_reports_malformed_lines_and_survives_binary() {
        let mut s = MarkerScanner::default();
        let mut input = vec![0xff, 0xfe, b'\n'];
        input.extend_from_slice(
            b"##labmate {\"loss\": 0.3\n##labmate [1,2]\n##labmate {\"a\": \"x\", \"b\": 1}\n",
        );
        let rs = records(&s.feed(&input, 1.0));
        assert!(
            matches!(&rs[0], Record::Event(e) if e.message.starts_with("malformed metrics line"))
        );
        assert!(
            matches!(&rs[1], Record::Event(e) if e.message.starts_with("malformed metrics line"))
        );
        assert!(matches!(&rs[2], Record::Log { step: 0, .. }));
        assert!(
            matches!(&rs[3], Record::Event(e) if e.message.contains("non-numeric value(s) of a"))
        );
    }

    #[test]
    fn scanner_handles_very_long_ordinary_lines() {
        let mut s = MarkerScanner::default();
        let long = vec![b'x'; 5 << 20];
        assert!(s.feed(&long, 1.0).is_empty());
        assert_eq!(records(&s.feed(b"\n##labmate {\"a\": 1}\n", 1.0)).len(), 1);
    }

    #[test]
    fn shell_codes_follow_the_child() {
        let o = |code, sig| Outcome {
            status: String::new(),
            exit_code: code,
            signal: sig,
            reason: None,
        };
        assert_eq!(o(Some(3), None).shell_code(), 3);
        assert_eq!(o(None, Some(9)).shell_code(), 137);
    }
}
