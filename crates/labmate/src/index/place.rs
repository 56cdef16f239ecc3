//! Where a lab's index lives: in `.labmate/` beside the run folders, or in a
//! per-host cache on local disk when the lab is on a network file system or
//! `labmate.toml` `[index]` says so. SQLite's WAL needs memory shared on one
//! host and locks that network file systems do not keep reliably; the run
//! folders (append-only files, one writer each) need neither.
//!
//! A cache folder records the lab it belongs to (the file `lab`), so that a
//! folder named for one lab is never taken over by another.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::sys;

/// `[index]` of `labmate.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// The folder the index lives in instead of the lab (relative to the
    /// folder of `labmate.toml`).
    pub path: Option<PathBuf>,
    /// The local cache on (true) or off (false, the index in the lab even on
    /// a network file system); unset, it is on where the lab is on one.
    pub local: Option<bool>,
}

/// The policy file, read here for its `[index]` table only: the rest is
/// [`crate::policy`]'s.
const POLICY_FILE: &str = "labmate.toml";
/// Names the folder under which per-lab caches are made, instead of
/// `$XDG_CACHE_HOME/labmate/index`.
pub const INDEX_DIR_VAR: &str = "LABMATE_INDEX_DIR";
/// The file of a cache folder naming its lab.
const OWNER_FILE: &str = "lab";

/// Where the index of `lab` lives, and, when it is not in the lab, its
/// folder made ready (created, and marked as this lab's).
pub fn index_dir(lab: &Lab) -> Result<PathBuf> {
    let config = read_config(lab)?;
    let dir = match (&config.path, config.local) {
        (Some(_), Some(false)) => {
            return Err(Error::BadPolicy {
                path: lab.repo_root().join(POLICY_FILE),
                why: "[index] path names a folder outside the lab, but local = false keeps the index in the lab".into(),
            });
        }
        (Some(path), _) => lab.repo_root().join(path),
        (None, Some(false)) => return Ok(lab.root().to_path_buf()),
        (None, Some(true)) => cache_dir(lab)?,
        (None, None) => match sys::fs::network_fs(lab.root()) {
            Ok(Some(_)) => cache_dir(lab)?,
            // A lab whose file system cannot be told is taken as local, as before.
            Ok(None) | Err(_) => return Ok(lab.root().to_path_buf()),
        },
    };
    claim(lab, &dir)?;
    Ok(dir)
}

fn read_config(lab: &Lab) -> Result<IndexConfig> {
    let path = lab.repo_root().join(POLICY_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(IndexConfig::default()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        index: IndexConfig,
    }
    // Other tables are ignored here: they are checked by the policy's reader.
    let file: File = toml::from_str(&text).map_err(|e| Error::BadPolicy {
        path,
        why: e.to_string().trim_end().lines().map(|l| crate::text::clip(l, 160)).collect::<Vec<_>>().join("\n"),
    })?;
    Ok(file.index)
}

/// The per-host cache folder of `lab`: under `LABMATE_INDEX_DIR`, else
/// `$XDG_CACHE_HOME/labmate/index`, else `~/.cache/labmate/index`, else (or
/// when that is itself on a network file system) `/tmp/labmate-<uid>/index`;
/// named by a hash of the host and the lab's canonical path.
fn cache_dir(lab: &Lab) -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let root = match var(INDEX_DIR_VAR) {
        Some(dir) => dir,
        None => {
            let home_cache = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")));
            // A home shared by every host (on NFS itself) would share the caches too.
            match home_cache.filter(|c| c.is_absolute() && !on_network(c)) {
                Some(cache) => cache.join("labmate").join("index"),
                None => tmp_root()?,
            }
        }
    };
    let key = format!("{}\0{}", sys::host::hostname(), canonical(lab).display());
    Ok(root.join(format!("{:016x}", fnv1a(key.as_bytes()))))
}

/// Whether `p`, or the nearest folder above it that exists, is on a network file system.
fn on_network(p: &Path) -> bool {
    let existing = p.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
    matches!(sys::fs::network_fs(existing), Ok(Some(_)))
}

/// `/tmp/labmate-<uid>/index`, the user's own (mode 0700).
fn tmp_root() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let user = std::env::temp_dir().join(format!("labmate-{}", sys::host::effective_uid()));
    match fs::DirBuilder::new().mode(0o700).create(&user) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(&user, e)),
    }
    Ok(user.join("index"))
}

fn canonical(lab: &Lab) -> PathBuf {
    fs::canonicalize(lab.root()).unwrap_or_else(|_| lab.root().to_path_buf())
}

/// Makes `dir` ready for the index of `lab`: created when missing, and
/// marked as this lab's; a folder marked as another lab's is refused.
fn claim(lab: &Lab, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let owner_file = dir.join(OWNER_FILE);
    let this = canonical(lab);
    match fs::read_to_string(&owner_file) {
        Ok(text) => {
            let owner = text.strip_suffix('\n').unwrap_or(&text);
            if Path::new(owner) != this {
                return Err(Error::conflict(
                    "index",
                    format!(
                        "the index folder {} belongs to the lab at {}, not to the lab at {}; \
                         name another folder in labmate.toml [index] path",
                        dir.display(),
                        owner,
                        this.display()
                    ),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Renamed into place: a reader sees no owner or the whole one;
            // openers racing here write the same.
            let tmp = dir.join(format!(".{OWNER_FILE}.tmp-{}", std::process::id()));
            let mut text = this.into_os_string();
            text.push("\n");
            fs::write(&tmp, std::os::unix::ffi::OsStrExt::as_bytes(text.as_os_str()))
                .and_then(|()| fs::rename(&tmp, &owner_file))
                .map_err(|e| {
                    let _ = fs::remove_file(&tmp);
                    Error::io(&owner_file, e)
                })
        }
        Err(e) => Err(Error::io(&owner_file, e)),
    }
}

/// FNV-1a, 64 bits: a name for a cache folder that every build computes alike.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_folder_name_is_stable() {
        assert_eq!(format!("{:016x}", fnv1a(b"")), "cbf29ce484222325");
        assert_eq!(format!("{:016x}", fnv1a(b"a")), "af63dc4c8601ec8c");
    }

    #[test]
    fn a_cache_folder_of_another_lab_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Lab::create(&tmp.path().join("a/.labmate")).unwrap();
        let b = Lab::create(&tmp.path().join("b/.labmate")).unwrap();
        let dir = tmp.path().join("cache");
        claim(&a, &dir).unwrap();
        claim(&a, &dir).unwrap();
        let err = claim(&b, &dir).unwrap_err().to_string();
        assert!(err.contains("a/.labmate") && err.contains("b/.labmate"), "{err}");
    }
}
