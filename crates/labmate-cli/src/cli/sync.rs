//! `labmate sync --to URL`: push this lab's runs to a lab that accepts them
//! (`labmate serve --accept-runs`), and where a run or `labmate run` finds
//! the server and its token.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use labmate::policy::Policy;
use labmate::remote::push::{RunPushed, Sync};
use labmate::remote::{Client, Remote};
use labmate::{Error, Lab};
use serde_json::json;

use super::Context;

#[derive(clap::Args)]
#[command(after_help = "\
Asks the server what it has of each run and sends the rest: new files, and the bytes after what it
has. Run it again after any failure: nothing is lost or sent twice. A run still being written goes
up to its last whole record line; keep it live over there with --watch (or let its supervisor push
it: [remote] url in labmate.toml, or labmate run --remote URL).
The token: --token-file F, else $LABMATE_TOKEN, else [remote] token_file; it is the server's, from
its lab's .labmate/serve-token.")]
pub struct Args {
    /// The accepting server, http://HOST:PORT (the URL it printed will do) [default: [remote] url]
    #[arg(long = "to", value_name = "URL")]
    to: Option<String>,
    /// The file holding the server's token.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Keep pushing, about once a second, until interrupted.
    #[arg(long)]
    watch: bool,
    /// Print what was pushed as JSON.
    #[arg(long)]
    json: bool,
    /// The runs to push (ids or unique prefixes); every run of the lab by default.
    #[arg(value_name = "RUN")]
    runs: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = ctx.lab()?;
    let remote = remote(ctx, &lab, args.to.as_deref(), args.token_file.as_deref())?.ok_or_else(|| {
        Error::invalid("--to", "no server to push to: give --to URL, or [remote] url in labmate.toml")
    })?;
    let ids = if args.runs.is_empty() {
        Vec::new()
    } else {
        let index = ctx.index()?;
        args.runs.iter().map(|q| index.resolve(q)).collect::<labmate::Result<Vec<_>>>()?
    };
    let mut sync = Sync::new(Client::new(remote, Duration::from_secs(30)));
    let mut last_error: Option<String> = None;
    loop {
        let round = sync.round(&lab, &ids)?;
        if !args.watch {
            show(&sync, &round, args.json, true)?;
            return match round.into_iter().find_map(|r| r.pushed.err()) {
                Some(e) => Err(e.into()),
                None => Ok(ExitCode::SUCCESS),
            };
        }
        // Watching: what was pushed, and each new failure once.
        let error = round.iter().find_map(|r| r.pushed.as_ref().err().map(|e| e.to_string()));
        let news = round.iter().any(|r| r.pushed.as_ref().is_ok_and(|p| p.bytes > 0));
        if news || (error.is_some() && error != last_error) {
            show(&sync, &round, args.json, false)?;
        }
        last_error = error;
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn show(sync: &Sync, round: &[RunPushed], json: bool, all: bool) -> anyhow::Result<()> {
    let total: u64 = round.iter().filter_map(|r| r.pushed.as_ref().ok()).map(|p| p.bytes).sum();
    if json {
        let runs: Vec<_> = round
            .iter()
            .filter(|r| all || r.pushed.as_ref().is_err() || r.pushed.as_ref().is_ok_and(|p| p.bytes > 0))
            .map(|r| match &r.pushed {
                Ok(p) => json!({"id": r.id, "files": p.files, "bytes": p.bytes}),
                Err(e) => json!({"id": r.id, "error": e.to_string(), "kind": format!("{:?}", e.kind()).to_lowercase()}),
            })
            .collect();
        return super::print_json(&json!({"to": sync.url(), "runs": runs, "bytes": total}));
    }
    let mut sent = 0;
    for r in round {
        match &r.pushed {
            Ok(p) if p.files > 0 => {
                sent += 1;
                say!(
                    "labmate: sync: {}: {} bytes in {} file{}",
                    r.id,
                    p.bytes,
                    p.files,
                    if p.files == 1 { "" } else { "s" }
                );
            }
            Ok(_) => {}
            Err(e) => say!("labmate: sync: {}: not pushed: {e}", r.id),
        }
    }
    if all {
        let current = round.iter().filter(|r| r.pushed.as_ref().is_ok_and(|p| p.files == 0)).count();
        say!(
            "labmate: sync: {sent} run{} pushed to {} ({total} bytes), {current} up to date",
            if sent == 1 { "" } else { "s" },
            sync.url()
        );
    }
    Ok(())
}

/// Where this lab's runs are pushed, if anywhere: `url` (a flag) or
/// `[remote] url`; the token from `token_file` (a flag), `LABMATE_TOKEN`
/// or `[remote] token_file` (relative to the repository root).
pub fn remote(
    ctx: &Context,
    lab: &Lab,
    url: Option<&str>,
    token_file: Option<&Path>,
) -> anyhow::Result<Option<Remote>> {
    let policy = Policy::load(lab)?;
    let Some(url) = url.map(str::to_string).or(policy.remote.url.clone()) else {
        return Ok(None);
    };
    if let Some(file) = token_file {
        return Ok(Some(Remote::with_token_file(&url, file)?));
    }
    if let Some(token) = &ctx.token_env {
        return Ok(Some(Remote::new(&url, token)?));
    }
    if let Some(file) = &policy.remote.token_file {
        return Ok(Some(Remote::with_token_file(&url, &lab.repo_root().join(file))?));
    }
    Err(Error::invalid(
        "token",
        format!(
            "no token for {url}: give --token-file F, set LABMATE_TOKEN, or [remote] token_file in labmate.toml \
             (the token is in the serving lab's .labmate/serve-token)"
        ),
    )
    .into())
}
