//! labmate: a local-first lab for agentic ML experimentation with a human in
//! the loop. This crate is the core every face (CLI, HTTP, MCP) calls.
//!
//! # Layout
//!
//! Layers, each importing only from itself and those above it in this list
//! (checked by the `layers` test against `docs/ARCHITECTURE.md`):
//!
//! OS facts
//! - [`sys`]: the one module allowed raw OS calls: file locks, processes with timeouts and group
//!   kills, a run's process group, signals, a child's setup before exec, host and user, SQLite file controls, NVML.
//! - [`sysmon`]: system metrics of a run's processes, host and GPUs.
//! - [`slurm`]: the cluster scheduler's commands (submit, job states, cancel), its completion log, time limits.
//! - [`clock`], [`error`]: wall time and the lab's "now", which a face may fix; the error type and the [`Kind`] each face maps.
//! - [`text`]: text for people: numbers to significant digits, clipped strings, user strings escaped.
//! - [`limits`]: how deep and how long user text may be, for every parser.
//!
//! The format
//! - [`record`]: the record format of run folders, shared with every writer.
//! - [`settings`]: the plain settings a run is launched with (rules, notifications, supervision).
//! - [`spec`]: what a run records at launch (`run.json`), launch requests, who acts ([`spec::Author`]).
//! - [`id`]: run ids, short and sortable by creation time; random, or seeded for exact output.
//! - [`lab`]: the `.labmate/` folder: finding, creating, its format version; the clock and ids it records with.
//! - [`model`]: the run object every face shows.
//! - [`git`]: git provenance of a working tree.
//!
//! Storage
//! - [`series`]: metric series in step order and the one downsampling rule (spikes and non-finite values kept).
//! - [`axis`]: a series' x axis (step, time, another metric), a key's default one from its definitions, placing points.
//! - [`chunk`]: the index's compact, bit-exact encoding of series chunks.
//! - [`rundir`]: one run's folder: atomic creation, appenders, the owner lock.
//! - [`python`]: the Python package embedded in the binary, and its copy in the lab (`run --wandb`).
//! - [`index`]: the derived SQLite index, ingestion and queries (all the SQL on labmate's own data); where it
//!   lives (in the lab, or on local disk when the lab is on a network file system).
//!
//! Domain
//! - [`rules`]: babysitting rules as pure logic: alerts from points, silence and exits.
//! - [`policy`]: reading `labmate.toml`: rules, notifications, supervision, the queue, budgets, gates, approvals.
//! - [`query`]: the `--where` language and paths into runs (config, metrics, fields).
//! - [`registry`]: selecting, sorting and grouping runs; sides of comparisons; the baseline.
//! - [`stats`], [`compare`]: statistics, confidence intervals, tests; comparing runs and groups with verdicts.
//! - [`naming`]: run names from templates or from what differs from the baseline.
//! - [`charts`], [`plot`]: curves of runs and groups as figures; SVG or PNG, no system fonts needed.
//! - [`export`], [`parquet`]: run summaries and series as CSV, JSON lines or Parquet.
//! - [`import`]: other tools' history (TensorBoard event files, MLflow stores, wandb offline runs) as runs,
//!   once, then only what is new.
//! - [`profile`]: where step time goes, from the client's spans.
//! - [`notebook`]: the lab notebook, its live references and checked claims, bugs.
//! - [`diffstat`]: how much the code changed between code states; architecture checkpoints.
//! - [`notify`]: delivering alerts to a command or a webhook.
//! - [`remote`]: runs that reach a lab over HTTP: accepting run files by offset, pushing a lab's runs, streaming a
//!   supervised one.
//! - [`status`]: the compact status of a run, for models.
//! - [`review`]: the human's word: approval requests, review items, decisions (`reviews.jsonl`).
//! - [`queue`]: the launch queue: slots and GPUs, as lock files.
//! - [`gates`]: gate commands, budgets and approval rules a launch meets.
//! - [`sweep`]: a sweep's points (a grid, seeded random draws), `{key}` in argv and names, its record.
//!
//! Workflows
//! - [`supervisor`]: starting a command, teeing its output (and following its TensorBoard files), babysitting it,
//!   recording its end.
//! - [`launch`]: a launch request checked, through the gates, named, given its folder; approved launches;
//!   sweeps, their gates and approval met once; runs submitted to Slurm (a batch script, a job array for a sweep).
//! - [`stop`], [`wait`], [`follow`]: stopping runs; waiting on them; following their output, end or decision.
//!
//! Facade
//! - [`facade`]: the actions faces call, each with the acting [`facade::Author`].
//!
//! The on-disk format is specified in `docs/FORMAT.md`.

#![deny(unsafe_code)]

pub mod axis;
pub mod charts;
pub mod chunk;
pub mod clock;
pub mod compare;
pub mod diffstat;
pub mod error;
pub mod export;
pub mod facade;
pub mod follow;
pub mod gates;
pub mod git;
pub mod id;
pub mod import;
pub mod index;
pub mod lab;
pub mod launch;
pub mod limits;
pub mod model;
pub mod naming;
pub mod notebook;
pub mod notify;
pub mod parquet;
pub mod plot;
pub mod policy;
pub mod profile;
pub mod python;
pub mod query;
pub mod queue;
pub mod record;
pub mod registry;
pub mod remote;
pub mod review;
pub mod rules;
pub mod rundir;
pub mod series;
pub mod settings;
pub mod slurm;
pub mod spec;
pub mod stats;
pub mod status;
pub mod stop;
pub mod supervisor;
pub mod sweep;
#[allow(unsafe_code)] // each use behind a small safe function
pub mod sys;
pub mod sysmon;
pub mod text;
pub mod wait;

pub use error::{Error, Kind, Result};
pub use index::Index;
pub use lab::Lab;

#[cfg(test)]
mod layers {
    //! The layer table of `docs/ARCHITECTURE.md` against the sources: every
    //! module in one layer, imports only down or within a layer, no circle.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Module name -> layer number, from the table's rows in order.
    fn table() -> BTreeMap<String, usize> {
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ARCHITECTURE.md"))
            .expect("docs/ARCHITECTURE.md");
        let rows = doc.lines().skip_while(|l| !l.starts_with("| layer | modules |")).skip(2);
        let mut layers = BTreeMap::new();
        for (n, row) in rows.take_while(|l| l.starts_with('|')).enumerate() {
            let modules = row.split('|').nth(2).expect("a modules column");
            for m in modules.split(',') {
                let name = m.trim().trim_matches('`').to_string();
                assert!(layers.insert(name.clone(), n).is_none(), "{name} is in two layers");
            }
        }
        layers
    }

    /// The crate's modules each file of a module names (`crate::x`, `use crate::{x, y::z}`),
    /// outside comments and test modules.
    fn imports(src: &str) -> BTreeSet<String> {
        let code = src.split("#[cfg(test)]").next().unwrap_or("");
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{}\n", l.split(" // ").next().unwrap_or("")))
            .collect();
        let mut found = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::{C, D}, e::f}`: the first name of each item at depth 0.
                let (mut depth, mut item) = (0, String::new());
                let mut items = Vec::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                        c => item.push(c),
                    }
                }
                items.push(item);
                for item in items {
                    let name: String =
                        item.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != "self" {
                        found.insert(name);
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.insert(name);
            }
        }
        found
    }

    /// Module -> the modules it imports, over every file under `src/`.
    fn graph() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let rel = path.strip_prefix(&src).unwrap();
                let top = rel.components().next().unwrap().as_os_str().to_string_lossy();
                let module = top.trim_end_matches(".rs").to_string();
                if module == "lib" || path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let deps = graph.entry(module.clone()).or_default();
                deps.extend(imports(&text).into_iter().filter(|m| *m != module));
            }
        }
        graph
    }

    #[test]
    fn imports_only_go_down_the_layers() {
        let layers = table();
        let graph = graph();
        for (module, deps) in &graph {
            let Some(&own) = layers.get(module) else { panic!("module {module} is in no layer of ARCHITECTURE.md") };
            for dep in deps {
                let Some(&theirs) = layers.get(dep) else { panic!("{module} imports {dep}, which is in no layer") };
                assert!(theirs <= own, "{module} (layer {own}) imports {dep} from a higher layer ({theirs})");
            }
        }
        for name in layers.keys() {
            assert!(graph.contains_key(name), "ARCHITECTURE.md names {name}, which is no module");
        }
        // No circle: a module never reaches itself.
        for start in graph.keys() {
            let (mut seen, mut todo) = (BTreeSet::new(), vec![start]);
            while let Some(m) = todo.pop() {
                for dep in graph.get(m).into_iter().flatten() {
                    assert!(dep != start, "an import circle runs through {start} and {m}");
                    if seen.insert(dep) {
                        todo.push(dep);
                    }
                }
            }
        }
    }

    #[test]
    fn imports_are_read_from_paths_and_groups() {
        let src =
            "use crate::a::X;\nuse crate::{b, c::{D, E}, f::g};\n// crate::h\nlet x = crate::i::j(); // crate::k\n";
        let found: Vec<String> = imports(src).into_iter().collect();
        assert_eq!(found, ["a", "b", "c", "f", "i"]);
    }
}
