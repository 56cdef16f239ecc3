//! What the import tests share: the Python that writes their fixtures,
//! reading what it says, finding a run by its source id.

#![allow(dead_code)]

use labmate::import::Imported;

/// The Python named by `LABMATE_IMPORT_PYTHON` (one with the tools that
/// write the fixtures). Without it a test fails in CI (`LABMATE_CI`) and
/// elsewhere says why it did not run.
pub fn import_python(test: &str) -> Option<String> {
    match std::env::var("LABMATE_IMPORT_PYTHON") {
        Ok(python) => Some(python),
        Err(_) => {
            assert!(
                std::env::var_os("LABMATE_CI").is_none(),
                "CI must provide LABMATE_IMPORT_PYTHON (a Python with tensorboardX, tensorboard, numpy, mlflow and wandb)"
            );
            eprintln!(
                "NOTE: {test} did not run: set LABMATE_IMPORT_PYTHON to a Python with tensorboardX, tensorboard, numpy, mlflow and wandb"
            );
            None
        }
    }
}

/// What a fixture writer printed last: one line of JSON, once it succeeded.
pub fn last_json_line(out: std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The imported run whose id at its source is `id`.
pub fn by_id<'a>(runs: &'a [Imported], id: &str) -> &'a Imported {
    runs.iter().find(|r| r.source_id == id).unwrap_or_else(|| panic!("no run {id}"))
}
