//! The coordinator (`garage coordinator`): registers nodes, takes their
//! signed heartbeats, tells who is online and which markets exist, over an
//! HTTP API described by OpenAPI. Storage is SQLite (default) or PostgreSQL.
//! It owns no node: it only records what nodes report.

pub mod admin;
pub mod admin_client;
pub mod admission;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod error;
pub mod join_tokens;
pub mod limits;
pub mod liveness;
pub mod markets;
pub mod metrics;
pub mod page;
pub mod rate_limit;
pub mod routes;
pub mod store;
pub mod token_cli;
pub mod token_routes;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use cli::CoordinatorArgs;
pub use client::{ClientError, CoordinatorClient};

use crate::http_server;
use crate::identity::{self, IdentityError};
use crate::supervisor::{supervise, TaskPanicked};
use admin::{AdminGuard, AdminTokenError};
use admission::{Admission, RegistrationMode};
use auth::Authenticator;
use metrics::CoordinatorMetrics;
use routes::AppState;
use store::{Store, StoreError};

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
            heartbeat_history: routes::DEFAULT_HEARTBEAT_HISTORY,
            heartbeat_history_bytes: limits::DEFAULT_HEARTBEAT_HISTORY_BYTES,
        }
    }
}

/// Why the coordinator could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("cannot use the coordinator's state directory (--state-dir)")]
    StateDir(#[source] IdentityError),
    #[error("cannot set up the admin token")]
    AdminToken(#[source] AdminTokenError),
    #[error("cannot open the coordinator database")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr} (is another coordinator running? change --listen)")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Panicked(#[from] TaskPanicked),
}

/// Binds `config.listen` and serves until `shutdown` completes.
pub async fn serve(
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CoordinatorError> {
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| CoordinatorError::Listen {
                addr: config.listen,
                source,
            })?;
    serve_with_listener(listener, config, shutdown).await
}

/// Serves on an already bound listener (tests bind 127.0.0.1:0) until
/// `shutdown` completes; `config.listen` is not used.
pub async fn serve_with_listener(
    listener: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CoordinatorError> {
    identity::ensure_private_dir(&config.state_dir).map_err(CoordinatorError::StateDir)?;
    let admin_token = admin::load_token(
        &config.state_dir,
        config.admin_token.as_deref(),
        config.admin_token_file.as_deref(),
    )
    .map_err(CoordinatorError::AdminToken)?;
    let store = Store::connect(&config.database_url).await?;
    let coordinator_id = store.coordinator_id(routes::now_ms()).await?;
    let metrics = CoordinatorMetrics::new();
    let state = AppState {
        auth: Authenticator::new(store.clone(), metrics.clone(), coordinator_id),
        admin: AdminGuard::new(&admin_token, metrics.clone()),
        admission: Admission::new(config.registration),
        store: store.clone(),
        metrics: metrics.clone(),
        heartbeat_interval: config.heartbeat_interval,
        heartbeat_history: config.heartbeat_history,
        heartbeat_history_bytes: config.heartbeat_history_bytes,
    };
    let addr = listener.local_addr().map_err(CoordinatorError::Serve)?;
    tracing::info!(
        %addr,
        %coordinator_id,
        database = %store::redact(&config.database_url),
        heartbeat_interval = ?config.heartbeat_interval,
        offline_after = config.offline_after,
        registration = ?config.registration,
        "coordinator serving the API, {} and /metrics",
        routes::OPENAPI_PATH
    );

    let cancel = CancellationToken::new();
    let mut tasks: JoinSet<Result<(), CoordinatorError>> = JoinSet::new();
    tasks.spawn(liveness_task(
        store.clone(),
        metrics,
        config.heartbeat_interval,
        config.offline_after,
        cancel.clone(),
    ));
    {
        let cancel = cancel.clone();
        let app =
            http_server::with_request_timeout(routes::router(state), http_server::REQUEST_TIMEOUT);
        tasks.spawn(async move {
            let limits = http_server::ServerLimits::for_this_process();
            http_server::serve(listener, app, limits, cancel.cancelled_owned()).await;
            Ok(())
        });
    }
    let first = supervise(tasks, shutdown, &cancel, "coordinator").await;
    store.close().await;
    first
}

async fn liveness_task(
    store: Store,
    metrics: CoordinatorMetrics,
    interval: Duration,
    offline_after: u32,
    cancel: CancellationToken,
) -> Result<(), CoordinatorError> {
    liveness::run(store, metrics, interval, offline_after, cancel).await;
    Ok(())
}
