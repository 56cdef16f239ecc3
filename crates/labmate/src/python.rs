//! The Python package `labmate` (the client, the wandb stand-in), embedded
//! in the binary at build time, and its copy in a lab:
//! `<lab>/python/<version>/labmate/...`, which `labmate run --wandb` puts
//! first on the command's `PYTHONPATH`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::lab::Lab;

/// Every file of the package: its path from the package's parent
/// (`labmate/__init__.py`), and its bytes; sorted by path.
pub const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/python_package.rs"));

/// The folder of the package holding the `wandb` stand-in and its
/// distribution metadata: first on the path, it is what `import wandb` finds.
pub const WANDB_PATH: &str = "labmate/_wandb_path";

/// 16 hex digits naming the package's contents: a 64-bit FNV-1a hash of
/// every file's path and bytes. Two builds with the same package share a copy.
pub fn version() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (path, bytes) in FILES {
        // Each length first, so that no two lists of files hash alike by
        // moving bytes from one field to the next.
        for part in
            [&(path.len() as u64).to_le_bytes()[..], path.as_bytes(), &(bytes.len() as u64).to_le_bytes(), bytes]
        {
            for b in part {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    format!("{hash:016x}")
}

/// The package's copy in `lab`, written when it is not there yet; the folder
/// to put on `PYTHONPATH` (it holds `labmate/`).
///
/// A copy is written into a folder of its own and renamed into place
/// whole, so that a folder under its final name is always complete: it is
/// reused as it is, and launches that write one at the same time all end
/// up with the one that was renamed first.
pub fn extract(lab: &Lab) -> Result<PathBuf> {
    let root = lab.root().join("python");
    let dest = root.join(version());
    if dest.is_dir() {
        return Ok(dest);
    }
    fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    // Unique to this process and call: a leftover of a process that died
    // with the same pid is written over.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let tmp = root.join(format!(".tmp-{}-{}-{}", version(), std::process::id(), CALLS.fetch_add(1, Ordering::Relaxed)));
    let written = write_all(&tmp).map_err(|e| Error::io(&tmp, e));
    let renamed = written.and_then(|()| match fs::rename(&tmp, &dest) {
        Ok(()) => Ok(()),
        // Another launch renamed its copy first: that one is as good.
        Err(_) if dest.is_dir() => Ok(()),
        Err(e) => Err(Error::io(&dest, e)),
    });
    let _ = fs::remove_dir_all(&tmp);
    renamed.map(|()| dest)
}

fn write_all(tmp: &Path) -> io::Result<()> {
    if tmp.exists() {
        fs::remove_dir_all(tmp)?;
    }
    for (rel, bytes) in FILES {
        let path = tmp.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, bytes)?;
    }
    Ok(())
}

/// `PYTHONPATH` for a command given the package at `copy`: the stand-in's
/// folder, then the package's parent, then whatever was there before.
pub fn python_path(copy: &Path, before: Option<&std::ffi::OsStr>) -> std::ffi::OsString {
    let mut path = copy.join(WANDB_PATH).into_os_string();
    path.push(":");
    path.push(copy);
    if let Some(before) = before.filter(|b| !b.is_empty()) {
        path.push(":");
        path.push(before);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_package_is_embedded_without_bytecode() {
        let paths: Vec<&str> = FILES.iter().map(|(p, _)| *p).collect();
        assert!(paths.contains(&"labmate/__init__.py") && paths.contains(&"labmate/_run.py"), "{paths:?}");
        assert!(paths.iter().all(|p| !p.contains("__pycache__") && !p.ends_with(".pyc")), "{paths:?}");
        assert!(paths.windows(2).all(|w| w[0] < w[1]), "sorted: {paths:?}");
        let init = FILES.iter().find(|(p, _)| *p == "labmate/__init__.py").unwrap().1;
        let on_disk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../python/labmate/__init__.py")).unwrap();
        assert_eq!(init, &on_disk[..]);
        let v = version();
        assert!(v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
    }

    #[test]
    fn a_copy_is_written_once_and_launches_at_the_same_time_share_it() {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let copies: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| extract(&lab).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let dest = lab.root().join("python").join(version());
        assert!(copies.iter().all(|c| *c == dest), "{copies:?}");
        for (rel, bytes) in FILES {
            assert_eq!(&fs::read(dest.join(rel)).unwrap()[..], *bytes, "{rel}");
        }
        let left: Vec<_> = fs::read_dir(lab.root().join("python")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from(version())], "no temporary folder is left");
        // A complete copy is reused as it is.
        fs::write(dest.join("marker"), "").unwrap();
        assert_eq!(extract(&lab).unwrap(), dest);
        assert!(dest.join("marker").exists());
    }

    #[test]
    fn the_stand_in_comes_first_on_the_path_and_what_was_there_after() {
        let copy = Path::new("/lab/python/0123");
        assert_eq!(python_path(copy, None), "/lab/python/0123/labmate/_wandb_path:/lab/python/0123");
        assert_eq!(python_path(copy, Some("".as_ref())), "/lab/python/0123/labmate/_wandb_path:/lab/python/0123");
        assert_eq!(
            python_path(copy, Some("/src:/other".as_ref())),
            "/lab/python/0123/labmate/_wandb_path:/lab/python/0123:/src:/other"
        );
    }
}
