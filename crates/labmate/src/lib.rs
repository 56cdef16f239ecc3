//! labmate: a local-first lab for agentic ML experimentation with a human in
//! the loop. This crate is the core every face (CLI, HTTP, MCP) calls.
//!
//! # Layout
//!
//! - [`sys`]: OS facts: file locks, processes with timeouts and group kills, a run's process group, signals.
//! - [`lab`]: the `.labmate/` folder: finding, creating, its format version; the clock and ids it records with.
//! - [`id`]: run ids, short and sortable by creation time; random, or seeded for exact output.
//! - [`record`]: the record format of run folders, shared with every writer.
//! - [`spec`]: what a run records at launch (`run.json`), with [`git`] provenance.
//! - [`rundir`]: one run's folder: atomic creation, appenders, the owner lock.
//! - [`policy`]: `labmate.toml`: rules, notifications, supervision, the queue, budgets, gates, approvals.
//! - [`gates`]: what a launch passes first: gate commands, budgets, approval rules.
//! - [`review`]: the human's word: approval requests, review items, decisions (`reviews.jsonl`).
//! - [`diffstat`]: how much the code changed between code states; architecture checkpoints.
//! - [`profile`]: where step time goes, from the client's spans.
//! - [`limits`]: how deep and how long user text may be, for every parser.
//! - [`query`]: the `--where` language and paths into runs (config, metrics, fields).
//! - [`registry`]: selecting, sorting and grouping runs; sides of comparisons; the baseline.
//! - [`queue`]: the launch queue: slots and GPUs, as lock files.
//! - [`notify`]: delivering alerts to a command or a webhook.
//! - [`rules`]: babysitting rules as pure logic: alerts from points, silence and exits.
//! - [`supervisor`]: starting a command, teeing its output, recording its end.
//! - [`index`]: the derived SQLite index, ingestion and queries (all the SQL).
//! - [`follow`]: following runs as they go: output from an offset, waiting for their end or a decision.
//! - [`wait`], [`stop`]: waiting on runs, and stopping them from another process.
//! - [`status`]: the compact status of a run, for models.
//! - [`series`]: packed metric series and the one downsampling rule (spikes and non-finite values kept).
//! - [`model`]: the run object every face shows.
//! - [`sysmon`]: system metrics of a run's processes, host and GPUs.
//! - [`compare`]: comparing runs and groups: config, code, metrics with verdicts.
//! - [`naming`]: run names from templates or from what differs from the baseline.
//! - [`stats`]: descriptive statistics, confidence intervals, Welch's t-test, bootstrap.
//! - [`charts`]: curves of runs and groups as figures (what `plot` draws).
//! - [`plot`]: metric curves to SVG or PNG, no system fonts needed.
//! - [`export`]: run summaries and series as CSV, JSON lines or Parquet.
//! - [`parquet`]: a small Parquet writer for exports.
//! - [`text`]: text for people: numbers to significant digits, clipped strings, user strings escaped.
//! - [`clock`], [`error`]: wall time and the lab's "now", which a face may fix; the error type and the [`Kind`] each face maps.
//!
//! The on-disk format is specified in `docs/FORMAT.md`.

pub mod charts;
pub mod clock;
pub mod compare;
pub mod diffstat;
pub mod error;
pub mod export;
pub mod follow;
pub mod gates;
pub mod git;
pub mod id;
pub mod index;
pub mod lab;
pub mod limits;
pub mod model;
pub mod naming;
pub mod notebook;
pub mod notify;
pub mod parquet;
pub mod plot;
pub mod policy;
pub mod profile;
pub mod query;
pub mod queue;
pub mod record;
pub mod registry;
pub mod review;
pub mod rules;
pub mod rundir;
pub mod series;
pub mod spec;
pub mod stats;
pub mod status;
pub mod stop;
pub mod supervisor;
pub mod sys;
pub mod sysmon;
pub mod text;
pub mod wait;

pub use error::{Error, Kind, Result};
pub use index::Index;
pub use lab::Lab;
