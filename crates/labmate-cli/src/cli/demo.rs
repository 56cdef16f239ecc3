//! `labmate demo`: a self-contained demonstration. It makes a new experiment
//! folder with a bundled pure-Python toy trainer, runs a small sweep of
//! learning rates and seeds under supervision (one learning rate diverges
//! and is stopped), and prints the runs table, the learning rates compared
//! across seeds with a verdict, a plot, and where everything is.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use labmate::facade::{self, Admission, Author};
use labmate::follow::{self, Wall};
use labmate::launch;
use labmate::notebook::{self, NewEntry};
use labmate::query::Path as KeyPath;
use labmate::record::RunStatus;
use labmate::spec::LaunchRequest;
use labmate::supervisor;
use labmate::{Index, Lab, charts, compare, plot, registry};

use super::Context;

const TRAINER: &str = include_str!("../../../../demo/train.py");
const LEARNING_RATES: [&str; 4] = ["0.001", "0.01", "0.03", "3.0"];
const SEEDS: [u32; 2] = [1, 2];

#[derive(clap::Args)]
pub struct Args {
    /// The folder to create (default: ./labmate-demo, or -2, -3... if taken).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Training steps per run.
    #[arg(long, default_value_t = 200)]
    steps: u32,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let dir = match args.dir {
        Some(d) if ctx.cwd.join(&d).exists() => {
            let why = format!("{} already exists; the demo makes a new folder", d.display());
            return Err(labmate::Error::conflict("folder", why).into());
        }
        Some(d) => ctx.cwd.join(d),
        None => free_dir(&ctx.cwd),
    };
    let python = supervisor_python()?;
    write_experiment(&dir)?;
    let lab = ctx.clocked(Lab::create(&dir.join(".labmate"))?);
    let demo = Author::new("demo")?;
    facade::note(
        &lab,
        NewEntry {
            kind: "hypothesis".into(),
            text: "A learning rate between 0.01 and 0.03 trains the toy regression best; 3.0 is far too large and diverges."
                .into(),
            ..Default::default()
        },
        None,
        &demo,
    )?;
    let exe = std::env::current_exe()?;
    let author = ctx.author(&Default::default())?;
    // What to type: `labmate` when that is this binary, else its own path.
    let lm = invocation(&exe);

    println!(
        "labmate demo: a sweep of {} learning rates x {} seeds in {}",
        LEARNING_RATES.len(),
        SEEDS.len(),
        dir.display()
    );
    let mut ids = Vec::new();
    for lr in LEARNING_RATES {
        for seed in SEEDS {
            let name = format!("lr{lr}-s{seed}");
            let request = LaunchRequest {
                name: Some(name.clone()),
                tags: vec!["demo".into()],
                config: vec![],
                rules: vec![],
                queue: false,
                command: [
                    python.as_str(),
                    "train.py",
                    "--lr",
                    lr,
                    "--seed",
                    &seed.to_string(),
                    "--steps",
                    &args.steps.to_string(),
                ]
                .map(String::from)
                .to_vec(),
                cwd: dir.clone(),
                author: Some(author.name.clone()),
                ..Default::default()
            };
            let prepared = launch::prepare(&lab, request)?;
            let id = prepared.spec.id.clone();
            supervisor::spawn_detached(&exe, prepared)?;
            println!("  started {id}  {name}");
            ids.push(id);
        }
    }

    let mut index = Index::open(&lab)?;
    let started = Instant::now();
    let ends = follow::ended(&mut index, &ids, &Wall, Duration::from_millis(250), Some(Duration::from_secs(300)))?;
    if ends.iter().any(Option::is_none) {
        bail!("the demo's runs did not end within 5 minutes; see `labmate runs` in {}", dir.display());
    }
    let runs = index.runs(Some(ids.len()))?;
    println!("\nall {} runs ended after {:.1}s\n", runs.len(), started.elapsed().as_secs_f64());
    print!("{}", super::runs::render(&runs, lab.now(), None));

    // What the babysitter did: every alert, oldest first.
    let alerts: Vec<_> = index.events_since(None, 0.0)?.into_iter().filter(|e| e.event.kind == "alert").collect();
    if !alerts.is_empty() {
        println!(
            "
the babysitter at work:"
        );
        for a in &alerts {
            let action = a.event.data.as_ref().and_then(|d| d["action"].as_str()).unwrap_or("alert");
            let did = if action == "stop" { "stopped" } else { "flagged" };
            println!("  {did} {} ({}): {}", a.name.as_deref().unwrap_or(&a.run), a.run, a.event.message);
        }
    }

    // The registry's view: learning rates across seeds, a verdict, a plot.
    let healthy: Vec<_> = index.runs(None)?.into_iter().filter(|r| r.status == RunStatus::Finished).collect();
    let key = |k| KeyPath::parse(k).map_err(|why| labmate::Error::internal("key", why));
    let by = vec![key("config.lr")?];
    let of = vec![key("metrics.val_loss.last")?];
    let groups = registry::group(&index, &healthy, &by, &of, "seed");
    println!("\nfinal val_loss by learning rate, across seeds (`{lm} runs --group-by config.lr`):");
    print!("{}", super::runs::render_groups(&groups, &by, &of, &super::runs::Style::Text));
    let sides = ["config.lr=0.01", "config.lr=0.03"]
        .map(|s| registry::side(&index, s))
        .into_iter()
        .collect::<labmate::Result<Vec<_>>>()?;
    let report = compare::compare(&index, &sides, &of)?;
    println!("\n`{lm} compare config.lr=0.01 config.lr=0.03 --metric val_loss`:");
    print!("{}", super::compare::render(&report));
    let plot_path = dir.join("plots/val_loss_by_lr.png");
    std::fs::create_dir_all(dir.join("plots"))?;
    let options = charts::Options { x: None, smooth: None, log_y: true, group_by: by.clone(), width: 900 };
    let figure = charts::figure(&index, &healthy, &["val_loss".to_string()], &options)?;
    plot::render(&figure, plot::Format::Png, &plot_path)?;

    // The notebook: the sweep's results table, a result with live (checked)
    // numbers and the plot, then one launch held for a human's approval.
    notebook::render(
        &lab,
        &index,
        &notebook::RenderOptions { group_by: vec!["config.lr".into()], ..Default::default() },
    )?;
    let text = format!(
        "lr 0.03 ends at val_loss {{{{group:config.lr=0.03 .metrics.val_loss.last.mean}}}} (mean of 2 seeds) and lr 0.01 at \
         {{{{group:config.lr=0.01 .metrics.val_loss.last.mean}}}}: with 2 seeds each the difference is not detectable \
         (`labmate compare config.lr=0.01 config.lr=0.03`). lr 3.0 diverged and was stopped by the babysitter.\n\n{}",
        notebook::image_link(&lab, std::path::Path::new("plots/val_loss_by_lr.png"))?
    );
    let result =
        facade::note(&lab, NewEntry { kind: "result".into(), text, ..Default::default() }, None, &demo)?.entry.id;
    let check = notebook::check(&lab, &index)?;
    let held = match facade::launch(&lab, long_run(&python, &dir), &demo, |_| {})? {
        Admission::NeedsApproval(request) => request,
        Admission::Ready(_) => bail!("the demo's long run should have waited for approval"),
    };
    println!(
        "\nthe notebook ({}):\n  a hypothesis, the results table by learning rate, result {result} with {} live numbers \
         (`{lm} notebook check`: {} mismatches) and the plot\n  held for approval: request {} ({}) -- \
         a human answers `{lm} approve {}` or `{lm} reject {} --reason ...`",
        notebook::Settings::load(&lab)?.path.display(),
        check.references,
        check.mismatches.len(),
        held.id,
        held.reason.join(", "),
        held.id,
        held.id,
    );

    let diverged = runs.iter().find(|r| r.status != RunStatus::Finished).map_or("lr3.0-s1".into(), |r| r.id.clone());
    let good =
        runs.iter().find(|r| r.name.as_deref() == Some("lr0.01-s1")).map_or("lr0.01-s1".into(), |r| r.id.clone());
    println!(
        "\nwhere everything is:
  experiment   {dir}  (train.py, committed to git)
  lab          {lab}
  run folders  {runs}/<id>/  (run.json, *.jsonl records, output.log, patch.diff)
  index        {index}  (derived; `{lm} reindex` rebuilds it)
  plot         {plot}
  dashboard    cd {dir} && {lm} serve --user $USER
               then open the URL it prints: the sweep, the notebook, and the held approval, which a click approves

try:
  cd {dir}
  {lm} runs
  {lm} status {diverged}        # the diverged run, in a few lines
  {lm} events {diverged}        # its alert, with the evidence in --json
  {lm} metrics {good} val_loss --json
  {lm} metrics {good} loss --points 20",
        dir = dir.display(),
        lab = lab.root().display(),
        runs = lab.runs_dir().display(),
        index = index.path().display(),
        plot = plot_path.display(),
    );
    Ok(ExitCode::SUCCESS)
}

/// How a user runs this binary: `labmate` when the first `labmate` on PATH
/// is this very file, else its full path (a `cargo run` build is not on PATH).
fn invocation(exe: &Path) -> String {
    let me = fs::canonicalize(exe).ok();
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("labmate")).find(|c| c.is_file()))
        .and_then(|c| fs::canonicalize(c).ok());
    match (me, on_path) {
        (Some(me), Some(found)) if me == found => "labmate".into(),
        _ => exe.display().to_string(),
    }
}

fn free_dir(cwd: &Path) -> PathBuf {
    let first = cwd.join("labmate-demo");
    if !first.exists() {
        return first;
    }
    (2..).map(|n| cwd.join(format!("labmate-demo-{n}"))).find(|p| !p.exists()).expect("a free name")
}

fn supervisor_python() -> anyhow::Result<String> {
    for candidate in ["python3", "python"] {
        let ok = Command::new(candidate)
            .arg("-c")
            .arg("import sys; sys.exit(sys.version_info < (3, 8))")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(candidate.into());
        }
    }
    bail!("the demo's toy trainer needs Python 3.8 or newer as `python3` on PATH")
}

/// The experiment folder: the trainer, the client beside it, all committed.
/// A long run that the demo's policy holds for a human's yes: tag `big`.
fn long_run(python: &str, dir: &Path) -> LaunchRequest {
    LaunchRequest {
        name: Some("lr0.03-long".into()),
        tags: vec!["big".into()],
        command: [python, "train.py", "--lr", "0.03", "--steps", "5000"].map(String::from).to_vec(),
        cwd: dir.to_path_buf(),
        ..Default::default()
    }
}

fn write_experiment(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join("train.py"), TRAINER)?;
    // The Python client package, as the binary embeds it, beside the trainer.
    for (rel, bytes) in labmate::python::FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    fs::write(dir.join(".gitignore"), "__pycache__/\n")?;
    fs::write(
        dir.join("labmate.toml"),
        "# The lab's policy: launches tagged `big` wait for a human's yes.\n[approval]\ntags = [\"big\"]\n",
    )?;
    let git = |args: &[&str]| {
        Command::new("git")
            .args([
                "-c",
                "user.name=labmate demo",
                "-c",
                "user.email=demo@labmate.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // Without git the demo still runs; its runs just carry no commit.
    let _ = git(&["init", "-q"]) && git(&["add", "-A"]) && git(&["commit", "-q", "-m", "toy trainer"]);
    Ok(())
}
