//! The run object every face shows (CLI `--json`, later HTTP and MCP), and a
//! metric point.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::git::GitState;
pub use crate::record::Point;
use crate::record::{MetricDef, RunStatus};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub id: String,
    pub name: Option<String>,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why it stopped or was lost, when known.
    pub reason: Option<String>,
    pub command: Vec<String>,
    pub created_at: String,
    /// `created_at` in seconds since the epoch, for arithmetic.
    #[serde(skip)]
    pub created_ts: f64,
    pub ended_at: Option<String>,
    /// Until the end, or until now for a live run.
    pub duration_s: f64,
    pub git: Option<GitBrief>,
    pub config: Map<String, Value>,
    pub summary: Map<String, Value>,
    pub tags: Vec<String>,
    /// Where the run belongs and what it is about, as its writers said
    /// (`meta` records: wandb's project, group, job type and notes).
    pub project: Option<String>,
    pub group: Option<String>,
    pub job_type: Option<String>,
    pub notes: Option<String>,
    /// How its metrics are read (`define` records), in definition order.
    pub metric_defs: Vec<MetricDef>,
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Its Slurm job, for a run submitted to Slurm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmJob>,
}

/// A run's Slurm job as the index last saw it: what was asked at
/// submission, where Slurm placed it, and its state while the run's own
/// records cannot say (queued, or ended without an end record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct SlurmJob {
    pub job_id: String,
    pub partition: Option<String>,
    /// Slurm's state when last asked (`PENDING`, `RUNNING`, `TIMEOUT`...).
    pub state: Option<String>,
    /// Why it waits (`Priority`, `Resources`), while it does.
    pub reason: Option<String>,
    pub node: Option<String>,
    /// GPUs asked for at submission.
    pub gpus: u32,
    /// `CUDA_VISIBLE_DEVICES` as the job got it.
    pub visible_devices: Option<String>,
    pub time_limit_min: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GitBrief {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub dirty: bool,
}

impl From<&GitState> for GitBrief {
    fn from(g: &GitState) -> GitBrief {
        GitBrief { commit: g.commit.clone(), branch: g.branch.clone(), dirty: g.dirty }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricSummary {
    /// The value at the highest step.
    #[serde(serialize_with = "crate::record::ser_num")]
    pub last: f64,
    /// Over values that are not NaN; NaN when there are none.
    #[serde(serialize_with = "crate::record::ser_num")]
    pub min: f64,
    #[serde(serialize_with = "crate::record::ser_num")]
    pub max: f64,
    pub count: u64,
    pub last_step: i64,
    /// How many values were NaN.
    pub nan_count: u64,
    /// Over the finite values; NaN when there are none.
    #[serde(serialize_with = "crate::record::ser_num")]
    pub mean: f64,
}

/// A run in full: the run object plus what `show` adds.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    pub cwd: String,
    pub host: String,
    pub user: String,
    pub origin: String,
    pub env: BTreeMap<String, String>,
    pub patch_bytes: u64,
    pub untracked: Vec<String>,
    /// The run folder.
    pub dir: String,
    pub events: Vec<EventRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub time: String,
    pub kind: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// An event with the run it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEvent {
    pub run: String,
    pub name: Option<String>,
    #[serde(flatten)]
    pub event: EventRow,
}

/// The few metrics a runs table shows: losses first (validation before
/// training), then accuracies, then the most common others; never `sys/`.
pub fn key_metrics(runs: &[Run], how_many: usize) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for run in runs {
        for key in run.metrics.keys().filter(|k| !k.starts_with("sys/")) {
            *seen.entry(key).or_default() += 1;
        }
    }
    let rank = |k: &str| {
        let k = k.to_ascii_lowercase();
        match (k.contains("loss"), k.contains("val") || k.contains("eval") || k.contains("test")) {
            (true, true) => 0,
            (true, false) => 1,
            _ if k.contains("acc") => 2,
            _ => 3,
        }
    };
    let mut keys: Vec<(&str, usize)> = seen.into_iter().collect();
    keys.sort_by_key(|(k, n)| (rank(k), std::cmp::Reverse(*n), k.to_string()));
    keys.into_iter().take(how_many).map(|(k, _)| k.to_string()).collect()
}
