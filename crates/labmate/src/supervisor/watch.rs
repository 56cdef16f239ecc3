//! The babysitting thread of a supervised run: it sees every metric record
//! (from the command's metric lines and from the other writers' files in the
//! run folder), samples system metrics, lets the rules judge, and carries out
//! what they say: record the alert, notify, stop the run. It also stops a run
//! that outlives its budget (`max_run_minutes`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::output::{Activity, Tail};
use super::signals::Stopper;
use crate::clock::{self, Now};
use crate::record::{Event, Record};
use crate::rules::{Alert, Babysitter, Exit};
use crate::rundir::{Appender, RunDir, SUPERVISOR_STREAM};
use crate::settings::{Action, Babysit};
use crate::sysmon::Sampler;

const TICK: Duration = Duration::from_millis(200);
/// Host memory use above which a SIGKILL reads as the OOM killer's.
const MEMORY_HIGH_PCT: f64 = 90.0;

pub enum Msg {
    /// Records the supervisor made from the command's metric lines.
    Records(Vec<Record>),
    /// The command ended.
    Exited { exit_code: Option<i32>, signal: Option<i32> },
}

pub struct Watch {
    pub run_id: String,
    pub run_name: Option<String>,
    pub dir: RunDir,
    pub stream: Arc<Mutex<Appender>>,
    pub stopper: Arc<Stopper>,
    pub activity: Arc<Activity>,
    pub output_tail: Arc<Mutex<Tail>>,
    pub stderr_tail: Arc<Mutex<Tail>>,
    pub babysit: Babysit,
    pub babysitter: Babysitter,
    pub sampler: Sampler,
    /// When the command started, on the wall: `max_run_minutes` counts from here.
    pub started: f64,
    /// The lab's time, which what the watch writes carries.
    pub lab_now: Now,
    /// The command has ended: late alerts are recorded, but stop nothing.
    pub exited: bool,
}

/// What the watch leaves for the supervisor to finish: notifications still
/// being delivered.
pub type Pending = Vec<JoinHandle<()>>;

impl Watch {
    pub fn run(mut self, rx: Receiver<Msg>) -> Pending {
        let mut pending = Vec::new();
        let mut offsets: HashMap<String, u64> = HashMap::new();
        let mut seen_activity = self.activity.get();
        let mut last_tick = Instant::now();
        let sys_every = Duration::from_secs_f64(self.babysit.supervisor.sys_interval.max(0.1));
        let mut next_sample = Instant::now();
        let mut sys_step = 0i64;
        let mut memory_high = false;
        let mut over_time = false;
        loop {
            match rx.recv_timeout(TICK) {
                Ok(Msg::Records(records)) => {
                    for r in &records {
                        self.observe(r, &mut pending);
                    }
                }
                Ok(Msg::Exited { exit_code, signal }) => {
                    self.exited = true;
                    self.read_other_streams(&mut offsets, &mut pending);
                    let stderr = self.stderr_tail.lock().expect("tail").text();
                    let tail =
                        if stderr.trim().is_empty() { self.output_tail.lock().expect("tail").text() } else { stderr };
                    let exit =
                        Exit { exit_code, signal, stopped: self.stopper.reason().is_some(), tail: &tail, memory_high };
                    for alert in self.babysitter.on_exit(&exit) {
                        self.act(alert, &mut pending);
                    }
                    return pending;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return pending,
            }
            if last_tick.elapsed() < TICK {
                continue;
            }
            last_tick = Instant::now();
            self.read_other_streams(&mut offsets, &mut pending);
            let active = self.activity.get();
            if active > seen_activity {
                seen_activity = active;
                self.babysitter.on_activity(active);
            }
            for alert in self.babysitter.on_tick(clock::now()) {
                self.act(alert, &mut pending);
            }
            if let Some(alert) = self.over_time(&mut over_time) {
                self.act(alert, &mut pending);
            }
            if Instant::now() >= next_sample {
                next_sample = Instant::now() + sys_every;
                let values = self.sampler.sample();
                if let Some((_, pct)) = values.iter().find(|(k, _)| k == "sys/host_mem_used_pct") {
                    memory_high = *pct > MEMORY_HIGH_PCT;
                }
                if !values.is_empty() {
                    let record = Record::Log {
                        step: sys_step,
                        time: clock::now(),
                        metrics: crate::record::Metrics { values, dropped: vec![] },
                    };
                    sys_step += 1;
                    self.write(&record);
                    self.observe_points(&record, &mut pending);
                }
            }
            self.stopper.tick();
        }
    }

    /// The budget's stop, once, when the run has gone past `max_run_minutes`.
    fn over_time(&self, fired: &mut bool) -> Option<Alert> {
        let minutes = self.babysit.max_run_minutes?;
        let ran = clock::now() - self.started;
        if *fired || ran <= minutes * 60.0 {
            return None;
        }
        *fired = true;
        let mut evidence = serde_json::Map::new();
        evidence.insert("max_run_minutes".into(), minutes.into());
        evidence.insert("ran_s".into(), ((ran * 1000.0).round() / 1000.0).into());
        Some(Alert {
            rule: "budget".into(),
            action: Action::Stop,
            message: format!("max_run_minutes ({minutes}) exceeded"),
            evidence,
        })
    }

    /// A record from any writer of the run.
    fn observe(&mut self, record: &Record, pending: &mut Pending) {
        if let Some(t) = record.time().filter(|t| t.is_finite()) {
            self.activity.touch(t.min(clock::now()));
        }
        self.observe_points(record, pending);
    }

    fn observe_points(&mut self, record: &Record, pending: &mut Pending) {
        match record {
            Record::Log { step, time, metrics } => {
                for alert in self.babysitter.on_log(*step, *time, &metrics.values) {
                    self.act(alert, pending);
                }
            }
            Record::Batch(batch) => {
                for row in batch.rows() {
                    for alert in self.babysitter.on_log(row.step, row.time, &row.values) {
                        self.act(alert, pending);
                    }
                }
            }
            _ => {}
        }
    }

    /// New complete records in the run's other streams (a client's file).
    fn read_other_streams(&mut self, offsets: &mut HashMap<String, u64>, pending: &mut Pending) {
        let Ok(names) = self.dir.streams() else {
            return;
        };
        for name in names.into_iter().filter(|n| n != SUPERVISOR_STREAM) {
            let path = self.dir.file(&name);
            let pos = offsets.get(&name).copied().unwrap_or(0);
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            if size <= pos {
                continue;
            }
            let mut buf = Vec::new();
            let read = File::open(&path).and_then(|mut f| {
                f.seek(SeekFrom::Start(pos))?;
                f.take(size - pos).read_to_end(&mut buf)
            });
            if read.is_err() {
                continue;
            }
            let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            offsets.insert(name, pos + end as u64 + 1);
            for line in buf[..end].split(|b| *b == b'\n') {
                // Bad lines are the index's to report; the rules just skip them.
                if let Some(r) = std::str::from_utf8(line).ok().and_then(|l| Record::parse(l).ok()) {
                    self.observe(&r, pending);
                }
            }
        }
    }

    /// Records an alert, notifies, and stops the run when the rule says so.
    fn act(&mut self, alert: Alert, pending: &mut Pending) {
        let now = clock::now();
        let event = alert.to_event(now);
        self.write(&Record::Event(event.clone()));
        if alert.action == Action::Stop && !self.exited {
            self.stopper.stop(format!("{}: {}", alert.rule, alert.message));
        }
        let notify = &self.babysit.notify;
        if notify.command.is_some() || notify.webhook.is_some() {
            let mut body = serde_json::to_value(&event).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut body {
                m.insert("run".into(), self.run_id.clone().into());
                m.insert("name".into(), self.run_name.clone().into());
                m.insert("time".into(), clock::rfc3339(self.lab_now.stamp(now)).into());
            }
            let (cfg, stream, lab_now) = (notify.clone(), self.stream.clone(), self.lab_now);
            pending.push(std::thread::spawn(move || {
                for failure in crate::notify::send(&cfg, &body) {
                    let warning = Record::Event(Event::warning(lab_now.get(), failure, None));
                    let _ = stream.lock().expect("stream lock").write_record(&warning);
                }
            }));
        }
    }

    fn write(&self, record: &Record) {
        let _ = self.stream.lock().expect("stream lock").write_record(&super::stamped(record, self.lab_now));
    }
}
