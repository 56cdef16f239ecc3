//! The golden fixtures in `conformance/` that both writers are held to:
//! which environment variables a run records. The Python client's suite
//! checks its own side against the same files (python/tests/test_conformance.py).

use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_environment_filter_keeps_and_drops_what_the_table_says() {
    let table = read_json(&fixtures().join("env-filter.json"));
    let names = table["names"].as_object().expect("names");
    assert!(names.len() > 20, "the table is there");
    let wrong: Vec<_> = names
        .iter()
        .filter(|(name, verdict)| {
            let kept = labmate::spec::env_subset([(name.as_str(), "v")].into_iter()).contains_key(name.as_str());
            kept != (verdict.as_str() == Some("kept"))
        })
        .map(|(name, verdict)| format!("{name} should be {verdict}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
