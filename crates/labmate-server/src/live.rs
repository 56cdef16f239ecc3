//! The live stream: a thread that catches the index up with the run
//! folders every `poll` and turns what changed into events — new points of
//! a series, a run's status, its alerts and other events — each with an id
//! that only grows. The last events are kept, so a page that reconnects
//! with `Last-Event-ID` gets what it missed, and a page that fetched
//! history with a `cursor` gets exactly what came after it: no page ever
//! refetches what it has.
//!
//! Ids start at the server's start time in microseconds: a page still
//! holding an id of an earlier server (or one so old that its events are
//! no longer kept) gets a `reset` and refetches.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use labmate::index::Index;
use labmate::lab::Lab;
use labmate::model::Run;
use labmate::record::Num;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Events kept for pages that reconnect.
const KEPT: usize = 20_000;
/// Every this many looks, one that also checks finished runs' files.
const FULL_SYNC_EVERY: u32 = 240;
/// Points in one `points` event at most; more go in several.
const POINTS_PER_EVENT: usize = 5_000;

pub struct Event {
    pub id: u64,
    pub kind: &'static str,
    pub data: String,
}

pub struct Live {
    shared: Arc<Shared>,
    /// The id of the newest event, for streams to wait on.
    newest: watch::Receiver<u64>,
}

struct Shared {
    kept: Mutex<Kept>,
    closed: Mutex<bool>,
    wake: Condvar,
    notify: watch::Sender<u64>,
}

struct Kept {
    /// The id before the first event this server made.
    base: u64,
    next: u64,
    events: VecDeque<Arc<Event>>,
}

/// What a stream gets after a cursor.
pub enum After {
    Events(Vec<Arc<Event>>),
    /// The cursor is not one this server can continue from.
    Reset,
}

impl Live {
    /// Takes a first look at the lab (so that what happens from now on is
    /// news) and starts the thread that keeps looking.
    pub fn start(lab: Lab, poll: Duration) -> std::io::Result<Live> {
        let base = (labmate::clock::now() * 1e6) as u64;
        let (notify, newest) = watch::channel(base);
        let shared = Arc::new(Shared {
            kept: Mutex::new(Kept { base, next: base + 1, events: VecDeque::new() }),
            closed: Mutex::new(false),
            wake: Condvar::new(),
            notify,
        });
        let mut watcher = Watcher { lab, index: None, looks: 0, runs: HashMap::new(), since: labmate::clock::now() };
        watcher.look(&shared, false);
        let thread_shared = shared.clone();
        std::thread::Builder::new().name("labmate-live".into()).spawn(move || {
            loop {
                let closed = thread_shared.closed.lock().expect("live lock");
                let (closed, _) = thread_shared.wake.wait_timeout(closed, poll).expect("live lock");
                if *closed {
                    return;
                }
                drop(closed);
                watcher.look(&thread_shared, true);
            }
        })?;
        Ok(Live { shared, newest })
    }

    /// The id of the newest event: a fetch's `cursor`.
    pub fn cursor(&self) -> u64 {
        self.shared.kept.lock().expect("live lock").next - 1
    }

    pub fn after(&self, cursor: u64) -> After {
        let kept = self.shared.kept.lock().expect("live lock");
        let first = kept.events.front().map_or(kept.next, |e| e.id);
        if cursor < kept.base || cursor >= kept.next || cursor + 1 < first {
            return After::Reset;
        }
        After::Events(kept.events.iter().filter(|e| e.id > cursor).cloned().collect())
    }

    /// A receiver that changes when a new event is kept, and closes with
    /// the server.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.newest.clone()
    }

    /// Ends the thread and every stream.
    pub fn close(&self) {
        *self.shared.closed.lock().expect("live lock") = true;
        self.shared.wake.notify_all();
        self.shared.notify.send_modify(|_| {});
    }

    pub fn is_closed(&self) -> bool {
        *self.shared.closed.lock().expect("live lock")
    }
}

impl Shared {
    fn push(&self, kind: &'static str, data: Value) {
        let mut kept = self.kept.lock().expect("live lock");
        let id = kept.next;
        kept.next += 1;
        kept.events.push_back(Arc::new(Event { id, kind, data: data.to_string() }));
        if kept.events.len() > KEPT {
            kept.events.pop_front();
        }
        drop(kept);
        self.notify.send_replace(id);
    }
}

/// What the watcher last saw of a run.
struct Seen {
    status: String,
    /// Per metric key: points sent, and the summary that said so.
    series: HashMap<String, (u64, (u64, u64, i64))>,
    events: usize,
    /// When a look first found it ended: it is remembered a while after,
    /// so that a run the lab lists as recently ended is not news again.
    ended: Option<f64>,
}

/// How long an ended run is remembered.
const REMEMBER_ENDED_S: f64 = 60.0;

struct Watcher {
    lab: Lab,
    index: Option<Index>,
    /// Looks since the last full sync (which also checks finished runs).
    looks: u32,
    runs: HashMap<String, Seen>,
    /// Runs that ended after this are looked at.
    since: f64,
}

impl Watcher {
    /// One look: catch the index up, then report every run that is active
    /// or ended since the last look. With `report` false (the first look)
    /// it only remembers what is there.
    fn look(&mut self, shared: &Shared, report: bool) {
        if self.look_once(shared, report).is_err() {
            // The lab may be mid-change (a deleted index, a run folder being
            // written): the next look starts over with a new connection.
            self.index = None;
        }
    }

    fn look_once(&mut self, shared: &Shared, report: bool) -> labmate::Result<()> {
        if self.index.is_none() {
            self.index = Some(Index::open(&self.lab)?);
        }
        let index = self.index.as_mut().expect("opened above");
        // Finished runs are checked now and then, the active ones every look.
        self.looks += 1;
        if self.looks >= FULL_SYNC_EVERY {
            self.looks = 0;
            index.sync()?;
        } else {
            index.sync_active()?;
        }
        let now = labmate::clock::now();
        let mut ids = index.active_or_ended_since(self.since - 5.0)?;
        // Runs seen active last time are looked at once more, whatever
        // their end time says (a clock step, a run marked lost).
        for (id, seen) in &self.runs {
            if seen.ended.is_none() && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        self.since = now;
        self.runs.retain(|_, seen| seen.ended.is_none_or(|t| now - t < REMEMBER_ENDED_S));
        for id in ids {
            if self.runs.get(&id).is_some_and(|seen| seen.ended.is_some()) {
                continue; // ended, and reported as such already
            }
            let Ok(run) = index.run(&id) else { continue };
            let seen = self.runs.entry(id.clone()).or_insert_with(|| Seen {
                status: String::new(),
                series: HashMap::new(),
                events: if report { 0 } else { usize::MAX },
                ended: None,
            });
            let status = run.status.to_string();
            if report {
                for (key, summary) in &run.metrics {
                    let now_is = (summary.count, summary.nan_count, summary.last_step);
                    let (sent, was) = seen.series.get(key).copied().unwrap_or((0, (0, 0, i64::MIN)));
                    if was == now_is {
                        continue;
                    }
                    let (points, total) = index.series_after(&id, key, sent)?;
                    let sent = total;
                    for block in points.chunks(POINTS_PER_EVENT) {
                        let points: Vec<Value> = block
                            .iter()
                            .map(|p| json!({"step": p.step, "time": Num(p.time), "value": Num(p.value)}))
                            .collect();
                        shared.push("points", json!({"run": id, "key": key, "points": points}));
                    }
                    seen.series.insert(key.clone(), (sent, now_is));
                }
                let events = index.events(&id)?;
                let start = if seen.events == usize::MAX { events.len() } else { seen.events };
                for event in events.iter().skip(start) {
                    let kind = if event.kind == "alert" { "alert" } else { "event" };
                    shared.push(
                        kind,
                        json!({"run": id, "time": event.time, "kind": event.kind, "message": event.message, "data": event.data}),
                    );
                }
                seen.events = events.len();
                if status != seen.status {
                    shared.push("status", status_event(&run));
                }
            } else {
                for (key, summary) in &run.metrics {
                    let sent = index.series_after(&id, key, u64::MAX).map_or(0, |(_, total)| total);
                    seen.series.insert(key.clone(), (sent, (summary.count, summary.nan_count, summary.last_step)));
                }
                seen.events = index.events(&id).map(|e| e.len()).unwrap_or(0);
            }
            seen.status = status;
            if !run.status.is_live() && seen.ended.is_none() {
                seen.ended = Some(now);
            }
        }
        Ok(())
    }
}

/// A run's `status` event: where it stands and its metrics' summaries.
fn status_event(run: &Run) -> Value {
    json!({
        "run": run.id,
        "name": run.name,
        "status": run.status,
        "reason": run.reason,
        "exit_code": run.exit_code,
        "signal": run.signal,
        "ended_at": run.ended_at,
        "duration_s": run.duration_s,
        "metrics": run.metrics,
    })
}
