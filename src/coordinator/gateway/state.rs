//! What the gateway's handlers share: the store, authentication, the
//! open links, metrics, parameters, limits and the settlements in flight.

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::AccountLimits;
use super::links::Links;
use super::metrics::GatewayMetrics;
use crate::coordinator::http::admin::AdminGuard;
use crate::coordinator::http::api_key::ClientAuth;
use crate::coordinator::http::node_auth::Authenticator;
use crate::coordinator::parameters::Parameters;
use crate::coordinator::store::Store;

/// What the gateway's handlers read; cheap to clone.
#[derive(Debug, Clone)]
pub struct GatewayState {
    pub store: Store,
    pub auth: Authenticator,
    pub clients: ClientAuth,
    pub admin: AdminGuard,
    pub links: Links,
    pub metrics: GatewayMetrics,
    pub parameters: Parameters,
    pub limits: AccountLimits,
    /// Settlements of bills whose stream ended; waited for at shutdown.
    pub settlements: TaskTracker,
    /// The coordinator stopping: links close.
    pub cancel: CancellationToken,
}
