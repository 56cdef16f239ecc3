//! Slurm, the cluster scheduler runs are submitted to: its commands
//! (`sbatch`, `squeue`, `scancel`, `scontrol`) run with a timeout and their
//! output parsed; a job's states; its job-completion log; the time limits it
//! takes. labmate never schedules: it asks Slurm, once per reader pass for
//! all the lab's jobs.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sys::proc;

/// How long one Slurm command may take: a controller that answers slower is
/// treated as unreachable for this pass.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a failing command's complaint an error keeps.
const KEPT: usize = 4096;

/// What the launcher records of a submitted job (`slurm.json` in the run
/// folder), written once sbatch has taken it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Slurm's id: `1234`, or `1234_5` for a task of a job array.
    pub job_id: String,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// GPUs asked for (`--gpus`); 0 when none were.
    #[serde(default)]
    pub gpus: u32,
    /// The job's time limit in minutes, when one was given.
    pub time_limit_min: Option<u64>,
    /// When sbatch took it (the lab's time).
    pub submitted: f64,
    /// The batch script, relative to the run folder.
    pub script: String,
    /// Where Slurm logs ended jobs (`JobCompLoc` of `jobcomp/filetxt`), read
    /// for jobs `squeue` has forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobcomp_log: Option<String>,
}

/// A job as Slurm reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `TIMEOUT`, `NODE_FAIL`, ...
    pub state: String,
    /// Why it waits (`Priority`, `Resources`), or `None`.
    pub reason: Option<String>,
    pub node: Option<String>,
    pub partition: Option<String>,
    /// The batch script's exit code, once it ended.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
}

impl JobState {
    /// Whether the job is waiting or running (not ended).
    pub fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "SUSPENDED"
                | "REQUEUED"
                | "REQUEUE_HOLD"
                | "REQUEUE_FED"
                | "RESIZING"
                | "SIGNALING"
                | "STAGE_OUT"
                | "STOPPED"
                | "RESV_DEL_HOLD"
        )
    }

    /// Whether the job waits for its turn.
    pub fn is_pending(&self) -> bool {
        matches!(self.state.as_str(), "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD")
    }
}

/// Where a scheduler placed a run (the `job` of its start record): the
/// job, the node, and the GPUs the job was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// `slurm`.
    pub scheduler: String,
    pub job_id: String,
    pub node: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` as the job got it.
    pub gpus: Option<String>,
    /// The partition the job runs in (`SLURM_JOB_PARTITION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

/// Where Slurm placed the job this process runs in, from the variables
/// Slurm sets in it; None outside a job.
pub fn placement() -> Option<Placement> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let job_id = match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(array), Some(task)) => format!("{array}_{task}"),
        _ => var("SLURM_JOB_ID")?,
    };
    Some(Placement {
        scheduler: "slurm".into(),
        job_id,
        node: var("SLURMD_NODENAME"),
        gpus: var("CUDA_VISIBLE_DEVICES").or_else(|| var("SLURM_JOB_GPUS")),
        partition: var("SLURM_JOB_PARTITION"),
    })
}

/// Submits `script` with `sbatch --parsable` plus `args`; returns the job
/// id. `env` is added to sbatch's environment, which the job gets (secrets
/// go there, never into the script or its argv).
pub fn submit(script: &Path, args: &[String], env: &[(&str, &str)]) -> Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable").args(args).arg(script);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run("sbatch", &mut cmd)?;
    // `1234` or `1234;cluster`.
    let id = out.trim().split(';').next().unwrap_or_default().trim().to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::environment(
            "slurm",
            format!("sbatch did not print a job id (it printed {:?})", out.trim()),
        ));
    }
    Ok(id)
}

/// The states of `ids` (plain jobs or array tasks), in one `squeue` call;
/// jobs Slurm no longer knows are absent. An array's pending tasks are asked
/// for by the array's id, and come back one by one (`-r`).
pub fn states(ids: &[String]) -> Result<HashMap<String, JobState>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut asked: Vec<&str> = ids.iter().map(|id| id.split('_').next().unwrap_or(id)).collect();
    asked.sort_unstable();
    asked.dedup();
    let mut cmd = Command::new("squeue");
    cmd.args(["-h", "-r", "-t", "all", "-O", "JobArrayID:|,State:|,Reason:|,NodeList:|,Partition:|,exit_code:|", "-j"]);
    cmd.arg(asked.join(","));
    let out = match run("squeue", &mut cmd) {
        Ok(out) => out,
        // Every id asked for was forgotten.
        Err(e) if e.to_string().contains("Invalid job id") => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    Ok(out.lines().filter_map(parse_squeue_line).collect())
}

fn parse_squeue_line(line: &str) -> Option<(String, JobState)> {
    let mut f = line.split('|').map(str::trim);
    let id = f.next().filter(|id| !id.is_empty())?.to_string();
    let state = f.next()?.split_whitespace().next()?.to_string();
    let some = |s: Option<&str>| s.filter(|s| !s.is_empty() && *s != "None" && *s != "(null)").map(str::to_string);
    let reason = some(f.next());
    let node = some(f.next());
    let partition = some(f.next());
    let (exit_code, signal) = exit_code(f.next().unwrap_or_default());
    let live = JobState { state, reason, node, partition, exit_code, signal };
    Some((id, if live.is_live() { JobState { exit_code: None, signal: None, ..live } } else { live }))
}

/// Slurm's `code:signal` (scontrol, the completion log), or the raw wait
/// status squeue prints (`768` is exit code 3).
fn exit_code(text: &str) -> (Option<i32>, Option<i32>) {
    let text = text.trim();
    if let Some((code, signal)) = text.split_once(':') {
        return (code.parse().ok(), signal.parse().ok().filter(|s| *s != 0));
    }
    match text.parse::<i32>() {
        Ok(raw) if raw & 0x7f != 0 => (Some(0), Some(raw & 0x7f)),
        Ok(raw) => (Some((raw >> 8) & 0xff), None),
        Err(_) => (None, None),
    }
}

/// The nodes of `partition` (the default one when None), from `sinfo`.
pub fn nodes(partition: Option<&str>) -> Result<Vec<String>> {
    let mut cmd = Command::new("sinfo");
    cmd.args(["-h", "-N", "-o", "%N"]);
    if let Some(p) = partition {
        cmd.args(["-p", p]);
    }
    let mut nodes: Vec<String> = run("sinfo", &mut cmd)?.lines().map(|l| l.trim().to_string()).collect();
    nodes.retain(|n| !n.is_empty());
    nodes.dedup();
    Ok(nodes)
}

/// Cancels a job (`scancel`); a job that already ended is no error.
pub fn cancel(id: &str) -> Result<()> {
    let mut cmd = Command::new("scancel");
    cmd.arg(id);
    match run("scancel", &mut cmd) {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("already completing or completed") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Where the cluster logs ended jobs, when it uses `jobcomp/filetxt`.
pub fn jobcomp_location() -> Option<String> {
    let mut cmd = Command::new("scontrol");
    cmd.args(["show", "config"]);
    let out = run("scontrol", &mut cmd).ok()?;
    let value = |key: &str| {
        out.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    (value("JobCompType")? == "jobcomp/filetxt").then(|| value("JobCompLoc")).flatten().filter(|p| p.starts_with('/'))
}

/// The ends of `ids` in a `jobcomp/filetxt` log (one line per ended job:
/// `JobId=1234 ... JobState=TIMEOUT ... ExitCode=0:15`); the last line of a
/// job wins (a requeued job ends more than once).
pub fn ended_in_log(log: &Path, ids: &[String]) -> HashMap<String, JobState> {
    let mut found = HashMap::new();
    let Ok(text) = std::fs::read_to_string(log) else { return found };
    for line in text.lines() {
        let field = |key: &str| line.split_whitespace().find_map(|w| w.strip_prefix(key)).map(str::to_string);
        let Some(id) = field("JobId=") else { continue };
        // An array task is logged with its own job id and `ArrayJobId=`/`ArrayTaskId=`.
        let id = match (field("ArrayJobId="), field("ArrayTaskId=")) {
            (Some(a), Some(t)) if a != "0" && t != "4294967294" => format!("{a}_{t}"),
            _ => id,
        };
        if !ids.contains(&id) {
            continue;
        }
        let (exit_code, signal) = exit_code(&field("ExitCode=").unwrap_or_default());
        let nodes = field("NodeList=").filter(|n| n != "(null)");
        let state = JobState {
            state: field("JobState=").unwrap_or_else(|| "UNKNOWN".into()),
            reason: None,
            node: nodes,
            partition: field("Partition="),
            exit_code,
            signal,
        };
        found.insert(id, state);
    }
    found
}

/// A time limit in minutes: Slurm's forms (`90` minutes, `MM:SS`,
/// `HH:MM:SS`, `D-HH[:MM[:SS]]`) or a duration with units (`2h`, `1h30m`),
/// rounded up to whole minutes.
pub fn parse_time_limit(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let bad = || format!("bad time limit '{text}': use minutes (90), HH:MM:SS, D-HH:MM:SS or a duration such as 2h");
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let minutes = if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
        num(t)?
    } else if t.bytes().all(|b| b.is_ascii_digit() || b == b':' || b == b'-') && !t.is_empty() {
        let (days, rest) = match t.split_once('-') {
            Some((d, rest)) => (num(d)?, rest),
            None => (0, t),
        };
        let parts = rest.split(':').map(num).collect::<std::result::Result<Vec<_>, _>>()?;
        let has_days = t.contains('-');
        let secs = match (has_days, parts.as_slice()) {
            (false, [m, s]) => m * 60 + s,
            (false, [h, m, s]) => h * 3600 + m * 60 + s,
            (true, [h]) => h * 3600,
            (true, [h, m]) => h * 3600 + m * 60,
            (true, [h, m, s]) => h * 3600 + m * 60 + s,
            _ => return Err(bad()),
        };
        (days * 86_400 + secs).div_ceil(60)
    } else {
        let secs = crate::clock::parse_duration(t).map_err(|_| bad())?;
        (secs / 60.0).ceil() as u64
    };
    if minutes == 0 {
        return Err(format!("bad time limit '{text}': Slurm's shortest is one minute"));
    }
    Ok(minutes)
}

/// Runs one Slurm command; its stdout, or an error with its complaint.
fn run(what: &'static str, cmd: &mut Command) -> Result<String> {
    let options =
        proc::Options { stdin: None, output: proc::Output::Apart(KEPT), timeout: TIMEOUT, pass_signals: false };
    let done = proc::run(cmd, options).map_err(|e| {
        Error::environment("slurm", format!("could not run {what}: {e} (is Slurm installed on this machine?)"))
    })?;
    if done.timed_out {
        return Err(Error::environment("slurm", format!("{what} did not answer within {} s", TIMEOUT.as_secs())));
    }
    if !done.status.success() {
        let complaint = String::from_utf8_lossy(&done.stderr);
        return Err(Error::environment(
            "slurm",
            format!("{what} failed ({}): {}", done.status, complaint.trim().lines().last().unwrap_or("no message")),
        ));
    }
    Ok(String::from_utf8_lossy(&done.output).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_are_read_field_by_field() {
        let (id, s) = parse_squeue_line("17|PENDING|Priority||debug|0|").unwrap();
        assert_eq!(id, "17");
        assert!(s.is_pending() && s.is_live());
        assert_eq!((s.reason.as_deref(), s.node, s.exit_code), (Some("Priority"), None, None));
        let (_, s) = parse_squeue_line("18_2|TIMEOUT|TimeLimit|vm|debug|0:15|").unwrap();
        assert!(!s.is_live());
        assert_eq!((s.node.as_deref(), s.exit_code, s.signal), (Some("vm"), Some(0), Some(15)));
        let (_, s) = parse_squeue_line("19|FAILED|None|vm|debug|768|").unwrap();
        assert_eq!((s.reason, s.exit_code, s.signal), (None, Some(3), None));
        let (_, s) = parse_squeue_line("20|TIMEOUT|None|vm|debug|15|").unwrap();
        assert_eq!((s.exit_code, s.signal), (Some(0), Some(15)));
        assert!(parse_squeue_line("").is_none());
    }

    #[test]
    fn time_limits_in_slurms_forms_and_ours() {
        for (text, minutes) in [
            ("1", 1),
            ("90", 90),
            ("1:30", 2),
            ("01:00:00", 60),
            ("1-00:00:00", 1440),
            ("2-3", 51 * 60),
            ("2h", 120),
            ("1h30m", 90),
            ("30s", 1),
        ] {
            assert_eq!(parse_time_limit(text), Ok(minutes), "{text}");
        }
        for bad in ["", "0", "x", "1:2:3:4", "-1", "2q"] {
            assert!(parse_time_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ended_jobs_are_found_in_the_completion_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("jobcomp.log");
        std::fs::write(
            &log,
            "JobId=5 UserId=u(1) JobState=COMPLETED Partition=debug NodeList=vm ExitCode=0:0\n\
             JobId=7 UserId=u(1) JobState=TIMEOUT Partition=debug NodeList=vm ExitCode=0:15\n\
             JobId=9 JobState=CANCELLED NodeList=(null) ExitCode=0:0 ArrayJobId=8 ArrayTaskId=1\n\
             JobId=297 UserId=root(0) GroupId=root(0) Name=s-2qt763dd8v JobState=OUT_OF_MEMORY Partition=debug \
             TimeLimit=10 StartTime=2026-12-01T19:17:28 EndTime=2026-12-01T19:17:29 NodeList=vm NodeCnt=1 ProcCnt=1 \
             WorkDir=/tmp/x ReservationName= Tres=cpu=1,mem=256M,node=1,billing=1 Account= QOS= WcKey= \
             Cluster=unknown SubmitTime=2026-12-01T19:17:23 EligibleTime=2026-12-01T19:17:28 ArrayJobId=297 \
             ArrayTaskId=2 DerivedExitCode=0:0 ExitCode=0:9 \n",
        )
        .unwrap();
        let found = ended_in_log(&log, &["7".into(), "8_1".into(), "6".into(), "297_2".into()]);
        assert_eq!(found.len(), 3);
        assert_eq!((found["297_2"].state.as_str(), found["297_2"].signal), ("OUT_OF_MEMORY", Some(9)));
        assert_eq!((found["7"].state.as_str(), found["7"].signal), ("TIMEOUT", Some(15)));
        assert_eq!((found["8_1"].state.as_str(), found["8_1"].node.as_deref()), ("CANCELLED", None));
    }
}
