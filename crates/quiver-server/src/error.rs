//! The one place where errors become HTTP statuses and bodies.
//!
//! Every error reply has Qdrant's shape, `{"status": {"error": "<message>"}, "time": <seconds>}`. User errors
//! (4xx) say what was wrong, naming the field; system faults (5xx) say only that something failed and the
//! request id to quote — the details go to the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quiver_engine::Error as EngineError;
use serde_json::json;

/// An error on its way to becoming a reply.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What the client sees.
    pub message: String,
    /// What only the log sees (system faults).
    pub detail: Option<String>,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A 400 naming the field at fault.
    pub fn invalid(
        field: impl std::fmt::Display,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, format!("invalid {field}: expected {expected}, got {got}"))
    }

    /// A 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// Any status with a message shown to the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), detail: None }
    }

    /// A 500: the client sees a generic message, the log gets `detail`.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error; the server log has the details (quote the x-request-id header)".into(),
            detail: Some(detail.into()),
        }
    }

    /// 503 while the data directory is being recovered.
    pub fn starting() -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is starting: recovering the data directory")
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::CollectionNotFound { .. }
            | EngineError::PointNotFound { .. }
            | EngineError::SnapshotNotFound { .. } => StatusCode::NOT_FOUND,
            EngineError::ChangesGone { .. } => StatusCode::GONE,
            EngineError::CollectionExists { .. } => StatusCode::CONFLICT,
            EngineError::Unavailable { .. } | EngineError::Closed { .. } => StatusCode::SERVICE_UNAVAILABLE,
            EngineError::NotYetApplied { .. } => StatusCode::GATEWAY_TIMEOUT,
            e if e.is_storage_full() => StatusCode::INSUFFICIENT_STORAGE,
            e if e.is_user_error() => StatusCode::BAD_REQUEST,
            _ => return ApiError::internal(e.to_string()),
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<quiver_text::TextError> for ApiError {
    fn from(e: quiver_text::TextError) -> Self {
        use quiver_text::TextError as T;
        match e {
            T::Engine(inner) => ApiError::from(inner),
            T::NotBuilt(_) => ApiError::new(StatusCode::NOT_IMPLEMENTED, e.to_string()),
            T::Upstream(_) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
            e if e.is_user_error() => ApiError::bad_request(e.to_string()),
            e => ApiError::internal(e.to_string()),
        }
    }
}

impl From<quiver_cluster::Error> for ApiError {
    fn from(e: quiver_cluster::Error) -> Self {
        use quiver_cluster::Error as C;
        let e = match e {
            C::Engine(inner) => return ApiError::from(inner),
            e => e,
        };
        let status = match &e {
            C::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
            C::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            C::NotFound { .. } => StatusCode::NOT_FOUND,
            C::AlreadyExists { .. } | C::Conflict { .. } => StatusCode::CONFLICT,
            C::Nats { .. } | C::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            C::Corrupt { .. } | C::UnsafeNats(_) => return ApiError::internal(e.to_string()),
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.detail {
            tracing::error!(status = self.status.as_u16(), detail = %detail, "request failed");
        } else if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), message = %self.message, "request failed");
        }
        let body = json!({"status": {"error": self.message}, "time": 0.0});
        (self.status, Json(body)).into_response()
    }
}
