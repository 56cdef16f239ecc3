//! The Python client's own suite (python/tests), run against this build of
//! the `labmate` binary so that both sides of the run-folder format are
//! tested together.

use std::process::Command;

#[test]
fn python_client_suite_passes() {
    let root = crate::common::REPO;
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "python/tests", "-t", "python"])
        .current_dir(root)
        .env("PYTHONPATH", crate::common::PYTHON)
        .env("LABMATE_BIN", env!("CARGO_BIN_EXE_labmate"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client tests failed:\n{text}");
    assert!(!text.contains("skipped 'LABMATE_BIN"), "cross-side tests were skipped:\n{text}");
}
