//! Following runs as they go, for every face: a file of a run's folder from a
//! byte offset as it grows, until the run ends; where its last lines begin;
//! waiting until runs have ended, or until an approval request is decided.
//!
//! Every wait here looks, then pauses on a [`Clock`] for the caller's
//! interval, up to the caller's limit. Output goes to a sink, chunk by chunk,
//! so a face can print it or stream it; the sink's error type is the face's.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::lab::Lab;
use crate::model::Run;
use crate::review::{self, REVIEWS_FILE, RequestState};
use crate::rundir::{OUTPUT_LOG, RunDir};

/// The time, for deadlines, and the pause between two looks. Tests pass a
/// clock whose pause takes no time and moves the world on instead.
pub trait Clock {
    fn now(&self) -> Instant;
    fn sleep(&self, pause: Duration);
}

/// The machine's clock: a pause sleeps the thread.
pub struct Wall;

impl Clock for Wall {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, pause: Duration) {
        std::thread::sleep(pause);
    }
}

/// Calls `look` every `every` until it has an answer.
pub fn poll<T, E>(clock: &impl Clock, every: Duration, mut look: impl FnMut() -> Result<Option<T>, E>) -> Result<T, E> {
    loop {
        if let Some(answer) = look()? {
            return Ok(answer);
        }
        clock.sleep(every);
    }
}

/// As [`poll`], giving up once `limit` has passed since the first look:
/// `None` then. `look` always runs at least once.
pub fn poll_within<T, E>(
    clock: &impl Clock,
    every: Duration,
    limit: Option<Duration>,
    mut look: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    // A limit past what an Instant holds is no limit.
    let deadline = limit.and_then(|l| clock.now().checked_add(l));
    poll(clock, every, || match look()? {
        Some(answer) => Ok(Some(Some(answer))),
        None if deadline.is_some_and(|d| clock.now() >= d) => Ok(Some(None)),
        None => Ok(None),
    })
}

fn is_over(run: &Run) -> bool {
    !run.status.is_live()
}

/// The byte offset where the last `n` lines of the file begin; 0 for a
/// file not there yet.
pub fn tail_start(path: &Path, n: usize) -> Result<u64> {
    let io_err = |e| Error::io(path, e);
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(e)),
    };
    let len = f.metadata().map_err(io_err)?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut newlines = 0;
    let mut buf = vec![0u8; 64 * 1024];
    // A final newline ends the last line; it does not start another.
    let mut skip_last = true;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start)).map_err(io_err)?;
        f.read_exact(chunk).map_err(io_err)?;
        for i in (0..chunk.len()).rev() {
            if chunk[i] == b'\n' {
                if skip_last && start + i as u64 == len - 1 {
                    skip_last = false;
                    continue;
                }
                newlines += 1;
                if newlines == n {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

/// Hands `sink` the bytes of the file from `from` to its current end;
/// returns the offset after them. A file not there yet has none.
pub fn read_from<E: From<Error>>(
    path: &Path,
    from: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(from),
        Err(e) => return Err(Error::io(path, e).into()),
    };
    f.seek(SeekFrom::Start(from)).map_err(|e| Error::io(path, e))?;
    let mut buf = [0u8; 16 * 1024];
    let mut pos = from;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(pos),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e).into()),
        };
        sink(&buf[..n])?;
        pos += n as u64;
    }
}

/// Follows the file from `from` until `over` has an answer, and returns it
/// with the offset reached. Each look asks first and reads after, so
/// nothing written before the end is missed.
fn until_over<T, E: From<Error>>(
    path: &Path,
    from: u64,
    clock: &impl Clock,
    every: Duration,
    mut over: impl FnMut() -> Result<Option<T>, E>,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(T, u64), E> {
    let mut pos = from;
    let end = poll(clock, every, || -> Result<Option<T>, E> {
        let end = over()?;
        pos = read_from(path, pos, &mut sink)?;
        Ok(end)
    })?;
    Ok((end, pos))
}

/// Follows a file of a run's folder (`output.log`, `stderr.log`) from
/// `from` until the run's owner is gone; returns the offset reached.
pub fn output<E: From<Error>>(
    dir: &RunDir,
    file: &str,
    from: u64,
    clock: &impl Clock,
    every: Duration,
    sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let over = || Ok(dir.owner_gone().then_some(()));
    Ok(until_over(&dir.file(file), from, clock, every, over, sink)?.1)
}

/// Follows a file of a run's folder (`output.log`, `stderr.log`) from
/// `from` until the run ends: by its lock for a run supervised here; by
/// the index for one whose owner is elsewhere (a Slurm job, which may wait
/// in Slurm's queue with nobody holding the lock, or a run pushed here
/// from another lab).
pub fn log<E: From<Error>>(
    index: &mut Index,
    id: &str,
    file: &str,
    from: u64,
    clock: &impl Clock,
    every: Duration,
    sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let dir = RunDir::at(index.lab().run_dir(id));
    let elsewhere =
        crate::rundir::heard(index.lab(), id).is_some() || dir.read_spec().is_ok_and(|spec| spec.scheduler.is_some());
    if elsewhere {
        run_file(index, id, file, from, clock, every, sink)?;
    } else {
        output(&dir, file, from, clock, every, sink)?;
    }
    Ok(())
}

/// Follows a run's output from `from` until the index has it ended;
/// returns the run as it ended.
pub fn run_output<E: From<Error>>(
    index: &mut Index,
    id: &str,
    from: u64,
    clock: &impl Clock,
    every: Duration,
    sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<Run, E> {
    run_file(index, id, OUTPUT_LOG, from, clock, every, sink)
}

/// Follows a file of a run's folder from `from` until the index has the
/// run ended: for runs whose lock says nothing here (a Slurm job, a run
/// pushed here from another lab). Returns the run as it ended.
pub fn run_file<E: From<Error>>(
    index: &mut Index,
    id: &str,
    file: &str,
    from: u64,
    clock: &impl Clock,
    every: Duration,
    sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<Run, E> {
    let path = index.lab().run_dir(id).join(file);
    let over = || -> Result<Option<Run>, E> {
        index.sync()?;
        let run = index.run(id)?;
        Ok(is_over(&run).then_some(run))
    };
    Ok(until_over(&path, from, clock, every, over, sink)?.0)
}

/// Waits until every run of `ids` has ended, or `limit` has passed. Returns
/// each run as it ended, in the order of `ids`; `None` for one still going.
pub fn ended(
    index: &mut Index,
    ids: &[String],
    clock: &impl Clock,
    every: Duration,
    limit: Option<Duration>,
) -> Result<Vec<Option<Run>>> {
    let mut last = Vec::new();
    poll_within(clock, every, limit, || -> Result<Option<()>> {
        index.sync()?;
        last = ids.iter().map(|id| index.run(id)).collect::<Result<_>>()?;
        Ok(last.iter().all(is_over).then_some(()))
    })?;
    Ok(last.into_iter().map(|run| is_over(&run).then_some(run)).collect())
}

/// Waits until approval request `id` is decided, and returns it so. The
/// store is read again only when it has grown.
pub fn decision(lab: &Lab, id: &str, clock: &impl Clock, every: Duration) -> Result<RequestState> {
    let path = lab.root().join(REVIEWS_FILE);
    let mut seen = None;
    poll(clock, every, || {
        let size = fs::metadata(&path).map(|m| m.len()).ok();
        if size == seen {
            return Ok(None);
        }
        seen = size;
        match review::load(lab)?.requests.into_iter().find(|r| r.request.id == id) {
            Some(r) if r.state != review::ReviewState::Pending => Ok(Some(r)),
            Some(_) => Ok(None),
            None => Err(Error::not_found("approval request", format!("no approval request '{id}'"))),
        }
    })
}

#[cfg(test)]
pub(crate) mod testing {
    use std::cell::{Cell, RefCell};
    use std::io::Write;
    use std::time::{Duration, Instant};

    use super::Clock;
    use crate::lab::Lab;
    use crate::record::{End, Record};
    use crate::rundir::{OwnerLock, RunDir, SUPERVISOR_STREAM};
    use crate::spec::RunSpec;

    /// A clock for tests: a pause takes no time; it moves the clock on and
    /// lets the world take its next step (numbered from 1).
    pub(crate) struct Steps<F: FnMut(usize)> {
        now: Cell<Instant>,
        taken: Cell<usize>,
        step: RefCell<F>,
    }

    impl<F: FnMut(usize)> Steps<F> {
        pub(crate) fn new(step: F) -> Steps<F> {
            Steps { now: Instant::now().into(), taken: 0.into(), step: step.into() }
        }

        /// How many pauses the waits took.
        pub(crate) fn taken(&self) -> usize {
            self.taken.get()
        }
    }

    impl<F: FnMut(usize)> Clock for Steps<F> {
        fn now(&self) -> Instant {
            self.now.get()
        }

        fn sleep(&self, pause: Duration) {
            self.now.set(self.now.get() + pause);
            self.taken.set(self.taken.get() + 1);
            (self.step.borrow_mut())(self.taken.get());
        }
    }

    /// A lab in a temporary folder.
    pub(crate) fn lab() -> (tempfile::TempDir, Lab) {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        (tmp, lab)
    }

    /// A run folder whose owner is alive for as long as the lock is held.
    pub(crate) fn live_run(lab: &Lab, id: &str) -> (RunDir, OwnerLock) {
        let mut spec = RunSpec::new(id.into(), 1_800_000_000.0, lab.root());
        RunDir::create(lab, &mut spec, b"").unwrap()
    }

    pub(crate) fn append(dir: &RunDir, file: &str, bytes: &[u8]) {
        std::fs::OpenOptions::new().create(true).append(true).open(dir.file(file)).unwrap().write_all(bytes).unwrap();
    }

    /// Ends the run as its owner would: the end record, then the lock let go.
    pub(crate) fn end(dir: &RunDir, lock: Option<OwnerLock>, status: &str, exit_code: i32) {
        let end = End {
            time: 1_800_000_001.0,
            status: status.into(),
            exit_code: Some(exit_code),
            signal: None,
            reason: None,
        };
        dir.append(SUPERVISOR_STREAM).unwrap().write_record(&Record::End(end)).unwrap();
        drop(lock);
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Steps, append, end, lab, live_run};
    use super::*;
    use crate::rundir::STDERR_LOG;

    const EVERY: Duration = Duration::from_millis(200);

    #[test]
    fn a_limited_poll_gives_up_at_its_limit_without_sleeping() {
        let clock = Steps::new(|_| {});
        let got: Option<()> =
            poll_within(&clock, EVERY, Some(Duration::from_secs(2)), || Ok::<_, Error>(None)).unwrap();
        assert_eq!(got, None);
        assert_eq!(clock.taken(), 10);
        let clock = Steps::new(|_| {});
        let mut looks = 0;
        let got = poll_within(&clock, EVERY, None, || {
            looks += 1;
            Ok::<_, Error>((looks == 3).then_some("third"))
        });
        assert_eq!(got.unwrap(), Some("third"));
        assert_eq!(clock.taken(), 2);
    }

    #[test]
    fn output_follows_a_growing_file_until_its_owner_is_gone() {
        let (_tmp, lab) = lab();
        let (dir, lock) = live_run(&lab, "r-00000000f1");
        append(&dir, STDERR_LOG, b"seen before\n");
        let mut lock = Some(lock);
        let clock = Steps::new(|n| {
            append(&dir, STDERR_LOG, format!("line {n}\n").as_bytes());
            if n == 3 {
                // Written in the same moment the owner goes: still shown.
                lock.take();
            }
        });
        let mut got = Vec::new();
        let from = "seen before\n".len() as u64;
        let pos = output(&dir, STDERR_LOG, from, &clock, EVERY, |chunk| {
            got.extend_from_slice(chunk);
            Ok::<_, Error>(())
        })
        .unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), "line 1\nline 2\nline 3\n");
        assert_eq!(pos, std::fs::metadata(dir.file(STDERR_LOG)).unwrap().len());
        assert_eq!(clock.taken(), 3);
    }

    #[test]
    fn a_sink_error_ends_the_follow() {
        let (_tmp, lab) = lab();
        let (dir, _lock) = live_run(&lab, "r-00000000f2");
        append(&dir, OUTPUT_LOG, b"to a closed pipe\n");
        let clock = Steps::new(|_| panic!("no pause after a failed write"));
        let err = output(&dir, OUTPUT_LOG, 0, &clock, EVERY, |_| Err(Error::conflict("reader", "the reader left")));
        assert_eq!(err.unwrap_err().to_string(), "the reader left");
    }

    #[test]
    fn run_output_stops_at_the_runs_end_and_returns_how_it_ended() {
        let (_tmp, lab) = lab();
        let (dir, lock) = live_run(&lab, "r-00000000f3");
        let mut index = Index::open(&lab).unwrap();
        let mut lock = Some(lock);
        let clock = Steps::new(|n| {
            append(&dir, OUTPUT_LOG, format!("step {n}\n").as_bytes());
            if n == 2 {
                end(&dir, lock.take(), "failed", 3);
            }
        });
        let mut got = String::new();
        let run = run_output(&mut index, "r-00000000f3", 0, &clock, EVERY, |chunk| {
            got.push_str(std::str::from_utf8(chunk).unwrap());
            Ok::<_, Error>(())
        })
        .unwrap();
        assert_eq!((run.status.as_str(), run.exit_code), ("failed", Some(3)));
        assert_eq!(got, "step 1\nstep 2\n");
    }

    #[test]
    fn ended_says_which_runs_are_still_going_at_the_limit() {
        let (_tmp, lab) = lab();
        let (a, lock_a) = live_run(&lab, "r-00000000fa");
        let (_b, _lock_b) = live_run(&lab, "r-00000000fb");
        let mut index = Index::open(&lab).unwrap();
        let ids = ["r-00000000fa".to_string(), "r-00000000fb".to_string()];
        let mut lock_a = Some(lock_a);
        let clock = Steps::new(|n| {
            if n == 1 {
                end(&a, lock_a.take(), "finished", 0);
            }
        });
        let ends = ended(&mut index, &ids, &clock, Duration::from_millis(100), Some(Duration::from_secs(1))).unwrap();
        assert_eq!(ends[0].as_ref().map(|r| r.status.as_str()), Some("finished"));
        assert!(ends[1].is_none());
        assert_eq!(clock.taken(), 10);

        let clock = Steps::new(|_| panic!("nothing to wait for"));
        let ends = ended(&mut index, &ids[..1], &clock, EVERY, None).unwrap();
        assert_eq!(ends.len(), 1);
    }

    #[test]
    fn the_tail_starts_where_the_last_lines_begin() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.log");
        assert_eq!(tail_start(&path, 3).unwrap(), 0, "no file yet");
        std::fs::write(&path, "a\nbb\nccc\n").unwrap();
        assert_eq!(tail_start(&path, 2).unwrap(), 2);
        assert_eq!(tail_start(&path, 0).unwrap(), 9);
        assert_eq!(tail_start(&path, 9).unwrap(), 0);
        std::fs::write(&path, "a\nbb\nunfinished").unwrap();
        assert_eq!(tail_start(&path, 1).unwrap(), 5);
    }

    #[test]
    fn decision_waits_for_the_humans_word() {
        let (_tmp, lab) = lab();
        let launch = crate::spec::LaunchRequest {
            command: vec!["true".into()],
            author: Some("agent:a".into()),
            ..Default::default()
        };
        let r = review::request_approval(&lab, launch, vec!["tag big".into()], vec![]).unwrap();
        let clock = Steps::new(|n| {
            if n == 2 {
                let alice = crate::spec::Author::new("alice").unwrap();
                let no_launch =
                    |_: &review::Request| -> Result<review::Launch> { unreachable!("a rejection launches nothing") };
                review::decide(&lab, &r.id, review::Verdict::No, &alice, Some("not now".into()), no_launch).unwrap();
            }
        });
        let answer = decision(&lab, &r.id, &clock, EVERY).unwrap();
        assert_eq!(answer.state, review::ReviewState::Rejected);
        assert_eq!(clock.taken(), 2);
        let e = decision(&lab, "a-nope", &Wall, EVERY).unwrap_err();
        assert!(e.to_string().contains("no approval request 'a-nope'"), "{e}");
    }
}
