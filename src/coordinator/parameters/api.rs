//! The parameters' wire types: the public listing and the admin's change.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A parameter with its live value and its changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParameterView {
    pub name: String,
    /// The value in effect now (absent: unset, and without a default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// The value when nobody set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<i64>,
    pub min: i64,
    pub max: i64,
    pub meaning: String,
    /// Newest first: values set, those in effect and those still to come.
    pub changes: Vec<ParameterChange>,
}

/// One value set for a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParameterChange {
    pub value: i64,
    /// RFC 3339: from when it holds.
    pub effective_at: String,
    /// True once `effective_at` has passed.
    pub in_effect: bool,
    /// `admin` or `proposal <id>`.
    pub source: String,
    /// RFC 3339.
    pub set_at: String,
}

/// `GET /api/parameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParameterList {
    pub parameters: Vec<ParameterView>,
}

/// `PUT /api/parameters/{name}` (admin): a new value, now or later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetParameter {
    pub value: i64,
    /// RFC 3339; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<String>,
}
