//! The supervisor owns a run's process: it starts the command in its own
//! process group, tees its output into the run folder, turns `##labmate`
//! lines into metric records, babysits the run by its rules, passes signals
//! on, and records how it ended.
//!
//! It judges by the wall ([`clock::now`]): silence, stalls, throughput and
//! budgets are elapsed time. What it writes carries the lab's time
//! ([`Lab::clock`]), which a face may have fixed.
//!
//! - [`output`]: pipes, metric lines, the tail kept for crash reports.
//! - `watch`: the babysitting thread: rules, system metrics, actions.
//! - [`signals`]: signal handling and stopping a run.
//! - `detach`: runs that outlive their terminal.
//! - `tensorboard`: the event files the command writes, followed into the run.

mod detach;
pub mod output;
pub mod signals;
mod tensorboard;
mod watch;

use std::borrow::Cow;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

pub use detach::{spawn_detached, supervise_detached, supervise_in_job};
pub use output::MARKER;
pub use signals::signal_name;

use crate::clock::{self, Now};
use crate::error::Result;
use crate::import::tensorboard::live::Follower;
use crate::lab::Lab;
use crate::policy::Policy;
use crate::queue;
use crate::record::{End, Event, Leader, Record, RunStatus};
use crate::remote::Remote;
use crate::remote::stream::Stream;
use crate::rules::Babysitter;
use crate::rundir::{self, OwnerLock, RunDir};
use crate::spec::RunSpec;
use crate::sys::procgroup::Group;
use output::{Activity, MarkerScanner, Tail};
use signals::{SignalSet, Stopper};
use tensorboard::Tensorboard;
use watch::{Msg, Watch};

/// How long output may keep flowing after the command exits (from processes
/// it left behind) before the run is closed anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(3);

/// A run whose folder exists and whose lock is held, not yet started.
#[derive(Debug)]
pub struct Prepared {
    pub dir: RunDir,
    pub spec: RunSpec,
    lock: OwnerLock,
    lab: Lab,
    /// Where the run is pushed while it lives, if anywhere.
    remote: Option<Remote>,
}

impl Prepared {
    /// A run folder just created, with its owner lock held.
    pub(crate) fn new(lab: &Lab, dir: RunDir, spec: RunSpec, lock: OwnerLock) -> Prepared {
        Prepared { dir, spec, lock, lab: lab.clone(), remote: None }
    }

    /// Pushes the run to the lab at `remote` while it lives ([`crate::remote::stream`]).
    pub fn stream_to(&mut self, remote: Remote) {
        self.remote = Some(remote);
    }

    /// The lab the run is pushed to while it lives, if any.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// The lab's time now, as the run's records carry it.
    pub fn lab_now(&self) -> f64 {
        self.lab.now()
    }
}

/// How a supervised run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: Option<String>,
}

impl Outcome {
    /// The exit code a shell expects: the child's, or 128 + the signal.
    pub fn shell_code(&self) -> i32 {
        crate::record::shell_code(self.exit_code, self.signal)
    }
}

/// Where a run is, as [`supervise`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting in the launch queue.
    Queued,
    /// The command runs.
    Started,
}

/// Runs the prepared command to its end, after its turn in the queue when it
/// was launched with one. `echo` tees its output to this process's stdout and
/// stderr; `on_stage` hears when the run is queued and when it starts.
pub fn supervise(prepared: Prepared, echo: bool, mut on_stage: impl FnMut(&RunSpec, Stage)) -> Result<Outcome> {
    let Prepared { dir, spec, lock, lab, remote } = prepared;
    let lab_now = lab.clock();
    let babysit = spec.babysit.clone().unwrap_or_default();
    let stream = Arc::new(Mutex::new(dir.append(rundir::SUPERVISOR_STREAM)?));
    let output = Arc::new(Mutex::new(dir.append(rundir::OUTPUT_LOG)?));
    let stderr_log = dir.append(rundir::STDERR_LOG)?;
    let record = |r: &Record| {
        // A full disk must not end supervision; the run goes on.
        let _ = stream.lock().expect("stream lock").write_record(&stamped(r, lab_now));
    };
    // Pushed over HTTP as it goes; what is left goes when this returns.
    let _pushing = remote.map(|remote| {
        let stream = stream.clone();
        Stream::start(remote, dir.clone(), spec.id.clone(), move |e| {
            let _ = stream.lock().expect("stream lock").write_record(&stamped(&Record::Event(e), lab_now));
        })
    });

    // Signals are taken by one thread (sigwait) and passed on to the
    // command's process group. Blocking them here, before any thread starts,
    // makes every thread inherit the mask; the child is given a clean one.
    let signals = SignalSet::terminating();
    signals.block();

    let slot = match take_turn(&spec, &dir, &lab, &signals, &mut on_stage)? {
        Ok(slot) => slot,
        Err(cancelled) => {
            record(&end_record(&cancelled));
            signals.unblock();
            return Ok(cancelled);
        }
    };
    let gpus = (!slot.gpus.is_empty()).then(|| slot.gpus.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
    // Event files already there are earlier runs': only those the command writes are followed.
    let follower = spec.tensorboard.as_deref().map(|logdir| Follower::new(Path::new(&spec.cwd).join(logdir)));
    let mut child = match spawn_child(&spec, &dir, &lab, gpus.as_deref(), &slot.fds()) {
        Ok(c) => c,
        Err(e) => {
            let reason = format!("could not start {}: {e}", spec.command[0]);
            record(&Record::Event(Event::warning(clock::now(), reason.clone(), None)));
            let code = if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
            let outcome =
                Outcome { status: RunStatus::Failed, exit_code: Some(code), signal: None, reason: Some(reason) };
            record(&end_record(&outcome));
            signals.unblock();
            drop(lock);
            return Ok(outcome);
        }
    };
    let pgid = child.id() as i32;
    let group = Group::of_leader(pgid);
    let started = clock::now();
    record(&Record::Start {
        time: started,
        pid: Some(std::process::id()),
        child_pid: Some(child.id()),
        pgid: Some(pgid),
        leader: group.leader_start.map(|start| Leader { start, boot_id: group.boot_id.clone() }),
        job: spec.scheduler.as_ref().and_then(|_| crate::slurm::placement()),
    });
    on_stage(&spec, Stage::Started);

    let stop_grace = Duration::from_secs_f64(babysit.supervisor.stop_grace);
    let stopper = Arc::new(Stopper::new(pgid, stop_grace));
    let activity = Arc::new(Activity::new(started));
    let output_tail = Arc::new(Mutex::new(Tail::default()));
    let stderr_tail = Arc::new(Mutex::new(Tail::default()));
    let babysitter = Babysitter::new(&babysit.rules, started).unwrap_or_else(|e| {
        record(&Record::Event(Event::warning(started, format!("rules ignored: {e}"), None)));
        Babysitter::new(&Default::default(), started).expect("default rules parse")
    });
    let (tx, rx) = mpsc::channel();
    let watcher = {
        let watch = Watch {
            run_id: spec.id.clone(),
            run_name: spec.name.clone(),
            dir: dir.clone(),
            stream: stream.clone(),
            stopper: stopper.clone(),
            activity: activity.clone(),
            output_tail: output_tail.clone(),
            stderr_tail: stderr_tail.clone(),
            sampler: crate::sysmon::Sampler::new(
                pgid,
                gpus.clone().or_else(|| std::env::var("CUDA_VISIBLE_DEVICES").ok()).as_deref(),
            ),
            babysitter,
            babysit,
            started,
            lab_now,
            exited: false,
        };
        thread::spawn(move || watch.run(rx))
    };
    let tensorboard = follower.map(|f| Tensorboard::follow(f, stream.clone(), tx.clone(), lab.clone()));
    let done = Arc::new(AtomicBool::new(false));
    let signal_thread = {
        let (done, stopper, dir) = (done.clone(), stopper.clone(), dir.clone());
        thread::spawn(move || signals::take_signals(signals, &stopper, &dir, &done))
    };

    let (drained_tx, drained_rx) = mpsc::channel();
    let out_pump = {
        let (output, stream, tail, activity, tx, drained) =
            (output.clone(), stream.clone(), output_tail.clone(), activity.clone(), tx.clone(), drained_tx.clone());
        let src = child.stdout.take().expect("piped stdout");
        let mut writer = RecordWriter::new(lab.clone());
        thread::spawn(move || {
            let mut scanner = MarkerScanner::default();
            output::pump(src, echo.then(io::stdout), &output, None, &tail, &activity, |chunk| {
                let records = scanner.feed(chunk, clock::now());
                if records.is_empty() {
                    return;
                }
                writer.write(&stream, &records);
                let _ = tx.send(Msg::Records(records));
            });
            let _ = drained.send(());
        })
    };
    let err_pump = {
        let (output, activity, drained) = (output.clone(), activity.clone(), drained_tx);
        let (tail_all, tail_err) = (output_tail.clone(), stderr_tail.clone());
        let src = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            output::pump(src, echo.then(io::stderr), &output, Some(stderr_log), &tail_err, &activity, |chunk| {
                tail_all.lock().expect("tail lock").push(chunk);
            });
            let _ = drained.send(());
        })
    };

    // The command's exit is seen without reaping it, so that its pid (the
    // group's id) stays taken until what it left behind is dealt with.
    let status = crate::sys::procgroup::exit_status(pgid, true).ok().flatten();
    // Output may still come from processes the command left behind; wait a
    // little for both pipes to close. Then whatever is left of the group is
    // ended (SIGTERM, SIGKILL after the grace period): nothing of a run
    // outlives it.
    let mut closed = 0;
    let mut drain = |limit: Duration| {
        let deadline = Instant::now() + limit;
        while closed < 2 {
            match drained_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(()) => closed += 1,
                Err(_) => break,
            }
        }
        closed
    };
    drain(DRAIN_GRACE);
    let left = group.end(stop_grace);
    if left.found > 0 {
        let n = left.found;
        let mut message = format!("ended {n} process{} the command left running", if n == 1 { "" } else { "es" });
        if left.killed > 0 {
            message.push_str(&format!(" ({} after SIGKILL)", left.killed));
        }
        let data = serde_json::json!({"processes": left.found, "sigkill": left.killed});
        record(&Record::Event(Event { time: clock::now(), kind: "info".into(), message, data: Some(data) }));
    }
    let closed = drain(Duration::from_secs(1));
    let status = status.unwrap_or_else(|| wait_child(&mut child));
    if closed == 2 {
        let _ = out_pump.join();
        let _ = err_pump.join();
    }
    // The rules see the last points the command wrote before they judge its exit.
    if let Some(tensorboard) = tensorboard {
        tensorboard.finish();
    }
    let _ = tx.send(Msg::Exited { exit_code: status.code(), signal: status.signal() });
    drop(tx);
    let pending = watcher.join().unwrap_or_default();
    done.store(true, Ordering::SeqCst);
    let _ = signal_thread.join();
    // Nothing signals the group any more: its id may go.
    let _ = wait_child(&mut child);

    let mut stop = stopper.reason();
    if stop.is_none() && status.code() != Some(0) {
        // A stop asked for may have reached the command (a job's scancel
        // signals every process of it) before the supervisor heard of it.
        stop = signals::stop_request(&dir);
    }
    // In a job, a command killed by a signal nobody here sent was killed by
    // Slurm (its time limit, a preemption, an scancel outside labmate).
    let ended_by_slurm =
        spec.scheduler.is_some() && (stopper.unasked() || (stop.is_none() && status.signal().is_some()));
    let outcome = Outcome {
        status: match (&stop, status.code()) {
            (Some(_), _) => RunStatus::Stopped,
            (None, Some(0)) => RunStatus::Finished,
            _ => RunStatus::Failed,
        },
        exit_code: status.code(),
        signal: status.signal(),
        reason: stop,
    };
    if ended_by_slurm {
        // Slurm ended the job (its time limit, a preemption, an scancel
        // outside labmate): the reader records how, from Slurm's word.
        let message = "Slurm ended the job (SIGTERM); its state says why".to_string();
        record(&Record::Event(Event { time: clock::now(), kind: "lifecycle".into(), message, data: None }));
    } else {
        record(&end_record(&outcome));
    }
    // Notifications of the last alerts go out before the supervisor exits.
    for n in pending {
        let _ = n.join();
    }
    drop(slot);
    drop(lock);
    Ok(outcome)
}

/// Waits for the run's turn when it is queued, and takes its slot (a queued
/// run also its GPU). A run launched without the queue never waits: it takes
/// a slot when one is free, so that it counts against `max_concurrent`.
/// A signal while queued cancels the run: `Err` holds how it ended.
fn take_turn(
    spec: &RunSpec,
    dir: &RunDir,
    lab: &Lab,
    signals: &SignalSet,
    on_stage: &mut impl FnMut(&RunSpec, Stage),
) -> Result<std::result::Result<queue::Slot, Outcome>> {
    let max_concurrent = || Policy::load(lab).ok().and_then(|p| p.queue.max_concurrent);
    if !spec.queue {
        return Ok(Ok(queue::try_take(lab, max_concurrent(), &[], 0).unwrap_or_default()));
    }
    let queued = Record::Queued { time: lab.now(), pid: std::process::id() };
    dir.append(rundir::SUPERVISOR_STREAM)?.write_record(&queued)?;
    on_stage(spec, Stage::Queued);
    let place = queue::Place::join(lab, spec)?;
    let gpus = queue::usable_gpus();
    let want_gpus = usize::from(!gpus.is_empty());
    // Catching up the index finds runs whose supervisor died and ends what is
    // left of them, so that their slots come free (see `spawn_child`).
    let sweep = || {
        let _ = crate::index::Index::open_synced(lab);
    };
    let mut round = 0u64;
    loop {
        round += 1;
        if place.is_first(lab) {
            if round % 8 == 0 {
                sweep();
            }
            if let Some(slot) = queue::try_take(lab, max_concurrent(), &gpus, want_gpus) {
                place.leave();
                // A slot freed by a lost run's command may have been left by
                // processes of it that closed the lock: none may go on.
                sweep();
                return Ok(Ok(slot));
            }
        }
        if let Some(sig) = signals.wait(Duration::from_millis(250)) {
            place.leave();
            let reason =
                signals::stop_request(dir).unwrap_or_else(|| format!("cancelled while queued ({})", signal_name(sig)));
            return Ok(Err(Outcome {
                status: RunStatus::Stopped,
                exit_code: None,
                signal: None,
                reason: Some(reason),
            }));
        }
    }
}

/// Writes the records made of what the command gives (its metric lines,
/// its TensorBoard files) into the supervisor's stream.
struct RecordWriter {
    lab: Lab,
    batches: bool,
}

impl RecordWriter {
    fn new(lab: Lab) -> RecordWriter {
        RecordWriter { batches: lab.format() >= 2, lab }
    }

    fn write(&mut self, stream: &Mutex<rundir::Appender>, records: &[Record]) {
        let lab_now = self.lab.clock();
        let stamped: Vec<_> = records.iter().map(|r| stamped(r, lab_now)).collect();
        // Several points at once go as one batch, once the lab says it may hold them.
        let several = stamped.iter().filter(|r| matches!(r.as_ref(), Record::Log { .. })).count() > 1;
        if several && !self.batches {
            self.batches = self.lab.require_format(2).is_ok();
        }
        let lines = output::lines(stamped.iter().map(|r| r.as_ref()), self.batches);
        // A full disk must not end supervision; the run goes on.
        let _ = stream.lock().expect("stream lock").write_bytes(lines.as_bytes());
    }
}

/// `r` as the supervisor writes it: with the lab's time, where the rules
/// had the wall's.
fn stamped(r: &Record, lab_now: Now) -> Cow<'_, Record> {
    match lab_now {
        Now::Wall => Cow::Borrowed(r),
        Now::Fixed(t) => Cow::Owned(r.clone().with_time(t)),
    }
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

fn spawn_child(spec: &RunSpec, dir: &RunDir, lab: &Lab, gpus: Option<&str>, keep: &[RawFd]) -> io::Result<Child> {
    let mut cmd = Command::new(&spec.command[0]);
    if let Some(gpus) = gpus {
        cmd.env("CUDA_VISIBLE_DEVICES", gpus);
    }
    if spec.wandb {
        let copy = crate::python::extract(lab)
            .map_err(|e| io::Error::other(format!("the wandb stand-in could not be written into the lab: {e}")))?;
        let before = std::env::var_os("PYTHONPATH");
        cmd.env("PYTHONPATH", crate::python::python_path(&copy, before.as_deref()));
    }
    // The Python read API inside a run asks this binary; the supervisor is
    // always `labmate` (in-process, or detached as `labmate __supervise`).
    if let Ok(exe) = std::env::current_exe() {
        cmd.env("LABMATE_BIN", exe);
    }
    cmd.args(&spec.command[1..])
        .current_dir(&spec.cwd)
        .env("LABMATE_RUN_ID", &spec.id)
        .env("LABMATE_RUN_DIR", dir.path())
        .env("LABMATE_DIR", lab.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Python buffers stdout into a pipe; metric lines should arrive as printed.
    if std::env::var_os("PYTHONUNBUFFERED").is_none() {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    // The child starts with the signals the supervisor passes on deliverable:
    // not blocked (this thread blocks them for sigwait, and exec keeps the
    // mask) and not ignored (a shell starts background jobs with SIGINT
    // ignored, and exec keeps that too).
    //
    // The command dies with its supervisor (SIGKILL when the supervisor's
    // thread that started it dies), so it never runs unwatched; the rest of
    // its group is ended by the first reader that finds the run lost.
    //
    // It also holds the run's slot and GPU locks (inherited, not closed on
    // exec): a slot is free only once no process of the run that keeps it lives.
    crate::sys::exec::watched_child(&mut cmd, keep);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_codes_follow_the_child() {
        let o = |code, sig| Outcome { status: RunStatus::Failed, exit_code: code, signal: sig, reason: None };
        assert_eq!(o(Some(3), None).shell_code(), 3);
        assert_eq!(o(None, Some(9)).shell_code(), 137);
    }
}
