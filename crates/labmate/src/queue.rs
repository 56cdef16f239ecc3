//! The launch queue: queued runs wait, in order, for a slot (the lab's
//! `max_concurrent`) and, where GPUs exist, a free GPU. Everything is files
//! in the lab, so the queue survives the terminal that filled it:
//!
//! - `queue/<time>-<id>`: one marker per waiting run, in launch order;
//! - `slots/slot-<n>.lock`, `gpus/gpu-<i>.lock`: held with `flock` by the
//!   supervisor of a run for as long as it runs, released when it dies.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::rundir::RunDir;
use crate::spec::RunSpec;
use crate::sys::flock::{self, Mode};

/// What a run holds while it runs: its slot and GPUs.
#[derive(Debug, Default)]
pub struct Slot {
    _locks: Vec<File>,
    /// The GPUs (NVML indices) given to the run, if any.
    pub gpus: Vec<u32>,
}

impl Slot {
    /// The lock files' descriptors, for the run's command to inherit.
    pub fn fds(&self) -> Vec<std::os::fd::RawFd> {
        self._locks.iter().map(AsRawFd::as_raw_fd).collect()
    }
}

/// A run's place in the queue.
pub struct Place {
    marker: PathBuf,
}

impl Place {
    pub fn join(lab: &Lab, spec: &RunSpec) -> Result<Place> {
        let dir = lab.root().join("queue");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let micros = (spec.created_at * 1e6) as u64;
        let marker = dir.join(format!("{micros:020}-{}", spec.id));
        File::create(&marker).map_err(|e| Error::io(&marker, e))?;
        Ok(Place { marker })
    }

    /// Whether this run is the first still waiting (the markers of runs
    /// whose supervisor died are cleared on the way).
    pub fn is_first(&self, lab: &Lab) -> bool {
        let Some(dir) = self.marker.parent() else { return true };
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        let mine = self.marker.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for name in names {
            if name == mine {
                return true;
            }
            let id = name.split_once('-').map_or("", |(_, id)| id);
            if RunDir::at(lab.run_dir(id)).owner_gone() {
                let _ = fs::remove_file(dir.join(&name));
                continue;
            }
            return false;
        }
        true
    }

    pub fn leave(self) {
        let _ = fs::remove_file(&self.marker);
    }
}

/// Takes a slot, and `want_gpus` of `gpus` when there are any, or nothing.
/// Without `max_concurrent` there is no limit on slots.
pub fn try_take(lab: &Lab, max_concurrent: Option<u32>, gpus: &[u32], want_gpus: usize) -> Option<Slot> {
    let mut slot = Slot::default();
    if let Some(max) = max_concurrent {
        let lock = (0..max).find_map(|n| try_lock(lab.root().join("slots"), &format!("slot-{n}.lock")))?;
        slot._locks.push(lock);
    }
    if !gpus.is_empty() {
        for &g in gpus {
            if slot.gpus.len() == want_gpus {
                break;
            }
            if let Some(lock) = try_lock(lab.root().join("gpus"), &format!("gpu-{g}.lock")) {
                slot._locks.push(lock);
                slot.gpus.push(g);
            }
        }
        if slot.gpus.len() < want_gpus {
            return None; // what was taken is released on drop
        }
    }
    Some(slot)
}

fn try_lock(dir: PathBuf, name: &str) -> Option<File> {
    fs::create_dir_all(&dir).ok()?;
    let f = File::options().create(true).truncate(false).write(true).open(dir.join(name)).ok()?;
    flock::try_lock(&f, Mode::Exclusive).ok()?.then_some(f)
}

/// The GPUs queued runs may be given: those NVML sees, narrowed to the
/// launcher's `CUDA_VISIBLE_DEVICES` when it names indices.
pub fn usable_gpus() -> Vec<u32> {
    let all: Vec<u32> = crate::sysmon::gpus().into_iter().map(|(i, _)| i).collect();
    match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).filter(|i| all.contains(i)).collect(),
        Err(_) => all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_and_come_back() {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let a = try_take(&lab, Some(2), &[], 0).expect("first");
        let _b = try_take(&lab, Some(2), &[], 0).expect("second");
        assert!(try_take(&lab, Some(2), &[], 0).is_none());
        drop(a);
        assert!(try_take(&lab, Some(2), &[], 0).is_some());
        assert!(try_take(&lab, None, &[], 0).is_some(), "no limit without max_concurrent");
    }

    #[test]
    fn gpus_are_given_out_one_run_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let a = try_take(&lab, None, &[0, 1], 1).unwrap();
        let b = try_take(&lab, None, &[0, 1], 1).unwrap();
        assert_eq!((a.gpus.clone(), b.gpus.clone()), (vec![0], vec![1]));
        assert!(try_take(&lab, None, &[0, 1], 1).is_none());
        drop(a);
        assert_eq!(try_take(&lab, None, &[0, 1], 1).unwrap().gpus, vec![0]);
    }
}
