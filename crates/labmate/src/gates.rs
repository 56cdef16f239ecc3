//! The human's gates between a launch request and its run, in the order a
//! launch meets them: gate commands that must pass (`[gates]`), budgets
//! (`[budget]`), and the rules that make a launch wait for a human's yes
//! (`[approval]`). [`crate::launch::admit`] takes every launch through
//! them.
//!
//! Gate commands run as argv from the policy, in the repository's working
//! tree, never through a shell and never with run names or user text in them.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::clock;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::lab::Lab;
use crate::policy::Policy;
use crate::record::RunStatus;
use crate::rundir::RunDir;
use crate::spec::{Author, LaunchRequest};
use crate::sys::proc;

/// Lines of a failing gate's output shown with the refusal.
const TAIL_LINES: usize = 30;
/// The end of a gate's output kept, for the refusal.
const KEPT_BYTES: usize = 64 * 1024;

pub use crate::spec::GateResult;

/// A gate's result and the end of its output (stdout and stderr, as they came).
#[derive(Debug, Clone)]
pub struct GateRun {
    pub result: GateResult,
    pub tail: String,
}

/// The message of a launch refused by a failing gate.
pub(crate) fn refusal(run: &GateRun) -> String {
    let r = &run.result;
    let how = match (r.timed_out, r.exit_code) {
        (true, _) => format!("timed out after {}", clock::human_duration(r.duration_s)),
        (false, Some(c)) => format!("exit code {c} after {}", clock::human_duration(r.duration_s)),
        (false, None) => "did not run to an exit code".into(),
    };
    let mut text =
        format!("gate failed: {} ({how}); the launch is refused and nothing was recorded", r.command.join(" "));
    let lines: Vec<&str> = run.tail.lines().collect();
    let shown = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    if !shown.is_empty() {
        text.push_str("\n--- the gate's output");
        if shown.len() < lines.len() {
            text.push_str(&format!(" (last {} lines)", shown.len()));
        }
        text.push_str(" ---\n");
        text.push_str(&shown.join("\n"));
    }
    text
}

/// Runs one gate: `argv` in `cwd`, in a process group of its own, killed
/// (with the processes it started) after `timeout` seconds. SIGINT, SIGTERM
/// and SIGHUP meanwhile end the gate, then this process, as they would have.
pub fn run_gate(argv: &[String], cwd: &Path, timeout: f64) -> GateRun {
    let started = Instant::now();
    let result = |exit_code, passed, timed_out| GateResult {
        command: argv.to_vec(),
        exit_code,
        duration_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        passed,
        timed_out,
    };
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).current_dir(cwd);
    let options = proc::Options {
        stdin: None,
        output: proc::Output::Keep(KEPT_BYTES),
        timeout: proc::timeout(timeout),
        pass_signals: true,
    };
    let done = match proc::run(&mut cmd, options) {
        Ok(done) => done,
        Err(e) => {
            return GateRun { result: result(None, false, false), tail: format!("could not start {}: {e}", argv[0]) };
        }
    };
    let exit_code = done.status.code();
    let tail = String::from_utf8_lossy(&done.output).into_owned();
    let mut run = GateRun { result: result(exit_code, exit_code == Some(0) && !done.timed_out, done.timed_out), tail };
    if let (Some(sig), false) = (done.status.signal(), done.timed_out) {
        run.tail.push_str(&format!("\n(killed by {})", crate::sys::proc::signal_name(sig)));
    }
    run
}

/// Why a launch needs a human's yes; empty when it does not. A launch over
/// a daily budget is refused outright when `[approval] over_budget` is off.
pub fn approval_reasons(lab: &Lab, policy: &Policy, req: &LaunchRequest, author: &Author) -> Result<Vec<String>> {
    approval_reasons_for(lab, policy, req, author, 1)
}

/// [`approval_reasons`] for `runs` runs launched together (a sweep): the
/// budgets count them all.
pub fn approval_reasons_for(
    lab: &Lab,
    policy: &Policy,
    req: &LaunchRequest,
    author: &Author,
    runs: usize,
) -> Result<Vec<String>> {
    let approval = &policy.approval;
    let mut reasons = Vec::new();
    for tag in req.tags.iter().filter(|t| approval.tags.contains(t)) {
        reasons.push(format!("tag {tag}"));
    }
    if approval.agent && policy.acts_as_agent(author) {
        reasons.push(format!("launched by an agent ({})", author.name));
    }
    if approval.dirty && crate::git::capture(&req.cwd).is_some_and(|(state, _)| state.dirty) {
        reasons.push("uncommitted changes in the working tree".into());
    }
    for over in over_budget_for(lab, policy, &author.name, runs, req)? {
        if !approval.over_budget {
            return Err(Error::forbidden(
                "budget",
                format!("over budget: {over}; the launch is refused ([approval] over_budget = false in labmate.toml)"),
            ));
        }
        reasons.push(format!("over budget: {over}"));
    }
    Ok(reasons)
}

/// The daily budgets a new run of `author` would exceed, each as a sentence.
pub fn over_budget(lab: &Lab, policy: &Policy, author: &str) -> Result<Vec<String>> {
    over_budget_for(lab, policy, author, 1, &LaunchRequest::default())
}

fn over_budget_for(lab: &Lab, policy: &Policy, author: &str, runs: usize, req: &LaunchRequest) -> Result<Vec<String>> {
    let budget = &policy.budget;
    let own = budget.authors.get(author).and_then(|a| a.daily_run_hours);
    if budget.daily_run_hours.is_none() && own.is_none() {
        return Ok(Vec::new());
    }
    let now = lab.now();
    let usage = usage(lab, now)?;
    // The new run counts for its cap, when it has one, on one GPU (or the GPUs it is given).
    let planned = planned_hours(policy, author, req).unwrap_or(0.0) * runs as f64;
    let mut over = Vec::new();
    let mut check = |limit: f64, used: f64, whose: String| {
        if used >= limit || used + planned > limit {
            let used = (used * 1e4).round() / 1e4;
            over.push(format!("daily_run_hours {limit} {whose}(used {used} h in the last 24 h)"));
        }
    };
    if let Some(limit) = budget.daily_run_hours {
        check(limit, usage.iter().map(|u| u.hours).sum(), String::new());
    }
    if let Some(limit) = own {
        let used = usage.iter().filter(|u| u.author.as_deref() == Some(author)).map(|u| u.hours).sum();
        check(limit, used, format!("for {author} "));
    }
    Ok(over)
}

/// The GPU-hours one new run of `author` may use: its cap on one GPU, or
/// the GPUs it is given; None without a cap. The cap is `max_run_minutes`,
/// and on Slurm also the job's time limit; the GPUs are the job's there.
pub fn planned_hours(policy: &Policy, author: &str, req: &LaunchRequest) -> Option<f64> {
    let (minutes, gpus) = planned(policy, author, req);
    minutes.map(|m| m / 60.0 * gpus as f64)
}

/// A new run's cap in minutes and its GPUs.
fn planned(policy: &Policy, author: &str, req: &LaunchRequest) -> (Option<f64>, usize) {
    let cap = policy.babysit_for(author).max_run_minutes;
    let Some(slurm) = &req.slurm else {
        return (cap, gpu_count(std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref()));
    };
    let limit = slurm
        .time
        .as_ref()
        .or(policy.slurm.time.as_ref())
        .and_then(|t| crate::slurm::parse_time_limit(t).ok())
        .map(|m| m as f64);
    let minutes = match (cap, limit) {
        (Some(c), Some(l)) => Some(c.min(l)),
        (c, l) => c.or(l),
    };
    (minutes, slurm.gpus.or(policy.slurm.gpus).unwrap_or(1).max(1) as usize)
}

/// What `runs` runs of `author` may cost, as a sentence for the approver.
pub fn estimated_cost(policy: &Policy, author: &str, runs: usize, req: &LaunchRequest) -> String {
    let (minutes, gpus) = planned(policy, author, req);
    match minutes {
        Some(m) => {
            let hours = (m / 60.0 * gpus as f64 * runs as f64 * 1e4).round() / 1e4;
            let g = if gpus == 1 { "" } else { "s" };
            format!("estimated cost {hours} GPU-hours ({runs} runs x {m} max_run_minutes x {gpus} GPU{g})")
        }
        None => {
            format!("estimated cost unbounded ({runs} runs, no max_run_minutes in labmate.toml nor a Slurm time limit)")
        }
    }
}

/// Where the daily budgets stand for a new run of one author: what a
/// person deciding on a launch weighs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BudgetStanding {
    /// Wall-clock hours x GPUs of all runs in the last 24 hours, and the
    /// lab's daily limit.
    pub lab_used_hours: f64,
    pub lab_daily_run_hours: Option<f64>,
    /// The same for the author's own runs, and the author's own limit.
    pub author_used_hours: f64,
    pub author_daily_run_hours: Option<f64>,
    /// How long the new run may run.
    pub max_run_minutes: Option<f64>,
}

/// The budgets as they stand now for a new run of `author`.
pub fn budget_standing(lab: &Lab, policy: &Policy, author: &str) -> Result<BudgetStanding> {
    let usage = usage(lab, lab.now())?;
    let round = |h: f64| (h * 1e4).round() / 1e4;
    Ok(BudgetStanding {
        lab_used_hours: round(usage.iter().map(|u| u.hours).sum()),
        lab_daily_run_hours: policy.budget.daily_run_hours,
        author_used_hours: round(usage.iter().filter(|u| u.author.as_deref() == Some(author)).map(|u| u.hours).sum()),
        author_daily_run_hours: policy.budget.authors.get(author).and_then(|a| a.daily_run_hours),
        max_run_minutes: policy.babysit_for(author).max_run_minutes,
    })
}

/// One run's share of the last 24 hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub run: String,
    pub author: Option<String>,
    /// Wall-clock hours within the window x GPUs.
    pub hours: f64,
}

/// What each run used of the 24 hours before `now`: the part of its
/// wall-clock time inside the window, times its GPUs (the count in its
/// recorded `CUDA_VISIBLE_DEVICES`, else 1; a Slurm job's, those it was
/// given or asked for). Queued runs use nothing yet.
pub fn usage(lab: &Lab, now: f64) -> Result<Vec<Usage>> {
    let window = now - 86_400.0;
    let index = Index::open_synced(lab)?.0;
    let mut all = Vec::new();
    for run in index.runs(None)? {
        if run.status == RunStatus::Queued {
            continue;
        }
        let end = run.ended_at.as_deref().and_then(|t| clock::parse_time(t, now).ok()).unwrap_or(now).min(now);
        let start = (end - run.duration_s).max(window);
        if end <= window || end <= start {
            continue;
        }
        let spec = RunDir::at(lab.run_dir(&run.id)).read_spec().ok();
        let gpus = match &run.slurm {
            // A job's GPUs: those Slurm gave it, or those it asked for.
            Some(job) => (gpu_count(job.visible_devices.as_deref())).max(job.gpus as usize),
            None => gpu_count(spec.as_ref().and_then(|s| s.env.get("CUDA_VISIBLE_DEVICES")).map(String::as_str)),
        };
        all.push(Usage {
            run: run.id,
            author: spec.and_then(|s| s.author),
            hours: (end - start) / 3600.0 * gpus as f64,
        });
    }
    Ok(all)
}

/// GPUs named in a `CUDA_VISIBLE_DEVICES` value; 1 when it names none.
fn gpu_count(visible: Option<&str>) -> usize {
    visible.map_or(0, |v| v.split(',').filter(|d| !d.trim().is_empty()).count()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_gate_passes_fails_or_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let ok = run_gate(&argv(&["sh", "-c", "echo fine"]), dir.path(), 10.0);
        assert!(ok.result.passed && ok.result.exit_code == Some(0), "{ok:?}");
        assert_eq!(ok.tail, "fine\n");
        let bad = run_gate(&argv(&["sh", "-c", "echo broken >&2; exit 3"]), dir.path(), 10.0);
        assert!(!bad.result.passed && bad.result.exit_code == Some(3), "{bad:?}");
        assert!(refusal(&bad).contains("gate failed: sh -c echo broken >&2; exit 3 (exit code 3"), "{}", refusal(&bad));
        assert!(refusal(&bad).ends_with("---\nbroken"), "{}", refusal(&bad));
        let slow = run_gate(&argv(&["sleep", "30"]), dir.path(), 0.3);
        assert!(!slow.result.passed && slow.result.timed_out, "{slow:?}");
        let missing = run_gate(&argv(&["no-such-gate-program"]), dir.path(), 10.0);
        assert!(!missing.result.passed && missing.tail.contains("could not start"), "{missing:?}");
    }

    #[test]
    fn gpus_count_from_the_recorded_devices() {
        assert_eq!(gpu_count(None), 1);
        assert_eq!(gpu_count(Some("")), 1);
        assert_eq!(gpu_count(Some("0,1,3")), 3);
    }
}
