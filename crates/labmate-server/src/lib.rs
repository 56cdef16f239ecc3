//! `labmate serve`: the human's face. A JSON API over the lab (the same
//! objects as the CLI's `--json`), a live stream of new points, status
//! changes and alerts (Server-Sent Events), and the dashboard's pages,
//! embedded in the binary.
//!
//! A face: it parses requests, calls the core (reads through the index and
//! the registry, actions through the facade with the configured human as
//! their author) and renders JSON; it holds no lab logic. Blocking core
//! calls run on tokio's blocking pool, each with its own index connection.
//!
//! Every request passes [`security`] first: the Host header, the lab's
//! token, and for changes the server's own Origin (or, for programs, the
//! token in an Authorization header).
//!
//! With `--accept-runs` it also takes run files pushed by remote writers
//! (`remote`).

mod api;
mod assets;
mod error;
mod live;
mod markdown;
mod remote;
mod security;
pub mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use labmate::lab::Lab;
use tokio::net::TcpListener;

/// What a server is started with.
pub struct Config {
    pub lab: Lab,
    /// The session token every request must show.
    pub token: String,
    /// The person at the dashboard, the author of its decisions; without one
    /// the server refuses decisions and stops.
    pub user: Option<String>,
    /// Host names besides the bound address and `localhost` that the Host
    /// header may carry.
    pub allowed_hosts: Vec<String>,
    /// The `labmate` binary, which supervises the runs an approval launches.
    pub exe: PathBuf,
    /// How often the live stream looks for news in the lab.
    pub poll: Duration,
    /// With `--accept-runs`: where run files pushed by remote writers go.
    pub accept_runs: Option<labmate::remote::accept::Inbox>,
}

/// What every handler shares.
pub(crate) struct State {
    pub lab: Lab,
    pub token: String,
    pub user: Option<String>,
    pub allowed_hosts: Vec<String>,
    pub exe: PathBuf,
    pub addr: SocketAddr,
    pub live: live::Live,
    /// Index connections for requests, each used by one at a time.
    pub indexes: std::sync::Mutex<Vec<labmate::index::Index>>,
    pub inbox: Option<Arc<labmate::remote::accept::Inbox>>,
}

/// Serves the lab on `listener` until `shutdown` completes, then closes
/// the live streams and returns once every connection is done.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let live = live::Live::start(config.lab.clone(), config.poll)?;
    let state = Arc::new(State {
        lab: config.lab,
        token: config.token,
        user: config.user,
        allowed_hosts: config.allowed_hosts,
        exe: config.exe,
        addr,
        live,
        indexes: std::sync::Mutex::new(Vec::new()),
        inbox: config.accept_runs.map(Arc::new),
    });
    let mcp_closing = tokio_util::sync::CancellationToken::new();
    let app = router(state.clone(), mcp_closing.clone());
    let closing = state.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Live streams never end by themselves: end them, so that the
            // graceful shutdown does not wait for them forever.
            closing.live.close();
            mcp_closing.cancel();
        })
        .await;
    state.live.close();
    result
}

fn router(state: Arc<State>, mcp_closing: tokio_util::sync::CancellationToken) -> Router {
    // The MCP tools over streamable HTTP: every call an agent's, as over stdio.
    let mut hosts = vec!["localhost".to_string(), state.addr.ip().to_string()];
    hosts.extend(state.allowed_hosts.iter().cloned());
    let mcp = labmate_mcp::http_service(
        labmate_mcp::Config { lab: state.lab.clone(), author: None, exe: state.exe.clone() },
        hosts,
        mcp_closing,
    );
    Router::new()
        .merge(remote::routes())
        .merge(api::routes())
        .merge(assets::routes())
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn(error::as_json))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::guard))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// One line on stderr per request: method, path (never the query, which may
/// hold the token), status and time taken.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let start = std::time::Instant::now();
    let response = next.run(request).await;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    eprintln!("{method} {} {} {ms:.1}ms", labmate::text::escape_controls(&path), response.status().as_u16());
    response
}
