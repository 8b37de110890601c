//! The qualification types on the wire: a market's qualification (admin),
//! and a node's standing in its market.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `PUT /api/markets/{market}/qualification` (admin): the job a node of
/// the market must pass before it takes the market's jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Qualification {
    /// The model the node's worker answers with.
    pub model: String,
    /// The prompt, answered greedily (temperature 0).
    pub prompt: String,
    /// The answer text must start with this (after leading whitespace) or
    /// contain it.
    pub expected: String,
    /// 1 to 4096.
    pub max_tokens: u32,
    /// Completion tokens per second, counted from the lease grant to the
    /// complete (so model loading counts); above 0.
    pub min_tokens_per_second: f64,
}

/// A market's qualification as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MarketQualification {
    pub market: String,
    pub qualification: Qualification,
    /// RFC 3339: when it was last set.
    pub updated_at: String,
}

/// A node's standing in the market it claims, when that market has a
/// qualification: claimed vs qualified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeQualification {
    /// The market the node claims (from its benchmark).
    pub market: String,
    /// Whether it passed the market's qualification (and so takes its jobs).
    pub qualified: bool,
    /// RFC 3339: when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualified_at: Option<String>,
    /// Completion tokens per second measured at its last qualification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
    /// The qualification job it runs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_job: Option<Uuid>,
    /// Why its last try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// RFC 3339: when its last try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<String>,
    /// RFC 3339: after a failure, when it may try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
}
