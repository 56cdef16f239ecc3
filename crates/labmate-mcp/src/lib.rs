//! `labmate mcp`: the agent's face. The lab as MCP tools over stdio (rmcp,
//! the official Rust SDK), each answering compact text sized for a model's
//! context and the same data as JSON in `structuredContent`.
//!
//! A face: it parses a tool's arguments, calls the core (reads through the
//! index and the registry, actions through the facade) and renders. Every
//! call is an agent's: the author is `agent:<client name>` from the
//! client's `initialize`, or the `--author` the command was given. No tool
//! approves or rejects: decisions stay with the human.

mod render;

use labmate::facade::{self, Author};
use labmate::index::Index;
use labmate::lab::Lab;
use labmate::notebook::{self, Filter, NewEntry};
use labmate::query::Expr;
use labmate::registry::{self, SortKey};
use labmate::rundir::{OUTPUT_LOG, RunDir};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

/// What `labmate mcp` is started with.
pub struct Config {
    pub lab: Lab,
    /// `agent:NAME` for every call, instead of the client's name.
    pub author: Option<String>,
    /// The `labmate` binary, which supervises the runs `launch` starts.
    pub exe: std::path::PathBuf,
}

/// The streamable HTTP transport, for a server to mount (`labmate serve`
/// at `/mcp`, behind its own token, Host and Origin checks). Each session
/// gets its tools; `closing` ends the open streams when the server stops.
pub fn http_service(
    config: Config,
    allowed_hosts: Vec<String>,
    closing: tokio_util::sync::CancellationToken,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    impl ServerHandler,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    let Config { lab, author, exe } = config;
    let mut settings = StreamableHttpServerConfig::default().with_allowed_hosts(allowed_hosts);
    settings.cancellation_token = closing;
    StreamableHttpService::new(
        move || {
            Ok(LabTools {
                lab: lab.clone(),
                author: author.clone(),
                exe: exe.clone(),
                tool_router: LabTools::tool_router(),
            })
        },
        Default::default(),
        settings,
    )
}

/// Serves the lab over stdin/stdout until the client closes it.
pub async fn serve_stdio(config: Config) -> std::io::Result<()> {
    let tools =
        LabTools { lab: config.lab, author: config.author, exe: config.exe, tool_router: LabTools::tool_router() };
    let running = tools.serve(rmcp::transport::stdio()).await.map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

#[derive(Clone)]
struct LabTools {
    lab: Lab,
    author: Option<String>,
    exe: std::path::PathBuf,
    #[allow(dead_code)] // read by the code #[tool_handler] writes
    tool_router: ToolRouter<LabTools>,
}

/// A tool's answer: compact text, and the data as JSON.
struct Answer {
    text: String,
    data: Value,
}

type ToolResult = Result<CallToolResult, ErrorData>;

impl LabTools {
    /// Runs `f` on the blocking pool with an index caught up with the lab;
    /// a core error becomes a tool error with the CLI's words.
    async fn with_index(&self, f: impl FnOnce(&Index) -> labmate::Result<Answer> + Send + 'static) -> ToolResult {
        let lab = self.lab.clone();
        let done = tokio::task::spawn_blocking(move || Index::open_synced(&lab).and_then(|(index, _)| f(&index)))
            .await
            .map_err(|_| ErrorData::internal_error("the tool's work stopped before it answered", None))?;
        Ok(answer(done))
    }

    /// The acting agent: `--author`, else `agent:` and the client's name.
    fn agent(&self, peer: &Peer<RoleServer>) -> Author {
        let name = match &self.author {
            Some(a) => a.clone(),
            None => {
                let client = peer.peer_info().map(|i| i.client_info.name.clone()).unwrap_or_default();
                let client = if client.trim().is_empty() { "mcp".to_string() } else { client };
                format!("agent:{client}")
            }
        };
        Author { name, is_agent: true }
    }
}

fn answer(done: labmate::Result<Answer>) -> CallToolResult {
    match done {
        Ok(Answer { text, data }) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = Some(if data.is_object() { data } else { json!({ "result": data }) });
            result
        }
        Err(e) => CallToolResult::error(vec![ContentBlock::text(render::error(&e))]),
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct RunsArgs {
    /// A filter in the `--where` language, e.g. `status == "finished" and config.lr < 1e-3`.
    #[serde(rename = "where")]
    filter: Option<String>,
    /// Sort keys (paths; a leading `-` sorts descending), e.g. `["-metrics.val_loss.min"]`.
    #[serde(default)]
    sort: Vec<String>,
    /// Columns to show instead of the key metrics (paths like `config.lr`, `metrics.loss.min`).
    #[serde(default)]
    columns: Vec<String>,
    /// Group runs sharing these paths' values (e.g. `["config.lr"]`): n, mean, std, 95% CI.
    #[serde(default)]
    group_by: Vec<String>,
    /// Runs (or groups) shown at most; default 20.
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct RunArg {
    /// A run: full id, unique prefix, last 4 characters, or name.
    run: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct StatusArgs {
    /// Runs to show; the active ones and those ended in the last hour when empty.
    #[serde(default)]
    runs: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct MetricsArgs {
    /// A run: full id, unique prefix, last 4 characters, or name.
    run: String,
    /// Metric keys; the run's key metrics when empty.
    #[serde(default)]
    keys: Vec<String>,
    /// Points per series at most, keeping every spike; default 100.
    points: Option<usize>,
    /// Only the points after this step.
    since_step: Option<i64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct LogsArgs {
    /// A run: full id, unique prefix, last 4 characters, or name.
    run: String,
    /// The last N lines; default 40.
    tail: Option<usize>,
    /// Only lines matching this regular expression (searched in the whole output).
    grep: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct EventsArgs {
    /// A run; every run's events when absent.
    run: Option<String>,
    /// Events at or after this time: `10m`, `2h`, `1d`, or an RFC 3339 time; default 1d.
    since: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct CompareArgs {
    /// Two or more sides: runs, `PATH=VALUE` groups (e.g. `config.lr=3e-4`), or expressions. One side is compared with the baseline.
    sides: Vec<String>,
    /// Metrics (`val_loss`, `metrics.val_loss.min`); the key metrics when empty.
    #[serde(default)]
    metric: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct NotebookArgs {
    /// Only entries of this kind: hypothesis, observation, result, decision, bug.
    kind: Option<String>,
    /// Entries at or after this time: `10m`, `2h`, `1d`, or an RFC 3339 time.
    since: Option<String>,
    /// Only entries about this run.
    run: Option<String>,
    /// Entries shown at most, the latest; default 10.
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct NoteArgs {
    /// hypothesis, observation, result, decision (a bug needs its reproducer: use the CLI).
    kind: String,
    /// The entry, in markdown. Live references like `{{RUN.metrics.val_loss.min}}` are checked and rendered.
    text: String,
    /// Runs the entry is about.
    #[serde(default)]
    runs: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct LaunchArgs {
    /// The command as an argv array (never a shell line), e.g. `["python", "train.py", "--lr", "3e-4"]`.
    argv: Vec<String>,
    /// The run's name; the lab's name template when absent.
    name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// Config values recorded on the run, e.g. `{"lr": 0.0003, "seed": 1}`.
    #[serde(default)]
    config: serde_json::Map<String, Value>,
    /// Rules for this run on top of the lab's, e.g. `["val_loss > 5 after step 1000 => stop"]`.
    #[serde(default)]
    rules: Vec<String>,
    /// Wait in the lab's launch queue for a slot.
    #[serde(default)]
    queue: bool,
    /// Give the command labmate's wandb stand-in: its `import wandb` logs into the run.
    #[serde(default)]
    wandb: bool,
    /// A folder (relative to the lab's repository) where the command writes TensorBoard event files:
    /// their scalars become the run's metrics, live.
    #[serde(default)]
    tensorboard: Option<String>,
    /// Submit to Slurm instead of running here: the job's options (all optional; `[slurm]` in
    /// labmate.toml gives the defaults), e.g. `{"partition": "gpu", "gpus": 1, "time": "2h"}`.
    #[serde(default)]
    slurm: Option<SlurmArgs>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SlurmArgs {
    partition: Option<String>,
    account: Option<String>,
    /// GPUs for the job.
    gpus: Option<u32>,
    /// The time limit: minutes (`90`), `HH:MM:SS`, or a duration (`2h`).
    time: Option<String>,
    /// Memory per node, e.g. `32G`.
    mem: Option<String>,
    /// More sbatch options, each one argument, e.g. `["--constraint=a100"]`.
    #[serde(default)]
    sbatch_args: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct StopArgs {
    /// Runs to stop: ids, prefixes, last 4 characters, or names.
    runs: Vec<String>,
    /// Why, for the record.
    reason: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct WaitArgs {
    /// Runs to wait for.
    runs: Vec<String>,
    /// Return once this holds for every run, e.g. `val_loss < 0.3` or `step >= 1000`.
    until: Option<String>,
    /// Seconds to wait at most; default 60, at most 600.
    timeout_s: Option<f64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ReviewArgs {
    /// What the human should look at, and why.
    note: String,
    /// The run it is about.
    run: Option<String>,
    /// The notebook entry it is about.
    entry: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct PlotArgs {
    /// Runs to draw, one curve each (or `group_by` to draw groups as a mean with a min–max band).
    #[serde(default)]
    runs: Vec<String>,
    /// Instead of `runs`: the runs for which this `--where` expression holds.
    #[serde(rename = "where")]
    filter: Option<String>,
    /// Instead of `runs`: sides as `compare` takes them (runs, `PATH=VALUE` groups, expressions); groups of one `PATH` are drawn as groups.
    #[serde(default)]
    sides: Vec<String>,
    /// The metric keys, a panel each.
    metric: Vec<String>,
    /// Group the runs by these paths (e.g. `["config.lr"]`).
    #[serde(default)]
    group_by: Vec<String>,
    /// A logarithmic y axis.
    #[serde(default)]
    log_y: bool,
}

/// Set when a call is given up (its future dropped), for the blocking work
/// it started.
#[derive(Default)]
struct GivenUp(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl GivenUp {
    fn clock(&self) -> GiveUpClock {
        GiveUpClock(self.0.clone())
    }
}

impl Drop for GivenUp {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The wall clock, until the call is given up: then every deadline has
/// passed and a pause takes no time, so a wait ends at its next look.
struct GiveUpClock(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl labmate::follow::Clock for GiveUpClock {
    fn now(&self) -> std::time::Instant {
        let now = std::time::Instant::now();
        if self.0.load(std::sync::atomic::Ordering::Relaxed) {
            now.checked_add(std::time::Duration::from_secs(10 * 365 * 86_400)).unwrap_or(now)
        } else {
            now
        }
    }

    fn sleep(&self, pause: std::time::Duration) {
        if !self.0.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(pause);
        }
    }
}

/// The notebook as a resource.
const NOTEBOOK_URI: &str = "labmate://notebook";

/// How often a `wait` tells a client that asked for progress that it waits.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Longest a `wait` blocks.
const MAX_WAIT_S: f64 = 600.0;

#[tool_router]
impl LabTools {
    #[tool(
        description = "Query the runs registry: a compact table of runs (or groups across seeds) with their key metrics. \
Use `where` to filter, `sort`, `columns`, `group_by`; at most `limit` rows (default 20)."
    )]
    async fn runs(&self, Parameters(a): Parameters<RunsArgs>) -> ToolResult {
        self.with_index(move |index| {
            let filter = a.filter.as_deref().filter(|f| !f.trim().is_empty()).map(Expr::parse).transpose()?;
            let sort = a.sort.iter().map(|s| SortKey::parse(s)).collect::<labmate::Result<Vec<_>>>()?;
            let runs = registry::select(index, filter.as_ref(), &sort, None)?;
            render::runs(index, &runs, &a.columns, &a.group_by, a.limit.unwrap_or(20))
        })
        .await
    }

    #[tool(
        description = "One run: status and why it ended, command, config, git state, summary of each metric, alerts."
    )]
    async fn show_run(&self, Parameters(a): Parameters<RunArg>) -> ToolResult {
        self.with_index(move |index| {
            let id = index.resolve(&a.run)?;
            render::show_run(&index.run_detail(&id)?)
        })
        .await
    }

    #[tool(
        description = "Where runs stand, in a few lines each: status, progress, key metrics and their trend, alerts. \
The active runs and those ended in the last hour unless `runs` names some."
    )]
    async fn status(&self, Parameters(a): Parameters<StatusArgs>) -> ToolResult {
        self.with_index(move |index| {
            let all = if a.runs.is_empty() {
                labmate::status::active_and_recent(index)?
            } else {
                let ids = a.runs.iter().map(|r| index.resolve(r)).collect::<labmate::Result<Vec<_>>>()?;
                ids.iter()
                    .map(|id| labmate::status::run_status(index, &index.run(id)?))
                    .collect::<labmate::Result<_>>()?
            };
            Ok(render::status(&all))
        })
        .await
    }

    #[tool(
        description = "A run's metric series, downsampled to `points` (default 100) keeping every spike and every NaN/Inf, \
or only the points after `since_step`."
    )]
    async fn metrics(&self, Parameters(a): Parameters<MetricsArgs>) -> ToolResult {
        self.with_index(move |index| {
            let id = index.resolve(&a.run)?;
            render::metrics(index, &id, &a.keys, a.points.unwrap_or(100), a.since_step)
        })
        .await
    }

    #[tool(
        description = "The tail of a run's output (default 40 lines), or its lines matching `grep`; never more than about 2,000 characters."
    )]
    async fn logs(&self, Parameters(a): Parameters<LogsArgs>) -> ToolResult {
        self.with_index(move |index| {
            let id = index.resolve(&a.run)?;
            let path = RunDir::at(index.lab().run_dir(&id)).own_file(OUTPUT_LOG)?;
            let tail = a.tail.unwrap_or(40);
            // A tail is read from where its lines begin, not the whole output;
            // a grep reads it all.
            let start = if a.grep.is_some() { 0 } else { labmate::follow::tail_start(&path, tail)? };
            let mut bytes = Vec::new();
            labmate::follow::read_from(&path, start, |chunk| {
                bytes.extend_from_slice(chunk);
                Ok::<_, labmate::Error>(())
            })?;
            let text = String::from_utf8_lossy(&bytes);
            let grep = a
                .grep
                .as_deref()
                .map(|g| {
                    regex_lite::Regex::new(g).map_err(|e| {
                        labmate::Error::invalid("grep", format!("grep {g:?} is not a regular expression: {e}"))
                    })
                })
                .transpose()?;
            Ok(render::logs(&id, &text, start > 0, tail, grep.as_ref()))
        })
        .await
    }

    #[tool(
        description = "Alerts and lifecycle events (started, stopped, warnings) of a run or of every run, since a time (default 1d)."
    )]
    async fn events(&self, Parameters(a): Parameters<EventsArgs>) -> ToolResult {
        self.with_index(move |index| {
            let now = index.lab().now();
            let since = labmate::clock::parse_time(a.since.as_deref().unwrap_or("1d"), now)
                .map_err(|why| labmate::Error::invalid("since", format!("since: {why}")))?;
            let run = a.run.as_deref().map(|r| index.resolve(r)).transpose()?;
            Ok(render::events(&index.events_since(run.as_deref(), since)?))
        })
        .await
    }

    #[tool(
        description = "Compare runs or groups: config and code differences, and per metric the values with an honest verdict \
(a test across seeds; 'no detectable difference' when there is none)."
    )]
    async fn compare(&self, Parameters(a): Parameters<CompareArgs>) -> ToolResult {
        self.with_index(move |index| render::compare(&labmate::compare::of_texts(index, &a.sides, &a.metric)?)).await
    }

    #[tool(
        description = "Read notebook entries back (the latest `limit`, default 10), filtered by `kind`, `since`, `run`."
    )]
    async fn notebook(&self, Parameters(a): Parameters<NotebookArgs>) -> ToolResult {
        self.with_index(move |index| {
            let lab = index.lab();
            let since = a
                .since
                .as_deref()
                .map(|s| labmate::clock::parse_time(s, lab.now()))
                .transpose()
                .map_err(|why| labmate::Error::invalid("since", format!("since: {why}")))?;
            let run = a.run.as_deref().map(|r| index.resolve(r)).transpose()?;
            let (entries, _) = notebook::list(lab, &Filter { since, kind: a.kind, run })?;
            Ok(render::notebook(&entries, a.limit.unwrap_or(10)))
        })
        .await
    }

    #[tool(
        description = "Re-derive every number the notebook cites (live references and numbers written next to a run) \
from the registry; lists each mismatch with what the notebook says and what the registry says."
    )]
    async fn notebook_check(&self) -> ToolResult {
        self.with_index(move |index| Ok(render::check(&notebook::check(index.lab(), index)?))).await
    }

    #[tool(description = "Append a notebook entry as this agent. Live references in `text` ({{RUN.PATH}}, \
{{group:PATH=VALUE .PATH.STAT}}) are checked and rendered with their values; a result or decision waits for a human's review.")]
    async fn note(&self, Parameters(a): Parameters<NoteArgs>, peer: Peer<RoleServer>) -> ToolResult {
        let by = self.agent(&peer);
        let lab = self.lab.clone();
        let done = tokio::task::spawn_blocking(move || -> labmate::Result<Answer> {
            if a.kind == "bug" {
                return Err(labmate::Error::invalid(
                    "kind",
                    "a bug needs its reproducer: `labmate note --kind bug TEXT --repro CMD`",
                ));
            }
            let entry = NewEntry { kind: a.kind, text: a.text, runs: a.runs, ..Default::default() };
            let noted = facade::note(&lab, entry, None, &by)?;
            Ok(render::noted(&noted))
        })
        .await
        .map_err(|_| ErrorData::internal_error("the tool's work stopped before it answered", None))?;
        Ok(answer(done))
    }

    #[tool(
        description = "Start a run, detached and supervised (babysat by the lab's rules), as this agent, through the lab's \
gates, budgets and approval rules; with `slurm`, submitted to Slurm (the supervisor runs inside the job). Returns the run \
id, or the pending approval request and why it waits (a human answers it)."
    )]
    async fn launch(&self, Parameters(a): Parameters<LaunchArgs>, peer: Peer<RoleServer>) -> ToolResult {
        let by = self.agent(&peer);
        let (lab, exe) = (self.lab.clone(), self.exe.clone());
        let done = tokio::task::spawn_blocking(move || -> labmate::Result<Answer> {
            if a.argv.is_empty() {
                return Err(labmate::Error::invalid("argv", "argv is empty: give the command as an array"));
            }
            let config = a
                .config
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            let request = labmate::spec::LaunchRequest {
                name: a.name,
                tags: a.tags,
                config,
                rules: a.rules,
                queue: a.queue,
                wandb: a.wandb,
                tensorboard: a.tensorboard,
                command: a.argv,
                cwd: lab.repo_root().to_path_buf(),
                slurm: a.slurm.map(|s| labmate::spec::SlurmRequest {
                    partition: s.partition,
                    account: s.account,
                    gpus: s.gpus,
                    time: s.time,
                    mem: s.mem,
                    sbatch_args: s.sbatch_args,
                }),
                ..Default::default()
            };
            let slurm = request.slurm.clone();
            match facade::launch(&lab, request, &by, |_| {})? {
                facade::Admission::Ready(launched) => {
                    let mut notices = launched.notices.clone();
                    let id = launched.prepared.spec.id.clone();
                    notices.extend(facade::start(&lab, launched.prepared, slurm.as_ref(), &exe)?);
                    Ok(render::launched(&id, &notices))
                }
                facade::Admission::NeedsApproval(request) => Ok(render::held(&request)),
            }
        })
        .await
        .map_err(|_| ErrorData::internal_error("the tool's work stopped before it answered", None))?;
        Ok(answer(done))
    }

    #[tool(
        description = "Stop runs (SIGTERM, then SIGKILL after the lab's grace period), with a reason for the record."
    )]
    async fn stop(&self, Parameters(a): Parameters<StopArgs>, peer: Peer<RoleServer>) -> ToolResult {
        let by = self.agent(&peer);
        self.with_index(move |index| {
            let grace =
                std::time::Duration::from_secs_f64(labmate::policy::Policy::load(index.lab())?.supervisor.stop_grace);
            let mut lines = Vec::new();
            for run in &a.runs {
                let id = index.resolve(run)?;
                let what = match facade::stop(index, &id, Some(&a.reason), &by, grace)? {
                    labmate::stop::Stopped::AlreadyEnded(status) => format!("had already ended ({status})"),
                    labmate::stop::Stopped::Asked => "asked to stop".to_string(),
                    labmate::stop::Stopped::Killed { processes } => {
                        format!("ended ({processes} processes; its supervisor was gone)")
                    }
                };
                lines.push(format!("{id}: {what}"));
            }
            Ok(Answer { text: lines.join("\n") + "\n", data: json!({"stopped": lines}) })
        })
        .await
    }

    #[tool(
        description = "Block until the runs end, an alert fires, `until` holds for every run, or `timeout_s` passes \
(default 60, at most 600); returns why, and where each run stands."
    )]
    async fn wait(
        &self,
        Parameters(a): Parameters<WaitArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> ToolResult {
        let lab = self.lab.clone();
        // Dropped with this call when the client cancels it or goes away:
        // the waiting thread then ends at its next look.
        let given_up = GivenUp::default();
        let clock = given_up.clock();
        let done = tokio::task::spawn_blocking(move || -> labmate::Result<Answer> {
            let until = a.until.as_deref().map(labmate::rules::parse_condition).transpose()?;
            let timeout = a.timeout_s.unwrap_or(60.0);
            if timeout.is_nan() || timeout < 0.0 {
                return Err(labmate::Error::invalid("timeout_s", "timeout_s is seconds, 0 or more"));
            }
            let timeout = std::time::Duration::from_secs_f64(timeout.min(MAX_WAIT_S));
            let (mut index, _) = Index::open_synced(&lab)?;
            let ids = a.runs.iter().map(|r| index.resolve(r)).collect::<labmate::Result<Vec<_>>>()?;
            let end = labmate::wait::wait(
                &mut index,
                &ids,
                until.as_ref(),
                Some(timeout),
                &clock,
                std::time::Duration::from_millis(200),
            )?;
            let states = ids
                .iter()
                .map(|id| labmate::status::run_status(&index, &index.run(id)?))
                .collect::<labmate::Result<Vec<_>>>()?;
            Ok(render::waited(&end, &states))
        });
        // While it waits, a client that asked for progress hears from it
        // every few seconds, so that neither side takes the silence for a hang.
        let token = meta.get_progress_token();
        let mut waiting = std::pin::pin!(done);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        let mut beats = 0u32;
        let done = loop {
            tokio::select! {
                finished = &mut waiting => break finished,
                _ = tick.tick() => {
                    if let Some(token) = &token {
                        beats += 1;
                        let seconds = beats as f64 * PROGRESS_EVERY.as_secs_f64();
                        let note = rmcp::model::ProgressNotificationParam::new(token.clone(), seconds)
                            .with_message(format!("waited {seconds:.0} s"));
                        let _ = peer.notify_progress(note).await;
                    }
                }
            }
        }
        .map_err(|_| ErrorData::internal_error("the tool's work stopped before it answered", None))?;
        Ok(answer(done))
    }

    #[tool(
        description = "Curves of runs (or of groups: mean with a min–max band) for one or more metrics, as a PNG image; \
every spike and NaN/Inf kept visible."
    )]
    async fn plot(&self, Parameters(a): Parameters<PlotArgs>) -> ToolResult {
        let lab = self.lab.clone();
        let done = tokio::task::spawn_blocking(move || -> labmate::Result<(Vec<u8>, String)> {
            let (index, _) = Index::open_synced(&lab)?;
            let mut runs = match a.filter.as_deref() {
                Some(f) => registry::select(&index, Some(&Expr::parse(f)?), &[], None)?,
                None => Vec::new(),
            };
            for r in &a.runs {
                let id = index.resolve(r)?;
                if !runs.iter().any(|x| x.id == id) {
                    runs.push(index.run(&id)?);
                }
            }
            for side in &a.sides {
                for run in registry::side(&index, side)?.runs {
                    if !runs.iter().any(|x| x.id == run.id) {
                        runs.push(run);
                    }
                }
            }
            // Sides `PATH=VALUE` of one PATH are groups of it.
            let mut group_by = a.group_by.clone();
            let paths: Vec<&str> = a.sides.iter().filter_map(|s| s.split_once('=').map(|(p, _)| p.trim())).collect();
            if group_by.is_empty()
                && !paths.is_empty()
                && paths.len() == a.sides.len()
                && paths.iter().all(|p| *p == paths[0])
            {
                group_by.push(paths[0].to_string());
            }
            if runs.is_empty() {
                return Err(labmate::Error::invalid(
                    "runs",
                    "no runs to plot: name some in runs or sides, or select them with where",
                ));
            }
            if a.metric.is_empty() {
                return Err(labmate::Error::invalid("metric", "name the metric(s) to plot"));
            }
            let options = labmate::charts::Options {
                x: None,
                smooth: None,
                log_y: a.log_y,
                group_by: registry::parse_paths(&group_by, &runs, "group_by")?,
                width: 900,
            };
            let figure = labmate::charts::figure(&index, &runs, &a.metric, &options)?;
            // The renderer writes a file: one of this process's own, read back and removed.
            let path = std::env::temp_dir().join(format!(
                "labmate-mcp-plot-{}-{}.png",
                std::process::id(),
                labmate::clock::now()
            ));
            let drawn = labmate::plot::render(&figure, labmate::plot::Format::Png, &path);
            let bytes = std::fs::read(&path);
            let _ = std::fs::remove_file(&path);
            drawn?;
            let bytes = bytes.map_err(|e| labmate::Error::io(&path, e))?;
            Ok((bytes, format!("{} of {} runs", a.metric.join(", "), runs.len())))
        })
        .await
        .map_err(|_| ErrorData::internal_error("the tool's work stopped before it answered", None))?;
        Ok(match done {
            Ok((png, what)) => {
                use base64::Engine as _;
                let data = base64::engine::general_purpose::STANDARD.encode(&png);
                CallToolResult::success(vec![
                    ContentBlock::image(data, "image/png"),
                    ContentBlock::text(format!("plot: {what} ({} KiB PNG)\n", png.len() / 1024)),
                ])
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(render::error(&e))]),
        })
    }

    #[tool(
        description = "Ask the human to look at a run or a conclusion (a notebook entry): opens a review item with your note."
    )]
    async fn review_request(&self, Parameters(a): Parameters<ReviewArgs>, peer: Peer<RoleServer>) -> ToolResult {
        let by = self.agent(&peer);
        self.with_index(move |index| {
            let run = a.run.as_deref().map(|r| index.resolve(r)).transpose()?;
            let item = facade::ask_review(index.lab(), run, a.entry, a.note, &by)?;
            Ok(Answer {
                text: format!("review item {} opened; a human accepts or disputes it\n", item.id),
                data: serde_json::to_value(&item).unwrap_or_default(),
            })
        })
        .await
    }
}

#[tool_handler]
impl ServerHandler for LabTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("labmate", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "labmate: the lab's runs registry, babysat runs and the lab notebook. Query with runs/show_run/status, \
                 read series with metrics, compare runs or groups with compare (honest verdicts), record conclusions with \
                 note (live references keep numbers traceable). Decisions on approvals stay with the human.",
            )
    }

    /// The notebook, and the latest runs' summaries.
    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let lab = self.lab.clone();
        let runs =
            tokio::task::spawn_blocking(move || Index::open_synced(&lab).and_then(|(index, _)| index.runs(Some(50))))
                .await
                .map_err(|_| ErrorData::internal_error("listing the runs stopped before it answered", None))?
                .map_err(|e| ErrorData::internal_error(render::error(&e), None))?;
        let mut resources = vec![
            Resource::new(NOTEBOOK_URI, "notebook")
                .with_description("The lab notebook: its entries, as `notebook` reads them"),
        ];
        resources.extend(runs.iter().map(|r| {
            Resource::new(format!("labmate://runs/{}", r.id), r.name.clone().unwrap_or_else(|| r.id.clone()))
                .with_description(format!("run {}: {}", r.id, r.status))
        }));
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("labmate://runs/{id}", "run").with_title("A run's summary, as show_run gives it"),
        ]))
    }

    /// `labmate://notebook`: the entries; `labmate://runs/{id}`: a run's summary.
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.clone();
        let lab = self.lab.clone();
        let text = tokio::task::spawn_blocking(move || -> labmate::Result<String> {
            let (index, _) = Index::open_synced(&lab)?;
            if uri == NOTEBOOK_URI {
                let (entries, _) = notebook::list(&lab, &Filter::default())?;
                return Ok(render::notebook(&entries, 50).text);
            }
            match uri.strip_prefix("labmate://runs/") {
                Some(run) => Ok(render::show_run(&index.run_detail(&index.resolve(run)?)?)?.text),
                None => Err(labmate::Error::not_found(
                    "resource",
                    format!("no resource {uri}: there are {NOTEBOOK_URI} and labmate://runs/{{id}}"),
                )),
            }
        })
        .await
        .map_err(|_| ErrorData::internal_error("reading the resource stopped before it answered", None))?
        .map_err(|e| ErrorData::resource_not_found(render::error(&e), None))?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}
