//! System metrics of a supervised run (Linux): CPU, resident memory and
//! process count of the run's process group, read from `/proc`; host memory
//! from `/proc/meminfo`; and the GPUs the run can see, through NVML
//! ([`crate::sys::nvml`]). Names are under the reserved `sys/` prefix. What cannot be read
//! is left out of a sample, never reported as an error.

use std::collections::HashMap;
use std::fs;
use std::time::Instant;

use crate::sys::nvml::{Nvml, nvml};
use crate::sys::{host, procgroup};

const MIB: f64 = 1024.0 * 1024.0;

/// Samples the system metrics of one run.
pub struct Sampler {
    pgid: i32,
    /// NVML indices of the GPUs the run can see.
    gpus: Vec<u32>,
    /// CPU ticks per process at the previous sample, keyed by (pid, start
    /// time) so that a recycled pid is not mistaken for the process before it.
    ticks: HashMap<(i32, u64), u64>,
    at: Instant,
}

impl Sampler {
    /// `pgid`: the run's process group (its command was started with process_group(0), so pgid == the child's pid).
    /// `cuda_visible_devices`: the CUDA_VISIBLE_DEVICES value the run's command sees (None = unset = all GPUs).
    pub fn new(pgid: i32, cuda_visible_devices: Option<&str>) -> Sampler {
        let gpus = visible_gpus(cuda_visible_devices, &gpus());
        let ticks = scan(pgid).map(|t| t.ticks).unwrap_or_default();
        Sampler { pgid, gpus, ticks, at: Instant::now() }
    }

    /// One sample: (metric name, value) pairs. Never panics, never errors: what cannot be read is left out.
    pub fn sample(&mut self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Some(tree) = scan(self.pgid) {
            let now = Instant::now();
            let secs = now.duration_since(self.at).as_secs_f64();
            let busy = busy_ticks(&self.ticks, &tree.ticks) as f64 / host::clock_ticks_per_sec();
            if secs > 0.0 {
                out.push(("sys/cpu_percent".into(), busy / secs * 100.0));
            }
            out.push(("sys/rss_mb".into(), tree.rss_bytes as f64 / MIB));
            out.push(("sys/procs".into(), tree.ticks.len() as f64));
            self.ticks = tree.ticks;
            self.at = now;
        }
        if let Some(pct) = host_mem_used_pct() {
            out.push(("sys/host_mem_used_pct".into(), pct));
        }
        if let Some(nvml) = nvml() {
            for &i in &self.gpus {
                sample_gpu(nvml, i, &mut out);
            }
        }
        out
    }
}

/// The GPUs NVML reports on this machine, as (index, uuid) pairs; empty without NVML or a GPU.
pub fn gpus() -> Vec<(u32, String)> {
    let Some(nvml) = nvml() else {
        return Vec::new();
    };
    (0..nvml.count()).filter_map(|i| Some((i, nvml.device(i)?.uuid()?))).collect()
}

/// The processes of one process group at one instant.
#[derive(Default)]
struct Tree {
    ticks: HashMap<(i32, u64), u64>,
    rss_bytes: u64,
}

/// Processes that leave the group with `setsid`/`setpgid` escape it: the
/// group is what the supervisor signals, so it is what the run is.
fn scan(pgid: i32) -> Option<Tree> {
    let mut tree = Tree::default();
    let page = host::page_size();
    for (pid, stat) in procgroup::processes().filter(|(_, s)| s.pgrp == pgid) {
        tree.ticks.insert((pid, stat.start), stat.ticks);
        let statm = fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
        let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        tree.rss_bytes = tree.rss_bytes.saturating_add(pages.saturating_mul(page));
    }
    Some(tree)
}

/// CPU ticks spent between two scans. A process new since `before` counts
/// from zero; one that exited is simply absent, so its last stretch is lost
/// but nothing goes negative.
fn busy_ticks(before: &HashMap<(i32, u64), u64>, now: &HashMap<(i32, u64), u64>) -> u64 {
    now.iter().map(|(k, &t)| t.saturating_sub(before.get(k).copied().unwrap_or(0))).fold(0, u64::saturating_add)
}

fn host_mem_used_pct() -> Option<f64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    (total > 0.0).then(|| (total - available) / total * 100.0)
}

/// The NVML indices a run sees under `CUDA_VISIBLE_DEVICES`, given the
/// machine's (index, uuid) list. Integers are taken as NVML indices: that
/// holds when CUDA enumerates in PCI bus order (CUDA_DEVICE_ORDER=PCI_BUS_ID),
/// the order NVML uses; CUDA's default "fastest first" order can differ on
/// mixed-GPU machines, and UUIDs are exact either way. Like CUDA, the list
/// ends at the first entry naming no device ("-1", "NoDevices", garbage);
/// MIG entries are skipped, since MIG instances have no NVML index here.
fn visible_gpus(cvd: Option<&str>, all: &[(u32, String)]) -> Vec<u32> {
    let Some(cvd) = cvd else {
        return all.iter().map(|(i, _)| *i).collect();
    };
    let mut seen = Vec::new();
    for entry in cvd.split(',').map(str::trim) {
        if entry.starts_with("MIG-") {
            continue;
        }
        let found = if entry.starts_with("GPU-") {
            // A unique prefix of a UUID names that GPU.
            let mut m = all.iter().filter(|(_, uuid)| uuid.starts_with(entry));
            match (m.next(), m.next()) {
                (Some((i, _)), None) => Some(*i),
                _ => None,
            }
        } else {
            entry.parse::<u32>().ok().filter(|n| all.iter().any(|(i, _)| i == n))
        };
        match found {
            Some(i) if !seen.contains(&i) => seen.push(i),
            Some(_) => {}
            None => break,
        }
    }
    seen
}

/// Device-wide figures of GPU `index`: other processes on the same GPU count too.
fn sample_gpu(nvml: &Nvml, index: u32, out: &mut Vec<(String, f64)>) {
    let Some(dev) = nvml.device(index) else {
        return;
    };
    if let Some(util) = dev.util_percent() {
        out.push((format!("sys/gpu{index}/util_percent"), util.into()));
    }
    if let Some(used) = dev.mem_used_bytes() {
        out.push((format!("sys/gpu{index}/mem_used_mb"), used as f64 / MIB));
    }
    if let Some(temp) = dev.temperature_c() {
        out.push((format!("sys/gpu{index}/temp_c"), temp.into()));
    }
    if let Some(mw) = dev.power_mw() {
        out.push((format!("sys/gpu{index}/power_w"), f64::from(mw) / 1000.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::thread::sleep;
    use std::time::Duration;

    #[test]
    fn busy_ticks_never_go_negative() {
        let before = HashMap::from([((1, 10), 100), ((2, 20), 50)]);
        // pid 2 exited and its pid came back as a new process; pid 3 is new.
        let now = HashMap::from([((1, 10), 130), ((2, 99), 5), ((3, 40), 7)]);
        assert_eq!(busy_ticks(&before, &now), 30 + 5 + 7);
        assert_eq!(busy_ticks(&before, &HashMap::new()), 0);
    }

    #[test]
    fn cuda_visible_devices_maps_to_nvml_indices() {
        let all: Vec<(u32, String)> =
            [(0, "GPU-abc1"), (1, "GPU-abd2"), (2, "GPU-ffff")].iter().map(|(i, u)| (*i, u.to_string())).collect();
        assert_eq!(visible_gpus(None, &all), vec![0, 1, 2]);
        assert_eq!(visible_gpus(Some(""), &all), Vec::<u32>::new());
        assert_eq!(visible_gpus(Some("0,2"), &all), vec![0, 2]);
        assert_eq!(visible_gpus(Some("GPU-abc"), &all), vec![0]);
        assert_eq!(visible_gpus(Some("GPU-ab"), &all), Vec::<u32>::new()); // ambiguous
        assert_eq!(visible_gpus(Some("2, GPU-ffff,MIG-x,1"), &all), vec![2, 1]);
        assert_eq!(visible_gpus(Some("-1"), &all), Vec::<u32>::new());
        assert_eq!(visible_gpus(Some("NoDevices"), &all), Vec::<u32>::new());
        assert_eq!(visible_gpus(Some("garbage"), &all), Vec::<u32>::new());
        assert_eq!(visible_gpus(Some("1,7,0"), &all), vec![1]);
    }

    #[test]
    fn samples_a_real_process_tree() {
        let mut child =
            Command::new("sh").args(["-c", "sleep 300 & while :; do :; done"]).process_group(0).spawn().unwrap();
        let pgid = child.id() as i32;
        let mut sampler = Sampler::new(pgid, None);
        sampler.sample();
        // How much CPU the loop gets depends on what else the machine runs:
        // sample until it has had some.
        let deadline = Instant::now() + Duration::from_secs(30);
        let m: HashMap<String, f64> = loop {
            sleep(Duration::from_millis(200));
            let m: HashMap<String, f64> = sampler.sample().into_iter().collect();
            if m.get("sys/cpu_percent").is_some_and(|c| *c > 0.0) || Instant::now() > deadline {
                break m;
            }
        };
        crate::sys::proc::signal_group(pgid, libc::SIGKILL);
        child.wait().unwrap();

        assert!(m["sys/procs"] >= 2.0, "{m:?}");
        assert!(m["sys/cpu_percent"] > 0.0 && m["sys/cpu_percent"].is_finite(), "{m:?}");
        assert!(m["sys/rss_mb"] > 0.0, "{m:?}");
        let host = m["sys/host_mem_used_pct"];
        assert!(host > 0.0 && host < 100.0, "{m:?}");
        if !std::path::Path::new("/dev/nvidia0").exists() {
            assert!(gpus().is_empty());
            assert!(!m.keys().any(|k| k.starts_with("sys/gpu")));
        }
    }
}
