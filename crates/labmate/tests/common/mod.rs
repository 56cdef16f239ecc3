//! What the import tests share: the Python that writes their fixtures.

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
