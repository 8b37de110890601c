//! The agent's HTTP endpoints: `/status` (JSON), `/metrics` (Prometheus
//! text), `/healthz` (the process serves) and `/readyz` (a reconcile pass
//! has observed the engine and the spec is valid).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;

use crate::metrics::AgentMetrics;
use crate::reconcile::status::{ConditionStatus, ConditionType};
use crate::reconcile::NodeStatus;

#[derive(Debug, Clone)]
struct AppState {
    status: watch::Receiver<NodeStatus>,
    metrics: AgentMetrics,
}

/// The router, for serving and for tests.
pub fn router(status: watch::Receiver<NodeStatus>, metrics: AgentMetrics) -> Router {
    Router::new()
        .route("/status", get(status_json))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AppState { status, metrics })
}

async fn status_json(State(state): State<AppState>) -> Json<NodeStatus> {
    Json(state.status.borrow().clone())
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
        .into_response()
}

async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    let status = state.status.borrow();
    let spec_valid = status.condition(ConditionType::SpecValid).map(|c| c.status);
    let observed = status
        .condition(ConditionType::Progressing)
        .map(|c| c.status);
    if spec_valid == Some(ConditionStatus::True) && observed != Some(ConditionStatus::Unknown) {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no reconcile pass has completed with a valid spec\n".into(),
        )
    }
}
