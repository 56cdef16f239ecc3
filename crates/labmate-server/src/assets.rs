//! The dashboard's files, embedded in the binary at build time: no request
//! ever leaves the machine, and nothing is read from disk to serve a page,
//! so no path of a request can reach a file outside them.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};

use crate::error::ApiError;

static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// The pages: every one is the same shell, whose script draws the page the
/// path names.
const PAGES: &[&str] = &["/", "/compare", "/notebook", "/review"];

pub fn routes() -> Router<Arc<crate::State>> {
    let mut router = Router::new().route("/assets/{*path}", get(asset)).route("/run/{id}", get(run_shell));
    for page in PAGES {
        router = router.route(page, get(shell));
    }
    router
}

async fn shell() -> Response {
    file("index.html")
}

/// A run's page: the shell, which also has the browser ask for the run's
/// series (as the page's script will, at its default x axis) while it
/// loads the scripts, instead of after.
async fn run_shell(Path(id): Path<String>) -> Response {
    let Some(html) = ASSETS.get_file("index.html").and_then(|f| f.contents_utf8()) else {
        return file("index.html");
    };
    let href = format!("/api/runs/{}/metrics?keys=&amp;points=2000&amp;x=step", uri_component(&id));
    let preload = format!("<link rel=\"preload\" as=\"fetch\" crossorigin href=\"{href}\">\n</head>");
    let mut response = (StatusCode::OK, html.replacen("</head>", &preload, 1)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// `encodeURIComponent`, as the page's script writes the same address.
fn uri_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn asset(Path(path): Path<String>) -> Response {
    file(&path)
}

fn file(path: &str) -> Response {
    // Only names of the embedded files match; `..` or an absolute path is
    // not one of them.
    let Some(found) = ASSETS.get_file(path).filter(|_| !path.split('/').any(|p| p == ".." || p.is_empty())) else {
        return ApiError::not_found(format!("no such file: /assets/{path}")).into_response();
    };
    let mut response = (StatusCode::OK, found.contents()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    // The files change only with the binary.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "txt" | "md" | "LICENSE" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
