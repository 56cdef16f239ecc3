//! `labmate run`: launch a command as a supervised run, through the lab's
//! gates (gate commands, budgets, approvals).

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use labmate::facade::{self, Admission};
use labmate::follow::{self, Wall};
use labmate::spec::LaunchRequest;
use labmate::supervisor::{self, Stage};
use labmate::{Index, Lab, clock, record};

use super::{AuthorArg, Context};

/// The launch waits for a human: a pending request was recorded.
pub const NEEDS_APPROVAL: u8 = 6;
/// With `--wait-approval`: the human said no.
pub const REJECTED: u8 = 7;

const EXIT_CODES: &str = "\
Exit codes:
  N    the command's exit code (128 + signal when it was killed) once the run ends; 0 with --detach
  2    nothing was launched: a bad request, a failing gate (its output is shown), or a budget
       exceeded while [approval] over_budget = false
  6    the launch needs a human's approval ([approval] in labmate.toml): a pending request was
       recorded and its id (a-...) printed on stdout; `labmate approve ID` launches it
  7    with --wait-approval: the request was rejected";

#[derive(clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// A name for the run (names need not be unique; ids are).
    #[arg(long)]
    name: Option<String>,
    /// A tag; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// A config value; repeat for more. VALUE parses as JSON where it can.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// A babysitting rule for this run, e.g. 'val_loss > 5 after step 1000 => stop'; repeat for more.
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<String>,
    /// Wait in the launch queue for a free slot (max_concurrent in labmate.toml) and a free GPU.
    #[arg(long)]
    queue: bool,
    /// Put labmate's wandb stand-in first on the command's PYTHONPATH: its `import wandb` logs into
    /// this run (also [run] wandb = true in labmate.toml).
    #[arg(long)]
    wandb: bool,
    /// Follow the TensorBoard event files the command writes under LOGDIR (relative to the working
    /// directory) into the run's metrics, live: rules, wait --until and the dashboard see them.
    /// Files already there when the run starts are left alone.
    #[arg(long, value_name = "LOGDIR")]
    tensorboard: Option<String>,
    /// Print the run id and return; the run goes on, supervised.
    #[arg(long)]
    detach: bool,
    /// Push the run, while it lives, to this lab (`labmate serve --accept-runs`), http://HOST:PORT
    /// [default: [remote] url in labmate.toml]. The run folder here keeps everything meanwhile.
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// The file holding that server's token [default: $LABMATE_TOKEN, else [remote] token_file].
    #[arg(long, value_name = "PATH")]
    token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    slurm: SlurmArgs,
    #[command(flatten)]
    author: AuthorArg,
    /// When the launch needs approval, wait for the answer: follow the run once a human approves
    /// (it launches then), exit 7 if they reject it.
    #[arg(long)]
    wait_approval: bool,
    /// The command and its arguments, after `--`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Where a run goes on Slurm; `[slurm]` in labmate.toml gives the defaults.
#[derive(clap::Args)]
pub struct SlurmArgs {
    /// Submit to Slurm (sbatch): the supervisor runs inside the job, on the node Slurm picks. Prints
    /// the run id; the lab must be on a filesystem the nodes share.
    #[arg(long)]
    slurm: bool,
    /// The Slurm partition.
    #[arg(long, value_name = "P", requires = "slurm")]
    partition: Option<String>,
    /// The Slurm account.
    #[arg(long, value_name = "A", requires = "slurm")]
    account: Option<String>,
    /// GPUs for the job (sbatch --gpus).
    #[arg(long, value_name = "N", requires = "slurm")]
    gpus: Option<u32>,
    /// The job's time limit: minutes (90), HH:MM:SS, D-HH:MM:SS or a duration (2h).
    #[arg(long, value_name = "LIMIT", requires = "slurm")]
    time: Option<String>,
    /// Memory per node (sbatch --mem), e.g. 32G.
    #[arg(long, value_name = "MEM", requires = "slurm")]
    mem: Option<String>,
    /// One more sbatch option, e.g. --sbatch-arg=--constraint=a100; repeat for more.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true, requires = "slurm")]
    sbatch_args: Vec<String>,
}

impl SlurmArgs {
    /// The Slurm part of a launch request, when `--slurm` asks for one.
    pub fn request(self) -> Option<labmate::spec::SlurmRequest> {
        self.slurm.then_some(labmate::spec::SlurmRequest {
            partition: self.partition,
            account: self.account,
            gpus: self.gpus,
            time: self.time,
            mem: self.mem,
            sbatch_args: self.sbatch_args,
        })
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = ctx.clocked(Lab::find_or_create(&ctx.cwd, ctx.lab_dir.as_deref())?);
    let slurm = args.slurm.request();
    let remote = super::sync::remote(ctx, &lab, args.remote.as_deref(), args.token_file.as_deref())?;
    let request = LaunchRequest {
        name: args.name,
        tags: args.tags,
        config: args.config,
        rules: args.rules,
        queue: args.queue,
        wandb: args.wandb,
        tensorboard: args.tensorboard,
        command: args.command,
        cwd: ctx.cwd.clone(),
        slurm: slurm.clone(),
        ..Default::default()
    };
    let admission = facade::launch(&lab, request, &ctx.author(&args.author)?, |gate| {
        if gate.passed {
            say!("labmate: gate passed: {} ({})", gate.command.join(" "), clock::human_duration(gate.duration_s));
        }
    })?;
    let launched = match admission {
        Admission::Ready(launched) => *launched,
        Admission::NeedsApproval(request) => {
            let id = &request.id;
            say!(
                "labmate: launch needs approval ({}): request {id}; a human answers with labmate approve {id}",
                request.reason.join("; ")
            );
            println!("{id}");
            if !args.wait_approval {
                return Ok(ExitCode::from(NEEDS_APPROVAL));
            }
            return wait_for_approval(&lab, id, args.detach || slurm.is_some());
        }
    };
    for notice in &launched.notices {
        say!("labmate: {notice}");
    }
    let mut prepared = launched.prepared;
    if let Some(remote) = remote {
        prepared.stream_to(remote);
    }
    let id = prepared.spec.id.clone();
    if args.detach || slurm.is_some() {
        for notice in facade::start(&lab, prepared, slurm.as_ref(), &std::env::current_exe()?)? {
            match notice.starts_with("warning:") {
                true => say!("labmate: {notice}"),
                false => say!("labmate: run {id} {notice}"),
            }
        }
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = supervisor::supervise(prepared, true, |spec, stage| match stage {
        Stage::Queued => say!("labmate: run {} queued", spec.id),
        Stage::Started => say!("labmate: run {} started", spec.id),
    })?;
    say!("labmate: run {id} {} ({})", outcome.status, record::how_ended(outcome.exit_code, outcome.signal));
    Ok(ExitCode::from(outcome.shell_code().clamp(0, 255) as u8))
}

/// Waits for the human's answer. The approver launches the run (detached);
/// this process follows it to its end, as if it had run it.
fn wait_for_approval(lab: &Lab, id: &str, detach: bool) -> anyhow::Result<ExitCode> {
    say!("labmate: waiting for the answer to {id}");
    let answer = follow::decision(lab, id, &Wall, Duration::from_millis(250))?;
    let Some(decision) = answer.decision else {
        anyhow::bail!("request {id} has no decision");
    };
    let note = decision.note.as_ref().map_or(String::new(), |n| format!(": {n}"));
    let Some(run) = decision.launched.filter(|_| answer.state == labmate::review::ReviewState::Approved) else {
        say!("labmate: request {id} {} by {}{note}", answer.state, decision.by);
        return Ok(ExitCode::from(REJECTED));
    };
    say!("labmate: request {id} approved by {}{note}", decision.by);
    say!("labmate: run {run} started");
    if detach {
        println!("{run}");
        return Ok(ExitCode::SUCCESS);
    }
    follow(lab, &run)
}

/// Copies a run's output to stdout until it ends; exits with its code.
fn follow(lab: &Lab, id: &str) -> anyhow::Result<ExitCode> {
    let mut index = Index::open(lab)?;
    let mut out = io::stdout().lock();
    let run = follow::run_output(&mut index, id, 0, &Wall, Duration::from_millis(200), |chunk| {
        out.write_all(chunk)?;
        out.flush()?;
        Ok::<_, anyhow::Error>(())
    })?;
    let code = record::shell_code(run.exit_code, run.signal);
    say!("labmate: run {id} {} (exit code {code})", run.status);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
