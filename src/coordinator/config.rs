//! How a coordinator runs: the settings `garage coordinator`'s flags
//! become (`cli`), with defaults for everything but addresses and paths.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::energy::GridSourceConfig;
use super::gateway::limits::LimitSettings;
use super::http::limits::{
    DEFAULT_HEARTBEAT_HISTORY, DEFAULT_HEARTBEAT_HISTORY_BYTES, DEFAULT_LEASE_DURATION,
};
use super::jobs::placement::PlacementMode;
use super::nodes::admission_rules::RegistrationMode;
use super::store;

/// How the coordinator runs.
#[derive(Clone)]
pub struct CoordinatorConfig {
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// The coordinator's own files (admin token; the default SQLite file).
    pub state_dir: PathBuf,
    /// Admin bearer token (from `GARAGE_ADMIN_TOKEN`); with neither this nor
    /// `admin_token_file`, the token file in `state_dir` is used.
    pub admin_token: Option<String>,
    /// A file holding the admin token.
    pub admin_token_file: Option<PathBuf>,
    /// How new node ids are admitted.
    pub registration: RegistrationMode,
    pub heartbeat_interval: Duration,
    /// Missed intervals before a node is marked offline.
    pub offline_after: u32,
    /// Heartbeats kept per node.
    pub heartbeat_history: u32,
    /// Bytes of heartbeat status kept per node.
    pub heartbeat_history_bytes: u64,
    /// How long a job lease lives without a renew.
    pub lease_duration: Duration,
    /// Where grid carbon intensities and spot prices come from.
    pub grid: GridSourceConfig,
    /// How jobs are placed.
    pub placement: PlacementMode,
    /// Each account's gateway limits.
    pub gateway: LimitSettings,
}

impl std::fmt::Debug for CoordinatorConfig {
    // By hand: neither the admin token nor a database password may reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorConfig")
            .field("listen", &self.listen)
            .field("database_url", &store::redact(&self.database_url))
            .field("state_dir", &self.state_dir)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("admin_token_file", &self.admin_token_file)
            .field("registration", &self.registration)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("offline_after", &self.offline_after)
            .field("heartbeat_history", &self.heartbeat_history)
            .field("heartbeat_history_bytes", &self.heartbeat_history_bytes)
            .field("lease_duration", &self.lease_duration)
            .field("grid", &self.grid)
            .field("placement", &self.placement)
            .field("gateway", &self.gateway)
            .finish()
    }
}

impl CoordinatorConfig {
    /// Defaults for everything but the addresses and paths.
    pub fn new(listen: SocketAddr, database_url: String, state_dir: PathBuf) -> Self {
        CoordinatorConfig {
            listen,
            database_url,
            state_dir,
            admin_token: None,
            admin_token_file: None,
            registration: RegistrationMode::Token,
            heartbeat_interval: Duration::from_secs(30),
            offline_after: 3,
            heartbeat_history: DEFAULT_HEARTBEAT_HISTORY,
            heartbeat_history_bytes: DEFAULT_HEARTBEAT_HISTORY_BYTES,
            lease_duration: DEFAULT_LEASE_DURATION,
            grid: GridSourceConfig::default(),
            placement: PlacementMode::default(),
            gateway: LimitSettings::default(),
        }
    }
}
