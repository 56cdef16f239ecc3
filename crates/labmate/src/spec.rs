//! What a run records at launch (`run.json`), and how a launch is described
//! before it starts (a launch request, who asks): config parsing, the environment subset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::git::GitState;
use crate::lab::FORMAT_VERSION;
use crate::limits::MAX_NESTING;
use crate::sys::host::{hostname, username};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub format: u32,
    pub id: String,
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub user: String,
    pub created_at: f64,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub git: Option<GitState>,
    #[serde(default)]
    pub origin: String,
    /// The rules, notifications and supervision settings the run was
    /// launched with (supervised runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub babysit: Option<crate::settings::Babysit>,
    /// Launched through the queue: it waits for a slot and a GPU.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queue: bool,
    /// Launched with the wandb stand-in first on the command's `PYTHONPATH`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wandb: bool,
    /// The folder (relative to `cwd`) whose TensorBoard event files the
    /// supervisor follows into the run's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensorboard: Option<String>,
    /// Who launched it, as the face named them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The gate commands (`[gates]` in `labmate.toml`) that passed before the launch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    /// Where an imported run came from (origin `import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<ImportedFrom>,
    /// The scheduler the run was submitted to (`slurm`): its supervisor runs
    /// inside the job, and the job (`slurm.json`) says where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
}

/// A launch on Slurm (`run --slurm`): what it asks of the job, on top of
/// `[slurm]` in `labmate.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmRequest {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub gpus: Option<u32>,
    /// A time limit: Slurm's forms or a duration (`2h`).
    pub time: Option<String>,
    /// Memory per node, as sbatch takes it (`32G`).
    pub mem: Option<String>,
    /// More sbatch options, each one argument (`--constraint=a100`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sbatch_args: Vec<String>,
}

/// The source of an imported run: the tool, the path or URI it was read
/// from, and the run's own id there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedFrom {
    pub tool: String,
    pub source: String,
    pub id: String,
}

/// How one gate command went; recorded in the run's `run.json` (`gates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub command: Vec<String>,
    /// None when it was killed (by its timeout or a signal) or could not start.
    pub exit_code: Option<i32>,
    pub duration_s: f64,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

/// What the user asked to launch. A launch that waits for approval is
/// stored as it was asked (`reviews.jsonl`), and launched as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LaunchRequest {
    pub name: Option<String>,
    pub tags: Vec<String>,
    /// `KEY=VALUE` strings, as given on the command line.
    pub config: Vec<String>,
    /// Rules for this run on top of the lab's, in the rule syntax.
    pub rules: Vec<String>,
    /// Wait in the launch queue for a slot (and a GPU).
    pub queue: bool,
    /// Put the wandb stand-in first on the command's `PYTHONPATH` (also
    /// when `[run] wandb` in `labmate.toml` says so).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wandb: bool,
    /// Follow the TensorBoard event files the command writes under this
    /// folder (relative to `cwd`) into the run's metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensorboard: Option<String>,
    pub command: Vec<String>,
    pub cwd: PathBuf,
    /// Who asks, as the face names them (a launch without one is refused).
    pub author: Option<String>,
    /// Submit it to Slurm instead of running it here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmRequest>,
    /// The gates this launch passed, recorded on the run.
    #[serde(skip)]
    pub gates: Vec<GateResult>,
}

/// Who acts, as a face names them. The CLI names whoever runs it
/// (`--author`, `LABMATE_AUTHOR`, the user); the MCP face always an agent.
/// Records keep the name alone: an agent's is `agent:...` (or listed in
/// `[approval] agents`), so that it stays known as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub is_agent: bool,
}

impl Author {
    /// Someone named by a face; an agent when the name says so (`agent:...`).
    pub fn new(name: &str) -> Result<Author> {
        if name.trim().is_empty() {
            return Err(Error::invalid("author", "an author must not be empty"));
        }
        Ok(Author { name: name.to_string(), is_agent: name.starts_with("agent:") })
    }

    /// An agent, named `agent:<client>` (unless already so named).
    pub fn agent(client: &str) -> Result<Author> {
        let name = if client.trim_start().starts_with("agent:") {
            client.to_string()
        } else {
            format!("agent:{}", client.trim())
        };
        Ok(Author { is_agent: true, ..Author::new(&name)? })
    }
}

/// Why a launch without an author is refused: every run and request names who asked.
pub const NO_AUTHOR: &str = "a launch must name its author";

impl RunSpec {
    pub fn new(id: String, created_at: f64, cwd: &Path) -> RunSpec {
        RunSpec {
            format: FORMAT_VERSION,
            id,
            name: None,
            tags: Vec::new(),
            command: Vec::new(),
            cwd: cwd.display().to_string(),
            host: hostname(),
            user: username(),
            created_at,
            config: Map::new(),
            env: BTreeMap::new(),
            git: None,
            origin: "supervisor".into(),
            babysit: None,
            queue: false,
            wandb: false,
            tensorboard: None,
            author: None,
            gates: Vec::new(),
            imported_from: None,
            scheduler: None,
        }
    }
}

/// Parses `--config KEY=VALUE` arguments into a config object. Values parse
/// as JSON where they do (`3e-4`, `true`, `[1,2]`), else they are strings.
/// Dotted keys nest: `optim.lr=1e-3` gives `{"optim": {"lr": 0.001}}`.
/// The key's parts and the value's groups nest at most
/// [`MAX_NESTING`] levels, so that every reader of `run.json` can read it.
pub fn parse_config(args: &[String]) -> Result<Map<String, Value>> {
    let mut config = Map::new();
    for arg in args {
        let bad = |why: &str| Error::BadConfig { arg: crate::text::clip(arg, 120), why: why.into() };
        let (key, raw) = arg.split_once('=').ok_or_else(|| bad("expected KEY=VALUE, found no '='"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad("the key is empty"));
        }
        let too_deep =
            || bad(&format!("nests deeper than {MAX_NESTING} levels (the key's parts and the value's groups)"));
        let levels = key.split('.').count();
        if levels > MAX_NESTING {
            return Err(too_deep());
        }
        let value = match serde_json::from_str(raw) {
            Ok(v) => v,
            // JSON nested past serde_json's own limit (128), which is deeper than ours.
            Err(e) if e.to_string().starts_with("recursion limit exceeded") => return Err(too_deep()),
            Err(_) => Value::String(raw.to_string()),
        };
        if levels + depth(&value) > MAX_NESTING {
            return Err(too_deep());
        }
        let mut parts = key.split('.').peekable();
        let mut at = &mut config;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                at.insert(part.to_string(), value);
                break;
            }
            let slot = at.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                return Err(bad(&format!("'{part}' is already set to a value, not a group")));
            }
            at = slot.as_object_mut().expect("checked");
        }
    }
    Ok(config)
}

/// How many arrays and objects nest in a value: 0 for a number.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The environment a run records: never a secret.
pub fn env_subset<'a>(vars: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    vars.filter(|(k, _)| {
        matches!(*k, "CUDA_VISIBLE_DEVICES" | "PYTHONPATH") || (k.starts_with("LABMATE_") && !looks_secret(k))
    })
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Whether a variable's name says it may hold a secret. Anywhere in the
/// name: TOKEN, SECRET, PASSWORD, KEY (`LABMATE_APIKEY`). A part of the name
/// (between `_`, `-`, `.`) that starts with PASS, CRED, AUTH, PRIVATE,
/// COOKIE or SESSION (`LABMATE_PASSWD`, `MY_AUTH_HEADER`, `SESSION_ID`),
/// except words that only look like one (`LABMATE_AUTHOR`).
fn looks_secret(name: &str) -> bool {
    const ANYWHERE: [&str; 4] = ["TOKEN", "SECRET", "PASSWORD", "KEY"];
    const PART_STARTS: [&str; 6] = ["PASS", "CRED", "AUTH", "PRIVATE", "COOKIE", "SESSION"];
    const NOT_SECRET: [&str; 8] =
        ["AUTHOR", "AUTHORS", "PASSES", "PASSED", "PASSING", "PASSIVE", "PASSTHROUGH", "CREDIT"];
    let name = name.to_ascii_uppercase();
    ANYWHERE.iter().any(|s| name.contains(s))
        || name
            .split(['_', '-', '.'])
            .any(|part| PART_STARTS.iter().any(|s| part.starts_with(s)) && !NOT_SECRET.contains(&part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_author_is_named_and_an_agent_is_known_as_one() {
        assert!(Author::new("  ").is_err());
        let alice = Author::new("alice").unwrap();
        assert!(!alice.is_agent);
        assert!(Author::new("agent:claude").unwrap().is_agent);
        let mcp = Author::agent("claude").unwrap();
        assert_eq!((mcp.name.as_str(), mcp.is_agent), ("agent:claude", true));
        assert_eq!(Author::agent("agent:x").unwrap().name, "agent:x");
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn config_values_parse_as_json_else_strings() {
        let c = parse_config(&args(&[
            "lr=3e-4",
            "name=resnet",
            "layers=[1,2]",
            "optim.beta=0.9",
            "optim.kind=adam",
            "empty=",
        ]))
        .unwrap();
        assert_eq!(
            Value::Object(c),
            serde_json::json!({"lr": 3e-4, "name": "resnet", "layers": [1,2], "optim": {"beta": 0.9, "kind": "adam"}, "empty": ""})
        );
    }

    #[test]
    fn malformed_config_names_the_problem() {
        let e = parse_config(&args(&["lr"])).unwrap_err().to_string();
        assert_eq!(e, "bad --config 'lr': expected KEY=VALUE, found no '='");
        assert!(parse_config(&args(&["=3"])).unwrap_err().to_string().contains("key is empty"));
        assert!(parse_config(&args(&["a=1", "a.b=2"])).unwrap_err().to_string().contains("not a group"));
    }

    #[test]
    fn env_subset_keeps_no_secrets() {
        let vars = [
            ("CUDA_VISIBLE_DEVICES", "0"),
            ("LABMATE_X", "1"),
            ("LABMATE_API_TOKEN", "s"),
            ("HOME", "/h"),
            ("AWS_SECRET", "s"),
        ];
        let e = env_subset(vars.into_iter());
        assert_eq!(e.keys().collect::<Vec<_>>(), ["CUDA_VISIBLE_DEVICES", "LABMATE_X"]);
    }

    #[test]
    fn env_subset_drops_names_that_look_secret() {
        for name in [
            "LABMATE_PASSWD",
            "LABMATE_PASS",
            "LABMATE_CREDENTIALS",
            "LABMATE_CRED",
            "LABMATE_AUTH",
            "LABMATE_MY_AUTH_HEADER",
            "LABMATE_AUTHORIZATION",
            "LABMATE_PRIVATE_URL",
            "LABMATE_COOKIE",
            "LABMATE_SESSION_ID",
            "LABMATE_SESSIONID",
            "labmate_passphrase",
            "LABMATE_APIKEY",
            "LABMATE_DB_PASSWORD",
        ] {
            assert!(env_subset([(name, "s")].into_iter()).is_empty(), "{name} is kept");
        }
        for name in ["LABMATE_DIR", "LABMATE_AUTHOR", "LABMATE_SEED", "LABMATE_RUN_ID", "LABMATE_COMPASS"] {
            assert!(env_subset([(name, "v")].into_iter()).contains_key(name), "{name} is dropped");
        }
    }
}
