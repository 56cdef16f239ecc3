//! Following the TensorBoard event files a command writes (`labmate run
//! --tensorboard LOGDIR`): their scalars become the run's metric records,
//! as metric lines do, and reach the babysitting rules; their hparams become
//! its config; what cannot be read, warnings. The files are looked at twice
//! a second (LOGDIR walked for new ones once a second), each read from where
//! the last look stopped, and once more after the command has ended.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::watch::Msg;
use crate::clock;
use crate::import::tensorboard::live::{Follower, Update};
use crate::lab::Lab;
use crate::record::{Event, Metrics, Record};
use crate::rundir::Appender;

const POLL: Duration = Duration::from_millis(500);

/// The thread following the files.
pub struct Tensorboard {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Tensorboard {
    /// Starts following: records go to `stream`, and to the watch.
    pub fn follow(mut follower: Follower, stream: Arc<Mutex<Appender>>, watch: Sender<Msg>, lab: Lab) -> Tensorboard {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let mut writer = super::RecordWriter::new(lab);
            loop {
                let last = !matches!(stopped.recv_timeout(POLL), Err(RecvTimeoutError::Timeout));
                let update = if last { follower.finish() } else { follower.poll(Instant::now()) };
                if !update.is_empty() {
                    let records = records(update, clock::now());
                    writer.write(&stream, &records);
                    let _ = watch.send(Msg::Records(records));
                }
                if last {
                    return;
                }
            }
        });
        Tensorboard { stop, thread }
    }

    /// The last look, once the command has ended; returns once what it
    /// found is recorded.
    pub fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// An update as records: warnings, the hparams, then one `log` per event.
fn records(update: Update, now: f64) -> Vec<Record> {
    let Update { points, config, warnings } = update;
    let mut out: Vec<Record> = warnings.into_iter().map(|w| Record::Event(Event::warning(now, w, None))).collect();
    if !config.is_empty() {
        out.push(Record::Config { time: now, data: config });
    }
    out.extend(points.into_iter().map(|p| Record::Log {
        step: p.step,
        // A writer's own time, unless it wrote none that can be recorded.
        time: if p.time.is_finite() && p.time > 0.0 { p.time } else { now },
        metrics: Metrics { values: p.values, dropped: vec![] },
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::tensorboard::live::LivePoint;

    #[test]
    fn updates_become_records() {
        let mut config = serde_json::Map::new();
        config.insert("lr".into(), 0.1.into());
        let update = Update {
            points: vec![
                LivePoint { step: 3, time: 10.0, values: vec![("loss".into(), f64::NAN)] },
                LivePoint { step: 4, time: 0.0, values: vec![("loss".into(), 1.0)] },
            ],
            config: config.clone(),
            warnings: vec!["x: bad".into()],
        };
        let got = records(update, 99.0);
        assert_eq!(got.len(), 4);
        assert!(matches!(&got[0], Record::Event(e) if e.kind == "warning" && e.message == "x: bad" && e.time == 99.0));
        assert_eq!(got[1], Record::Config { time: 99.0, data: config });
        assert!(matches!(&got[2], Record::Log { step: 3, time: 10.0, metrics } if metrics.values[0].1.is_nan()));
        assert!(matches!(&got[3], Record::Log { step: 4, time: 99.0, .. }), "no wall time of its own: now");
    }
}
