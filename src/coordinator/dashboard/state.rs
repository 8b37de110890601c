//! What the dashboard's handlers share: the store, the admin guard and its
//! sessions, the regions domain (the map draws what `/api/regions` sums),
//! and the bound on open live-update streams.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::session::Sessions;
use crate::coordinator::http::admin::AdminGuard;
use crate::coordinator::regions::routes::RegionsState;
use crate::coordinator::store::Store;

/// Live-update streams open at once; more get 503 (the page still works).
pub const MAX_LIVE_STREAMS: usize = 256;

#[derive(Debug, Clone)]
pub struct DashboardState {
    pub store: Store,
    pub admin: AdminGuard,
    pub sessions: Sessions,
    pub regions: RegionsState,
    pub live_streams: Arc<Semaphore>,
}

impl DashboardState {
    pub fn new(store: Store, admin: AdminGuard, regions: RegionsState) -> Self {
        DashboardState {
            sessions: Sessions::new(&admin),
            store,
            admin,
            regions,
            live_streams: Arc::new(Semaphore::new(MAX_LIVE_STREAMS)),
        }
    }
}
