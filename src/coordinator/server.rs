//! Running a coordinator: opens the store, builds each domain's state and
//! routes, adds what belongs to no domain (the coordinator's id, OpenAPI,
//! metrics, health, fallbacks, body limit, request deadline) and the web
//! dashboard, and supervises the server with the background sweeps (node
//! liveness, job leases, proposal tallies, stale gateway bills, the ledger
//! audit, SQLite's WAL checkpoints).

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::accounts::routes::{self as account_routes, AccountsState};
use super::config::CoordinatorConfig;
use super::dashboard::{self, DashboardState};
use super::energy::sources::GridSourceError;
use super::energy::{EnergyRecorder, GridSources};
use super::gateway::limits::AccountLimits;
use super::gateway::links::Links;
use super::gateway::routes as gateway_routes;
use super::gateway::state::GatewayState;
use super::gateway::sweep as gateway_sweep;
use super::governance::node_routes as governance_node_routes;
use super::governance::routes::{self as governance_routes, GovernanceState};
use super::governance::sweep as governance_sweep;
use super::http::admin::{self, AdminGuard, AdminTokenError};
use super::http::api_key::ClientAuth;
use super::http::error::ApiError;
use super::http::limits::BODY_LIMIT_BYTES;
use super::http::node_auth::Authenticator;
use super::jobs::placement::{rounds as placement_rounds, PlacementMode};
use super::jobs::routes::{self as job_routes, JobsSettings, JobsState};
use super::jobs::sweep;
use super::jobs::{lease_routes, log_routes};
use super::ledger::audit_sweep;
use super::ledger::routes::{self as ledger_routes, LedgerState};
use super::metrics::CoordinatorMetrics;
use super::nodes::admission::Admission;
use super::nodes::api::NodeState;
use super::nodes::heartbeat_writer::HeartbeatWriter;
use super::nodes::heartbeats::Retention;
use super::nodes::liveness;
use super::nodes::routes::{self as node_routes, NodesState};
use super::nodes::token_routes;
use super::openapi::{self, OPENAPI_PATH};
use super::parameters::routes::{self as parameter_routes, ParametersState};
use super::parameters::store::StartDefaults;
use super::parameters::Parameters;
use super::qualification::routes::{self as qualification_routes, QualificationState};
use super::regions::routes::{self as region_routes, RegionsState};
use super::store::{self, checkpoint, Backend, Store, StoreError};
use crate::clock::unix_millis;
use crate::http_server;
use crate::identity::{self, IdentityError};
use crate::supervisor::{supervise, TaskPanicked};

/// Why the coordinator could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("cannot use the coordinator's state directory (--state-dir)")]
    StateDir(#[source] IdentityError),
    #[error("cannot set up the admin token")]
    AdminToken(#[source] AdminTokenError),
    #[error("cannot set up the grid carbon-intensity and price sources")]
    GridSources(#[source] GridSourceError),
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

/// What the routes that belong to no domain read.
#[derive(Debug, Clone)]
struct ServerState {
    store: Store,
    metrics: CoordinatorMetrics,
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
    let coordinator_id = store.coordinator_id(unix_millis()).await?;
    let metrics = CoordinatorMetrics::new();
    let auth = Authenticator::new(store.clone(), metrics.clone(), coordinator_id);
    let admin = AdminGuard::new(&admin_token, metrics.clone());
    // The coordinator's flags are the defaults of the parameters they name.
    let live = Parameters::new(
        store.clone(),
        StartDefaults {
            heartbeat_interval_seconds: i64::try_from(config.heartbeat_interval.as_secs())
                .unwrap_or(i64::MAX),
            offline_after_intervals: i64::from(config.offline_after),
        },
    );
    let cancel = CancellationToken::new();
    if store.backend() == Backend::Postgres {
        auth.listen_for_key_changes(config.database_url.clone(), cancel.clone());
    }
    let (heartbeats, heartbeat_writer) = HeartbeatWriter::new(
        store.clone(),
        live.clone(),
        Retention {
            count: u64::from(config.heartbeat_history),
            bytes: config.heartbeat_history_bytes,
        },
        metrics.clone(),
    );
    let nodes = NodesState {
        auth: auth.clone(),
        admin: admin.clone(),
        admission: Admission::new(config.registration),
        store: store.clone(),
        metrics: metrics.clone(),
        parameters: live.clone(),
        heartbeats,
    };
    let clients = ClientAuth::new(store.clone(), admin.clone(), metrics.clone());
    let governance = GovernanceState {
        store: store.clone(),
        auth: auth.clone(),
        clients: clients.clone(),
        parameters: live.clone(),
    };
    let sources =
        GridSources::new(&config.grid, metrics.clone()).map_err(CoordinatorError::GridSources)?;
    let energy = EnergyRecorder {
        store: store.clone(),
        sources: sources.clone(),
        parameters: live.clone(),
        metrics: metrics.clone(),
    };
    let regions = RegionsState {
        store: store.clone(),
        sources,
    };
    let dashboard = DashboardState::new(store.clone(), admin.clone(), regions.clone());
    let ledger = LedgerState {
        store: store.clone(),
        clients: clients.clone(),
        auth: auth.clone(),
        admin: admin.clone(),
    };
    let jobs = JobsState::new(
        store.clone(),
        auth.clone(),
        clients.clone(),
        metrics.clone(),
        JobsSettings {
            lease_duration: config.lease_duration,
            parameters: live.clone(),
            placement: config.placement,
        },
        energy,
        cancel.clone(),
    );
    let parameters = ParametersState {
        parameters: live.clone(),
        admin: admin.clone(),
    };
    let qualification = QualificationState {
        store: store.clone(),
        admin: admin.clone(),
    };
    let accounts = AccountsState {
        store: store.clone(),
        admin: admin.clone(),
    };
    let settlements = TaskTracker::new();
    let gateway = GatewayState {
        store: store.clone(),
        auth: auth.clone(),
        clients: clients.clone(),
        admin,
        links: Links::new(metrics.gateway.clone()),
        metrics: metrics.gateway.clone(),
        parameters: live.clone(),
        limits: AccountLimits::new(config.gateway),
        settlements: settlements.clone(),
        cancel: cancel.clone(),
    };
    let server = ServerState {
        store: store.clone(),
        metrics: metrics.clone(),
    };
    let addr = listener.local_addr().map_err(CoordinatorError::Serve)?;
    tracing::info!(
        %addr,
        %coordinator_id,
        database = %store::redact(&config.database_url),
        heartbeat_interval = ?config.heartbeat_interval,
        offline_after = config.offline_after,
        registration = ?config.registration,
        lease_duration = ?config.lease_duration,
        placement = ?config.placement,
        "coordinator serving the API, {OPENAPI_PATH} and /metrics"
    );

    let mut tasks: JoinSet<Result<(), CoordinatorError>> = JoinSet::new();
    tasks.spawn(async move {
        heartbeat_writer.await;
        Ok(())
    });
    {
        let (store, metrics, cancel) = (store.clone(), metrics.clone(), cancel.clone());
        tasks.spawn(async move {
            liveness::run(store, metrics, live, cancel).await;
            Ok(())
        });
    }
    {
        let (store, cancel) = (store.clone(), cancel.clone());
        tasks.spawn(async move {
            governance_sweep::run(store, cancel).await;
            Ok(())
        });
    }
    if store.backend() == Backend::Sqlite {
        let (store, cancel) = (store.clone(), cancel.clone());
        tasks.spawn(async move {
            checkpoint::run(store, cancel).await;
            Ok(())
        });
    }
    {
        let (jobs, cancel) = (jobs.clone(), cancel.clone());
        tasks.spawn(async move {
            sweep::run(jobs, sweep::period(config.lease_duration), cancel).await;
            Ok(())
        });
    }
    {
        let (store, cancel) = (store.clone(), cancel.clone());
        tasks.spawn(async move {
            gateway_sweep::run(store, cancel).await;
            Ok(())
        });
    }
    {
        let (store, metrics, cancel) = (store.clone(), metrics.clone(), cancel.clone());
        tasks.spawn(async move {
            audit_sweep::run(store, metrics, cancel).await;
            Ok(())
        });
    }
    if config.placement == PlacementMode::Scored {
        let (jobs, cancel) = (jobs.clone(), cancel.clone());
        tasks.spawn(async move {
            placement_rounds::run(jobs, cancel).await;
            Ok(())
        });
    }
    {
        let cancel = cancel.clone();
        let domains = Domains {
            nodes,
            jobs,
            accounts,
            qualification,
            parameters,
            ledger,
            governance,
            regions,
            gateway,
            dashboard,
        };
        let app = router(domains, server);
        tasks.spawn(async move {
            let limits = http_server::ServerLimits::for_this_process();
            http_server::serve(listener, app, limits, cancel.cancelled_owned()).await;
            Ok(())
        });
    }
    let first = supervise(tasks, shutdown, &cancel, "coordinator").await;
    // Streams that ended as the server stopped settle their bills first.
    settlements.close();
    settlements.wait().await;
    store.close().await;
    first
}

/// Every domain's handler state, for [`router`].
struct Domains {
    nodes: NodesState,
    jobs: JobsState,
    accounts: AccountsState,
    qualification: QualificationState,
    parameters: ParametersState,
    ledger: LedgerState,
    governance: GovernanceState,
    regions: RegionsState,
    gateway: GatewayState,
    dashboard: DashboardState,
}

/// Every route. The long-poll claim and the followed log stream bound
/// their own time; every other route has the server's request deadline.
fn router(domains: Domains, server: ServerState) -> Router {
    let Domains {
        nodes,
        jobs,
        accounts,
        qualification,
        parameters,
        ledger,
        governance,
        regions,
        gateway,
        dashboard,
    } = domains;
    let bounded = Router::new()
        .merge(node_routes::router(nodes.clone()))
        .merge(token_routes::router(nodes))
        .merge(account_routes::router(accounts))
        .merge(qualification_routes::router(qualification))
        .merge(parameter_routes::router(parameters))
        .merge(ledger_routes::router(ledger))
        .merge(governance_routes::router(governance.clone()))
        .merge(governance_node_routes::router(governance))
        .merge(region_routes::router(regions))
        .merge(gateway_routes::router(gateway.clone()))
        .merge(job_routes::router(jobs.clone()))
        .merge(lease_routes::router(jobs.clone()))
        .merge(dashboard::router(dashboard.clone()))
        .merge(
            Router::new()
                .route(OPENAPI_PATH, get(openapi_json))
                .route("/metrics", get(metrics_text))
                .route("/healthz", get(|| async { "ok\n" }))
                .with_state(server),
        );
    http_server::with_request_timeout(bounded, http_server::REQUEST_TIMEOUT)
        .merge(log_routes::router(jobs.clone()))
        .merge(lease_routes::unbounded_router(jobs))
        .merge(gateway_routes::unbounded_router(gateway))
        .merge(dashboard::live_router(dashboard))
        .fallback(|uri: Uri| async move {
            ApiError::not_found(format!("no such endpoint: {}", uri.path()))
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on {}", uri.path()),
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi::openapi())
}

async fn metrics_text(State(state): State<ServerState>) -> Response {
    match state.store.count_by_state().await {
        Ok(counts) => {
            for node_state in [NodeState::Online, NodeState::Offline] {
                let count = counts
                    .iter()
                    .find(|(s, _)| *s == node_state)
                    .map_or(0, |(_, n)| *n);
                state
                    .metrics
                    .nodes
                    .with_label_values(&[node_state.as_str()])
                    .set(count);
            }
        }
        Err(err) => return ApiError::from(err).into_response(),
    }
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
        .into_response()
}
