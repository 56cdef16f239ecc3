//! `labmate logs RUN`: a run's output, as the terminal showed it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use labmate::rundir::{OUTPUT_LOG, RunDir, STDERR_LOG};

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// A run id, unique id prefix, last 4 characters of an id, or name.
    run: String,
    /// Keep printing new output until the run ends.
    #[arg(long, short)]
    follow: bool,
    /// Start with the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Only what the run wrote to stderr.
    #[arg(long)]
    stderr: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let id = index.resolve(&args.run)?;
    let dir = RunDir::at(index.lab().run_dir(&id));
    let path = dir.file(if args.stderr { STDERR_LOG } else { OUTPUT_LOG });
    let mut out = io::stdout().lock();
    let mut pos = match args.tail {
        Some(n) => tail_start(&path, n)?,
        None => 0,
    };
    pos = copy_from(&path, pos, &mut out)?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        // Check for the end first, then drain: nothing written before the end is missed.
        let ended = dir.owner_gone();
        pos = copy_from(&path, pos, &mut out)?;
        if ended {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Copies the file from `pos` to its current end; returns the new position.
fn copy_from(path: &std::path::Path, pos: u64, out: &mut impl Write) -> anyhow::Result<u64> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(pos),
        Err(e) => return Err(e.into()),
    };
    f.seek(SeekFrom::Start(pos))?;
    let copied = io::copy(&mut f, out)?;
    out.flush()?;
    Ok(pos + copied)
}

/// The byte offset where the last `n` lines begin.
fn tail_start(path: &std::path::Path, n: usize) -> anyhow::Result<u64> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let len = f.metadata()?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut newlines = 0;
    let mut buf = vec![0u8; 64 * 1024];
    // A final newline ends the last line; it does not start another.
    let mut skip_last = true;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        for i in (0..chunk.len()).rev() {
            if chunk[i] == b'\n' {
                if skip_last && start + i as u64 == len - 1 {
                    skip_last = false;
                    continue;
                }
                newlines += 1;
                if newlines == n {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}
