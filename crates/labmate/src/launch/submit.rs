//! Submitting launched runs to Slurm: the job a run asks for (`[slurm]`
//! under the request's own options), its batch script, `sbatch`, and the
//! job recorded in the run folder before the launcher lets go of it; a
//! sweep's runs as one job array.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::policy::{Policy, SlurmConfig};
use crate::slurm;
use crate::spec::SlurmRequest;
use crate::supervisor::Prepared;
use crate::sweep::{self, Sweep};

/// What a job asks of Slurm: `[slurm]` in `labmate.toml` under the
/// request's own options.
#[derive(Debug)]
struct JobAsk {
    partition: Option<String>,
    account: Option<String>,
    gpus: u32,
    time_limit_min: Option<u64>,
    mem: Option<String>,
    sbatch_args: Vec<String>,
    labmate: Option<String>,
    jobcomp_log: Option<String>,
}

impl JobAsk {
    fn new(lab_wide: &SlurmConfig, req: &SlurmRequest) -> Result<JobAsk> {
        let time = req.time.as_ref().or(lab_wide.time.as_ref());
        let time_limit_min =
            time.map(|t| slurm::parse_time_limit(t)).transpose().map_err(|why| Error::invalid("time", why))?;
        let ask = JobAsk {
            partition: req.partition.clone().or_else(|| lab_wide.partition.clone()),
            account: req.account.clone().or_else(|| lab_wide.account.clone()),
            gpus: req.gpus.or(lab_wide.gpus).unwrap_or(0),
            time_limit_min,
            mem: req.mem.clone().or_else(|| lab_wide.mem.clone()),
            sbatch_args: lab_wide.sbatch_args.iter().chain(&req.sbatch_args).cloned().collect(),
            labmate: lab_wide.labmate.clone(),
            jobcomp_log: lab_wide.jobcomp_log.clone(),
        };
        for (what, value) in [("partition", &ask.partition), ("account", &ask.account), ("mem", &ask.mem)] {
            if let Some(v) = value.as_deref().filter(|v| v.is_empty() || v.chars().any(|c| c.is_whitespace())) {
                return Err(Error::invalid(what, format!("--{what} {v:?} must be one word")));
            }
        }
        Ok(ask)
    }

    /// The `#SBATCH` lines of the job; the extra sbatch arguments go on
    /// sbatch's command line, each one argument.
    fn directives(&self, name: &str, output: &Path, cwd: &str) -> Result<Vec<String>> {
        let output = directive_path("the run folder", &output.display().to_string())?;
        let mut lines = vec![format!("--job-name={}", one_word(name)), format!("--output={output}")];
        lines.push(format!("--chdir={}", directive_path("the working directory", cwd)?));
        if let Some(p) = &self.partition {
            lines.push(format!("--partition={p}"));
        }
        if let Some(a) = &self.account {
            lines.push(format!("--account={a}"));
        }
        if let Some(t) = self.time_limit_min {
            lines.push(format!("--time={t}"));
        }
        if self.gpus > 0 {
            lines.push(format!("--gpus={}", self.gpus));
        }
        if let Some(m) = &self.mem {
            lines.push(format!("--mem={m}"));
        }
        Ok(lines)
    }

    fn job(&self, job_id: String, submitted: f64, script: &Path, jobcomp_log: Option<String>) -> slurm::Job {
        slurm::Job {
            job_id,
            partition: self.partition.clone(),
            account: self.account.clone(),
            gpus: self.gpus,
            time_limit_min: self.time_limit_min,
            submitted,
            script: script.display().to_string(),
            jobcomp_log,
        }
    }

    /// The completion log to read for jobs Slurm forgot: `[slurm]
    /// jobcomp_log`, else the cluster's own, asked once per submission.
    fn jobcomp_log(&self) -> Option<String> {
        self.jobcomp_log.clone().or_else(slurm::jobcomp_location)
    }
}

/// What a launcher should know when the lab may not be where the nodes
/// can see it: on a local file system while the partition has nodes other
/// than this host. Slurm runs need the lab on a file system the nodes share
/// at the same path (NFS, Lustre, GPFS...); a local one cannot be checked
/// further from here, so it is said, not refused.
pub fn shared_fs_notice(lab: &Lab, partition: Option<&str>) -> Option<String> {
    if crate::sys::fs::network_fs(lab.root()).ok()?.is_some() {
        return None;
    }
    let here = crate::sys::host::hostname();
    let short = here.split('.').next().unwrap_or(&here).to_string();
    let nodes = slurm::nodes(partition).ok()?;
    let others: Vec<&String> = nodes.iter().filter(|n| **n != here && **n != short).collect();
    if others.is_empty() {
        return None;
    }
    Some(format!(
        "warning: the lab ({}) is on a local file system, but Slurm may run the job on {}: the nodes must see the lab at the same path",
        lab.root().display(),
        others.iter().take(3).map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
    ))
}

/// Submits a prepared run to Slurm: writes its batch script (`slurm.sh`,
/// whose job runs `labmate __supervise --job` on the run folder), submits it
/// with `sbatch --parsable`, and records the job (`slurm.json`) before it
/// lets go of the run. A job sbatch refuses ends the run `failed`, with
/// sbatch's words.
pub fn submit(lab: &Lab, prepared: Prepared, req: &SlurmRequest, exe: &Path) -> Result<slurm::Job> {
    let ask = match Policy::load(lab).and_then(|policy| JobAsk::new(&policy.slurm, req)) {
        Ok(ask) => ask,
        Err(e) => {
            never_submitted(&prepared, &e.to_string());
            return Err(e);
        }
    };
    let dir = prepared.dir.clone();
    let spec = &prepared.spec;
    let directives = match ask.directives(spec.name.as_deref().unwrap_or(&spec.id), &dir.file("slurm.out"), &spec.cwd) {
        Ok(d) => d,
        Err(e) => {
            never_submitted(&prepared, &e.to_string());
            return Err(e);
        }
    };
    let labmate = ask.labmate.clone().map(PathBuf::from).unwrap_or_else(|| exe.to_path_buf());
    // A run pushed to another lab is pushed from its job: the URL in the
    // script, the token in the job's environment.
    let (remote, env) = match prepared.remote() {
        Some(r) => (format!(" --remote {}", quote(Path::new(&r.url))), vec![("LABMATE_TOKEN", r.token.as_str())]),
        None => (String::new(), Vec::new()),
    };
    let body = format!("exec {} __supervise --job{remote} {}\n", quote(&labmate), quote(dir.path()));
    let script = dir.file(crate::rundir::SLURM_SCRIPT);
    let submitted = write_script(&script, &format!("run {}", spec.id), &directives, &body)
        .and_then(|()| slurm::submit(&script, &ask.sbatch_args, &env));
    match submitted {
        Ok(job_id) => {
            let job = ask.job(job_id, lab.now(), &script, ask.jobcomp_log());
            dir.write_slurm_job(&job)?;
            drop(prepared);
            Ok(job)
        }
        Err(e) => {
            never_submitted(&prepared, &format!("sbatch did not take the job: {e}"));
            Err(e)
        }
    }
}

/// Submits a sweep's prepared runs as one job array: task `i` supervises
/// the sweep's run `i`, at most `max_concurrent` at once. The script is
/// `sweeps/<id>.sh`; each run records its task's job (`<array>_<i>`).
pub(super) fn submit_array(
    lab: &Lab,
    sweep: &mut Sweep,
    runs: Vec<Prepared>,
    req: &SlurmRequest,
    exe: &Path,
) -> Result<String> {
    let fail = |runs: &[Prepared], e: Error| {
        for prepared in runs {
            never_submitted(prepared, &format!("sbatch did not take the sweep's job array: {e}"));
        }
        e
    };
    let ask = match Policy::load(lab).and_then(|policy| JobAsk::new(&policy.slurm, req)) {
        Ok(ask) => ask,
        Err(e) => return Err(fail(&runs, e)),
    };
    let Some(first) = runs.first() else { return Err(Error::invalid("sweep", "a sweep without points")) };
    let folder = lab.root().join(sweep::DIR);
    let output = folder.join(format!("{}-%a.out", sweep.id));
    let mut directives = match ask.directives(&sweep.id, &output, &first.spec.cwd) {
        Ok(d) => d,
        Err(e) => return Err(fail(&runs, e)),
    };
    let limit = sweep.max_concurrent.map(|k| format!("%{k}")).unwrap_or_default();
    directives.push(format!("--array=0-{}{limit}", runs.len() - 1));
    let labmate = ask.labmate.clone().map(PathBuf::from).unwrap_or_else(|| exe.to_path_buf());
    let mut body = String::from("runs=(\n");
    for prepared in &runs {
        body.push_str(&format!("  {}\n", quote(prepared.dir.path())));
    }
    body.push_str(&format!(")\nexec {} __supervise --job \"${{runs[$SLURM_ARRAY_TASK_ID]}}\"\n", quote(&labmate)));
    let script = folder.join(format!("{}.sh", sweep.id));
    let submitted = fs::create_dir_all(&folder)
        .map_err(|e| Error::io(&folder, e))
        .and_then(|()| write_script(&script, &format!("sweep {}", sweep.id), &directives, &body))
        .and_then(|()| slurm::submit(&script, &ask.sbatch_args, &[]));
    let array = match submitted {
        Ok(array) => array,
        Err(e) => return Err(fail(&runs, e)),
    };
    let (now, log) = (lab.now(), ask.jobcomp_log());
    for (i, prepared) in runs.iter().enumerate() {
        prepared.dir.write_slurm_job(&ask.job(format!("{array}_{i}"), now, &script, log.clone()))?;
    }
    sweep.slurm_array = Some(array.clone());
    Ok(array)
}

/// Ends a run made for Slurm that was never submitted: `failed`, with why.
pub(super) fn never_submitted(prepared: &Prepared, why: &str) {
    let end = crate::record::Record::End(crate::record::End {
        time: prepared.lab_now(),
        status: crate::record::RunStatus::Failed,
        exit_code: None,
        signal: None,
        reason: Some(format!("not submitted to Slurm: {why}")),
    });
    if let Ok(mut stream) = prepared.dir.append(crate::rundir::SUPERVISOR_STREAM) {
        let _ = stream.write_record(&end);
    }
}

/// Writes a batch script: its `#SBATCH` lines, then `body`; executable.
fn write_script(path: &Path, what: &str, directives: &[String], body: &str) -> Result<()> {
    let mut text = format!("#!/bin/bash\n# labmate: the supervisor of {what} runs inside this job.\n");
    for d in directives {
        text.push_str(&format!("#SBATCH {d}\n"));
    }
    text.push_str(body);
    fs::write(path, text).map_err(|e| Error::io(path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(path, e))
}

/// A word for the shell, in single quotes.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// A path as an `#SBATCH` value: in double quotes when it has white space
/// (sbatch reads them); one with a double quote or a line break cannot be
/// written there.
fn directive_path(what: &str, path: &str) -> Result<String> {
    if path.contains(['"', '\n', '\r']) {
        return Err(Error::invalid(
            "path",
            format!(
                "{what} {path:?} has a double quote or a line break, which a batch script's #SBATCH lines cannot hold"
            ),
        ));
    }
    Ok(if path.contains(char::is_whitespace) { format!("\"{path}\"") } else { path.to_string() })
}

/// A job name sbatch takes as one word.
fn one_word(name: &str) -> String {
    name.chars().map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c }).collect()
}
