//! The accounts domain's wire types: creating, listing and revoking client
//! accounts (admin).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/accounts` (admin): a new client account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// A unique name for people: 1-64 of `a-z0-9._-`.
    pub name: String,
    /// Where the account's gateway requests are served unless a request's
    /// `X-Garage-Residency` says otherwise: `EU`, country codes (`SE`) or
    /// Swedish price areas (`SE3`), comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency: Option<String>,
}

/// An account as listed (never with its key's secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// The public part of its API key (`gk_<id>_…`).
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, when revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// "active" or "revoked".
    pub state: String,
}

/// Answer to `POST /api/accounts`: the only time the key is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountCreated {
    /// The whole API key, `gk_<id>_<secret>`; the coordinator keeps only a hash.
    pub api_key: String,
    #[serde(flatten)]
    pub view: AccountView,
}

/// `GET /api/accounts` (admin): one page, by account id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountView>,
    /// Pass as `?continue=` for the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}
