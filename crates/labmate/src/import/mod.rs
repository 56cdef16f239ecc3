//! Bringing history in from other tools: each reader (`tensorboard`,
//! `mlflow`, `wandb`) turns a source into [`Imported`] runs, and
//! [`write`] makes each an ordinary run folder through the record format,
//! with `run.json` saying where it came from, once: a source imported
//! again adds only what is new since (its `resume` state), or nothing.

pub mod mlflow;
pub mod wandb;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::record::{Point, RunStatus};

/// One run read from another tool, before it becomes a labmate run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    /// The reader: `tensorboard`, `mlflow` or `wandb`.
    pub tool: &'static str,
    /// The source as the user named it, made absolute (a path, or a URI
    /// such as `sqlite:///abs/path/mlflow.db`).
    pub source: String,
    /// The run's own id at the source: a TensorBoard directory relative to
    /// the path given (`.` for the path itself), an MLflow run id, a wandb
    /// run id. With `tool` and `source`, what finds an earlier import.
    pub source_id: String,
    pub name: Option<String>,
    pub project: Option<String>,
    pub group: Option<String>,
    pub job_type: Option<String>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
    pub config: Map<String, Value>,
    pub summary: Map<String, Value>,
    /// Seconds since the epoch; when the source does not say, the first
    /// point's time.
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    /// How it ended at the source; `None` when the source does not say
    /// (TensorBoard) or it was still running there.
    pub end: Option<ImportedEnd>,
    /// What the source says of the code, the user, the host, the command.
    pub git_commit: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub command: Vec<String>,
    /// Every kept point, by metric key, in the source's order.
    pub series: BTreeMap<String, Vec<Point>>,
    /// What was read and not kept: kind (`histogram`, `image`, `audio`,
    /// `text`, ...) -> tag -> how many.
    pub skipped: BTreeMap<String, BTreeMap<String, u64>>,
    /// Problems met that lost nothing else: a torn last record, a CRC
    /// mismatch (with the file and byte offset). Recorded as warning events
    /// on the run and printed.
    pub warnings: Vec<String>,
    /// Where the reader stopped, for the next import of this run (byte
    /// offsets per file, counts per key...): opaque here, stored with the
    /// run and handed back to the reader. It changes exactly when there
    /// is something new.
    pub resume: Value,
}

/// How an imported run ended at its source.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedEnd {
    /// `Finished`, `Failed` or `Stopped`.
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

/// The resume state an earlier import left for a run, by its `source_id`
/// (`None`: never imported). A reader given one returns only the points
/// after it (and all of the run's metadata).
pub type Previous<'a> = &'a dyn Fn(&str) -> Option<Value>;
