//! Embeds the Python package (`python/labmate`, the client and the wandb
//! stand-in) in the core: a list of (path, bytes) that `labmate run --wandb`
//! writes into the lab. Bytecode caches are left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let package = manifest.join("../../python/labmate");
    // A folder is watched whole: a file added, changed or removed rebuilds.
    println!("cargo:rerun-if-changed={}", package.display());
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    walk(&package, "labmate", &mut files);
    files.sort();
    let mut list = String::from("&[\n");
    for (rel, path) in &files {
        let _ = writeln!(list, "    ({rel:?}, include_bytes!({:?})),", path.display().to_string());
    }
    list.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("python_package.rs");
    std::fs::write(&out, list).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// Every file under `dir` as (its path from the package's parent, with `/`, its absolute path).
fn walk(dir: &Path, rel: &str, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        let name = entry.file_name().into_string().unwrap_or_else(|n| panic!("a file name that is not UTF-8: {n:?}"));
        let path = entry.path();
        let kind = entry.file_type().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if kind.is_dir() {
            if name != "__pycache__" {
                walk(&path, &format!("{rel}/{name}"), files);
            }
        } else if !name.ends_with(".pyc") {
            let absolute = path.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.push((format!("{rel}/{name}"), absolute));
        }
    }
}
