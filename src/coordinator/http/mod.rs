//! What every domain's routes share: error bodies, limits, pagination, the
//! per-address throttle, and the auth checks (node signature, admin token,
//! client API key), idempotency keys. Knows no domain's routes.

pub mod admin;
pub mod api_key;
pub mod error;
pub mod idempotency;
pub mod limits;
pub mod node_auth;
pub mod node_keys;
pub mod page;
pub mod rate_limit;
