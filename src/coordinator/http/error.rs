//! API errors as `{"error": {"code", "message"}}` bodies with the matching
//! HTTP status; the one place a failure becomes a response. Also the JSON
//! body parser, whose failures name the field.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use super::limits::{BODY_LIMIT_BYTES, MAX_FIELD_BYTES};
use super::node_auth::AuthError;
use crate::coordinator::store::StoreError;

/// Every error the API answers: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable, e.g. "stale_request", "payload_too_large".
    pub code: String,
    /// For people: what went wrong and how to fix it.
    pub message: String,
}

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

/// Parses a JSON body, naming the field that does not fit.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| ApiError::invalid_json(&err))
}

/// 413 when the JSON text of `value` (as stored) is over [`MAX_FIELD_BYTES`].
pub fn check_field<T: Serialize + ?Sized>(field: &'static str, value: &T) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(value).map_or(0, |text| text.len());
    if bytes > MAX_FIELD_BYTES {
        Err(ApiError::field_too_large(field, bytes, MAX_FIELD_BYTES))
    } else {
        Ok(())
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
                    BODY_LIMIT_BYTES
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_over_the_cap_is_named_in_a_413() {
        let small = serde_json::json!({"tokens_per_second": 1.0});
        assert!(check_field("benchmark", &small).is_ok());
        let big = serde_json::json!({"pad": "x".repeat(MAX_FIELD_BYTES)});
        let err = check_field("benchmark", &big).expect_err("too large");
        assert_eq!(err.status.as_u16(), 413);
        assert_eq!(err.code, "field_too_large");
        assert!(
            err.message.contains("`benchmark`") && err.message.contains("65536"),
            "{}",
            err.message
        );
    }
}
