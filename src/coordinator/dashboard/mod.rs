//! The web dashboard the coordinator serves at `/` (issue 15):
//! server-rendered pages (`maud`, every value escaped), an embedded style
//! sheet and script (`assets`; no external assets), live updates over
//! server-sent events (`live`). Pages: overview, nodes and a node, markets,
//! jobs and a job (the admin's), regions with a map of Sweden (`map`),
//! ledger, governance. Public pages show what the public API shows; the
//! admin signs in with the admin token (`login`, `session`; `access`
//! reads the `viewer` of a request) to see the rest. Every page works
//! without JavaScript.

pub mod access;
pub mod assets;
pub mod chart;
pub mod error;
pub mod format;
pub mod governance;
pub mod job_page;
pub mod jobs;
pub mod layout;
pub mod ledger;
pub mod live;
pub mod login;
pub mod map;
pub mod markets;
pub mod node_page;
pub mod nodes;
pub mod overview;
pub mod queries;
pub mod regions;
pub mod session;
pub mod state;
pub mod viewer;

use axum::routing::{get, post};
use axum::Router;

pub use state::DashboardState;

/// The pages, bounded by the server's request deadline.
pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/nodes", get(nodes::page))
        .route("/nodes/{id}", get(node_page::page))
        .route("/markets", get(markets::page))
        .route("/jobs", get(jobs::page))
        .route("/jobs/{id}", get(job_page::page))
        .route("/regions", get(regions::page))
        .route("/ledger", get(ledger::page))
        .route("/governance", get(governance::list))
        .route("/governance/{id}", get(governance::proposal))
        .route("/login", get(login::show).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .merge(assets::router())
        .with_state(state)
}

/// The live-update streams, which bound their own time (`live::LIFETIME`).
pub fn live_router(state: DashboardState) -> Router {
    Router::new()
        .route("/live/overview", get(overview::live))
        .route("/live/nodes/{id}", get(node_page::live))
        .route("/live/jobs/{id}", get(job_page::live))
        .route("/live/governance/{id}", get(governance::live))
        .with_state(state)
}
