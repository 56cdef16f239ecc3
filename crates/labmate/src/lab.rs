//! A lab: the `.labmate/` folder, how it is found, created and versioned;
//! and the clock and ids what it records is made with.

use std::fs;
use std::path::{Path, PathBuf};

use crate::clock::Now;
use crate::error::{Error, Result};
use crate::id::Ids;

/// The on-disk format this build writes, and the newest it reads (see
/// docs/FORMAT.md, "Versions").
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this build reads: every one since the first.
pub const OLDEST_FORMAT: u32 = 1;

const LAB_DIR: &str = ".labmate";
const MARKER: &str = "lab.json";

#[derive(Debug, Clone)]
pub struct Lab {
    root: PathBuf,
    /// The version `lab.json` names.
    format: u32,
    /// "Now" for what is recorded and shown: the wall unless a face fixed it.
    now: Now,
    /// The random part of new ids: from the OS unless a face seeded it.
    ids: Ids,
}

impl Lab {
    /// The lab named by `override_dir` (the `.labmate` folder itself), or the
    /// nearest one at or above `cwd`.
    pub fn find(cwd: &Path, override_dir: Option<&Path>) -> Result<Lab> {
        if let Some(dir) = override_dir {
            let dir = absolute(cwd, dir);
            return Lab::open(&dir);
        }
        let mut at = Some(cwd);
        while let Some(dir) = at {
            let candidate = dir.join(LAB_DIR);
            if candidate.join(MARKER).is_file() {
                return Lab::open(&candidate);
            }
            at = dir.parent();
        }
        Err(Error::NoLab { start: cwd.to_path_buf() })
    }

    /// Like [`Lab::find`], but creates a lab in `cwd` when there is none.
    pub fn find_or_create(cwd: &Path, override_dir: Option<&Path>) -> Result<Lab> {
        match Lab::find(cwd, override_dir) {
            Err(Error::NoLab { .. }) => Lab::create(&cwd.join(LAB_DIR)),
            Err(Error::BadFile { .. }) if override_dir.is_some() => Lab::create(&absolute(cwd, override_dir.unwrap())),
            other => other,
        }
    }

    /// Creates (or opens, when it exists) the lab folder `root`.
    pub fn create(root: &Path) -> Result<Lab> {
        if root.join(MARKER).is_file() {
            return Lab::open(root);
        }
        fs::create_dir_all(root.join("runs")).map_err(|e| Error::io(root, e))?;
        write_new(&root.join(".gitignore"), b"*\n")?;
        // The marker goes last: a lab without it is not a lab yet.
        write_marker(root, FORMAT_VERSION)?;
        Lab::open(root)
    }

    fn open(root: &Path) -> Result<Lab> {
        let marker = root.join(MARKER);
        let text = fs::read_to_string(&marker).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::BadFile { path: root.to_path_buf(), why: "not a lab folder (no lab.json)".into() }
            }
            _ => Error::io(&marker, e),
        })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::BadFile { path: marker.clone(), why: format!("not valid JSON: {e}") })?;
        match value.get("format").and_then(|f| f.as_u64()) {
            Some(v) if (u64::from(OLDEST_FORMAT)..=u64::from(FORMAT_VERSION)).contains(&v) => {
                Ok(Lab { root: root.to_path_buf(), format: v as u32, now: Now::Wall, ids: Ids::default() })
            }
            _ => Err(Error::UnsupportedFormat {
                path: marker,
                found: value.get("format").map_or("(missing)".into(), |f| f.to_string()),
                supported: FORMAT_VERSION,
            }),
        }
    }

    /// The version `lab.json` names.
    pub fn format(&self) -> u32 {
        self.format
    }

    /// Marks the lab as holding records of `version` before a writer adds
    /// the first: an older reader then refuses the lab, rather than skip
    /// what it cannot read. `lab.json` is replaced whole (a new file renamed
    /// over it); writers racing to do so write the same.
    pub fn require_format(&mut self, version: u32) -> Result<()> {
        if self.format < version {
            write_marker(&self.root, version)?;
            self.format = version;
        }
        Ok(())
    }

    /// The same lab, recording times from `now` and drawing ids from `ids`:
    /// the face's choice, which tests fix so that output repeats exactly.
    pub fn with_clock(self, now: Now, ids: Ids) -> Lab {
        Lab { now, ids, ..self }
    }

    /// The time to record or show at this moment.
    pub fn now(&self) -> f64 {
        self.now.get()
    }

    /// What this lab's "now" is, for work that records from other threads.
    pub fn clock(&self) -> Now {
        self.now
    }

    /// A new id of a run, notebook entry or review (told apart by `prefix`)
    /// made at `time`; its maker checks that it is not taken.
    pub fn new_id(&self, prefix: &str, time: f64) -> String {
        self.ids.new_id(prefix, time)
    }

    /// The `.labmate` folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder holding the lab (the experiment repository's root).
    pub fn repo_root(&self) -> &Path {
        self.root.parent().unwrap_or(&self.root)
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runs_dir().join(id)
    }
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) }
}

/// Writes `lab.json` naming `version`: a file of this process's renamed into
/// place, so a reader sees the old marker or the new one, never half of it.
fn write_marker(root: &Path, version: u32) -> Result<()> {
    let marker = root.join(MARKER);
    let tmp = root.join(format!(".{MARKER}.tmp-{}", std::process::id()));
    write_new(&tmp, format!("{{\"format\": {version}}}\n").as_bytes())?;
    fs::rename(&tmp, &marker).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(&marker, e)
    })
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_nearest_lab_walking_up() {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let deep = tmp.path().join("a/b/c");
        fs::create_dir_all(&deep).unwrap();
        let found = Lab::find(&deep, None).unwrap();
        assert_eq!(found.root(), lab.root());
        assert_eq!(fs::read_to_string(lab.root().join(".gitignore")).unwrap(), "*\n");
    }

    #[test]
    fn refuses_an_unknown_format() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join(".labmate");
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join(MARKER), r#"{"format": 99}"#).unwrap();
        let err = Lab::find(tmp.path(), None).unwrap_err();
        assert!(err.to_string().contains("format 99 is not supported"), "{err}");
    }

    #[test]
    fn a_version_1_lab_opens_and_is_marked_2_before_a_batch() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join(".labmate");
        fs::create_dir_all(root.join("runs")).unwrap();
        fs::write(root.join(MARKER), "{\"format\": 1}\n").unwrap();
        let mut lab = Lab::find(tmp.path(), None).unwrap();
        assert_eq!(lab.format(), 1);
        lab.require_format(2).unwrap();
        assert_eq!(fs::read_to_string(root.join(MARKER)).unwrap(), "{\"format\": 2}\n");
        assert_eq!(Lab::find(tmp.path(), None).unwrap().format(), 2);
        let left = fs::read_dir(&root).unwrap().filter(|e| e.as_ref().unwrap().file_name() != "runs").count();
        assert_eq!(left, 1, "no temporary file is left");
        let new = Lab::create(&tmp.path().join("other/.labmate")).unwrap();
        assert_eq!(new.format(), FORMAT_VERSION);
    }

    #[test]
    fn no_lab_is_a_user_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Lab::find(tmp.path(), None).unwrap_err();
        assert!(matches!(err, Error::NoLab { .. }));
    }
}
