//! `/api/...`: the lab as JSON, the same objects the CLI prints with
//! `--json`, and the human's actions. Each handler parses its request,
//! calls the core on the blocking pool with an index connection of its
//! own, and answers; errors carry the core's kind ([`ApiError`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use labmate::axis::{self, Axis, RunAxes};
use labmate::compare;
use labmate::facade::{self, Author};
use labmate::gates;
use labmate::index::Index;
use labmate::model::{Run, key_metrics};
use labmate::policy::Policy;
use labmate::query::{Expr, Path};
use labmate::record::Num;
use labmate::registry::{self, SortKey};
use labmate::review::{self, ReviewState, Verdict};
use labmate::rundir::{OUTPUT_LOG, PATCH_FILE, RunDir, STDERR_LOG};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::live::After;

type Shared = Arc<crate::State>;
type Answer = Result<Json<Value>, ApiError>;

/// Index connections kept open between requests.
const POOL: usize = 4;
/// Runs in one page of `/api/runs` unless `limit` says otherwise, and at most.
const PAGE: usize = 100;
const MAX_PAGE: usize = 10_000;
/// Points a chart asks for unless `points` says, and at most.
const POINTS: usize = 2_000;
const MAX_POINTS: usize = 200_000;
/// Bytes of a log or a patch in one answer at most.
const MAX_BYTES: u64 = 1 << 20;
const MAX_PATCH: u64 = 16 << 20;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}", get(run))
        .route("/api/runs/{id}/metrics", get(metrics))
        .route("/api/runs/{id}/logs", get(logs))
        .route("/api/runs/{id}/events", get(events))
        .route("/api/runs/{id}/patch", get(patch))
        .route("/api/runs/{id}/stop", post(stop))
        .route("/api/status", get(status))
        .route("/api/compare", get(compare_runs))
        .route("/api/reviews", get(reviews))
        .route("/api/reviews/{id}/approve", post(approve))
        .route("/api/reviews/{id}/reject", post(reject))
        .route("/api/notebook", get(notebook))
        .route("/api/notebook/file", get(notebook_file))
        .route("/api/notes", post(note))
        .route("/api/stream", get(stream))
        .fallback(|| async { ApiError::not_found("no such page or API route") })
}

/// Runs `f` with an index of its own on the blocking pool.
async fn with_index<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&Index, &crate::State) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let pooled = state.indexes.lock().expect("index pool").pop();
        // One left on a deleted or rebuilt index would answer from the old one.
        let index = match pooled.filter(|i| !i.is_stale()) {
            Some(index) => index,
            None => Index::open(&state.lab)?,
        };
        let answer = f(&index, &state);
        // A connection goes back to the pool unless its answer was the index
        // failing (it may be the one that is damaged or was deleted).
        if !matches!(&answer, Err(e) if e.kind == "internal") {
            let mut pool = state.indexes.lock().expect("index pool");
            if pool.len() < POOL {
                pool.push(index);
            }
        }
        answer
    })
    .await
    .map_err(|_| ApiError::internal("the request's work stopped before it answered"))?
}

/// The comma-separated values of a parameter, empty ones dropped.
fn list(text: &Option<String>) -> Vec<String> {
    text.iter().flat_map(|t| t.split(',')).map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()
}

/// A run as `labmate runs --json` shows it, with its alert count.
fn run_json(index: &Index, run: &Run) -> Value {
    let mut value = serde_json::to_value(run).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut value {
        o.insert("alerts".into(), json!(index.alert_count(&run.id).unwrap_or(0)));
    }
    value
}

#[derive(Deserialize)]
struct RunsQuery {
    #[serde(rename = "where")]
    filter: Option<String>,
    sort: Option<String>,
    columns: Option<String>,
    group_by: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn runs(State(state): State<Shared>, Query(q): Query<RunsQuery>) -> Answer {
    with_index(&state, move |index, state| {
        let cursor = state.live.cursor();
        let filter = q.filter.as_deref().filter(|f| !f.trim().is_empty()).map(Expr::parse).transpose()?;
        let sort: Vec<SortKey> = list(&q.sort).iter().map(|s| SortKey::parse(s)).collect::<Result<_, _>>()?;
        let limit = q.limit.unwrap_or(PAGE).min(MAX_PAGE);
        let offset = q.offset.unwrap_or(0);
        let group_by = list(&q.group_by);
        let columns = list(&q.columns);
        if filter.is_none() && sort.is_empty() && group_by.is_empty() && columns.is_empty() {
            // The plain table, newest first: only its page is read.
            let runs = index.runs(Some(offset.saturating_add(limit)))?;
            let shown = &runs[offset.min(runs.len())..];
            let baseline =
                registry::baseline_delta(index, shown).map(|(key, mean)| json!({"key": key, "mean": Num(mean)}));
            return Ok(Json(json!({
                "runs": shown.iter().map(|r| run_json(index, r)).collect::<Vec<_>>(),
                "total": index.run_count()?,
                "offset": offset,
                "limit": limit,
                "key_metrics": key_metrics(shown, 3),
                "baseline": baseline,
                "cursor": cursor,
            })));
        }
        let runs = registry::select(index, filter.as_ref(), &sort, None)?;
        if !group_by.is_empty() {
            let by = registry::parse_paths(&group_by, &runs, "group_by")?;
            let of = if columns.is_empty() {
                key_metrics(&runs, 3).into_iter().map(|k| Path::Metric { key: k, field: "last".into() }).collect()
            } else {
                registry::parse_paths(&columns, &runs, "columns")?
            };
            let seed_key = Policy::load(index.lab())?.runs.seed_key;
            let groups = registry::group(index, &runs, &by, &of, &seed_key);
            let names = |paths: &[Path]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>();
            return Ok(Json(json!({
                "groups": groups, "by": names(&by), "of": names(&of), "total": runs.len(), "cursor": cursor,
            })));
        }
        let page: Vec<&Run> = runs.iter().skip(offset).take(limit).collect();
        if !columns.is_empty() {
            let paths = registry::parse_paths(&columns, &runs, "columns")?;
            let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();
            let rows: Vec<Map<String, Value>> =
                page.iter().map(|r| paths.iter().map(|p| (p.to_string(), p.get(r, &value_at))).collect()).collect();
            return Ok(Json(json!({
                "rows": rows, "columns": columns, "total": runs.len(), "offset": offset, "limit": limit, "cursor": cursor,
            })));
        }
        let baseline = registry::baseline_delta(index, &runs).map(|(key, mean)| json!({"key": key, "mean": Num(mean)}));
        Ok(Json(json!({
            "runs": page.iter().map(|r| run_json(index, r)).collect::<Vec<_>>(),
            "total": runs.len(),
            "offset": offset,
            "limit": limit,
            "key_metrics": key_metrics(&runs, 3),
            "baseline": baseline,
            "cursor": cursor,
        })))
    })
    .await
}

async fn run(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Answer {
    with_index(&state, move |index, state| {
        let cursor = state.live.cursor();
        let id = index.resolve(&id)?;
        let detail = index.run_detail(&id)?;
        let alerts: Vec<_> = detail.events.iter().filter(|e| e.kind == "alert").cloned().collect();
        let mut value = serde_json::to_value(&detail).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Value::Object(o) = &mut value {
            o.insert("alerts".into(), serde_json::to_value(alerts).unwrap_or_default());
            o.insert("cursor".into(), json!(cursor));
        }
        Ok(Json(value))
    })
    .await
}

#[derive(Deserialize)]
struct MetricsQuery {
    keys: Option<String>,
    points: Option<usize>,
    x: Option<String>,
    from: Option<f64>,
    to: Option<f64>,
}

async fn metrics(State(state): State<Shared>, UrlPath(id): UrlPath<String>, Query(q): Query<MetricsQuery>) -> Answer {
    with_index(&state, move |index, state| {
        let cursor = state.live.cursor();
        let id = index.resolve(&id)?;
        let run = index.run(&id)?;
        let known: Vec<String> = run.metrics.keys().cloned().collect();
        let keys = if q.keys.as_deref().is_none_or(|k| k.trim().is_empty()) { known.clone() } else { list(&q.keys) };
        for key in &keys {
            if !known.contains(key) {
                return Err(ApiError::not_found(format!("run {id} has no metric {key:?}")));
            }
        }
        // Without `x`, each series is on its own default axis (its step metric, else the step).
        let asked = match q.x.as_deref().filter(|x| !x.is_empty()).map(Axis::named) {
            Some(Axis::Metric(other)) if !known.contains(&other) => {
                return Err(ApiError::invalid(format!(
                    "x={other:?}: the x axis is step, time, relative, or one of the run's metrics"
                )));
            }
            asked => asked,
        };
        if q.from.is_some_and(f64::is_nan) || q.to.is_some_and(f64::is_nan) {
            return Err(ApiError::invalid("from and to are numbers in the x axis' unit"));
        }
        let target = q.points.unwrap_or(POINTS).clamp(4, MAX_POINTS);
        let mut all = Vec::with_capacity(keys.len());
        let mut first_time = f64::INFINITY;
        for key in &keys {
            let points = index.series(&id, key)?;
            first_time = points.iter().map(|p| p.time).fold(first_time, f64::min);
            all.push((key, points));
        }
        let mut axes = RunAxes::new(index, &run);
        let mut out = Map::new();
        let mut on: Vec<Axis> = Vec::new();
        for (key, points) in all {
            let count = points.len();
            let (axis, placed) = axes.place(key, points, asked.as_ref(), first_time, (q.from, q.to))?;
            let kept = placed.keep(Some(target));
            let xs: Vec<Num> = kept.iter().map(|&i| Num(placed.x(i))).collect();
            let ys: Vec<Num> = kept.iter().map(|&i| Num(placed.point(i).value)).collect();
            let steps: Vec<i64> = kept.iter().map(|&i| placed.point(i).step).collect();
            let n = placed.len();
            out.insert(
                key.clone(),
                json!({
                    "x": xs, "y": ys, "step": steps, "x_axis": axis.name(),
                    "default_x": axis::default_for(&run, key).name(),
                    "count": count, "in_range": n, "shown": kept.len(), "full": kept.len() == n,
                }),
            );
            if !on.contains(&axis) {
                on.push(axis);
            }
        }
        // The axis every series is on; null when they differ (each says its own).
        let x = match (on.as_slice(), &asked) {
            (_, Some(axis)) | ([axis], None) => json!(axis.name()),
            ([], None) => json!("step"),
            _ => Value::Null,
        };
        Ok(Json(json!({"run": id, "x": x, "series": out, "cursor": cursor})))
    })
    .await
}

#[derive(Deserialize)]
struct LogsQuery {
    tail: Option<usize>,
    offset: Option<u64>,
    stderr: Option<bool>,
}

async fn logs(State(state): State<Shared>, UrlPath(id): UrlPath<String>, Query(q): Query<LogsQuery>) -> Answer {
    with_index(&state, move |index, _| {
        let id = index.resolve(&id)?;
        let dir = RunDir::at(index.lab().run_dir(&id));
        let path = dir.own_file(if q.stderr.unwrap_or(false) { STDERR_LOG } else { OUTPUT_LOG })?;
        let start = match (q.offset, q.tail) {
            (Some(offset), _) => offset,
            (None, tail) => labmate::follow::tail_start(&path, tail.unwrap_or(200))?,
        };
        let (bytes, end) = read_part(&path, start, MAX_BYTES)?;
        Ok(Json(json!({"run": id, "text": String::from_utf8_lossy(&bytes), "offset": start, "end": end})))
    })
    .await
}

/// Up to `max` bytes of the file from `start`, ended at a line's end when
/// cut short, and the offset after them. A file not there yet is empty.
fn read_part(path: &std::path::Path, start: u64, max: u64) -> Result<(Vec<u8>, u64), ApiError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), start)),
        Err(e) => return Err(labmate::Error::io(path, e).into()),
    };
    let len = file.metadata().map_err(|e| labmate::Error::io(path, e))?.len();
    let start = start.min(len);
    file.seek(SeekFrom::Start(start)).map_err(|e| labmate::Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).map_err(|e| labmate::Error::io(path, e))?;
    if bytes.len() as u64 == max && start + max < len {
        if let Some(cut) = bytes.iter().rposition(|&b| b == b'\n') {
            bytes.truncate(cut + 1);
        }
    }
    let end = start + bytes.len() as u64;
    Ok((bytes, end))
}

async fn events(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Answer {
    with_index(&state, move |index, _| {
        let id = index.resolve(&id)?;
        Ok(Json(serde_json::to_value(index.events(&id)?).unwrap_or_default()))
    })
    .await
}

async fn patch(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Answer {
    with_index(&state, move |index, _| {
        let id = index.resolve(&id)?;
        let path = RunDir::at(index.lab().run_dir(&id)).own_file(PATCH_FILE)?;
        let (bytes, _) = read_part(&path, 0, MAX_PATCH)?;
        let whole = std::fs::metadata(&path).map_or(0, |m| m.len());
        Ok(Json(json!({"run": id, "patch": String::from_utf8_lossy(&bytes), "bytes": whole, "cut": (bytes.len() as u64) < whole})))
    })
    .await
}

async fn status(State(state): State<Shared>) -> Answer {
    with_index(&state, move |index, _| {
        Ok(Json(serde_json::to_value(labmate::status::active_and_recent(index)?).unwrap_or_default()))
    })
    .await
}

#[derive(Deserialize)]
struct CompareQuery {
    runs: Option<String>,
    metrics: Option<String>,
}

async fn compare_runs(State(state): State<Shared>, Query(q): Query<CompareQuery>) -> Answer {
    with_index(&state, move |index, _| {
        let report = compare::of_texts(index, &list(&q.runs), &list(&q.metrics))?;
        Ok(Json(serde_json::to_value(report).unwrap_or_default()))
    })
    .await
}

/// The pending requests (as `review --json` lists them), each with what an
/// approval would launch from (the code in its folder now) and where the
/// budgets stand for its author; the open review items.
async fn reviews(State(state): State<Shared>) -> Answer {
    let lab = state.lab.clone();
    let user = state.user.clone();
    tokio::task::spawn_blocking(move || {
        let reviews = review::load(&lab)?;
        let policy = Policy::load(&lab)?;
        let mut requests = Vec::new();
        for r in reviews.requests.iter().filter(|r| r.state == ReviewState::Pending) {
            let mut value = serde_json::to_value(r).unwrap_or_default();
            if let Value::Object(o) = &mut value {
                let code = labmate::git::capture(&r.request.launch.cwd).map(|(git, _)| {
                    json!({"commit": git.commit, "branch": git.branch, "dirty": git.dirty,
                           "patch_bytes": git.patch_bytes, "untracked": git.untracked, "as_of": "now"})
                });
                o.insert("code".into(), code.unwrap_or(json!("not in a git repository")));
                o.insert(
                    "budget".into(),
                    serde_json::to_value(gates::budget_standing(&lab, &policy, &r.request.author)?).unwrap_or_default(),
                );
            }
            requests.push(value);
        }
        Ok(Json(json!({
            "requests": requests,
            "items": reviews.items.iter().filter(|i| i.state.is_open()).collect::<Vec<_>>(),
            "user": user,
        })))
    })
    .await
    .map_err(|_| ApiError::internal("reading the reviews stopped before it answered"))?
}

/// The person at the dashboard, who acts; refused when the server was not
/// told who that is.
fn human(state: &crate::State) -> Result<Author, ApiError> {
    match &state.user {
        Some(name) => Ok(Author { name: name.clone(), is_agent: false }),
        None => Err(ApiError::forbidden(
            "this server does not know who is at the dashboard, so it takes no decisions: \
             start it with --user NAME, or set user in [serve] of labmate.toml",
        )),
    }
}

#[derive(Deserialize, Default)]
struct NoteBody {
    note: Option<String>,
}

async fn approve(state: State<Shared>, id: UrlPath<String>, body: Option<Json<NoteBody>>) -> Answer {
    decide(state, id, body, Verdict::Yes).await
}

async fn reject(state: State<Shared>, id: UrlPath<String>, body: Option<Json<NoteBody>>) -> Answer {
    decide(state, id, body, Verdict::No).await
}

async fn decide(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    body: Option<Json<NoteBody>>,
    verdict: Verdict,
) -> Answer {
    let by = human(&state)?;
    let note = body.and_then(|Json(b)| b.note).filter(|n| !n.trim().is_empty());
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let decided = facade::decide(&state.lab, &id, verdict, &by, note, &state.exe)?;
        Ok(Json(json!({
            "decision": decided.decision,
            "request": decided.request,
            "item": decided.item,
            "notebook": decided.notebook.as_ref().ok(),
            "notices": decided.notices,
        })))
    })
    .await
    .map_err(|_| ApiError::internal("the decision stopped before it answered"))?
}

#[derive(Deserialize, Default)]
struct StopBody {
    why: Option<String>,
}

async fn stop(State(state): State<Shared>, UrlPath(id): UrlPath<String>, body: Option<Json<StopBody>>) -> Answer {
    let by = human(&state)?;
    let why = body.and_then(|Json(b)| b.why).filter(|w| !w.trim().is_empty());
    with_index(&state, move |index, _| {
        let id = index.resolve(&id)?;
        let grace = Duration::from_secs_f64(Policy::load(index.lab())?.supervisor.stop_grace);
        let stopped = facade::stop(index, &id, why.as_deref(), &by, grace)?;
        let what = match stopped {
            labmate::stop::Stopped::AlreadyEnded(status) => json!({"already_ended": status}),
            labmate::stop::Stopped::Asked => json!({"asked": true}),
            labmate::stop::Stopped::Killed { processes } => json!({"killed": processes}),
        };
        Ok(Json(json!({"run": id, "stopped": what})))
    })
    .await
}

#[derive(Deserialize)]
struct NotebookQuery {
    kind: Option<String>,
    author: Option<String>,
    run: Option<String>,
}

/// The notebook as a page shows it: what precedes the entries, and each
/// entry (as `notebook show --json` gives it) with its text as HTML and
/// the `notebook check` mismatches in it; the check's report; the review
/// items still open.
async fn notebook(State(state): State<Shared>, Query(q): Query<NotebookQuery>) -> Answer {
    with_index(&state, move |index, _| {
        let lab = index.lab();
        let nb = labmate::notebook::Notebook::load(lab)?;
        let check = labmate::notebook::check(lab, index)?;
        let run = q.run.as_deref().map(|r| index.resolve(r)).transpose()?;
        let filter = labmate::notebook::Filter { since: None, kind: q.kind.clone(), run };
        let (views, problems) = labmate::notebook::list(lab, &filter)?;
        let mismatched_in = |entry: Option<&str>| -> HashMap<String, String> {
            check
                .mismatches
                .iter()
                .filter(|m| m.entry.as_deref() == entry && m.what == "reference")
                .map(|m| (m.text.trim_start_matches("{{").trim_end_matches("}}").to_string(), m.real.clone()))
                .collect()
        };
        let head_end = nb.entries.first().map_or(nb.text.len(), |e| {
            nb.text.match_indices('\n').nth(e.line.saturating_sub(2)).map_or(0, |(i, _)| i + 1)
        });
        let head = if nb.entries.first().is_some_and(|e| e.line <= 1) { "" } else { &nb.text[..head_end] };
        let entries: Vec<Value> = views
            .iter()
            .filter(|v| q.author.as_deref().is_none_or(|a| v.author == a))
            .map(|v| {
                let mut value = serde_json::to_value(v).unwrap_or_default();
                if let Value::Object(o) = &mut value {
                    o.insert("html".into(), json!(crate::markdown::render(&v.text, &mismatched_in(Some(&v.id)))));
                    let mismatches: Vec<_> =
                        check.mismatches.iter().filter(|m| m.entry.as_deref() == Some(&v.id)).collect();
                    o.insert("mismatches".into(), serde_json::to_value(mismatches).unwrap_or_default());
                }
                value
            })
            .collect();
        let reviews = review::load(lab)?;
        Ok(Json(json!({
            "path": nb.path.display().to_string(),
            "head_html": crate::markdown::render(head, &mismatched_in(None)),
            "entries": entries,
            "check": check,
            "open_items": reviews.items.iter().filter(|i| i.state.is_open()).collect::<Vec<_>>(),
            "problems": problems,
        })))
    })
    .await
}

#[derive(Deserialize)]
struct FileQuery {
    path: String,
}

/// An image beside the notebook, as its text links it: a relative path
/// without `..`, no symbolic link on the way, an image type.
async fn notebook_file(State(state): State<Shared>, Query(q): Query<FileQuery>) -> Result<Response, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let refused = || ApiError::not_found(format!("no image {:?} beside the notebook", q.path));
        let relative = crate::markdown::local_file(&q.path).ok_or_else(refused)?;
        let kind = match relative.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
            Some("png") => "image/png",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("gif") => "image/gif",
            Some("webp") => "image/webp",
            Some("svg") => "image/svg+xml",
            _ => return Err(refused()),
        };
        let notebook = labmate::notebook::Settings::load(&state.lab)?.path;
        let mut path = notebook.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        for part in relative.split('/').filter(|p| !p.is_empty() && *p != ".") {
            path.push(part);
            if std::fs::symlink_metadata(&path).map_or(true, |m| m.file_type().is_symlink()) {
                return Err(refused());
            }
        }
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(refused());
        }
        let (bytes, _) = read_part(&path, 0, MAX_PATCH)?;
        let mut response = bytes.into_response();
        response.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(kind));
        Ok(response)
    })
    .await
    .map_err(|_| ApiError::internal("reading the file stopped before it answered"))?
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
    kind: Option<String>,
    #[serde(default)]
    runs: Vec<String>,
    amends: Option<String>,
}

/// `POST /api/notes`: a notebook entry by the person at the dashboard.
async fn note(
    State(state): State<Shared>,
    body: Result<Json<NewNote>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    let by = human(&state)?;
    let Json(body) =
        body.map_err(|e| ApiError::invalid(format!("a note is {{\"text\", \"kind\", \"runs\"}}: {}", e.body_text())))?;
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let entry = labmate::notebook::NewEntry {
            kind: body.kind.unwrap_or_else(|| "observation".into()),
            text: body.text,
            runs: body.runs,
            amends: body.amends,
            ..Default::default()
        };
        let noted = facade::note(&state.lab, entry, None, &by)?;
        Ok(Json(json!({
            "id": noted.entry.id,
            "kind": noted.entry.kind,
            "author": noted.entry.author,
            "runs": noted.entry.runs,
            "text": noted.entry.text,
            "review_item": noted.item.map(|i| i.id),
            "warnings": noted.warnings,
        })))
    })
    .await
    .map_err(|_| ApiError::internal("writing the note stopped before it answered"))?
}

#[derive(Deserialize)]
struct StreamQuery {
    after: Option<u64>,
}

/// `GET /api/stream?after=CURSOR`: Server-Sent Events after the cursor (or
/// after `Last-Event-ID`, which a reconnecting browser sends), then live.
async fn stream(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<StreamQuery>) -> Response {
    let resumed = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let cursor = resumed.or(q.after).unwrap_or_else(|| state.live.cursor());
    Sse::new(events_after(state, cursor)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

fn events_after(state: Shared, cursor: u64) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let newest = state.live.subscribe();
    futures_util::stream::unfold(
        (state, newest, cursor, std::collections::VecDeque::new(), false),
        |(state, mut newest, mut cursor, mut ready, mut reset)| async move {
            loop {
                if let Some(event) = ready.pop_front() {
                    return Some((Ok(event), (state, newest, cursor, ready, reset)));
                }
                if reset || state.live.is_closed() {
                    return None;
                }
                match state.live.after(cursor) {
                    After::Reset => {
                        // Give the page the newest id so that, once it has
                        // refetched, it goes on from there.
                        reset = true;
                        let id = state.live.cursor();
                        ready.push_back(SseEvent::default().event("reset").id(id.to_string()).data("{}"));
                    }
                    After::Events(events) if !events.is_empty() => {
                        for event in events {
                            cursor = event.id;
                            ready.push_back(
                                SseEvent::default().event(event.kind).id(event.id.to_string()).data(&event.data),
                            );
                        }
                    }
                    After::Events(_) => {
                        if newest.changed().await.is_err() {
                            return None;
                        }
                    }
                }
            }
        },
    )
}
