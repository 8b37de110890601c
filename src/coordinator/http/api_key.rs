//! Who calls a client endpoint: `Authorization: Bearer gk_…` names an
//! account by its API key (checked against the stored digest in constant
//! time; revoked keys refused); the admin token is accepted too and acts
//! for every account. Every refusal is a 401 with its own code, counted as
//! `api_key` in `garage_coordinator_auth_rejections_total`.

use axum::http::{header, HeaderMap, StatusCode};

use super::admin::{AdminError, AdminGuard};
use super::error::ApiError;
use super::rate_limit::ClientAddr;
use crate::coordinator::accounts::keys::{ApiKey, PREFIX};
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::store::Store;

/// The owner recorded for jobs the admin submits.
pub const ADMIN_OWNER: &str = "admin";

/// Who a client request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// The account with this id.
    Account(String),
}

impl Caller {
    /// The owner recorded on what this caller makes.
    pub fn owner(&self) -> &str {
        match self {
            Caller::Admin => ADMIN_OWNER,
            Caller::Account(id) => id,
        }
    }

    /// Whether this caller may see something made by `owner`.
    pub fn sees(&self, owner: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Account(id) => id == owner,
        }
    }
}

/// Why a client request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("client endpoints need the header `Authorization: Bearer gk_…` with an API key (fix: ask the admin for one, made with `garage account create NAME`, and set GARAGE_API_KEY)")]
    Missing,
    #[error("the bearer token is neither an API key (gk_<16 hex>_<64 hex>) nor the admin token (fix: pass the key exactly as `garage account create` printed it)")]
    Malformed,
    #[error("API key gk_{id}_… is not known to this coordinator, or its secret is wrong (fix: ask the admin for a new one)")]
    Unknown { id: String },
    #[error("API key gk_{id}_… was revoked (fix: ask the admin for a new one)")]
    Revoked { id: String },
}

impl ApiKeyError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiKeyError::Missing => "api_key_required",
            ApiKeyError::Malformed => "malformed_api_key",
            ApiKeyError::Unknown { .. } => "invalid_api_key",
            ApiKeyError::Revoked { .. } => "api_key_revoked",
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(err: ApiKeyError) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, err.code(), err.to_string())
    }
}

/// Checks client requests; cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    store: Store,
    admin: AdminGuard,
    metrics: CoordinatorMetrics,
}

impl ClientAuth {
    pub fn new(store: Store, admin: AdminGuard, metrics: CoordinatorMetrics) -> Self {
        ClientAuth {
            store,
            admin,
            metrics,
        }
    }

    /// The caller of a request from `client`, or why it is refused.
    pub async fn check(&self, headers: &HeaderMap, client: ClientAddr) -> Result<Caller, ApiError> {
        // The scheme name is case-insensitive (RFC 9110, section 11.1).
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token else {
            return Err(self.refuse(ApiKeyError::Missing));
        };
        if !token.starts_with(PREFIX) {
            return match self.admin.check(headers, client) {
                Ok(()) => Ok(Caller::Admin),
                Err(AdminError::BadToken) => Err(self.refuse(ApiKeyError::Malformed)),
                Err(throttled) => Err(throttled.into()),
            };
        }
        let key = ApiKey::parse(token).ok_or_else(|| self.refuse(ApiKeyError::Malformed))?;
        let account = self.store.account(&key.id).await?;
        match account {
            Some(account) if key.matches(&account.secret_sha256) => {
                if account.revoked_at_ms.is_some() {
                    Err(self.refuse(ApiKeyError::Revoked { id: key.id }))
                } else {
                    Ok(Caller::Account(account.id))
                }
            }
            _ => Err(self.refuse(ApiKeyError::Unknown { id: key.id })),
        }
    }

    fn refuse(&self, err: ApiKeyError) -> ApiError {
        self.metrics.rejected("api_key");
        tracing::debug!(code = err.code(), "refused a client request");
        err.into()
    }
}
