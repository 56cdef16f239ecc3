//! What every request passes before it reaches a handler, and the headers
//! every answer carries.
//!
//! - The Host header must name this server: its bound address, `localhost`,
//!   or a name given with `--allow-host`, with the bound port. A page on
//!   another site whose name was rebound to 127.0.0.1 (DNS rebinding) sends
//!   its own name and is refused.
//! - Every request, reads and the pages included, shows the lab's token: a
//!   `Bearer` header, the cookie this server set, or `?token=` in the URL
//!   (which a page then trades for the cookie and leaves the address bar).
//!   On a shared login node other users reach loopback too.
//! - A request that changes something also carries the server's own Origin:
//!   a page of another origin cannot make the browser act with the cookie.
//! - Answers say: a strict Content-Security-Policy (no inline script, no
//!   other origin), no sniffing, no referrer (the URL may hold the token),
//!   no framing.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub async fn guard(State(state): State<Arc<crate::State>>, request: Request, next: Next) -> Response {
    let mut response = match check(&state, &request) {
        Err(refusal) => refusal.into_response(),
        Ok(Pass::TradeForCookie) => trade_for_cookie(&state, request.uri()),
        Ok(Pass::Through) => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

enum Pass {
    Through,
    /// A page opened with `?token=`: set the cookie and send the browser to
    /// the same page without the token in its address.
    TradeForCookie,
}

fn check(state: &crate::State, request: &Request) -> Result<Pass, ApiError> {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !host_is_ours(state, host) {
        return Err(ApiError::forbidden(format!(
            "the Host header {host:?} is not this server's; start it with --allow-host NAME to reach it by that name"
        )));
    }
    let from_query = query_token(request.uri());
    let shown =
        bearer(request.headers()).or_else(|| cookie(request.headers(), &cookie_name(state))).or(from_query.as_deref());
    if !shown.is_some_and(|t| same(t, &state.token)) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "forbidden",
            "this server needs its token: open the URL `labmate serve` printed (it ends in ?token=...), \
             or send the header Authorization: Bearer TOKEN (the token is in .labmate/serve-token)",
        ));
    }
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok());
    // An MCP client or a remote run's writer is a program, not a page: it
    // sends no Origin, and it shows the token in its Authorization header,
    // which no other site's page can make a browser send here.
    let path = request.uri().path();
    let program = (path.starts_with("/mcp") || path.starts_with("/api/remote/"))
        && origin.is_none()
        && bearer(request.headers()).is_some();
    if changes && !program && origin != Some(format!("http://{host}").as_str()) {
        return Err(ApiError::forbidden(match origin {
            None => "a change needs the Origin header of this server (http://HOST:PORT)".to_string(),
            Some(o) => format!("a change from the origin {o:?} is refused: only this server's own pages may act"),
        }));
    }
    let is_api = request.uri().path().starts_with("/api/");
    if from_query.is_some() && request.method() == Method::GET && !is_api {
        return Ok(Pass::TradeForCookie);
    }
    Ok(Pass::Through)
}

/// Whether `host` (a Host header: name or address, then `:port` unless it
/// is 80) names this server.
fn host_is_ours(state: &crate::State, host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        // An IPv6 address without a port ends in `]`.
        Some((name, port)) if !port.contains(']') => (name, port.parse::<u16>().ok()),
        _ => (host, Some(80)),
    };
    if port != Some(state.addr.port()) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let bound = state.addr.ip();
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip == bound && !bound.is_unspecified())
        || state.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == "token").map(|(_, v)| v.into())
}

/// The cookie's name holds the port: cookies do not tell ports apart, and
/// two labs served on one host must not overwrite each other's.
fn cookie_name(state: &crate::State) -> String {
    format!("labmate_token_{}", state.addr.port())
}

/// Compares in time that does not depend on where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn trade_for_cookie(state: &crate::State, uri: &Uri) -> Response {
    let rest: Vec<&str> =
        uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty() && !p.starts_with("token=")).collect();
    let location = if rest.is_empty() { uri.path().to_string() } else { format!("{}?{}", uri.path(), rest.join("&")) };
    let cookie = format!("{}={}; HttpOnly; SameSite=Strict; Path=/", cookie_name(state), state.token);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }
}
