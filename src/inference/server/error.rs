//! API errors as OpenAI-style JSON bodies with the matching HTTP status
//! (429 with `Retry-After`), also for unknown routes, wrong methods and
//! bodies over the limit.

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::openai::{ErrorBody, ErrorDetail};
use crate::inference::engine::SubmitError;
use crate::inference::metrics::Outcome;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>, param: Option<&'static str>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code: None,
        }
    }

    pub fn context_exceeded(message: String) -> Self {
        ApiError {
            code: Some("context_length_exceeded"),
            ..Self::bad_request(message, Some("messages"))
        }
    }

    pub fn queue_full(message: String) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message,
            kind: "rate_limit_error",
            param: None,
            code: Some("queue_full"),
        }
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: Some("request_too_large"),
            ..Self::bad_request(message, None)
        }
    }

    /// No route at `uri`.
    pub fn no_route(uri: &Uri) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: Some("unknown_url"),
            ..Self::bad_request(format!("no such endpoint: {}", uri.path()), None)
        }
    }

    /// The route at `uri` takes other methods.
    pub fn wrong_method(method: &Method, uri: &Uri) -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: Some("method_not_allowed"),
            ..Self::bad_request(format!("{method} is not allowed on {}", uri.path()), None)
        }
    }

    pub fn not_ready() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the model is still loading".into(),
            kind: "server_error",
            param: None,
            code: Some("model_loading"),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some("model"),
            code: Some("model_not_found"),
        }
    }

    /// The metrics outcome this error counts as.
    pub fn outcome(&self) -> Outcome {
        match self.status {
            StatusCode::TOO_MANY_REQUESTS => Outcome::QueueFull,
            s if s.is_client_error() => Outcome::BadRequest,
            _ => Outcome::Error,
        }
    }
}

/// A request the engine would not queue: 429 when its queue is full.
impl From<SubmitError> for ApiError {
    fn from(err: SubmitError) -> Self {
        match err {
            SubmitError::QueueFull { .. } => {
                ApiError::queue_full(format!("{err}; retry in a second"))
            }
            SubmitError::Stopped => ApiError::internal(err.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                message: self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            // The queue drains within a step or two of the batch.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}
