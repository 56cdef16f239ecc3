//! Launching a run, as every face does it: a request checked without
//! writing anything, through the gates ([`crate::gates`]: gate commands,
//! budgets, approval rules), named, and given its run folder, ready for the
//! supervisor. A launch a human approves goes through [`decide`]. A sweep
//! ([`admit_sweep`]) is launched the same way, its gates and approval met
//! once for all its points. A run asking for Slurm is submitted ([`submit`]:
//! a batch script whose job runs the supervisor), a sweep as one job array.

mod submit;

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::gates;
use crate::git;
use crate::id;
use crate::lab::Lab;
use crate::naming;
use crate::policy::Policy;
use crate::review::{self, NewItem, Request, Verdict};
use crate::rules::Babysitter;
use crate::rundir::RunDir;
use crate::spec::{self, Author, GateResult, LaunchRequest, NO_AUTHOR, RunSpec, SlurmRequest};
use crate::supervisor::{self, Prepared};
use crate::sweep::{self, Space, Sweep};
use submit::{never_submitted, submit_array};
pub use submit::{shared_fs_notice, submit};

/// What became of a launch request.
#[derive(Debug)]
pub enum Admission {
    /// The run's folder exists: supervise it here, or hand it to a detached supervisor.
    Ready(Box<Launched>),
    /// The launch waits for a human: this pending request was recorded.
    NeedsApproval(Box<Request>),
}

/// A launch that passed its gates.
#[derive(Debug)]
pub struct Launched {
    pub prepared: Prepared,
    /// What the launcher should hear: a review item opened, a check that could not be made.
    pub notices: Vec<String>,
}

/// Runs a launch request through the gates: the gate commands (a failing
/// one refuses the launch, and nothing is recorded), then the budgets and
/// approval rules (a launch that needs a human's yes is recorded as a
/// pending request), then creates the run. `on_gate` hears each gate as it
/// ends.
pub fn admit(
    lab: &Lab,
    req: LaunchRequest,
    author: &Author,
    mut on_gate: impl FnMut(&GateResult),
) -> Result<Admission> {
    let req = LaunchRequest { author: Some(author.name.clone()), ..req };
    let policy = validate(lab, &req)?;
    let gates = pass_gates(lab, &policy, &mut on_gate)?;
    let reasons = gates::approval_reasons(lab, &policy, &req, author)?;
    if !reasons.is_empty() {
        return Ok(Admission::NeedsApproval(Box::new(review::request_approval(lab, req, reasons, gates)?)));
    }
    let (mut launched, item) = launch_approved(lab, req, gates)?;
    open_review_item(lab, item, &mut launched.notices);
    Ok(Admission::Ready(Box::new(launched)))
}

/// Opens the review item a launch asked for, saying so in `notices`; a
/// store that cannot take it is a warning, not a failed launch.
fn open_review_item(lab: &Lab, item: Option<NewItem>, notices: &mut Vec<String>) {
    match item.map(|item| review::open_item(lab, item)) {
        Some(Ok(Some(item))) => notices.push(format!("review item {} opened: {}", item.id, item.note)),
        Some(Err(e)) => notices.push(format!("warning: the review item could not be recorded: {e}")),
        Some(Ok(None)) | None => {}
    }
}

/// Runs the lab's gate commands; the first that fails refuses the launch.
fn pass_gates(lab: &Lab, policy: &Policy, on_gate: &mut impl FnMut(&GateResult)) -> Result<Vec<GateResult>> {
    let mut passed = Vec::new();
    for argv in &policy.gates.commands {
        let run = gates::run_gate(argv, lab.repo_root(), policy.gates.timeout);
        on_gate(&run.result);
        if !run.result.passed {
            return Err(Error::forbidden("gate", gates::refusal(&run)));
        }
        passed.push(run.result);
    }
    Ok(passed)
}

/// A sweep to launch: the points' space and the launch they share.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub space: Space,
    /// `--grid` and `--dist` as given, for the record.
    pub grid: Vec<String>,
    pub dist: Vec<String>,
    /// The seed of random draws; one is drawn (and recorded) when None.
    pub seed: Option<u64>,
    /// What every point launches: its command and name with `{key}` in them.
    pub launch: LaunchRequest,
    /// On Slurm: how many of its runs may run at once (the array's `%K`).
    pub max_concurrent: Option<u32>,
}

/// What became of a sweep.
#[derive(Debug)]
pub enum SweepAdmission {
    /// Every point's run launched (detached); the sweep is recorded.
    Launched { sweep: Box<Sweep>, notices: Vec<String> },
    /// The sweep waits for a human: one request for all its points.
    NeedsApproval { sweep: Box<Sweep>, request: Box<Request> },
}

/// Launches a sweep as `author`: every point's request checked first
/// (nothing is recorded when one is bad), the gates once, the budgets and
/// approval once for all its runs, then each point's run launched
/// detached, supervised by `exe` (the `labmate` binary); through the queue
/// when the plan's launch asks for it.
pub fn admit_sweep(
    lab: &Lab,
    plan: SweepPlan,
    author: &Author,
    mut on_gate: impl FnMut(&GateResult),
    exe: &Path,
) -> Result<SweepAdmission> {
    let mut base = LaunchRequest { author: Some(author.name.clone()), ..plan.launch };
    if base.command.is_empty() {
        return Err(Error::invalid("command", "no command given"));
    }
    let seed = plan.space.random.map(|_| plan.seed.unwrap_or_else(|| u64::from(id::random_u32())));
    let now = lab.now();
    let sweep_id = loop {
        let id = lab.new_id(sweep::PREFIX, now);
        if !sweep::exists(lab, &id) {
            break id;
        }
    };
    base.tags.push(sweep_id.clone());
    let mut sweep = Sweep {
        id: sweep_id,
        time: now,
        author: author.name.clone(),
        name: base.name.take(),
        command: base.command.clone(),
        grid: plan.grid,
        dist: plan.dist,
        random: plan.space.random,
        seed,
        queue: base.queue,
        points: sweep::points(&plan.space, seed.unwrap_or(0)),
        runs: Vec::new(),
        request: None,
        slurm_array: None,
        max_concurrent: plan.max_concurrent,
    };
    if sweep.max_concurrent.is_some() && base.slurm.is_none() {
        return Err(Error::invalid(
            "max-concurrent",
            "--max-concurrent limits a sweep's job array on Slurm (with --slurm); a local sweep takes [queue] max_concurrent",
        ));
    }
    if sweep.max_concurrent == Some(0) {
        return Err(Error::invalid("max-concurrent", "--max-concurrent must be 1 or more"));
    }
    let requests = point_requests(lab, &sweep, &base)?;
    let policy = Policy::load(lab)?;
    let gates = pass_gates(lab, &policy, &mut on_gate)?;
    let n = sweep.points.len();
    let mut reasons = gates::approval_reasons_for(lab, &policy, &base, author, n)?;
    if !reasons.is_empty() {
        reasons.push(format!(
            "sweep {} of {n} runs, {}",
            sweep.id,
            gates::estimated_cost(&policy, &author.name, n, &base)
        ));
        let request = review::request_sweep_approval(lab, base, reasons, gates, &sweep.id)?;
        sweep.request = Some(request.id.clone());
        sweep::write(lab, &sweep)?;
        return Ok(SweepAdmission::NeedsApproval { sweep: Box::new(sweep), request: Box::new(request) });
    }
    let (mut notices, item) = launch_points(lab, &mut sweep, requests, &gates, exe)?;
    open_review_item(lab, item, &mut notices);
    Ok(SweepAdmission::Launched { sweep: Box::new(sweep), notices })
}

/// Each point's launch: `{key}` filled in the command and the name, the
/// point in the config, checked.
fn point_requests(lab: &Lab, sweep: &Sweep, base: &LaunchRequest) -> Result<Vec<LaunchRequest>> {
    let mut requests = Vec::new();
    for point in &sweep.points {
        let command = sweep.command.iter().map(|a| sweep::substitute(a, point)).collect::<Result<Vec<_>>>()?;
        let name = match &sweep.name {
            Some(template) => sweep::substitute(template, point)?,
            None => sweep::default_name(point),
        };
        let mut config = base.config.clone();
        config.extend(sweep::config_args(point));
        let req = LaunchRequest { name: Some(name), command, config, ..base.clone() };
        validate(lab, &req)?;
        requests.push(req);
    }
    Ok(requests)
}

/// Launches the points' runs and records the sweep with them (also when a
/// launch fails part way: the runs made are in the record). Returns the
/// launches' notices and the first review item they ask for, for the caller
/// to record (it may hold the review store's lock; one code state opens one
/// item).
fn launch_points(
    lab: &Lab,
    sweep: &mut Sweep,
    requests: Vec<LaunchRequest>,
    gates: &[GateResult],
    exe: &Path,
) -> Result<(Vec<String>, Option<NewItem>)> {
    let mut notices = Vec::new();
    let mut item = None;
    let mut runs = Vec::new();
    let mut on_slurm = Vec::new();
    let slurm = requests.first().and_then(|r| r.slurm.clone());
    let result = requests.into_iter().try_for_each(|req| {
        let (launched, asked) = launch_approved(lab, req, gates.to_vec())?;
        runs.push(launched.prepared.spec.id.clone());
        notices.extend(launched.notices);
        item = item.take().or(asked);
        if slurm.is_some() {
            on_slurm.push(launched.prepared);
        } else {
            supervisor::spawn_detached(exe, launched.prepared)?;
        }
        Ok(())
    });
    sweep.runs = runs;
    let result = match (result, &slurm) {
        (Ok(()), Some(req)) => {
            notices.extend(shared_fs_notice(lab, req.partition.as_deref()));
            submit_array(lab, sweep, on_slurm, req, exe).map(|array| {
                notices.push(format!("job array {array} submitted to Slurm"));
            })
        }
        (result, _) => {
            // Runs made for a job array that was never submitted end here.
            for prepared in &on_slurm {
                never_submitted(prepared, "an earlier point of its sweep could not be launched");
            }
            result
        }
    };
    sweep::write(lab, sweep)?;
    result.map(|()| (notices, item))
}

/// Starts a run that passed its gates, apart from the launcher: submitted
/// to Slurm when `slurm` asks for it, else detached here, supervised by
/// `exe`. Returns what the launcher should hear.
pub fn start(lab: &Lab, prepared: Prepared, slurm: Option<&SlurmRequest>, exe: &Path) -> Result<Vec<String>> {
    let Some(slurm) = slurm else {
        supervisor::spawn_detached(exe, prepared)?;
        return Ok(Vec::new());
    };
    let mut notices: Vec<String> = shared_fs_notice(lab, slurm.partition.as_deref()).into_iter().collect();
    let job = submit(lab, prepared, slurm, exe)?;
    let partition = job.partition.as_deref().map_or(String::new(), |p| format!(" on partition {p}"));
    notices.push(format!("submitted to Slurm as job {}{partition}", job.job_id));
    Ok(notices)
}

/// Creates the run of a request that passed its gates (or that a human
/// approved), with the gates' results on it. When the code changed more than
/// `[review] lines_changed` since the baseline, also returns the review item
/// to open, for the caller to record (it may hold the review store's lock).
pub fn launch_approved(lab: &Lab, req: LaunchRequest, gates: Vec<GateResult>) -> Result<(Launched, Option<NewItem>)> {
    let policy = Policy::load(lab)?;
    let author = req.author.clone().ok_or_else(|| Error::invalid("author", NO_AUTHOR))?;
    let prepared = prepare(lab, LaunchRequest { gates, ..req })?;
    let mut notices = Vec::new();
    let mut item = None;
    if let Some(limit) = policy.review.lines_changed {
        match crate::diffstat::large_change(lab, &prepared.spec.id, limit) {
            Ok(Some((note, key))) => {
                item = Some(NewItem { author, run: Some(prepared.spec.id.clone()), entry: None, note, key: Some(key) })
            }
            Ok(None) => {}
            Err(e) => notices.push(format!("warning: [review] lines_changed not checked: {e}")),
        }
    }
    Ok((Launched { prepared, notices }, item))
}

/// Decides on a request or an item, as `by` ([`review::decide`]); an
/// approved request launches as [`start`] does (detached, supervised by
/// `exe`, the `labmate` binary, or submitted to Slurm when it asked for
/// it), with the gates it passed when it was asked.
pub fn decide(
    lab: &Lab,
    query: &str,
    verdict: Verdict,
    by: &Author,
    note: Option<String>,
    exe: &Path,
) -> Result<review::Decided> {
    review::decide(lab, query, verdict, by, note, |request: &Request| {
        if let Some(id) = &request.sweep {
            let mut sweep = sweep::read(lab, id)?;
            let requests = point_requests(lab, &sweep, &request.launch)?;
            let (mut notices, item) = launch_points(lab, &mut sweep, requests, &request.gates, exe)?;
            notices.push(format!("sweep {id}: {} runs launched", sweep.runs.len()));
            let run = sweep.runs.first().cloned().unwrap_or_default();
            return Ok(review::Launch { run, notices, item });
        }
        let (mut launched, item) = launch_approved(lab, request.launch.clone(), request.gates.clone())?;
        let run = launched.prepared.spec.id.clone();
        launched.notices.extend(start(lab, launched.prepared, request.launch.slurm.as_ref(), exe)?);
        Ok(review::Launch { run, notices: launched.notices, item })
    })
}

/// Checks a launch request without writing anything: a command, a usable
/// name, config and rules that parse, a program that exists, a well-formed
/// `labmate.toml` (returned).
pub fn validate(lab: &Lab, req: &LaunchRequest) -> Result<Policy> {
    let program = req.command.first().ok_or_else(|| Error::invalid("command", "no command given"))?;
    if req.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(Error::invalid("name", "--name must not be empty"));
    }
    if req.author.as_deref().is_some_and(|a| a.trim().is_empty()) {
        return Err(Error::invalid("author", "an author must not be empty"));
    }
    if req.slurm.is_some() && req.queue {
        return Err(Error::invalid("queue", "--queue and --slurm do not go together: on Slurm, Slurm queues the job"));
    }
    if let Some(time) = req.slurm.as_ref().and_then(|s| s.time.as_deref()) {
        crate::slurm::parse_time_limit(time).map_err(|why| Error::invalid("time", why))?;
    }
    if req.tensorboard.as_deref().is_some_and(|d| d.trim().is_empty()) {
        return Err(Error::invalid("tensorboard", "--tensorboard must name a folder"));
    }
    let config = spec::parse_config(&req.config)?;
    let policy = Policy::load(lab)?;
    if let Some(n) = req.name.as_deref().filter(|n| n.contains('{')) {
        naming::render(n, &config, &req.tags)?;
    }
    let mut rules = policy.rules.clone();
    rules.custom.extend(req.rules.iter().cloned());
    Babysitter::new(&rules, 0.0)?;
    crate::sys::exec::resolve_program(program, &req.cwd, std::env::var_os("PATH").as_deref())?;
    Ok(policy)
}

/// Validates a launch and creates its run folder. Nothing is written when the
/// request is bad (unparseable config or rule, no such program, a malformed
/// `labmate.toml`). This is the launch itself, past the gates: faces launch
/// through [`admit`].
pub fn prepare(lab: &Lab, req: LaunchRequest) -> Result<Prepared> {
    let policy = validate(lab, &req)?;
    let config = spec::parse_config(&req.config)?;
    let name = match req.name.as_deref() {
        Some(n) if n.contains('{') => Some(naming::render(n, &config, &req.tags)?),
        Some(n) => Some(n.to_string()),
        None => default_name(lab, &policy, &config, &req.tags),
    };
    let author = req.author.ok_or_else(|| Error::invalid("author", NO_AUTHOR))?;
    let mut babysit = policy.babysit_for(&author);
    babysit.rules.custom.extend(req.rules);

    let now = lab.now();
    let mut spec = RunSpec::new(lab.new_id(id::PREFIX, now), now, &req.cwd);
    spec.name = name;
    spec.tags = dedup(req.tags);
    spec.command = req.command;
    spec.config = config;
    spec.babysit = Some(babysit);
    spec.queue = req.queue;
    spec.wandb = req.wandb || policy.run.wandb;
    spec.tensorboard = req.tensorboard;
    spec.scheduler = req.slurm.as_ref().map(|_| "slurm".to_string());
    spec.author = Some(author);
    spec.gates = req.gates;
    // A variable that is not UTF-8 is kept with U+FFFD, not a reason to fail.
    let vars: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
        .collect();
    spec.env = spec::env_subset(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut patch = Vec::new();
    if let Some((state, p)) = git::capture(&req.cwd) {
        spec.git = Some(state);
        patch = p;
    }
    let (dir, lock) = RunDir::create(lab, &mut spec, &patch)?;
    Ok(Prepared::new(lab, dir, spec, lock))
}

/// The name of a run launched without one: the lab's template when it
/// applies, else what differs from the baseline's config.
fn default_name(lab: &Lab, policy: &Policy, config: &Map<String, Value>, tags: &[String]) -> Option<String> {
    if let Some(name) = policy.runs.name.as_deref().and_then(|t| naming::render(t, config, tags).ok()) {
        return Some(name);
    }
    if config.is_empty() {
        return None;
    }
    let index = crate::index::Index::open_synced(lab).ok()?.0;
    let side = crate::registry::side(&index, &crate::registry::baseline(lab)?).ok()?;
    naming::from_config_diff(config, &side.runs.first()?.config)
}

fn dedup(mut tags: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_told_who_acts_and_never_guesses() {
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab::create(&dir.path().join(".labmate")).unwrap();
        let req =
            LaunchRequest { command: vec!["true".to_string()], cwd: dir.path().to_path_buf(), ..Default::default() };
        let Err(err) = prepare(&lab, req) else { panic!("a launch without an author was prepared") };
        assert!(err.to_string().contains("must name its author"), "{err}");
        let note = crate::notebook::NewEntry { kind: "observation".into(), text: "x".into(), ..Default::default() };
        let err = crate::notebook::append(&lab, note).unwrap_err();
        assert!(err.to_string().contains("must name its author"), "{err}");
    }
}
