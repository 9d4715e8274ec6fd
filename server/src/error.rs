//! The HTTP layer's one error type: every failure answers `{code, message}` (DESIGN.md §3).
//!
//! This is the one place that decides what is logged: internal failures are logged with their
//! (value-free) detail and answered with a bare `internal`; nothing a client sent is echoed.
//! Body rejections are rebuilt from their kind, because serde's messages quote the offending
//! value ("invalid type: string \"Nguyễn…\"").

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use donghanh_protocol::{ErrorBody, codes};

use crate::store::StoreError;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; the message says what, never quoting it.
    #[error("{0}")]
    Invalid(String),
    /// Missing, wrong or expired credentials.
    #[error("authentication required")]
    Unauthorised,
    /// Not allowed for this user.
    #[error("not allowed")]
    Forbidden,
    /// No such thing.
    #[error("not found")]
    NotFound,
    /// The device is revoked and must wipe.
    #[error("this device was revoked: wipe its data")]
    DeviceRevoked,
    /// Too many attempts.
    #[error("too many attempts; try again later")]
    RateLimited,
    /// Missing or wrong protocol header.
    #[error("protocol version mismatch")]
    ProtocolMismatch,
    /// Body too large.
    #[error("the body is too large")]
    PayloadTooLarge,
    /// The pull cursor is older than the tombstone horizon: re-bootstrap from snapshots.
    #[error("the cursor is older than the server keeps deletes: download every scope again")]
    CursorExpired,
    /// The database's disk is full: nothing was saved, the client tries again later.
    #[error("the server's storage is full; nothing was saved: try again later")]
    StorageFull,
    /// Server-side failure; the detail goes to the log only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Invalid(_) => (StatusCode::BAD_REQUEST, codes::INVALID_INPUT),
            ApiError::Unauthorised => (StatusCode::UNAUTHORIZED, codes::UNAUTHORISED),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, codes::FORBIDDEN),
            ApiError::NotFound => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            ApiError::DeviceRevoked => (StatusCode::UNAUTHORIZED, codes::DEVICE_REVOKED),
            ApiError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED),
            ApiError::ProtocolMismatch => (StatusCode::BAD_REQUEST, codes::PROTOCOL_MISMATCH),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE),
            ApiError::CursorExpired => (StatusCode::GONE, codes::CURSOR_EXPIRED),
            ApiError::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, codes::STORAGE_FULL),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail = %detail, "internal error");
        }
        if let ApiError::StorageFull = &self {
            tracing::error!("the database's disk is full: requests that write are refused");
        }
        (status, Json(ErrorBody::new(code, self.to_string()))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::CursorExpired => ApiError::CursorExpired,
            StoreError::Exists { what } => ApiError::Invalid(format!("{what} already exists")),
            StoreError::Invalid(d) => ApiError::Invalid(d.to_string()),
            StoreError::Full => ApiError::StorageFull,
            StoreError::Database(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(_) => {
                ApiError::Invalid("the body does not have the expected fields and types".into())
            }
            JsonRejection::JsonSyntaxError(_) => {
                ApiError::Invalid("the body is not valid JSON".into())
            }
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::Invalid("expected Content-Type: application/json".into())
            }
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            _ => ApiError::Invalid("the body could not be read".into()),
        }
    }
}
