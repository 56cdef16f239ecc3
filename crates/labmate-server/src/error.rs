//! Errors as the API answers them: `{"error": "...", "kind": "..."}` with
//! the HTTP status of the core's error kind. Never SQL or a stack trace: an
//! internal error says what failed, in the core's words.

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use labmate::error::Kind;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<labmate::Error> for ApiError {
    fn from(e: labmate::Error) -> ApiError {
        let (status, kind) = match e.kind() {
            Kind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Kind::Invalid => (StatusCode::BAD_REQUEST, "invalid"),
            Kind::Conflict => (StatusCode::CONFLICT, "conflict"),
            Kind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Kind::Environment | Kind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match e {
            // The index's own words may quote SQL: say what it is instead.
            labmate::Error::Index(_) => "the lab's index could not answer; `labmate reindex` rebuilds it".to_string(),
            other => other.to_string(),
        };
        ApiError::new(status, kind, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({"error": self.message, "kind": self.kind}))).into_response()
    }
}

/// The framework's own refusals (a query that does not parse, a body that
/// is not JSON, a method a route does not take) come as plain text: they
/// are answered as every other error is, `{"error", "kind"}`.
pub async fn as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let (kind, text) = match status {
        StatusCode::NOT_FOUND => ("not_found", if text.is_empty() { "no such page or API route".into() } else { text }),
        StatusCode::METHOD_NOT_ALLOWED => (
            "invalid",
            format!(
                "this route does not take that method{}",
                if text.is_empty() { String::new() } else { format!(": {text}") }
            ),
        ),
        s if s.is_server_error() => {
            ("internal", if text.is_empty() { "the server failed to answer".into() } else { text })
        }
        _ => ("invalid", if text.is_empty() { format!("the request was refused ({status})") } else { text }),
    };
    ApiError::new(status, kind, text).into_response()
}
