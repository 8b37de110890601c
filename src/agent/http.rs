//! The agent's HTTP endpoints: `/status` (JSON), `/metrics` (Prometheus
//! text), `/healthz` (the process serves) and `/readyz` (a reconcile pass
//! has observed the engine and the spec is valid, or only missing while the
//! last valid one runs).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;

use crate::metrics::AgentMetrics;
use crate::reconcile::status::{ConditionStatus, ConditionType, REASON_SPEC_MISSING};
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

/// Ready: a pass has observed the engine, converging to a valid spec. A
/// deleted node.yaml leaves the last valid spec running, so it stays ready
/// (issue 9, D21: it answered 503 while every workload ran).
pub fn is_ready(status: &NodeStatus) -> bool {
    let spec_usable = status.condition(ConditionType::SpecValid).is_some_and(|c| {
        c.status == ConditionStatus::True
            || (c.reason == REASON_SPEC_MISSING && status.observed_generation.is_some())
    });
    let observed = status
        .condition(ConditionType::Progressing)
        .map(|c| c.status);
    spec_usable && observed != Some(ConditionStatus::Unknown)
}

async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    if is_ready(&state.status.borrow()) {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no reconcile pass has completed with a valid spec\n".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::status::REASON_SPEC_INVALID;

    fn observed(spec_reason: &str, spec_ok: bool) -> NodeStatus {
        let mut status = NodeStatus::new("n1");
        status.observed_generation = Some("0123456789ab".into());
        status.set_condition(ConditionType::Progressing, false, "Converged", "");
        status.set_condition(ConditionType::SpecValid, spec_ok, spec_reason, "");
        status
    }

    #[test]
    fn a_missing_spec_file_keeps_a_converged_node_ready_an_invalid_one_does_not() {
        assert!(is_ready(&observed("Valid", true)));
        assert!(is_ready(&observed(REASON_SPEC_MISSING, false)));
        assert!(!is_ready(&observed(REASON_SPEC_INVALID, false)));
        assert!(!is_ready(&NodeStatus::new("n1")), "before the first pass");
    }
}
