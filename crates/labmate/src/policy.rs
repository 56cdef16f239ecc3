//! The lab's policy, `labmate.toml` at the root of the experiment repository
//! (committed, reviewed like code): babysitting rules, notifications, how
//! runs are supervised, the launch queue, and the human's gates: budgets,
//! gate commands, which launches need approval, when a change needs review.
//! A missing file is the defaults; a malformed one is an error naming the key
//! and line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::settings::{Babysit, NotifyConfig, RulesConfig, SupervisorConfig, seconds};
use crate::spec::Author;

pub const POLICY_FILE: &str = "labmate.toml";

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub rules: RulesConfig,
    pub notify: NotifyConfig,
    pub supervisor: SupervisorConfig,
    pub queue: QueueConfig,
    pub runs: RunsConfig,
    pub run: RunConfig,
    pub budget: BudgetConfig,
    pub gates: GatesConfig,
    pub approval: ApprovalConfig,
    pub review: ReviewConfig,
    pub serve: ServeConfig,
    pub slurm: SlurmConfig,
    pub remote: RemoteConfig,
    /// `[index]`: where the derived index lives, read by [`crate::index`] itself.
    pub index: crate::index::IndexConfig,
    /// `[notebook]`: read and checked by [`crate::notebook`] itself.
    pub notebook: toml::Table,
}

/// `[serve]`: the dashboard (`labmate serve`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// The person at the dashboard, who approves and rejects there
    /// (`--user` says it for one server). Without one the dashboard only
    /// shows.
    pub user: Option<String>,
}

/// `[remote]`: runs that reach a lab over HTTP. Where this lab's runs are
/// pushed (`labmate sync`, and every supervised run while it lives), and,
/// for a lab that accepts runs, how long a writer may be silent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteConfig {
    /// The accepting server, `http://HOST:PORT`.
    pub url: Option<String>,
    /// The file holding that server's token, relative to the repository root.
    pub token_file: Option<PathBuf>,
    /// An accepted run not heard from for this long is lost.
    #[serde(deserialize_with = "seconds")]
    pub silence: f64,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig { url: None, token_file: None, silence: 60.0 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Runs of this lab that may run at once; queued runs wait for a slot.
    pub max_concurrent: Option<u32>,
}

/// How runs are named and grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunsConfig {
    /// The name template of runs launched without `--name`, e.g. `lr{config.lr}-s{config.seed}`.
    pub name: Option<String>,
    /// The config key that holds a run's seed.
    pub seed_key: String,
}

impl Default for RunsConfig {
    fn default() -> Self {
        RunsConfig { name: None, seed_key: "seed".into() }
    }
}

/// `[run]`: how every run is launched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// As `labmate run --wandb`: `import wandb` in the command gets the stand-in.
    pub wandb: bool,
}

/// `[slurm]`: what `run --slurm` and `sweep --slurm` ask of a job unless
/// their flags say otherwise, and where labmate is on the nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmConfig {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// A time limit: Slurm's forms (`90`, `01:30:00`) or a duration (`2h`).
    pub time: Option<String>,
    pub gpus: Option<u32>,
    pub mem: Option<String>,
    /// More sbatch options for every job, each one argument.
    pub sbatch_args: Vec<String>,
    /// The `labmate` binary as the nodes see it; the launcher's own by default.
    pub labmate: Option<String>,
    /// Slurm's job-completion log (`jobcomp/filetxt`), read for ended jobs
    /// `squeue` no longer lists; asked of `scontrol show config` by default.
    pub jobcomp_log: Option<String>,
}

/// How much running the lab allows: per run, and per day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// A run is stopped once it has run this long.
    pub max_run_minutes: Option<f64>,
    /// Wall-clock hours x GPUs of all runs in the last 24 hours.
    pub daily_run_hours: Option<f64>,
    /// Budgets of one author: `[budget.authors."agent:claude"]`.
    pub authors: BTreeMap<String, AuthorBudget>,
}

/// One author's budget: its `max_run_minutes` replaces the lab's for its
/// runs; its `daily_run_hours` counts its own runs, on top of the lab's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorBudget {
    pub max_run_minutes: Option<f64>,
    pub daily_run_hours: Option<f64>,
}

/// Commands that must pass before a launch, run in the working tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatesConfig {
    /// Each gate is an argv, e.g. `["pytest", "-q", "tests/"]`; never a shell line.
    #[serde(deserialize_with = "argv_list")]
    pub commands: Vec<Vec<String>>,
    /// How long one gate may take before it is killed (and fails).
    #[serde(deserialize_with = "seconds")]
    pub timeout: f64,
}

impl Default for GatesConfig {
    fn default() -> Self {
        GatesConfig { commands: Vec::new(), timeout: 600.0 }
    }
}

/// Which launches wait for a human's yes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalConfig {
    /// A launch over `daily_run_hours` asks for approval (else it is refused).
    pub over_budget: bool,
    /// Launches with any of these tags.
    pub tags: Vec<String>,
    /// Any launch by an agent author.
    pub agent: bool,
    /// Launches from a working tree with uncommitted changes.
    pub dirty: bool,
    /// Authors that are agents besides those named `agent:...`.
    pub agents: Vec<String>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        ApprovalConfig { over_budget: true, tags: Vec::new(), agent: false, dirty: false, agents: Vec::new() }
    }
}

/// When the code has changed enough to ask for a human look.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewConfig {
    /// Lines added + removed against the baseline above which a launch
    /// opens a review item (the launch goes on).
    pub lines_changed: Option<u64>,
}

/// A TOML error as the reader words it, each line clipped: it quotes the
/// line at fault, which may be as long as the file.
pub(crate) fn toml_error(e: &toml::de::Error) -> String {
    e.to_string().trim_end().lines().map(|l| crate::text::clip(l, 160)).collect::<Vec<_>>().join("\n")
}

impl Policy {
    pub fn path(lab: &Lab) -> PathBuf {
        lab.repo_root().join(POLICY_FILE)
    }

    pub fn load(lab: &Lab) -> Result<Policy> {
        let path = Policy::path(lab);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Policy::default()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Policy::parse(&text).map_err(|why| Error::BadPolicy { path, why })
    }

    pub fn parse(text: &str) -> std::result::Result<Policy, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| toml_error(&e))?;
        crate::rules::Babysitter::new(&policy.rules, 0.0).map_err(|e| format!("in [rules] custom: {e}"))?;
        if let Some(url) = &policy.notify.webhook {
            crate::notify::check_webhook(url).map_err(|why| format!("[notify] webhook {url:?}: {why}"))?;
        }
        if let Some(time) = &policy.slurm.time {
            crate::slurm::parse_time_limit(time).map_err(|why| format!("[slurm] time: {why}"))?;
        }
        if policy.queue.max_concurrent == Some(0) {
            return Err("[queue] max_concurrent must be 1 or more".into());
        }
        let budget = &policy.budget;
        let authors = budget.authors.iter().map(|(a, b)| (format!("[budget.authors.\"{a}\"]"), b));
        for (table, minutes, hours) in
            std::iter::once(("[budget]".to_string(), &budget.max_run_minutes, &budget.daily_run_hours))
                .chain(authors.map(|(t, b)| (t, &b.max_run_minutes, &b.daily_run_hours)))
        {
            for (key, value) in [("max_run_minutes", minutes), ("daily_run_hours", hours)] {
                if value.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                    return Err(format!("{table} {key} must be a positive number"));
                }
            }
        }
        Ok(policy)
    }

    pub fn babysit(&self) -> Babysit {
        Babysit {
            rules: self.rules.clone(),
            notify: self.notify.clone(),
            supervisor: self.supervisor.clone(),
            max_run_minutes: self.budget.max_run_minutes,
        }
    }

    /// What a run of `author` babysits with: the lab's settings, with the
    /// author's own `max_run_minutes` when it has one.
    pub fn babysit_for(&self, author: &str) -> Babysit {
        let mut b = self.babysit();
        if let Some(m) = self.budget.authors.get(author).and_then(|a| a.max_run_minutes) {
            b.max_run_minutes = Some(m);
        }
        b
    }

    /// Whether an author is an agent: named `agent:...`, or listed in `[approval] agents`.
    pub fn is_agent(&self, author: &str) -> bool {
        author.starts_with("agent:") || self.approval.agents.iter().any(|a| a == author)
    }

    /// Whether someone acting now is an agent: the face says so, or the name does.
    pub fn acts_as_agent(&self, author: &Author) -> bool {
        author.is_agent || self.is_agent(&author.name)
    }
}

/// A list of argv arrays; a string where an argv belongs is refused, since
/// gates are never run through a shell.
fn argv_list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<Vec<String>>, D::Error> {
    use serde::de::Error as _;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum One {
        Argv(Vec<String>),
        Line(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<One>),
        Line(String),
    }
    let shell_line = |line: &str| {
        D::Error::custom(format!(
            "[gates] commands: a gate is an argv array like [\"pytest\", \"-q\", \"tests/\"], not the string {line:?} (gates never run through a shell)"
        ))
    };
    match Raw::deserialize(d).map_err(|_| {
        D::Error::custom("[gates] commands: expected a list of argv arrays, e.g. [[\"pytest\", \"-q\"]]")
    })? {
        Raw::Line(line) => Err(shell_line(&line)),
        Raw::List(list) => list
            .into_iter()
            .map(|one| match one {
                One::Argv(argv) if argv.first().is_some_and(|p| !p.is_empty()) => Ok(argv),
                One::Argv(_) => Err(D::Error::custom("a gate's argv must start with a program")),
                One::Line(line) => Err(shell_line(&line)),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_policy_parses() {
        let p = Policy::parse(
            r#"
[rules]
custom = ["val_loss > 5 after step 1000 => stop"]
[rules.stall]
floor = "30s"
[notify]
command = ["notify-send", "labmate"]
webhook = "http://127.0.0.1:9/hook"
[supervisor]
sys_interval = "2s"
[queue]
max_concurrent = 2
"#,
        )
        .unwrap();
        assert_eq!(p.rules.stall.floor, 30.0);
        assert_eq!(p.supervisor.sys_interval, 2.0);
        assert_eq!(p.queue.max_concurrent, Some(2));
    }

    #[test]
    fn mistakes_name_the_key_and_line() {
        let e = Policy::parse("[rules]\n[rules.stal]\nfloor = 1\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("stal"), "{e}");
        let e = Policy::parse("[supervisor]\nsys_interval = \"soon\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("bad duration 'soon'"), "{e}");
        let e = Policy::parse("[notify]\nwebhook = \"file:///etc/passwd\"\n").unwrap_err();
        assert!(e.contains("[notify] webhook \"file:///etc/passwd\": the URL must start with http://"), "{e}");
        let e = Policy::parse("[rules]\ncustom = [\"loss > NaN => stop\"]\n").unwrap_err();
        assert!(e.contains("in [rules] custom: bad rule at column 8: NaN"), "{e}");
        let e = Policy::parse("[rules]\ncustom = [\"loss >\"]\n").unwrap_err();
        assert!(e.contains("bad rule at column 7"), "{e}");
    }

    #[test]
    fn the_gates_budgets_and_approvals_parse() {
        let p = Policy::parse(
            r#"
[budget]
max_run_minutes = 90
daily_run_hours = 24.5
[budget.authors."agent:claude"]
max_run_minutes = 30
[gates]
commands = [["pytest", "-q", "tests/"], ["python3", "repro.py"]]
timeout = "2m"
[approval]
tags = ["big"]
agent = true
agents = ["claude"]
[review]
lines_changed = 500
[notebook]
path = "NOTES.md"
"#,
        )
        .unwrap();
        assert_eq!(p.gates.commands[1], ["python3", "repro.py"]);
        assert_eq!(p.gates.timeout, 120.0);
        assert!(p.approval.over_budget, "over_budget defaults to true");
        assert_eq!(p.babysit_for("agent:claude").max_run_minutes, Some(30.0));
        assert_eq!(p.babysit_for("me").max_run_minutes, Some(90.0));
        assert!(p.is_agent("agent:codex") && p.is_agent("claude") && !p.is_agent("me"));
        assert_eq!(p.review.lines_changed, Some(500));
    }

    #[test]
    fn run_wandb_is_a_boolean() {
        assert!(Policy::parse("[run]\nwandb = true\n").unwrap().run.wandb);
        assert!(!Policy::parse("").unwrap().run.wandb);
        let e = Policy::parse("[run]\nwandb = \"yes\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("wandb = \"yes\"") && e.contains("expected a boolean"), "{e}");
        let e = Policy::parse("[run]\nwand = true\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("unknown field `wand`"), "{e}");
    }

    #[test]
    fn gate_and_budget_mistakes_name_the_key_and_line() {
        let e = Policy::parse("[gates]\ncommands = [\"pytest -q tests/\"]\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("commands") && e.contains("not the string"), "{e}");
        let e = Policy::parse("[gates]\ncommands = \"pytest\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("argv array"), "{e}");
        let e = Policy::parse("[gates]\ncommands = [[]]\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("start with a program"), "{e}");
        let e = Policy::parse("\n[budget]\nmax_run_minute = 3\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("max_run_minute"), "{e}");
        let e = Policy::parse("[budget.authors.me]\ndaily_hours = 3\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("daily_hours"), "{e}");
        let e = Policy::parse("[approval]\ntags = \"big\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("tags"), "{e}");
        let e = Policy::parse("[budget]\ndaily_run_hours = -1\n").unwrap_err();
        assert!(e.contains("[budget] daily_run_hours must be a positive number"), "{e}");
    }
}
