//! The command-line face: argument parsing, routing to one file per
//! subcommand, and the one boundary that turns errors into messages and exit
//! codes. No logic of the lab lives here.
//!
//! Text meant for a person goes out through [`print_text`], [`eprint_text`]
//! or [`say!`], which escape control characters (`labmate::text`): names,
//! keys and messages come from users and their programs. JSON and CSV are
//! written as they are.

/// `eprintln!` for labmate's own messages: what they quote cannot control the terminal.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::eprint_text(&format!("{}\n", format_args!($($arg)*)))
    };
}

mod approve;
mod baseline;
mod compare;
mod demo;
mod diffstat;
mod events;
mod export;
mod hints;
mod import;
mod init;
mod logs;
mod mcp;
mod metrics;
mod note;
mod notebook;
mod plot;
mod profile;
mod queue;
mod reindex;
mod reject;
mod repro;
mod review;
mod run;
mod runs;
mod serve;
mod show;
mod status;
mod stop;
mod supervise;
mod sweep;
mod sync;
mod table;
mod wait;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use labmate::clock::Now;
use labmate::facade::Author;
use labmate::id::Ids;
use labmate::text::escape_keeping_lines;
use labmate::{Index, Kind, Lab};

/// labmate: launch, babysit and compare ML runs; one registry for you and your agent.
#[derive(Parser)]
#[command(name = "labmate", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a lab (.labmate/) in the current folder.
    Init(init::Args),
    /// Launch a command as a supervised run.
    Run(run::Args),
    /// Launch a grid or random draws of a command as runs; `sweep status ID` shows how it goes.
    Sweep(sweep::Args),
    /// List runs, newest first.
    Runs(runs::Args),
    /// Show one run in full.
    Show(show::Args),
    /// Print a run's output.
    Logs(logs::Args),
    /// Print a run's metric series.
    Metrics(metrics::Args),
    /// A compact summary of runs, for people and models.
    Status(status::Args),
    /// Block until runs end, an alert fires, a condition holds, or a timeout.
    Wait(wait::Args),
    /// Stop runs: SIGTERM, then SIGKILL after the grace period.
    Stop(stop::Args),
    /// Alert, lifecycle and warning events.
    Events(events::Args),
    /// Runs waiting for a slot; `queue cancel RUN` takes one out.
    Queue(queue::Args),
    /// Compare runs or groups: config, code, and metrics with an honest verdict.
    Compare(compare::Args),
    /// Set, show or clear the baseline runs are measured against.
    Baseline(baseline::Args),
    /// Export run summaries or metric series: csv, jsonl, parquet.
    Export(export::Args),
    /// Bring runs in from TensorBoard event files, MLflow stores or wandb offline runs.
    Import(import::Args),
    /// Draw metric curves of runs or groups to an SVG or PNG file.
    Plot(plot::Args),
    /// Where a run's step time goes, per span (from `labmate.span` in the client).
    Profile(profile::Args),
    /// Add an entry to the lab notebook.
    Note(note::Args),
    /// Render, check or read the lab notebook.
    Notebook(notebook::Args),
    /// Run a bug's reproducer and record whether it passes.
    Repro(repro::Args),
    /// Pending approvals and review items; `review request` asks for one.
    Review(review::Args),
    /// Approve a pending request (it launches) or review item.
    Approve(approve::Args),
    /// Reject a pending request, or dispute a review item.
    Reject(reject::Args),
    /// How much the code changed since a run or a commit.
    Diffstat(diffstat::Args),
    /// Delete the index and rebuild it from the run folders.
    Reindex,
    /// Run a small demonstration sweep in a new folder.
    Demo(demo::Args),
    /// Serve the dashboard and the JSON API on this machine (http://127.0.0.1:8765 by default).
    Serve(serve::Args),
    /// Push this lab's runs to a lab that accepts them (`serve --accept-runs`).
    Sync(sync::Args),
    /// Serve the lab as MCP tools for a coding agent, over stdin/stdout.
    Mcp(mcp::Args),
    /// Supervise a detached run (internal).
    #[command(name = "__supervise", hide = true)]
    Supervise(supervise::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context::from_env()?;
    match cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Run(args) => run::run(&ctx, args),
        Command::Sweep(args) => sweep::run(&ctx, args),
        Command::Runs(args) => runs::run(&ctx, args),
        Command::Show(args) => show::run(&ctx, args),
        Command::Logs(args) => logs::run(&ctx, args),
        Command::Metrics(args) => metrics::run(&ctx, args),
        Command::Status(args) => status::run(&ctx, args),
        Command::Wait(args) => wait::run(&ctx, args),
        Command::Stop(args) => stop::run(&ctx, args),
        Command::Events(args) => events::run(&ctx, args),
        Command::Queue(args) => queue::run(&ctx, args),
        Command::Compare(args) => compare::run(&ctx, args),
        Command::Baseline(args) => baseline::run(&ctx, args),
        Command::Export(args) => export::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, args),
        Command::Plot(args) => plot::run(&ctx, args),
        Command::Profile(args) => profile::run(&ctx, args),
        Command::Note(args) => note::run(&ctx, args),
        Command::Notebook(args) => notebook::run(&ctx, args),
        Command::Repro(args) => repro::run(&ctx, args),
        Command::Review(args) => review::run(&ctx, args),
        Command::Approve(args) => approve::run(&ctx, args),
        Command::Reject(args) => reject::run(&ctx, args),
        Command::Diffstat(args) => diffstat::run(&ctx, args),
        Command::Reindex => reindex::run(&ctx),
        Command::Demo(args) => demo::run(&ctx, args),
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Sync(args) => sync::run(&ctx, args),
        Command::Mcp(args) => mcp::run(&ctx, args),
        Command::Supervise(args) => supervise::run(&ctx, args),
    }
}

/// Where a command runs: the working directory and the lab override.
pub struct Context {
    pub cwd: PathBuf,
    pub lab_dir: Option<PathBuf>,
    /// `LABMATE_AUTHOR`: who acts when `--author` does not say.
    pub author_env: Option<String>,
    /// `LABMATE_TOKEN`: the token of the server runs are pushed to.
    pub token_env: Option<String>,
    /// `LABMATE_NOW` (for tests): the moment every time recorded or shown reads.
    now: Now,
    /// `LABMATE_ID_SEED` (for tests): new ids count up from it instead of being random.
    ids: Ids,
}

/// `--author`, for every command that records who acts.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuthorArg {
    /// Who acts, recorded as such; `agent:NAME` marks an agent [default: $LABMATE_AUTHOR, else the user name]
    #[arg(long = "author", id = "author", value_name = "NAME")]
    pub name: Option<String>,
}

impl Context {
    fn from_env() -> anyhow::Result<Context> {
        Ok(Context {
            cwd: std::env::current_dir().context("the current directory is not readable")?,
            lab_dir: std::env::var_os("LABMATE_DIR").filter(|v| !v.is_empty()).map(PathBuf::from),
            author_env: std::env::var("LABMATE_AUTHOR").ok().filter(|a| !a.trim().is_empty()),
            token_env: std::env::var("LABMATE_TOKEN").ok().filter(|t| !t.trim().is_empty()),
            now: test_var("LABMATE_NOW", Now::fixed)?.unwrap_or_default(),
            ids: test_var("LABMATE_ID_SEED", |s| {
                let range = format!("use a whole number from 0 to {}", labmate::id::RANDOM_VALUES - 1);
                s.trim().parse::<u64>().map_err(|_| format!("bad id seed '{s}': {range}")).and_then(Ids::seeded)
            })?
            .unwrap_or_default(),
        })
    }

    /// The time to record or show at this moment.
    pub fn now(&self) -> f64 {
        self.now.get()
    }

    /// `lab`, recording with this command's clock and ids.
    pub fn clocked(&self, lab: Lab) -> Lab {
        lab.with_clock(self.now, self.ids.clone())
    }

    /// Who acts: `--author`, else `LABMATE_AUTHOR`, else the user name. The
    /// one place the acting author is read; the library is always told.
    pub fn author(&self, arg: &AuthorArg) -> labmate::Result<Author> {
        match arg.name.as_deref() {
            Some(a) if a.trim().is_empty() => Err(labmate::Error::invalid("author", "--author must not be empty")),
            Some(a) => Author::new(a),
            None => Author::new(&self.author_env.clone().unwrap_or_else(labmate::sys::host::username)),
        }
    }

    pub fn lab(&self) -> labmate::Result<Lab> {
        Lab::find(&self.cwd, self.lab_dir.as_deref()).map(|lab| self.clocked(lab))
    }

    /// The lab's index, caught up with its run folders.
    pub fn index(&self) -> labmate::Result<Index> {
        let (index, report) = Index::open_synced(&self.lab()?)?;
        for problem in &report.problems {
            say!("labmate: warning: {problem}");
        }
        Ok(index)
    }
}

/// A variable that tests set so that output repeats exactly, parsed by
/// `parse`; unset or empty is None. A bad value names the variable.
fn test_var<T>(name: &'static str, parse: impl Fn(&str) -> Result<T, String>) -> labmate::Result<Option<T>> {
    let Some(raw) = std::env::var_os(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let text = raw.to_str().ok_or_else(|| labmate::Error::invalid("environment", format!("{name} is not UTF-8")))?;
    parse(text).map(Some).map_err(|why| labmate::Error::invalid("environment", format!("{name}: {why}")))
}

/// Prints an error the way users should see it, with a hint where one
/// helps, and picks the exit code by its kind ([`hints::exit_code`]).
pub fn report(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|e| e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)) {
        return ExitCode::SUCCESS;
    }
    // Errors quote runs, keys and files: escaped, but their own lines kept (an expression's caret).
    match err.downcast_ref::<labmate::Error>() {
        Some(e) => {
            let mut text = format!("labmate: error: {e}\n");
            if let Some(hint) = hints::hint(e) {
                text.push_str(&format!("hint: {hint}\n"));
            }
            if e.kind() == Kind::Internal {
                text.push_str("this looks like a bug in labmate; please report it\n");
            }
            eprint_text(&text);
            ExitCode::from(hints::exit_code(e.kind()))
        }
        None => {
            eprint_text(&format!("labmate: error: {err:#}\n"));
            ExitCode::FAILURE
        }
    }
}

/// Writes text for a person to stdout, control characters escaped.
fn print_text(text: &str) -> io::Result<()> {
    io::stdout().lock().write_all(escape_keeping_lines(text).as_bytes())
}

/// Writes text for a person to stderr, control characters escaped.
pub(crate) fn eprint_text(text: &str) {
    let _ = io::stderr().lock().write_all(escape_keeping_lines(text).as_bytes());
}

/// Writes JSON to stdout, pretty and newline-terminated.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
