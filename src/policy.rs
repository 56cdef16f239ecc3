//! The lab's policy, `labmate.toml` at the root of the experiment repository
//! (committed, reviewed like code): babysitting rules, notifications, how
//! runs are supervised, and the launch queue. A missing file is the
//! defaults; a malformed one is an error naming the key and line.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::rules::{RulesConfig, seconds};

pub const POLICY_FILE: &str = "labmate.toml";

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub rules: RulesConfig,
    pub notify: NotifyConfig,
    pub supervisor: SupervisorConfig,
    pub queue: QueueConfig,
    pub runs: RunsConfig,
}

/// Where alerts go besides the run's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// A command (argv) run with the alert as JSON on stdin.
    pub command: Option<Vec<String>>,
    /// A URL the alert is POSTed to as JSON.
    pub webhook: Option<String>,
    /// How long one notification may take.
    #[serde(deserialize_with = "seconds")]
    pub timeout: f64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig { command: None, webhook: None, timeout: 10.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    /// How often system metrics (`sys/...`) are sampled.
    #[serde(deserialize_with = "seconds")]
    pub sys_interval: f64,
    /// How long a stopped run has between SIGTERM and SIGKILL.
    #[serde(deserialize_with = "seconds")]
    pub stop_grace: f64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig { sys_interval: 5.0, stop_grace: 10.0 }
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

/// What a supervised run babysits with, frozen into its `run.json` at launch
/// so that the run behaves as launched wherever its supervisor runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Babysit {
    pub rules: RulesConfig,
    pub notify: NotifyConfig,
    pub supervisor: SupervisorConfig,
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
        let policy: Policy = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        crate::rules::Babysitter::new(&policy.rules, 0.0).map_err(|e| format!("in [rules] custom: {e}"))?;
        if policy.queue.max_concurrent == Some(0) {
            return Err("[queue] max_concurrent must be 1 or more".into());
        }
        Ok(policy)
    }

    pub fn babysit(&self) -> Babysit {
        Babysit { rules: self.rules.clone(), notify: self.notify.clone(), supervisor: self.supervisor.clone() }
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
        let e = Policy::parse("[rules]\ncustom = [\"loss >\"]\n").unwrap_err();
        assert!(e.contains("bad rule at column 7"), "{e}");
    }
}
