//! Reading the index: run objects, metric series, events, and naming a run.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Row, params};

use super::ingest::{About, nan_if_null};
use super::{Index, damaged_chunk};
use crate::chunk;
use crate::clock;
use crate::error::{Error, Result};
use crate::id;
use crate::model::{EventRow, GitBrief, MetricSummary, Point, Run, RunDetail, RunEvent};
use crate::series;
use crate::spec::RunSpec;

const RUN_COLUMNS: &str =
    "id, name, status, created_at, started_at, ended_at, exit_code, signal, reason, tags, config, summary, spec, about";

impl Index {
    /// Runs, newest first.
    pub fn runs(&self, limit: Option<usize>) -> Result<Vec<Run>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id DESC LIMIT ?1");
        let limit = limit.map_or(-1, |l| l as i64);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let now = self.lab.now();
        let rows = stmt.query_map([limit], |r| row_to_run(r, now))?;
        let mut runs = rows.map(|r| r.map(|(run, _)| run)).collect::<rusqlite::Result<Vec<Run>>>()?;
        // Many runs: one scan of the summaries beats a query per run; a page
        // of a few hundred out of many is quicker run by run.
        if runs.len() > 500 || (limit < 0 && runs.len() > 50) {
            let mut all = self.all_metric_summaries()?;
            for run in &mut runs {
                run.metrics = all.remove(&run.id).unwrap_or_default();
            }
        } else {
            for run in &mut runs {
                run.metrics = self.metric_summaries(&run.id)?;
            }
        }
        Ok(runs)
    }

    /// How many runs the lab holds.
    pub fn run_count(&self) -> Result<usize> {
        let n: i64 = self.conn.prepare_cached("SELECT COUNT(*) FROM runs")?.query_row([], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// One run object.
    pub fn run(&self, id: &str) -> Result<Run> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        let (mut run, _) = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], |r| row_to_run(r, self.lab.now()))
            .optional()?
            .ok_or_else(|| Error::UnknownRun { query: id.into(), candidates: vec![] })?;
        run.metrics = self.metric_summaries(id)?;
        Ok(run)
    }

    /// Runs still going, and those that ended at or after `since`, newest first.
    pub fn active_or_ended_since(&self, since: f64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            // A union, so that each half uses its index: an OR reads every run.
            "SELECT id FROM (SELECT id, created_at FROM runs WHERE status IN ('running', 'queued')
             UNION SELECT id, created_at FROM runs WHERE ended_at >= ?1) ORDER BY created_at DESC, id DESC",
        )?;
        let ids = stmt.query_map([since], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Events of one run or of all, at or after `since`, oldest first.
    pub fn events_since(&self, run: Option<&str>, since: f64) -> Result<Vec<RunEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.run_id, r.name, e.time, e.kind, e.message, e.data FROM events e JOIN runs r ON r.id = e.run_id
             WHERE (?1 IS NULL OR e.run_id = ?1) AND e.time >= ?2 ORDER BY e.time, e.run_id, e.seq",
        )?;
        let rows = stmt.query_map(params![run, since], |r| {
            Ok(RunEvent {
                run: r.get(0)?,
                name: r.get(1)?,
                event: EventRow {
                    time: clock::rfc3339(r.get(2)?),
                    kind: r.get(3)?,
                    message: r.get(4)?,
                    data: r.get::<_, Option<String>>(5)?.and_then(|d| serde_json::from_str(&d).ok()),
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many alerts a run has had.
    pub fn alert_count(&self, id: &str) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM events WHERE run_id = ?1 AND kind = 'alert'")?
            .query_row([id], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// One run in full.
    pub fn run_detail(&self, id: &str) -> Result<RunDetail> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        let (mut run, spec) = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], |r| row_to_run(r, self.lab.now()))
            .optional()?
            .ok_or_else(|| Error::UnknownRun { query: id.into(), candidates: vec![] })?;
        let spec: RunSpec = serde_json::from_str(&spec).map_err(|e| Error::BadFile {
            path: self.lab.run_dir(id).join(crate::rundir::SPEC_FILE),
            why: format!("not a valid run.json: {e}"),
        })?;
        run.metrics = self.metric_summaries(id)?;
        let git = spec.git.clone().unwrap_or_default();
        Ok(RunDetail {
            run,
            cwd: spec.cwd,
            host: spec.host,
            user: spec.user,
            origin: spec.origin,
            env: spec.env,
            patch_bytes: git.patch_bytes,
            untracked: git.untracked,
            dir: self.lab.run_dir(id).display().to_string(),
            events: self.events(id)?,
        })
    }

    pub fn metric_summaries(&self, id: &str) -> Result<BTreeMap<String, MetricSummary>> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {SUMMARY_COLUMNS} FROM metrics WHERE run_id = ?1"))?;
        let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(1)?, summary_of(r)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every run's metric summaries, in one pass.
    fn all_metric_summaries(&self) -> Result<std::collections::HashMap<String, BTreeMap<String, MetricSummary>>> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {SUMMARY_COLUMNS} FROM metrics"))?;
        let mut rows = stmt.query([])?;
        let mut all: std::collections::HashMap<String, BTreeMap<String, MetricSummary>> = Default::default();
        while let Some(r) = rows.next()? {
            let run: String = r.get(0)?;
            all.entry(run).or_default().insert(r.get(1)?, summary_of(r)?);
        }
        Ok(all)
    }

    /// The metric keys of a run, sorted.
    pub fn metric_keys(&self, id: &str) -> Result<Vec<String>> {
        Ok(self.metric_summaries(id)?.into_keys().collect())
    }

    /// A run's series for `key`, in step order (logged order within a step).
    pub fn series(&self, id: &str, key: &str) -> Result<Vec<Point>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT data FROM series WHERE run_id = ?1 AND key = ?2 ORDER BY seq")?;
        let mut rows = stmt.query(params![id, key])?;
        let mut points = Vec::new();
        while let Some(row) = rows.next()? {
            let blob = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            chunk::decode_into(&mut points, blob).map_err(|e| damaged_chunk(id, key, e))?;
        }
        series::sort_by_step(&mut points);
        Ok(points)
    }

    /// The points of a run's series after its first `seen`, in the order
    /// they were logged (what a live view lacks when it holds `seen`), and
    /// how many the series holds. Only the chunks holding them are decoded.
    pub fn series_after(&self, id: &str, key: &str, seen: u64) -> Result<(Vec<Point>, u64)> {
        let mut stmt =
            self.conn.prepare_cached("SELECT n, data FROM series WHERE run_id = ?1 AND key = ?2 ORDER BY seq DESC")?;
        let mut rows = stmt.query(params![id, key])?;
        let total: u64 = self
            .conn
            .prepare_cached("SELECT COALESCE(SUM(n), 0) FROM series WHERE run_id = ?1 AND key = ?2")?
            .query_row(params![id, key], |r| r.get::<_, i64>(0))? as u64;
        let mut blobs = Vec::new();
        let mut from = total;
        while from > seen {
            let Some(row) = rows.next()? else { break };
            from = from.saturating_sub(row.get::<_, i64>(0)? as u64);
            blobs.push(row.get::<_, Vec<u8>>(1)?);
        }
        let mut points = Vec::new();
        for blob in blobs.iter().rev() {
            chunk::decode_into(&mut points, blob).map_err(|e| damaged_chunk(id, key, e))?;
        }
        let skip = seen.saturating_sub(from) as usize;
        points.drain(..skip.min(points.len()));
        Ok((points, total))
    }

    /// The value of a run's metric at the last logged step at or before `step`.
    pub fn value_at(&self, id: &str, key: &str, step: i64) -> Result<Option<f64>> {
        let points = self.series(id, key)?;
        let i = points.partition_point(|p| p.step <= step);
        Ok(i.checked_sub(1).map(|i| points[i].value))
    }

    pub fn events(&self, id: &str) -> Result<Vec<EventRow>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT time, kind, message, data FROM events WHERE run_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([id], |r| {
            Ok(EventRow {
                time: clock::rfc3339(r.get(0)?),
                kind: r.get(1)?,
                message: r.get(2)?,
                data: r.get::<_, Option<String>>(3)?.and_then(|d| serde_json::from_str(&d).ok()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Finds the run a user means: its full id, its name, an id prefix (with
    /// or without `r-`), or its last 4 characters. A full id always wins;
    /// otherwise a reference that fits two runs by any rule is an error
    /// listing each and how it matched: `stop` must never guess.
    pub fn resolve(&self, query: &str) -> Result<String> {
        let all: Vec<(String, Option<String>)> = {
            let mut stmt = self.conn.prepare_cached("SELECT id, name FROM runs ORDER BY created_at DESC, id DESC")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        if all.iter().any(|(id, _)| id == query) {
            return Ok(query.to_string());
        }
        let named = |id: &str, name: &Option<String>| match name {
            Some(n) => format!("{id} (named '{n}')"),
            None => id.to_string(),
        };
        let query_id = if query.starts_with(id::PREFIX) { query.to_string() } else { format!("{}{query}", id::PREFIX) };
        let mut matches: Vec<(&str, String)> = Vec::new();
        for (id, name) in &all {
            let how: Vec<&str> = [
                (name.as_deref() == Some(query), "name"),
                (query.len() >= 2 && id.starts_with(&query_id), "id prefix"),
                (query.len() == 4 && id.ends_with(query), "last 4 characters"),
            ]
            .into_iter()
            .filter_map(|(hit, how)| hit.then_some(how))
            .collect();
            if !how.is_empty() {
                matches.push((id, format!("{}: {}", named(id, name), how.join(", "))));
            }
        }
        match matches.as_slice() {
            [(id, _)] => Ok(id.to_string()),
            [] => Err(Error::UnknownRun {
                query: query.into(),
                candidates: all
                    .iter()
                    .take(8)
                    .map(|(id, name)| name.as_ref().map_or(id.clone(), |n| format!("{id} ({n})")))
                    .collect(),
            }),
            _ => {
                Err(Error::AmbiguousRun { query: query.into(), matches: matches.into_iter().map(|(_, m)| m).collect() })
            }
        }
    }
}

/// What the run object needs of `run.json`; the rest (rules, environment)
/// is skipped unparsed, which matters when listing thousands of runs.
#[derive(serde::Deserialize)]
struct SpecBrief {
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    git: Option<crate::git::GitState>,
}

/// The run object of a row; a live run has run until `now`.
fn row_to_run(r: &Row, now: f64) -> rusqlite::Result<(Run, String)> {
    let created_at: f64 = r.get(3)?;
    let ended_at: Option<f64> = r.get(5)?;
    let spec_json: String = r.get(12)?;
    let spec: SpecBrief = serde_json::from_str(&spec_json)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(12, rusqlite::types::Type::Text, Box::new(e)))?;
    let json_col = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or_default())
    };
    let start = r.get::<_, Option<f64>>(4)?.unwrap_or(created_at);
    let about: About = serde_json::from_str(&r.get::<_, String>(13)?).unwrap_or_default();
    let run = Run {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get::<_, String>(2)?.into(),
        exit_code: r.get(6)?,
        signal: r.get(7)?,
        reason: r.get(8)?,
        command: spec.command,
        created_at: clock::rfc3339(created_at),
        created_ts: created_at,
        ended_at: ended_at.map(clock::rfc3339),
        duration_s: round_ms(ended_at.unwrap_or(now) - start).max(0.0),
        git: spec.git.as_ref().map(GitBrief::from),
        config: match json_col(10)? {
            serde_json::Value::Object(m) => m,
            _ => Default::default(),
        },
        summary: match json_col(11)? {
            serde_json::Value::Object(m) => m,
            _ => Default::default(),
        },
        tags: serde_json::from_value(json_col(9)?).unwrap_or_default(),
        project: about.project,
        group: about.group,
        job_type: about.job_type,
        notes: about.notes,
        metric_defs: about.metric_defs,
        metrics: BTreeMap::new(),
        slurm: about.slurm,
    };
    Ok((run, spec_json))
}

const SUMMARY_COLUMNS: &str = "run_id, key, count, nan_count, last, last_step, min, max, finite, sum";

fn summary_of(r: &Row) -> rusqlite::Result<MetricSummary> {
    let finite: i64 = r.get(8)?;
    let sum: f64 = r.get(9)?;
    Ok(MetricSummary {
        count: r.get::<_, i64>(2)? as u64,
        nan_count: r.get::<_, i64>(3)? as u64,
        last: nan_if_null(r.get(4)?),
        last_step: r.get(5)?,
        min: nan_if_null(r.get(6)?),
        max: nan_if_null(r.get(7)?),
        mean: if finite > 0 { sum / finite as f64 } else { f64::NAN },
    })
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}
