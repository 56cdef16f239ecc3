//! `/api/remote/...`: run files pushed by remote writers (`labmate sync`, a
//! supervisor with `[remote] url`), when the server was started with
//! `--accept-runs`. A face over [`labmate::remote::accept`]: it parses the
//! request, calls the core on the blocking pool and answers; the protocol
//! is in docs/FORMAT.md.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use labmate::remote::accept::{Appended, Inbox};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;

type Shared = Arc<crate::State>;

/// A piece as large as writers send, with room to spare.
const MOST_BODY: usize = 4 * labmate::remote::push::PIECE;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/remote/runs/{id}", get(sizes))
        .route("/api/remote/runs/{id}/files/{*path}", post(append))
        .route("/api/remote/runs/{id}/heartbeat", post(heartbeat))
        .layer(DefaultBodyLimit::max(MOST_BODY))
}

#[derive(Deserialize)]
struct At {
    offset: u64,
}

async fn sizes(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    let files = accept(&state, move |inbox| inbox.sizes(&id).map(|s| json!({"run": id, "files": s}))).await?;
    Ok(Json(files))
}

async fn append(
    State(state): State<Shared>,
    UrlPath((id, path)): UrlPath<(String, String)>,
    Query(at): Query<At>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let appended = accept(&state, move |inbox| inbox.append(&id, &path, at.offset, &body)).await?;
    Ok(match appended {
        Appended::Size(size) => Json(json!({"size": size})).into_response(),
        Appended::Behind(size) => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": format!("the push starts at byte {} but the file has {size} bytes: push from there", at.offset),
                "kind": "conflict",
                "size": size,
            })),
        )
            .into_response(),
    })
}

async fn heartbeat(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    let heard = accept(&state, move |inbox| inbox.heartbeat(&id)).await?;
    Ok(Json(json!({"heard_at": heard.at, "silence": heard.silence})))
}

/// Runs `f` over the server's inbox on the blocking pool; refused when the
/// server does not accept runs.
async fn accept<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&Inbox) -> labmate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let Some(inbox) = state.inbox.clone() else {
        return Err(ApiError::forbidden(
            "this server does not accept runs: start it with `labmate serve --accept-runs`",
        ));
    };
    tokio::task::spawn_blocking(move || f(&inbox).map_err(ApiError::from))
        .await
        .map_err(|_| ApiError::internal("the push failed to run"))?
}
