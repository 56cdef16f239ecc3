//! A supervised run pushed to an accepting lab while it lives: a thread
//! pushes the run folder's new bytes about once a second (a heartbeat when
//! there are none), and once more, whole, when the run has ended. The run
//! folder is the spool: while the lab cannot be reached nothing is lost,
//! and the next push that gets through catches up. The thread never holds
//! up or fails the run: its requests are bounded in time, and the run's
//! end waits for the last push only so long.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::push::{Upto, push_run};
use super::{Client, Remote};
use crate::record::Event;
use crate::rundir::RunDir;

/// How often new bytes are pushed.
const EVERY: Duration = Duration::from_secs(1);
/// A push with nothing new says the writer is there at least this often;
/// well inside the accepting lab's default silence.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The longest wait between tries while the lab cannot be reached.
const MOST_BACKOFF: Duration = Duration::from_secs(8);
/// One request's limit, connecting included.
const REQUEST: Duration = Duration::from_secs(10);

/// How long the end of a run waits for its last push.
const LAST_PUSH: Duration = Duration::from_secs(10);

/// The thread pushing a run. Dropped, it pushes what is left, waiting at
/// most [`LAST_PUSH`]: what did not get through stays in the run folder,
/// for the next `labmate sync`.
pub struct Stream {
    stop: mpsc::Sender<Duration>,
    done: mpsc::Receiver<()>,
}

impl Stream {
    /// Starts pushing the run `id` in `dir` to `remote`. `news` hears, as
    /// events for the run, when the lab stops answering and when it answers
    /// again.
    pub fn start(remote: Remote, dir: RunDir, id: String, news: impl Fn(Event) + Send + 'static) -> Stream {
        let (stop, stopped) = mpsc::channel::<Duration>();
        let (finished, done) = mpsc::channel();
        thread::spawn(move || {
            let client = Client::new(remote, REQUEST);
            let mut theirs = None;
            let mut wait = EVERY;
            let mut failing: Option<String> = None;
            let mut last_word = Instant::now();
            let limit = loop {
                match stopped.recv_timeout(wait) {
                    Ok(limit) => break limit,
                    Err(RecvTimeoutError::Disconnected) => break Duration::ZERO,
                    Err(RecvTimeoutError::Timeout) => {}
                }
                let pushed = push_run(&client, &dir, &id, &mut theirs, Upto::WholeLines).and_then(|p| {
                    if p.files == 0 && last_word.elapsed() >= HEARTBEAT {
                        client.heartbeat(&id)?;
                    }
                    Ok(p)
                });
                match pushed {
                    Ok(p) => {
                        if p.files > 0 || last_word.elapsed() >= HEARTBEAT {
                            last_word = Instant::now();
                        }
                        if failing.take().is_some() {
                            news(Event {
                                time: crate::clock::now(),
                                kind: "info".into(),
                                message: format!("the lab at {} answers again; the run caught up there", client.url()),
                                data: None,
                            });
                        }
                        wait = EVERY;
                    }
                    Err(e) => {
                        let why = e.to_string();
                        if failing.as_ref() != Some(&why) {
                            news(Event::warning(
                                crate::clock::now(),
                                format!(
                                    "the run could not be pushed: {why}; it is kept here and pushed once the lab answers"
                                ),
                                None,
                            ));
                            failing = Some(why);
                        }
                        wait = (wait * 2).min(MOST_BACKOFF);
                    }
                }
            };
            // The run has ended: everything goes, as long as the limit allows.
            let deadline = Instant::now() + limit;
            loop {
                if push_run(&client, &dir, &id, &mut theirs, Upto::All).is_ok() {
                    break;
                }
                if Instant::now() + Duration::from_millis(500) >= deadline {
                    break;
                }
                thread::sleep(Duration::from_millis(500));
            }
            let _ = finished.send(());
        });
        Stream { stop, done }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.stop.send(LAST_PUSH);
        let _ = self.done.recv_timeout(LAST_PUSH + Duration::from_millis(100));
    }
}
