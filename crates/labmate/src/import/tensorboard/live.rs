//! Following the event files a command writes under its log folder while
//! it runs (`labmate run --tensorboard LOGDIR`). Only files that appear
//! after the follower starts are read: those already there are earlier
//! runs'. Each is read from where the last look stopped; a record still
//! being written is read once whole.
//!
//! Tags are the metric keys as they are in files right in LOGDIR and in the
//! first folder new event files appear in (the shallowest, when several
//! appear at once: Lightning's `version_N`); files in any other folder put
//! that folder, relative to LOGDIR, before their tags
//! (`validation/epoch_loss`), so that two writers never mix their points.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::event::{Decoder, Item};
use super::tfrecord::{self, Stop};
use super::{event_files, relative};

/// Looking for new files walks LOGDIR; this often at most.
const RESCAN: Duration = Duration::from_secs(1);

/// One event's scalars.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePoint {
    pub step: i64,
    pub time: f64,
    pub values: Vec<(String, f64)>,
}

/// What the files gained since the last look.
#[derive(Debug, Default, PartialEq)]
pub struct Update {
    pub points: Vec<LivePoint>,
    /// hparams, as config.
    pub config: Map<String, Value>,
    pub warnings: Vec<String>,
}

impl Update {
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.config.is_empty() && self.warnings.is_empty()
    }
}

#[derive(Debug)]
pub struct Follower {
    logdir: PathBuf,
    /// Event files there before the follower started.
    old: HashSet<PathBuf>,
    files: BTreeMap<PathBuf, Followed>,
    /// The folder of the first new event file.
    home: Option<PathBuf>,
    /// Each folder's decoder: tags' plugins are per writer.
    decoders: HashMap<PathBuf, Decoder>,
    scanned: Option<Instant>,
    /// Tags whose values could not be read, said once each.
    unreadable: HashSet<String>,
}

#[derive(Debug)]
struct Followed {
    offset: u64,
    /// Put before the file's tags.
    prefix: String,
    /// As warnings name it: relative to LOGDIR.
    shown: String,
    /// Nothing more is read from it (it is not TFRecord, or broken).
    stopped: bool,
}

impl Follower {
    /// Follows the event files that appear under `logdir` from now on; it
    /// need not exist yet.
    pub fn new(logdir: PathBuf) -> Follower {
        let old = event_files(&logdir).unwrap_or_default().into_iter().collect();
        Follower {
            logdir,
            old,
            files: BTreeMap::new(),
            home: None,
            decoders: HashMap::new(),
            scanned: None,
            unreadable: HashSet::new(),
        }
    }

    /// What is new at `now`, looking for new files when the last look for
    /// them is a while before.
    pub fn poll(&mut self, now: Instant) -> Update {
        if self.scanned.is_none_or(|t| now.saturating_duration_since(t) >= RESCAN) {
            self.scan(now);
        }
        self.read(false)
    }

    /// The last look, once the command has ended: every file, and a record
    /// left torn is said to be.
    pub fn finish(&mut self) -> Update {
        self.scan(Instant::now());
        self.read(true)
    }

    fn scan(&mut self, now: Instant) {
        self.scanned = Some(now);
        let new: Vec<PathBuf> = event_files(&self.logdir)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !self.old.contains(p) && !self.files.contains_key(p))
            .collect();
        if self.home.is_none() {
            let folders = new.iter().filter_map(|p| p.parent());
            self.home = folders.min_by_key(|d| (d.components().count(), d.to_path_buf())).map(Path::to_path_buf);
        }
        for path in new {
            let dir = path.parent().unwrap_or(&self.logdir);
            let prefix = if Some(dir) == self.home.as_deref() || dir == self.logdir {
                String::new()
            } else {
                format!("{}/", relative(dir, &self.logdir))
            };
            let shown = relative(&path, &self.logdir);
            self.files.insert(path, Followed { offset: 0, prefix, shown, stopped: false });
        }
    }

    fn read(&mut self, last: bool) -> Update {
        let mut update = Update::default();
        for (path, followed) in self.files.iter_mut().filter(|(_, f)| !f.stopped) {
            let dir = path.parent().unwrap_or(&self.logdir).to_path_buf();
            let decoder = self.decoders.entry(dir).or_default();
            read_file(path, followed, decoder, &mut self.unreadable, last, &mut update);
        }
        update
    }
}

/// Reads what `path` gained since the last look into `update`.
fn read_file(
    path: &Path,
    followed: &mut Followed,
    decoder: &mut Decoder,
    unreadable: &mut HashSet<String>,
    last: bool,
    update: &mut Update,
) {
    let Followed { offset, prefix, shown, stopped } = followed;
    // A file that went away, or cannot be read for now, is looked at again later.
    let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else { return };
    if len == *offset {
        return;
    }
    if len < *offset {
        update
            .warnings
            .push(format!("{shown}: {len} bytes long, shorter than the {offset} already read; not read again"));
        *stopped = true;
        return;
    }
    let Ok(mut file) = File::open(path) else { return };
    if file.seek(SeekFrom::Start(*offset)).is_err() {
        return;
    }
    let Update { points, config, warnings } = update;
    let scanned = tfrecord::scan(file, *offset, |at, data| {
        let Some(data) = data else {
            warnings.push(format!("{shown}: the record at byte {at} has a bad data checksum (CRC-32C); skipped"));
            return;
        };
        let mut values = Vec::new();
        let decoded = decoder.event(data, |_, item| match item {
            Item::Scalar { tag, value } => values.push((format!("{prefix}{tag}"), value)),
            Item::Config(c) => config.extend(c),
            Item::Skipped { .. } => {}
            Item::Unreadable { tag, why } => {
                if unreadable.insert(format!("{prefix}{tag}")) {
                    warnings.push(format!("{shown}: {tag} at byte {at}: {why}; skipped"));
                }
            }
        });
        match decoded {
            Ok(stamp) if !values.is_empty() => {
                points.push(LivePoint { step: stamp.step, time: stamp.wall_time, values });
            }
            Ok(_) => {}
            Err(e) => {
                warnings.push(format!("{shown}: the record at byte {at} is not a TensorBoard event ({e}); skipped"))
            }
        }
    });
    let (next, stop) = match scanned {
        Ok(read) => read,
        Err(e) => {
            // Where the last whole record ended is not known: reading on could repeat points.
            warnings.push(format!("{shown}: {e}; not read further"));
            *stopped = true;
            return;
        }
    };
    *offset = next;
    match stop {
        Stop::End => {}
        Stop::Torn { at } if last => warnings.push(format!("{shown}: the file ends inside the record at byte {at}")),
        Stop::Torn { .. } => {}
        Stop::BadLength { at: 0 } => {
            warnings.push(format!("{shown}: not a TFRecord file (its first record's length fails its CRC-32C check)"));
            *stopped = true;
        }
        Stop::BadLength { at } => {
            warnings.push(format!(
                "{shown}: the record at byte {at} has a bad length checksum (CRC-32C); the rest of the file is not read"
            ));
            *stopped = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::event::scalar_event;
    use super::super::tfrecord::framed;
    use super::*;

    fn record(step: i64, tag: &str, value: f32) -> Vec<u8> {
        framed(&scalar_event(100.0 + step as f64, step, tag, value))
    }

    fn append(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(bytes).unwrap();
    }

    fn point(step: i64, key: &str, value: f64) -> LivePoint {
        LivePoint { step, time: 100.0 + step as f64, values: vec![(key.into(), value)] }
    }

    #[test]
    fn only_new_files_are_read_each_from_where_it_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let logdir = tmp.path().join("logs");
        let old = logdir.join("version_0/events.out.tfevents.1.host");
        append(&old, &record(0, "loss", 9.0));
        let mut follower = Follower::new(logdir.clone());
        let t0 = Instant::now();
        append(&old, &record(1, "loss", 9.0));

        let new = logdir.join("version_1/events.out.tfevents.2.host");
        let second = record(1, "loss", 0.5);
        append(&new, &record(0, "loss", 1.0));
        append(&new, &second[..10]);
        assert_eq!(follower.poll(t0), Update { points: vec![point(0, "loss", 1.0)], ..Default::default() });
        append(&new, &second[10..second.len() - 1]);
        assert!(follower.poll(t0).is_empty(), "a record still being written waits");
        append(&new, &second[second.len() - 1..]);
        assert_eq!(follower.poll(t0).points, [point(1, "loss", 0.5)]);
        assert!(follower.poll(t0 + RESCAN).is_empty());
        assert!(follower.finish().is_empty());
    }

    #[test]
    fn files_outside_the_first_folder_prefix_their_tags() {
        let tmp = tempfile::tempdir().unwrap();
        let logdir = tmp.path().join("logs");
        let mut follower = Follower::new(logdir.clone());
        let t0 = Instant::now();
        assert!(follower.poll(t0).is_empty(), "LOGDIR need not exist yet");
        // Keras writes train/ and validation/ (the first folder in name order is home).
        append(&logdir.join("train/events.out.tfevents.1.host"), &record(0, "epoch_loss", 1.0));
        append(&logdir.join("validation/events.out.tfevents.1.host"), &record(0, "epoch_loss", 2.0));
        assert!(follower.poll(t0 + RESCAN / 2).is_empty(), "new files are looked for once a second");
        assert_eq!(
            follower.poll(t0 + RESCAN).points,
            [point(0, "epoch_loss", 1.0), point(0, "validation/epoch_loss", 2.0)]
        );
        append(&logdir.join("train/events.out.tfevents.1.host"), &record(1, "epoch_loss", 0.5));
        append(&logdir.join("events.out.tfevents.1.host"), &record(0, "lr", 0.5));
        append(&logdir.join("train/more/events.out.tfevents.1.host"), &record(0, "x", 3.0));
        assert_eq!(
            follower.finish().points,
            [point(0, "lr", 0.5), point(1, "epoch_loss", 0.5), point(0, "train/more/x", 3.0)],
            "a later folder, even one above, does not take the first one's place"
        );
    }

    #[test]
    fn the_shallowest_new_folder_is_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let logdir = tmp.path().to_path_buf();
        let mut follower = Follower::new(logdir.clone());
        append(&logdir.join("a/b/events.out.tfevents.1.host"), &record(0, "deep", 1.0));
        append(&logdir.join("z/events.out.tfevents.1.host"), &record(0, "loss", 2.0));
        assert_eq!(follower.poll(Instant::now()).points, [point(0, "a/b/deep", 1.0), point(0, "loss", 2.0)]);
    }

    #[test]
    fn broken_files_are_said_once_and_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let logdir = tmp.path().to_path_buf();
        let mut follower = Follower::new(logdir.clone());
        append(&logdir.join("events.out.tfevents.1.text"), b"not event records at all");
        let mut good = record(0, "a", 1.0);
        let bad_at = good.len();
        good.extend(record(1, "a", 2.0));
        good[bad_at + 3] ^= 1;
        append(&logdir.join("events.out.tfevents.2.host"), &good);
        let update = follower.finish();
        assert_eq!(update.points, [point(0, "a", 1.0)]);
        assert_eq!(
            update.warnings,
            [
                "events.out.tfevents.1.text: not a TFRecord file (its first record's length fails its CRC-32C check)"
                    .to_string(),
                format!(
                    "events.out.tfevents.2.host: the record at byte {bad_at} has a bad length checksum (CRC-32C); \
                     the rest of the file is not read"
                ),
            ]
        );
        append(&logdir.join("events.out.tfevents.2.host"), &record(2, "a", 3.0));
        assert!(follower.finish().is_empty());
    }
}
