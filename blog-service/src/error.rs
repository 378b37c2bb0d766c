//! The API's one error type: every failure becomes `{"error": code, "message": text}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::model::InvalidPost;
use crate::store::StoreError;

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `validation_failed`.
    pub error: String,
    /// Text for a person.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(&'static str, String),
    #[error("post not found")]
    NotFound,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("the post changed since the version If-Match names; read it again")]
    PreconditionFailed,
    #[error("{0}")]
    Validation(#[from] InvalidPost),
    #[error("{1}")]
    Rejected(StatusCode, String),
    /// Never shown to the client: logged, answered with a generic 500 or 503.
    #[error("storage failed: {0}")]
    Store(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(code, _) => (StatusCode::BAD_REQUEST, code),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::PreconditionFailed => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::Rejected(status, _) => (*status, code_for_status(*status)),
            Self::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        }
    }
}

/// The error code a bare status gets when no handler chose a more precise one.
#[must_use]
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "client_error",
        _ => "internal_error",
    }
}

/// A JSON error response for a status and message.
#[must_use]
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let mut response = (status, Json(ErrorBody { error: code.to_owned(), message: message.into() })).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Store(cause) => {
                tracing::error!(%cause, "storage failed");
                "the store is not available; try again later".to_owned()
            }
            other => other.to_string(),
        };
        error_response(status, code, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::Changed => Self::PreconditionFailed,
            StoreError::InvalidCursor => Self::BadRequest("invalid_cursor", err.to_string()),
            StoreError::AlreadyExists | StoreError::Backend(_) => Self::Store(err.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "expected a body with Content-Type: application/json".to_owned()
            }
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => "request body is too large".to_owned(),
            _ => rejection.body_text(),
        };
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest("malformed_json", message),
            status => Self::Rejected(status, message),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest("invalid_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest("invalid_path", rejection.body_text())
    }
}
