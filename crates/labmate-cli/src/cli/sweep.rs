//! `labmate sweep`: launch a grid or random draws of a command as runs,
//! through the gates once; `sweep status ID` shows how it goes and, once
//! every run has ended, the comparison across seeds.

use std::fmt::Write as _;
use std::process::ExitCode;

use labmate::facade::{self, SweepAdmission, SweepPlan};
use labmate::policy::Policy;
use labmate::query::Path;
use labmate::review::ReviewState;
use labmate::spec::LaunchRequest;
use labmate::sweep::{self, Progress};
use labmate::{Lab, clock};

use super::run::NEEDS_APPROVAL;
use super::runs::{Style, render_groups};
use super::table::Table;
use super::{AuthorArg, Context, print_json, print_text};

const EXAMPLES: &str = "\
Examples:
  labmate sweep --grid lr=1e-3,3e-3 --grid seed=1,2,3 -- python train.py --lr {lr} --seed {seed}
  labmate sweep --random 8 --dist 'lr=loguniform(1e-4,1e-2)' --dist 'bs=choice(32,64)' --seed 1 \\
      --queue --name 'lr{lr}-bs{bs}' -- python train.py --lr={lr} --batch-size={bs}
  labmate sweep --grid seed=1,2,3,4 --slurm --partition gpu --gpus 1 --time 2h --max-concurrent 2 \
      -- python train.py --seed {seed}
  labmate sweep status s-...

{key} in the command and the name is the point's value ({{ and }} are braces); each run's config
holds its point, and every run is tagged with the sweep's id. Exit code 6: the sweep needs a
human's approval, asked once for all its runs (the request id is printed).";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// The runs' name template, e.g. 'lr{lr}-s{seed}' (default: the keys and values, lr=0.001,seed=1).
    #[arg(long, value_name = "TEMPLATE")]
    name: Option<String>,
    /// A key and its values; repeat for more: the sweep is their cartesian product, in the order given.
    #[arg(long = "grid", value_name = "KEY=V1,V2,...")]
    grid: Vec<String>,
    /// Draw N random points from the --dist distributions (crossed with any --grid).
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// A key's distribution: uniform(a,b), loguniform(a,b), int(a,b) or choice(v1,v2,...); repeat for more.
    #[arg(long = "dist", value_name = "KEY=DIST")]
    dist: Vec<String>,
    /// The seed of the random draws (recorded; drawn when not given).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Launch through the queue: [queue] max_concurrent in labmate.toml limits how many run at once.
    #[arg(long)]
    queue: bool,
    #[command(flatten)]
    slurm: super::run::SlurmArgs,
    /// With --slurm: at most K of the sweep's runs at once (the job array's %K).
    #[arg(long, value_name = "K")]
    max_concurrent: Option<u32>,
    /// A tag for every run; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// A config value every run shares; repeat for more.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// A babysitting rule for every run; repeat for more.
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<String>,
    /// Print the sweep's record as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    author: AuthorArg,
    /// The command and its arguments, after `--`, with {key} placeholders.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Where each point's run stands; the comparison across seeds once all have ended.
    Status {
        /// The sweep's id (s-...).
        id: String,
        /// The config key that holds the seed (default: [runs] seed_key in labmate.toml, or `seed`).
        #[arg(long, value_name = "KEY")]
        seed_key: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Action::Status { id, seed_key, json }) = args.action {
        return status(ctx, &id, seed_key, json);
    }
    let lab = ctx.clocked(Lab::find_or_create(&ctx.cwd, ctx.lab_dir.as_deref())?);
    let space = sweep::parse(&args.grid, &args.dist, args.random)?;
    let plan = SweepPlan {
        space,
        grid: args.grid,
        dist: args.dist,
        seed: args.seed,
        launch: LaunchRequest {
            name: args.name,
            tags: args.tags,
            config: args.config,
            rules: args.rules,
            queue: args.queue,
            command: args.command,
            cwd: ctx.cwd.clone(),
            slurm: args.slurm.request(),
            ..Default::default()
        },
        max_concurrent: args.max_concurrent,
    };
    let exe = std::env::current_exe()?;
    let admission = facade::sweep(
        &lab,
        plan,
        &ctx.author(&args.author)?,
        |gate| {
            if gate.passed {
                say!("labmate: gate passed: {} ({})", gate.command.join(" "), clock::human_duration(gate.duration_s));
            }
        },
        &exe,
    )?;
    match admission {
        SweepAdmission::NeedsApproval { sweep, request } => {
            let id = &request.id;
            say!(
                "labmate: sweep {} needs approval ({}): request {id}; a human answers with labmate approve {id}",
                sweep.id,
                request.reason.join("; ")
            );
            if args.json {
                print_json(&serde_json::json!({"sweep": sweep.id, "request": id}))?;
            } else {
                println!("{id}");
            }
            Ok(ExitCode::from(NEEDS_APPROVAL))
        }
        SweepAdmission::Launched { sweep, notices } => {
            for notice in &notices {
                say!("labmate: {notice}");
            }
            let how = if sweep.slurm_array.is_some() {
                "submitted to Slurm"
            } else if sweep.queue {
                "queued"
            } else {
                "launched"
            };
            say!("labmate: sweep {}: {} runs {how}", sweep.id, sweep.runs.len());
            if args.json {
                print_json(&sweep)?;
            } else {
                let mut out = format!("{}\n", sweep.id);
                for run in &sweep.runs {
                    let _ = writeln!(out, "{run}");
                }
                print_text(&out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn status(ctx: &Context, id: &str, seed_key: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let sweep = sweep::read(index.lab(), id)?;
    let seed_key = match seed_key {
        Some(k) => k,
        None => Policy::load(index.lab())?.runs.seed_key,
    };
    let progress = sweep::progress(&index, &sweep, &seed_key)?;
    if json {
        print_json(&progress)?;
    } else {
        print_text(&render(&progress)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn render(p: &Progress) -> anyhow::Result<String> {
    let mut out = String::new();
    if let Some(request) = &p.request {
        match &p.request_state {
            Some(ReviewState::Pending) | None => {
                let _ = writeln!(out, "sweep {}: waiting for approval (request {request})", p.sweep);
            }
            Some(state) => {
                let _ = writeln!(out, "sweep {}: request {request} {state}: no run launched", p.sweep);
            }
        }
        return Ok(out);
    }
    let counts: Vec<String> = p.counts.iter().map(|(status, n)| format!("{n} {status}")).collect();
    let array = match (&p.slurm_array, p.max_concurrent) {
        (Some(a), Some(k)) => format!(" (Slurm job array {a}, at most {k} at once)"),
        (Some(a), None) => format!(" (Slurm job array {a})"),
        _ => String::new(),
    };
    let _ = writeln!(out, "sweep {}: {} runs: {}{array}", p.sweep, p.points.len(), counts.join(", "));
    let mut columns = vec!["run", "status", "point", "name"];
    if p.slurm_array.is_some() {
        columns.push("slurm job");
    }
    let mut table = Table::new(columns);
    for point in &p.points {
        let mut row = vec![
            point.run.clone(),
            point.status.to_string(),
            sweep::default_name(&point.point),
            point.name.clone().unwrap_or_default(),
        ];
        if p.slurm_array.is_some() {
            let job = point.slurm.as_ref().map_or(String::new(), |j| {
                let state = j.state.as_deref().map_or(String::new(), |s| format!(" {s}"));
                let reason = j.reason.as_deref().map_or(String::new(), |r| format!(" ({r})"));
                format!("{}{state}{reason}", j.job_id)
            });
            row.push(job);
        }
        table.row(row);
    }
    out.push_str(&table.render());
    if let Some(groups) = &p.groups {
        let parse = |texts: &[String]| texts.iter().map(|t| Path::parse(t)).collect::<Result<Vec<_>, _>>();
        let by = parse(&p.group_by).map_err(anyhow::Error::msg)?;
        let of: Vec<Path> = p.metrics.iter().map(|k| Path::Metric { key: k.clone(), field: "last".into() }).collect();
        let over = if p.group_by.is_empty() { "all runs".to_string() } else { p.group_by.join(", ") };
        let _ = writeln!(out, "\nacross seeds (seed key: {}), grouped by {over}:", p.seed_key);
        out.push_str(&render_groups(groups, &by, &of, &Style::Text));
    }
    Ok(out)
}
