//! API errors as `{"error": {"code", "message"}}` bodies with the matching
//! HTTP status; the one place a failure becomes a response.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api::{ErrorBody, ErrorDetail};
use super::auth::AuthError;
use super::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (429 answers).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 413 for one field of a body over its own limit, naming the field.
    pub fn field_too_large(field: &'static str, bytes: usize, limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "field_too_large",
            format!(
                "`{field}` is {bytes} bytes of JSON; the coordinator takes at most {limit} bytes                  in it (fix: send a smaller `{field}`)"
            ),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A body that is not the JSON the endpoint takes; names the field.
    pub fn invalid_json(err: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let message = if path == "." {
            format!(
                "the request body is not valid JSON for this endpoint: {}",
                err.inner()
            )
        } else {
            format!(
                "the request body is not valid JSON for this endpoint: at {path}: {}",
                err.inner()
            )
        };
        Self::bad_request("invalid_json", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The details go to the log; the client learns only that it failed.
        tracing::error!(error = %err, cause = ?std::error::Error::source(&err).map(ToString::to_string), "storage failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_failed",
            "the coordinator could not read or write its database; try again later",
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Store(err) => err.into(),
            other => Self::new(other.status(), other.code(), other.to_string()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is larger than the coordinator's limit of {} bytes",
                    super::routes::BODY_LIMIT_BYTES
                ),
            )
        } else {
            Self::bad_request("unreadable_body", rejection.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}
