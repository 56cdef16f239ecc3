//! Pushing one run folder to an accepting lab: what the lab has is asked
//! once, then every file's bytes past that are sent in pieces, each at its
//! offset. Pushing again after any failure sends only what is missing.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::accept::Appended;
use super::{Client, Sizes, files_of};
use crate::error::{Error, Kind, Result};
use crate::lab::Lab;
use crate::rundir::{self, RunDir};

/// The most bytes one request carries.
pub const PIECE: usize = 4 << 20;

/// What one push sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Files that got bytes.
    pub files: usize,
    pub bytes: u64,
}

/// How much of a file still being written goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upto {
    /// Record streams (`*.jsonl`) up to their last whole line: a line being
    /// written goes once it is whole, and the accepting lab's index never
    /// sees half of one in a run that has ended.
    WholeLines,
    /// Every byte there: the run's writers are done.
    All,
}

/// Pushes what the lab behind `client` lacks of the run in `dir`. `theirs`
/// is what the lab has, asked first when `None`, and kept up to date: a
/// caller that pushes the same run again passes it back. On an error it is
/// reset, so that the next push asks again.
pub fn push_run(client: &Client, dir: &RunDir, id: &str, theirs: &mut Option<Sizes>, upto: Upto) -> Result<Pushed> {
    let result = push(client, dir, id, theirs, upto);
    if result.is_err() {
        *theirs = None;
    }
    result
}

fn push(client: &Client, dir: &RunDir, id: &str, theirs: &mut Option<Sizes>, upto: Upto) -> Result<Pushed> {
    if theirs.is_none() {
        *theirs = Some(client.sizes(id)?);
    }
    let theirs = theirs.as_mut().expect("asked above");
    let mine = files_of(dir.path())?;
    // The spec first (a lab makes a run of it); the supervisor's stream,
    // which holds the run's end, last.
    let mut order: Vec<(&String, &u64)> = mine.iter().collect();
    order.sort_by_key(|(path, _)| match path.as_str() {
        rundir::SPEC_FILE => 0,
        rundir::SUPERVISOR_STREAM => 2,
        _ => 1,
    });
    let mut pushed = Pushed::default();
    let mut buf = vec![0u8; PIECE];
    // A file that cannot go (its copies differ) holds up no other file.
    let mut differs = None;
    for (path, &size) in order {
        let had = theirs.get(path).copied();
        if had == Some(size) {
            continue;
        }
        let before = had.unwrap_or(0);
        match push_file(client, dir, id, path, before, size, upto, &mut buf) {
            Ok(at) => {
                theirs.insert(path.clone(), at);
                if at > before || had.is_none() {
                    pushed.files += 1;
                    pushed.bytes += at - before;
                }
            }
            // Gone since the folder was listed: nothing to push.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == Kind::Conflict => differs = differs.or(Some(e)),
            Err(e) => return Err(e),
        }
    }
    match differs {
        Some(e) => Err(e),
        None => Ok(pushed),
    }
}

/// Pushes the bytes of `path` from `at`, which the lab has, to `size`;
/// returns how much of it the lab has then.
#[allow(clippy::too_many_arguments)]
fn push_file(
    client: &Client,
    dir: &RunDir,
    id: &str,
    path: &str,
    mut at: u64,
    size: u64,
    upto: Upto,
    buf: &mut [u8],
) -> Result<u64> {
    if at > size {
        return Err(Error::conflict(
            "remote",
            format!(
                "the lab at {} has {at} bytes of {path} of run {id}, more than the {size} here: \
                 the two copies of the run differ",
                client.url()
            ),
        ));
    }
    let file_path = dir.file(path);
    let file = File::open(&file_path).map_err(|e| Error::io(&file_path, e))?;
    if size == 0 {
        // An empty file is made there too (a run's lock, a log nothing went to).
        return Ok(match client.append(id, path, 0, &[])? {
            Appended::Size(s) | Appended::Behind(s) => s,
        });
    }
    let records = path.ends_with(".jsonl");
    let mut stuck = 0;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], at).map_err(|e| Error::io(&file_path, e))?;
        let mut piece = &buf[..n];
        if records {
            // Pieces end at a line's end, so that no reader over there takes
            // a cut for a torn line; a line being written waits for its end.
            match piece.iter().rposition(|b| *b == b'\n') {
                Some(nl) => piece = &piece[..=nl],
                None if upto == Upto::WholeLines && at + n as u64 == size => break,
                None => {}
            }
        }
        let now_at = match client.append(id, path, at, piece)? {
            Appended::Size(s) | Appended::Behind(s) => s,
        };
        stuck = if now_at <= at { stuck + 1 } else { 0 };
        if stuck > 2 {
            return Err(Error::conflict(
                "remote",
                format!("the lab at {} keeps {path} of run {id} at {now_at} bytes after pushes", client.url()),
            ));
        }
        at = now_at;
    }
    Ok(at)
}

/// One run's part in a [`Sync`] round.
#[derive(Debug)]
pub struct RunPushed {
    pub id: String,
    pub pushed: Result<Pushed>,
}

/// Pushing a lab's runs, round after round: what the accepting lab has of
/// each run is asked once, then kept.
pub struct Sync {
    client: Client,
    theirs: std::collections::HashMap<String, Option<Sizes>>,
}

impl Sync {
    pub fn new(client: Client) -> Sync {
        Sync { client, theirs: Default::default() }
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// Pushes what is new in the runs `ids` of `lab` (every run folder when
    /// empty). A run still being written goes up to its last whole line,
    /// an ended one whole. When the lab cannot be reached or refuses the
    /// token, the round stops at the first run with that error.
    pub fn round(&mut self, lab: &Lab, ids: &[String]) -> Result<Vec<RunPushed>> {
        let ids = if ids.is_empty() { run_ids(lab)? } else { ids.to_vec() };
        let mut pushed = Vec::with_capacity(ids.len());
        for id in ids {
            let dir = RunDir::at(lab.run_dir(&id));
            let upto = if dir.owner_gone() { Upto::All } else { Upto::WholeLines };
            let theirs = self.theirs.entry(id.clone()).or_default();
            let result = push_run(&self.client, &dir, &id, theirs, upto);
            let unreachable = matches!(&result, Err(e) if e.kind() == Kind::Environment
                || matches!(e, Error::Forbidden { what: "token", .. }));
            pushed.push(RunPushed { id, pushed: result });
            if unreachable {
                break;
            }
        }
        Ok(pushed)
    }
}

/// The lab's run folders, oldest first.
pub fn run_ids(lab: &Lab) -> Result<Vec<String>> {
    let runs = lab.runs_dir();
    let entries = match std::fs::read_dir(&runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&runs, e)),
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| crate::id::looks_like_run_id(name))
        .collect();
    ids.sort();
    Ok(ids)
}
