//! The accepting lab's side of the protocol. A remote writer's run folder
//! is rebuilt here byte for byte: files only grow, each push says at which
//! offset its bytes go, and bytes the lab already has must be the same.
//!
//! Writes into one run are serialized by a lock file beside the lab's
//! marks (`.labmate/remote/<id>.lock`), across the server's threads and
//! any other process accepting into the same lab. A run this lab made
//! itself (no mark that it was accepted) or supervises takes no writes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::{Sizes, check_run_id, files_of, run_file_parts};
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::rundir::{self, Heard, RunDir};
use crate::spec::RunSpec;
use crate::sys::flock::{self, Mode};

/// A lab that accepts runs from remote writers.
#[derive(Debug, Clone)]
pub struct Inbox {
    lab: Lab,
    /// Seconds without a word from a writer after which its run is lost.
    silence: f64,
}

/// What became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The file now has this many bytes.
    Size(u64),
    /// The push started past the end of the file, which has this many
    /// bytes: nothing was written; the writer resumes from there.
    Behind(u64),
}

impl Inbox {
    pub fn new(lab: Lab, silence: f64) -> Inbox {
        Inbox { lab, silence }
    }

    /// The files this lab has of run `id` and their sizes; none for a run
    /// it does not have yet.
    pub fn sizes(&self, id: &str) -> Result<Sizes> {
        check_run_id(id)?;
        let dir = self.lab.run_dir(id);
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(Sizes::new());
        }
        self.check_accepted(id, &dir)?;
        files_of(&dir)
    }

    /// Appends `bytes` at `offset` of the file `path` of run `id`. Bytes
    /// below the file's size must be the ones it holds; only the rest is
    /// written. A new run starts with its whole `run.json`.
    pub fn append(&self, id: &str, path: &str, offset: u64, bytes: &[u8]) -> Result<Appended> {
        check_run_id(id)?;
        let parts = run_file_parts(path)?;
        let _turn = self.turn(id)?;
        let dir = self.lab.run_dir(id);
        if fs::symlink_metadata(&dir).is_err() {
            if path != rundir::SPEC_FILE || offset != 0 {
                return Err(Error::not_found(
                    "run",
                    format!("run {id} is not in this lab yet: its run.json comes first, whole, at offset 0"),
                ));
            }
            self.create(id, bytes)?;
            return Ok(Appended::Size(bytes.len() as u64));
        }
        self.check_accepted(id, &dir)?;
        let file = open_inside(&dir, &parts)?;
        let file_path = dir.join(path);
        let size = file.metadata().map_err(|e| Error::io(&file_path, e))?.len();
        let before = rundir::heard(&self.lab, id);
        if offset > size {
            self.heard(id, before, false)?;
            return Ok(Appended::Behind(size));
        }
        let overlap = (size - offset).min(bytes.len() as u64) as usize;
        if overlap > 0 {
            let mut have = vec![0u8; overlap];
            file.read_exact_at(&mut have, offset).map_err(|e| Error::io(&file_path, e))?;
            if have != bytes[..overlap] {
                return Err(Error::conflict(
                    "run file",
                    format!(
                        "{path} of run {id} holds other bytes at offset {offset} than the ones pushed: \
                         the two labs' copies of the run differ; nothing was written"
                    ),
                ));
            }
        }
        let rest = &bytes[overlap..];
        if !rest.is_empty() {
            (&file).write_all(rest).map_err(|e| Error::write(&file_path, e))?;
        }
        self.heard(id, before, !rest.is_empty())?;
        Ok(Appended::Size(size + rest.len() as u64))
    }

    /// The writer of run `id` is still there, with nothing new to push.
    pub fn heartbeat(&self, id: &str) -> Result<Heard> {
        check_run_id(id)?;
        let _turn = self.turn(id)?;
        let dir = self.lab.run_dir(id);
        if fs::symlink_metadata(&dir).is_err() {
            return Err(Error::not_found("run", format!("run {id} is not in this lab; push its run.json first")));
        }
        self.check_accepted(id, &dir)?;
        let before = rundir::heard(&self.lab, id);
        self.heard(id, before, false)
    }

    /// Records the writer heard from now. The index is told to read the run
    /// again when it got bytes, or when it had been silent long enough to be
    /// lost: the index does not look at ended runs by itself.
    fn heard(&self, id: &str, before: Option<Heard>, appended: bool) -> Result<Heard> {
        let now = self.lab.now();
        let heard = Heard { at: now, silence: self.silence };
        rundir::mark_heard(&self.lab, id, heard)?;
        if appended || before.is_none_or(|h| !h.live(now)) {
            rundir::mark_appended(&self.lab, id)?;
        }
        Ok(heard)
    }

    /// Makes run `id` from its `run.json`, whole before it appears under its
    /// id, with the mark that it was accepted already in place.
    fn create(&self, id: &str, spec_bytes: &[u8]) -> Result<()> {
        let spec: RunSpec = serde_json::from_slice(spec_bytes)
            .map_err(|e| Error::invalid("run.json", format!("the run.json pushed for run {id} is not valid: {e}")))?;
        if spec.id != id {
            return Err(Error::invalid(
                "run.json",
                format!("the run.json pushed for run {id} holds the id {}", spec.id),
            ));
        }
        let runs = self.lab.runs_dir();
        fs::create_dir_all(&runs).map_err(|e| Error::io(&runs, e))?;
        let tmp = runs.join(format!(".tmp-remote-{id}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let made = fs::write(tmp.join(rundir::SPEC_FILE), spec_bytes)
            .map_err(|e| Error::write(tmp.join(rundir::SPEC_FILE), e))
            .and_then(|()| self.heard(id, None, true).map(|_| ()))
            .and_then(|()| fs::rename(&tmp, self.lab.run_dir(id)).map_err(|e| Error::write(self.lab.run_dir(id), e)));
        if made.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        made
    }

    /// Refuses run folders that are not an accepted remote run's.
    fn check_accepted(&self, id: &str, dir: &Path) -> Result<()> {
        if fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
            return Err(Error::forbidden(
                "run",
                format!("run {id}'s folder here is a symbolic link: it takes no writes"),
            ));
        }
        if rundir::heard(&self.lab, id).is_none() {
            return Err(Error::forbidden(
                "run",
                format!("run {id} is this lab's own (it was not pushed here): it takes no writes from elsewhere"),
            ));
        }
        if !RunDir::at(dir.to_path_buf()).owner_gone() {
            return Err(Error::forbidden("run", format!("run {id} is supervised in this lab: it takes no writes")));
        }
        Ok(())
    }

    /// Waits for this process's or another's write into run `id` to end.
    fn turn(&self, id: &str) -> Result<File> {
        let marks = self.lab.root().join(rundir::REMOTE_DIR);
        fs::create_dir_all(&marks).map_err(|e| Error::io(&marks, e))?;
        let path = marks.join(format!("{id}.lock"));
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| Error::io(&path, e))?;
        flock::lock(&file, Mode::Exclusive).map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }
}

/// Opens the file `parts` inside `dir` for appending, making the folders on
/// its way; a symbolic link anywhere on the way, or a part that is not a
/// folder or a plain file, is refused, so nothing is written outside.
fn open_inside(dir: &Path, parts: &[&str]) -> Result<File> {
    let refuse = |p: &Path| {
        Error::forbidden(
            "run file path",
            format!("{} is a symbolic link or not a plain file or folder: it takes no writes", shown(dir, p)),
        )
    };
    let mut at = dir.to_path_buf();
    let (name, folders) = parts.split_last().expect("a path has a part");
    for part in folders {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(refuse(&at)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::create_dir(&at) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::write(&at, e)),
            },
            Err(e) => return Err(Error::io(&at, e)),
        }
    }
    at.push(name);
    if fs::symlink_metadata(&at).is_ok_and(|m| !m.is_file()) {
        return Err(refuse(&at));
    }
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&at)
        .map_err(|e| if e.raw_os_error() == Some(libc::ELOOP) { refuse(&at) } else { Error::write(&at, e) })
}

/// `p` as the writer named it, relative to the run folder.
fn shown(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Now;
    use crate::index::Index;
    use crate::record::{End, Record, RunStatus};

    const ID: &str = "r-2qt2y3nsng";

    fn at(lab: &Lab, t: f64) -> Lab {
        lab.clone().with_clock(Now::Fixed(t), Default::default())
    }

    fn spec(id: &str) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(&RunSpec::new(id.into(), 1000.0, Path::new("/elsewhere"))).unwrap();
        bytes.push(b'\n');
        bytes
    }

    fn lab() -> (tempfile::TempDir, Lab) {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        (tmp, lab)
    }

    #[test]
    fn pushes_append_what_is_new_and_say_where_to_resume() {
        let (_tmp, lab) = lab();
        let inbox = Inbox::new(at(&lab, 1000.0), 60.0);
        let e = inbox.append(ID, "output.log", 0, b"hi").unwrap_err();
        assert_eq!(e.kind(), crate::Kind::NotFound, "{e}");
        let e = inbox.append(ID, "run.json", 0, &spec("r-000000aaaa")).unwrap_err();
        assert_eq!(e.kind(), crate::Kind::Invalid, "{e}");
        assert_eq!(inbox.append(ID, "run.json", 0, &spec(ID)).unwrap(), Appended::Size(spec(ID).len() as u64));

        assert_eq!(inbox.append(ID, "media/a.txt", 0, b"abc").unwrap(), Appended::Size(3));
        // Again, and overlapping: only what is past the end is written.
        assert_eq!(inbox.append(ID, "media/a.txt", 0, b"abc").unwrap(), Appended::Size(3));
        assert_eq!(inbox.append(ID, "media/a.txt", 1, b"bcdef").unwrap(), Appended::Size(6));
        assert_eq!(inbox.append(ID, "media/a.txt", 9, b"x").unwrap(), Appended::Behind(6));
        let e = inbox.append(ID, "media/a.txt", 2, b"XY").unwrap_err();
        assert_eq!(e.kind(), crate::Kind::Conflict, "{e}");
        assert_eq!(fs::read(lab.run_dir(ID).join("media/a.txt")).unwrap(), b"abcdef");
        let sizes = inbox.sizes(ID).unwrap();
        assert_eq!(sizes.get("media/a.txt"), Some(&6));
        assert_eq!(sizes.get("run.json"), Some(&(spec(ID).len() as u64)));
        // The mark is beside the run folder, not in it.
        assert!(lab.root().join("remote").join(format!("{ID}.json")).is_file());
        assert!(!sizes.keys().any(|k| k.contains("remote")));
    }

    #[test]
    fn a_lab_s_own_runs_and_symbolic_links_take_no_writes() {
        let (tmp, lab) = lab();
        let inbox = Inbox::new(lab.clone(), 60.0);
        let mut own = RunSpec::new("r-000000aaaa".into(), 1000.0, tmp.path());
        let (_dir, lock) = RunDir::create(&lab, &mut own, b"").unwrap();
        let e = inbox.append(&own.id, "x", 0, b"x").unwrap_err();
        assert!(e.to_string().contains("this lab's own"), "{e}");
        drop(lock);

        inbox.append(ID, "run.json", 0, &spec(ID)).unwrap();
        std::os::unix::fs::symlink(tmp.path(), lab.run_dir(ID).join("media")).unwrap();
        let e = inbox.append(ID, "media/x", 0, b"x").unwrap_err();
        assert_eq!(e.kind(), crate::Kind::Forbidden, "{e}");
        std::os::unix::fs::symlink(tmp.path().join("y"), lab.run_dir(ID).join("y")).unwrap();
        let e = inbox.append(ID, "y", 0, b"x").unwrap_err();
        assert_eq!(e.kind(), crate::Kind::Forbidden, "{e}");
        assert!(!tmp.path().join("x").exists() && !tmp.path().join("y").exists());
    }

    #[test]
    fn an_accepted_run_is_live_while_heard_from_lost_after_the_silence_and_live_again_when_heard() {
        let (_tmp, lab) = lab();
        let start =
            Record::Start { time: 1000.0, pid: Some(1), child_pid: Some(2), pgid: Some(2), leader: None, job: None };
        Inbox::new(at(&lab, 1000.0), 60.0).append(ID, "run.json", 0, &spec(ID)).unwrap();
        let line = start.to_line();
        Inbox::new(at(&lab, 1000.0), 60.0).append(ID, rundir::SUPERVISOR_STREAM, 0, line.as_bytes()).unwrap();
        let status = |t: f64| {
            let (index, _) = Index::open_synced(&at(&lab, t)).unwrap();
            let run = index.run(ID).unwrap();
            (run.status, run.reason)
        };
        assert_eq!(status(1030.0).0, RunStatus::Running);
        let (lost, reason) = status(1061.0);
        assert_eq!(lost, RunStatus::Lost);
        assert!(reason.unwrap().contains("not been heard from for 1m"));
        // Lost here alone: the folder keeps the writer's bytes only.
        assert!(!lab.run_dir(ID).join(rundir::LOST_FILE).exists());

        Inbox::new(at(&lab, 1100.0), 60.0).heartbeat(ID).unwrap();
        assert_eq!(status(1100.0).0, RunStatus::Running);
        let end = Record::End(End {
            time: 1101.0,
            status: RunStatus::Finished,
            exit_code: Some(0),
            signal: None,
            reason: None,
        });
        let inbox = Inbox::new(at(&lab, 1101.0), 60.0);
        inbox.append(ID, rundir::SUPERVISOR_STREAM, line.len() as u64, end.to_line().as_bytes()).unwrap();
        assert_eq!(status(1500.0).0, RunStatus::Finished);
    }
}
