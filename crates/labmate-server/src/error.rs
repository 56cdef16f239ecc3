//! Errors as the API answers them: `{"error": "...", "kind": "..."}` with
//! the HTTP status of the core's error kind. Never SQL or a stack trace: an
//! internal error says what failed, in the core's words.

use axum::Json;
use axum::http::StatusCode;
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
