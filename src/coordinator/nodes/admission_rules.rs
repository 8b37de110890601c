//! Who may register a new node id (issue 9, B3 and B7). `token` mode (the
//! default) asks for an admin-issued join token; `open` mode admits anyone,
//! at most [`OPEN_REGISTRATIONS_PER_WINDOW`] new ids per source address in
//! any [`OPEN_WINDOW`]. A deleted id (tombstoned) comes back only with a
//! token issued for that id. Re-registering an id with the key it is bound
//! to needs nothing: the agent does it at every start. The reasons a
//! registration is refused are here too; `admission` applies the rules.

use std::time::Duration;

use axum::http::StatusCode;
use uuid::Uuid;

use crate::coordinator::http::error::ApiError;
use crate::coordinator::store::rfc3339_ms;

/// New node ids one source address may register in `open` mode per window.
pub const OPEN_REGISTRATIONS_PER_WINDOW: usize = 10;
/// The window of [`OPEN_REGISTRATIONS_PER_WINDOW`].
pub const OPEN_WINDOW: Duration = Duration::from_secs(600);

/// `--registration`: how new node ids are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RegistrationMode {
    /// Only with a join token (`garage coordinator token create`).
    #[default]
    Token,
    /// Anyone, rate-limited per source address.
    Open,
}

/// Why a new registration was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("node {node_id} is not registered, and this coordinator admits new nodes only with a join token (fix: ask its admin for one, made with `garage coordinator token create`, and register with `garage register --join-token-file FILE` or GARAGE_JOIN_TOKEN)")]
    TokenRequired { node_id: Uuid },
    #[error("the join token is malformed: expected gjt_<16 hex digits>.<64 hex digits> (fix: pass the token exactly as `garage coordinator token create` printed it)")]
    MalformedToken,
    #[error("join token {id} is not known to this coordinator: revoked, never issued here, or its secret is wrong (fix: ask the admin for a new one)")]
    UnknownToken { id: String },
    #[error("join token {id} expired at {} (fix: ask the admin for a new one)", rfc3339_ms(*expired_at_ms))]
    ExpiredToken { id: String, expired_at_ms: i64 },
    #[error("join token {id} has been used for all of its {uses} registration(s) (fix: ask the admin for a new one, or one with more --uses)")]
    UsedUpToken { id: String, uses: u32 },
    #[error("join token {id} was issued for node {bound}, not for node {node_id} (fix: use the token made for this node, or ask for one with --node-id {node_id})")]
    TokenForOtherNode {
        id: String,
        bound: Uuid,
        node_id: Uuid,
    },
    #[error("node {node_id} was deleted by an admin; it registers again only with a join token issued for this id (fix: the admin runs `garage coordinator token create --node-id {node_id}`)")]
    DeletedNode { node_id: Uuid },
    #[error("this address registered {OPEN_REGISTRATIONS_PER_WINDOW} new nodes in the last {} minutes, the limit of open registration; retry in {retry_after_secs} s, or register with a join token", OPEN_WINDOW.as_secs() / 60)]
    RateLimited { retry_after_secs: u64 },
}

impl AdmissionError {
    pub fn status(&self) -> StatusCode {
        match self {
            AdmissionError::TokenForOtherNode { .. } | AdmissionError::DeletedNode { .. } => {
                StatusCode::FORBIDDEN
            }
            AdmissionError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::TokenRequired { .. } => "join_token_required",
            AdmissionError::MalformedToken | AdmissionError::UnknownToken { .. } => {
                "invalid_join_token"
            }
            AdmissionError::ExpiredToken { .. } => "join_token_expired",
            AdmissionError::UsedUpToken { .. } => "join_token_used_up",
            AdmissionError::TokenForOtherNode { .. } => "join_token_wrong_node",
            AdmissionError::DeletedNode { .. } => "node_deleted",
            AdmissionError::RateLimited { .. } => "registration_rate_limited",
        }
    }
}

impl From<AdmissionError> for ApiError {
    fn from(err: AdmissionError) -> Self {
        let retry_after = match &err {
            AdmissionError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let mut api = ApiError::new(err.status(), err.code(), err.to_string());
        api.retry_after_secs = retry_after;
        api
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_answers_429_with_retry_after() {
        let api = ApiError::from(AdmissionError::RateLimited {
            retry_after_secs: 7,
        });
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.retry_after_secs, Some(7));
        assert!(api.message.contains("retry in 7 s"), "{}", api.message);
    }
}
