//! Gateway errors in OpenAI's shape (`{"error": {"message", "type",
//! "param", "code"}}`, which the official clients read), with the status,
//! `Retry-After` where waiting helps, and the metric outcome each counts as.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::coordinator::http::error::ApiError;
use crate::coordinator::ledger::LedgerError;

/// An error answered to a gateway client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub status: StatusCode,
    /// OpenAI's `type`.
    pub kind: &'static str,
    pub code: &'static str,
    pub param: Option<&'static str>,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// The `outcome` label it counts as (see `metrics::OUTCOMES`).
    pub outcome: &'static str,
}

impl GatewayError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        let outcome = match status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::PAYMENT_REQUIRED => "unpaid",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            s if s.is_client_error() => "client_error",
            _ => "node_failed",
        };
        GatewayError {
            status,
            kind,
            code,
            param: None,
            message,
            retry_after_secs: None,
            outcome,
        }
    }

    pub fn bad_request(param: Option<&'static str>, message: impl Into<String>) -> Self {
        GatewayError {
            param,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
                message.into(),
            )
        }
    }

    /// No linked node serves `model` at all.
    pub fn model_not_found(model: &str, served: &[String]) -> Self {
        let offer = if served.is_empty() {
            "no node serves any model right now".to_string()
        } else {
            format!("models served now: {}", served.join(", "))
        };
        GatewayError {
            param: Some("model"),
            outcome: "no_model",
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                format!("the model `{model}` is not served by any node of this network ({offer}; GET /v1/models lists them)"),
            )
        }
    }

    /// Nodes serve the model, but none may take this request.
    pub fn unavailable(reason: String) -> Self {
        GatewayError {
            outcome: "no_capacity",
            retry_after_secs: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "no_suitable_node",
                reason,
            )
        }
    }

    /// Every suitable node is busy.
    pub fn no_capacity(model: &str, retry_after_secs: u64) -> Self {
        GatewayError {
            outcome: "no_capacity",
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "no_capacity",
                format!("every node serving `{model}` is busy; retry after {retry_after_secs} s"),
            )
        }
    }

    /// The account's own limit.
    pub fn account_limit(what: String, retry_after_secs: u64) -> Self {
        GatewayError {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limit_exceeded",
                what,
            )
        }
    }

    /// The nodes tried failed before answering.
    pub fn nodes_failed(message: String) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "node_failed",
            message,
        )
    }

    pub fn internal(message: String) -> Self {
        GatewayError {
            outcome: "node_failed",
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal_error",
                message,
            )
        }
    }

    /// The body of an error event in a stream that already started.
    pub fn stream_event(code: &'static str, message: &str) -> String {
        json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}})
            .to_string()
    }
}

impl From<ApiError> for GatewayError {
    fn from(err: ApiError) -> Self {
        let kind = match err.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "server_error",
        };
        GatewayError {
            retry_after_secs: err.retry_after_secs,
            ..Self::new(err.status, kind, err.code, err.message)
        }
    }
}

impl From<LedgerError> for GatewayError {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::Insufficient { .. } => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_quota",
                "insufficient_quota",
                format!("{err} for this request's hold (fix: top up the account, or ask for fewer max_tokens)"),
            ),
            other => Self::internal(format!("the ledger failed: {}", crate::error_text::one_line(&other))),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
