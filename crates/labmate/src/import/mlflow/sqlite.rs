//! MLflow's SQLite store, opened read-only: the tables `experiments`,
//! `runs`, `params`, `tags` and `metrics` (key, value, timestamp, step,
//! is_nan, run_uuid), whose columns have stayed as read here from MLflow
//! 2.0 on; the tables and columns later versions add are not read. The
//! schema's version (`alembic_version`) must be one of [`SUPPORTED`].

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{StoredRun, not_a_store};
use crate::error::{Error, Result};
use crate::record::Point;

/// MLflow's schema revisions in order, from the one MLflow 2.0 shipped to
/// MLflow 3.17's.
const SUPPORTED: [&str; 49] = [
    "97727af70f4d", // MLflow 2.0
    "3500859a5d39",
    "7f2a7d5fae7d",
    "2d6e25af4d3e",
    "acf3f17fdcc7",
    "867495a8f9d4",
    "5b0e9adcef9c",
    "4465047574b1",
    "f5a4f2784254",
    "0584bdc529eb",
    "400f98739977",
    "6953534de441",
    "bda7b8c39065",
    "cbc13b556ace", // MLflow 3.0
    "770bee3ae1dd",
    "a1b2c3d4e5f6",
    "de4033877273",
    "1a0cddfcaa16",
    "534353b11cbc",
    "71994744cf8e",
    "3da73c924c2f",
    "bf29a5ff90ea",
    "1bd49d398cd23",
    "b7c8d9e0f1a2",
    "5d2d30f0abce",
    "c9d4e5f6a7b8",
    "2c33131f4dae",
    "d3e4f5a6b7c8",
    "d0e1f2a3b4c5",
    "c8d9e0f1a2b3",
    "1b5f0d9ad7c1",
    "e1f2a3b4c5d6",
    "76601a5f987d",
    "c3d6457b6d8a",
    "a5b4c3d2e1f0",
    "ae8bbe7743c9",
    "7d34483879f0",
    "da6fb0208061",
    "89d3d66ed43f",
    "b7e4c1a90f23",
    "a8b9c0d1e2f3",
    "c1d2e3f4a5b6",
    "c3d9e7f1a2b4",
    "6f8d9c3b2a1e",
    "1971f2d9a75b",
    "17e22815139b",
    "b7e2c1a4d9f3",
    "75868b020152",
    "dc11669786a5", // MLflow 3.17
];

/// The revisions of MLflow 1.x, before 2.0's.
const BEFORE_2_0: [&str; 18] = [
    "451aebb31d03",
    "90e64c465722",
    "181f10493468",
    "df50e92ffc5e",
    "7ac759974ad8",
    "89d4b8295536",
    "2b4d017a5e9b",
    "cfd24bdc0731",
    "0a8213491aaa",
    "728d730b5ebd",
    "27a6a02d2cf1",
    "84291f40a231",
    "a8c4a736bde6",
    "39d1c3be5f05",
    "c48cb773bb87",
    "bd07f7e963c5",
    "0c779009ac13",
    "cc1f77228345",
];

/// Every run that is not deleted, in experiments that are not, in the
/// order they started; each metric's points in the order they were logged.
pub(super) fn read(db: &Path) -> Result<Vec<StoredRun>> {
    let failed = |e: rusqlite::Error| Error::invalid("mlflow store", format!("{}: {e}", db.display()));
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(failed)?;
    // MLflow may be writing it: wait out its transactions rather than fail.
    conn.busy_timeout(Duration::from_secs(10)).map_err(failed)?;
    check_version(&conn, db)?;

    let mut experiments: HashMap<i64, Option<String>> = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT experiment_id, name FROM experiments WHERE lifecycle_stage IS NOT 'deleted'")
        .map_err(failed)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))).map_err(failed)?;
    for row in rows {
        let (id, name) = row.map_err(failed)?;
        experiments.insert(id, name);
    }

    let mut runs: Vec<StoredRun> = Vec::new();
    let mut stmt = conn
        .prepare(
            "SELECT run_uuid, experiment_id, name, status, start_time, end_time, user_id FROM runs \
             WHERE lifecycle_stage IS NOT 'deleted' ORDER BY start_time, run_uuid",
        )
        .map_err(failed)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                StoredRun {
                    name: r.get(2)?,
                    status: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    start_ms: r.get(4)?,
                    end_ms: r.get(5)?,
                    user: r.get::<_, Option<String>>(6)?.filter(|u| !u.is_empty()),
                    ..StoredRun::default()
                },
            ))
        })
        .map_err(failed)?;
    for row in rows {
        let (id, experiment, run) = row.map_err(failed)?;
        let Some(name) = experiment.and_then(|e| experiments.get(&e)) else { continue };
        runs.push(StoredRun { id, experiment: name.clone(), ..run });
    }
    let at: HashMap<String, usize> = runs.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();

    for (table, params) in [("params", true), ("tags", false)] {
        let mut stmt = conn
            .prepare(&format!("SELECT run_uuid, key, value FROM {table} ORDER BY run_uuid, key"))
            .map_err(failed)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?)))
            .map_err(failed)?;
        for row in rows {
            let (run, key, value) = row.map_err(failed)?;
            let Some(&i) = at.get(&run) else { continue };
            let list = if params { &mut runs[i].params } else { &mut runs[i].tags };
            list.push((key, value.unwrap_or_default()));
        }
    }

    // In the order logged: the rowid grows with each insert.
    let mut stmt = conn
        .prepare("SELECT run_uuid, key, value, timestamp, step, is_nan FROM metrics ORDER BY rowid")
        .map_err(failed)?;
    let mut rows = stmt.query([]).map_err(failed)?;
    while let Some(r) = rows.next().map_err(failed)? {
        let run: String = r.get(0).map_err(failed)?;
        let Some(&i) = at.get(&run) else { continue };
        let key: String = r.get(1).map_err(failed)?;
        let value: Option<f64> = r.get(2).map_err(failed)?;
        let time: i64 = r.get::<_, Option<i64>>(3).map_err(failed)?.unwrap_or(0);
        let step: i64 = r.get::<_, Option<i64>>(4).map_err(failed)?.unwrap_or(0);
        let is_nan = r.get::<_, Option<bool>>(5).map_err(failed)?.unwrap_or(false);
        let value = if is_nan { f64::NAN } else { value.unwrap_or(f64::NAN) };
        let history = runs[i].metrics.entry(key).or_default();
        history.points.push((history.entries, Point { step, time: time as f64 / 1000.0, value }));
        history.entries += 1;
    }
    Ok(runs)
}

/// Refuses a database that is not an MLflow store, or whose schema this
/// labmate does not know.
fn check_version(conn: &Connection, db: &Path) -> Result<()> {
    let version: Option<String> = match conn.query_row("SELECT version_num FROM alembic_version", [], |r| r.get(0)) {
        Ok(v) => Some(v),
        Err(rusqlite::Error::QueryReturnedNoRows) => None,
        Err(rusqlite::Error::SqliteFailure(_, Some(msg))) if msg.starts_with("no such table") => {
            return Err(not_a_store(db, "a SQLite database without MLflow's alembic_version table"));
        }
        Err(e) => return Err(Error::invalid("mlflow store", format!("{}: {e}", db.display()))),
    };
    let Some(version) = version else {
        return Err(not_a_store(db, "its alembic_version table is empty"));
    };
    if SUPPORTED.contains(&version.as_str()) {
        return Ok(());
    }
    let range = format!("{} (MLflow 2.0) to {} (MLflow 3.17)", SUPPORTED[0], SUPPORTED[SUPPORTED.len() - 1]);
    let why = if BEFORE_2_0.contains(&version.as_str()) {
        format!("MLflow schema version {version} is from before MLflow 2.0; this labmate reads schema versions {range}")
    } else {
        format!(
            "unknown MLflow schema version '{}'; this labmate reads schema versions {range}",
            crate::text::clip(&version, 40)
        )
    };
    Err(Error::invalid("mlflow store", format!("{}: {why}", db.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(version: Option<&str>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mlflow.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);
             CREATE TABLE experiments (experiment_id INTEGER, name TEXT, lifecycle_stage TEXT);
             CREATE TABLE runs (run_uuid TEXT, name TEXT, status TEXT, start_time BIGINT, end_time BIGINT,
                 user_id TEXT, lifecycle_stage TEXT, experiment_id INTEGER);
             CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT);
             CREATE TABLE tags (key TEXT, value TEXT, run_uuid TEXT);
             CREATE TABLE metrics (key TEXT, value FLOAT, timestamp BIGINT, run_uuid TEXT, step BIGINT, is_nan BOOLEAN);
             INSERT INTO experiments VALUES (1, 'exp', 'active'), (2, 'gone', 'deleted');
             INSERT INTO runs VALUES ('a', 'first', 'FINISHED', 1000, 2000, 'ann', 'active', 1),
                 ('b', 'trashed', 'FINISHED', 1000, 2000, 'ann', 'deleted', 1),
                 ('c', 'in a deleted experiment', 'FAILED', 1000, 2000, 'ann', 'active', 2);
             INSERT INTO params VALUES ('lr', '0.1', 'a');
             INSERT INTO metrics VALUES ('loss', 0.5, 1500, 'a', 3, 0), ('loss', 0, 1600, 'a', 4, 1);",
        )
        .unwrap();
        if let Some(v) = version {
            conn.execute("INSERT INTO alembic_version VALUES (?1)", [v]).unwrap();
        }
        (dir, db)
    }

    #[test]
    fn deleted_runs_and_experiments_are_left_out_and_nan_rows_are_nan() {
        let (_dir, db) = store(Some("dc11669786a5"));
        let runs = read(&db).unwrap();
        assert_eq!(runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["a"]);
        let a = &runs[0];
        assert_eq!(
            (a.name.as_deref(), a.experiment.as_deref(), a.status.as_str()),
            (Some("first"), Some("exp"), "FINISHED")
        );
        assert_eq!(a.params, vec![("lr".to_string(), "0.1".to_string())]);
        let loss = &a.metrics["loss"];
        assert_eq!(loss.entries, 2);
        assert_eq!((loss.points[0].1.step, loss.points[0].1.time, loss.points[0].1.value), (3, 1.5, 0.5));
        assert!(loss.points[1].1.value.is_nan());
    }

    #[test]
    fn an_unknown_or_old_schema_version_is_named_with_the_supported_ones() {
        let (_dir, db) = store(Some("ffffffffffff"));
        let e = read(&db).unwrap_err().to_string();
        assert!(e.contains("unknown MLflow schema version 'ffffffffffff'"), "{e}");
        assert!(e.contains("reads schema versions 97727af70f4d (MLflow 2.0) to dc11669786a5 (MLflow 3.17)"), "{e}");
        let (_dir, db) = store(Some("cc1f77228345"));
        assert!(read(&db).unwrap_err().to_string().contains("is from before MLflow 2.0"));
        let (_dir, db) = store(None);
        assert!(read(&db).unwrap_err().to_string().contains("its alembic_version table is empty"));
    }

    #[test]
    fn a_database_of_another_kind_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("other.db");
        Connection::open(&db).unwrap().execute_batch("CREATE TABLE t (x);").unwrap();
        let e = read(&db).unwrap_err().to_string();
        assert!(
            e.ends_with("other.db: not an MLflow store: a SQLite database without MLflow's alembic_version table"),
            "{e}"
        );
    }
}
