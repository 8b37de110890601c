//! The agent's HTTP endpoints: `/status` (JSON: the node's status, its
//! running network jobs as `networkJobs`, its power as `power` and, with
//! `spec.gateway.serve`, its gateway link as `gateway`), `/metrics` (Prometheus
//! text), `/healthz` (the process serves) and `/readyz` (the agent is
//! converging, as [`NodeStatus::is_converging`] decides).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;

use crate::energy::PowerStatus;
use crate::gateway_link::LinkStatus;
use crate::metrics::AgentMetrics;
use crate::reconcile::NodeStatus;
use crate::work::RunningJobs;

#[derive(Debug, Clone)]
struct AppState {
    status: watch::Receiver<NodeStatus>,
    metrics: AgentMetrics,
    running: RunningJobs,
    power: watch::Receiver<Option<PowerStatus>>,
    gateway: watch::Receiver<Option<LinkStatus>>,
}

/// The router, for serving and for tests.
pub fn router(
    status: watch::Receiver<NodeStatus>,
    metrics: AgentMetrics,
    running: RunningJobs,
    power: watch::Receiver<Option<PowerStatus>>,
    gateway: watch::Receiver<Option<LinkStatus>>,
) -> Router {
    Router::new()
        .route("/status", get(status_json))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AppState {
            status,
            metrics,
            running,
            power,
            gateway,
        })
}

async fn status_json(State(state): State<AppState>) -> Json<serde_json::Value> {
    let mut status = serde_json::to_value(&*state.status.borrow()).unwrap_or_default();
    if let Some(fields) = status.as_object_mut() {
        let jobs = serde_json::to_value(state.running.list()).unwrap_or_default();
        fields.insert("networkJobs".into(), jobs);
        let power = serde_json::to_value(&*state.power.borrow()).unwrap_or_default();
        fields.insert("power".into(), power);
        // Absent unless the node serves the gateway (`spec.gateway.serve`).
        if let Some(gateway) = &*state.gateway.borrow() {
            let gateway = serde_json::to_value(gateway).unwrap_or_default();
            fields.insert("gateway".into(), gateway);
        }
    }
    Json(status)
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
        .into_response()
}

async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    if state.status.borrow().is_converging() {
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
    use crate::energy::EnergyMonitor;
    use crate::spec::PowerSettings;

    #[tokio::test]
    async fn status_shows_the_power_and_metrics_its_gauges() {
        let metrics = AgentMetrics::new();
        let monitor = EnergyMonitor::for_host(&PowerSettings::default(), metrics.clone());
        let (_status_tx, status) = watch::channel(NodeStatus::new("n1"));
        let (gateway_tx, gateway) = watch::channel(None);
        let app = router(
            status,
            metrics.clone(),
            RunningJobs::new(),
            monitor.subscribe(),
            gateway,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let get = |path: &str| reqwest::get(format!("{base}{path}"));
        let before: serde_json::Value = get("/status")
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            before["power"],
            serde_json::Value::Null,
            "nothing sampled yet"
        );
        assert!(before.get("gateway").is_none(), "no link: no gateway");
        let reporter = crate::gateway_link::LinkReporter::new(gateway_tx, metrics, 3);
        reporter.connected(vec!["smollm2".into()]);
        let sample = monitor.sample().await;
        let after: serde_json::Value = get("/status")
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        assert_eq!(after["power"]["source"], "grid");
        assert_eq!(after["gateway"]["state"], "connected");
        assert_eq!(after["gateway"]["slots"], 3);
        assert_eq!(after["gateway"]["models"], serde_json::json!(["smollm2"]));
        // JSON text need not round-trip the last bit of a float.
        let watts = after["power"]["draw"]["watts"].as_f64().expect("watts");
        assert!(
            (watts - sample.draw.watts).abs() < 1e-9,
            "{watts} vs {}",
            sample.draw.watts
        );
        assert_eq!(
            after["power"]["draw"]["measuredBy"],
            sample.draw.measured_by.as_str()
        );
        let text = get("/metrics")
            .await
            .expect("GET")
            .text()
            .await
            .expect("text");
        for name in [
            "garage_node_power_draw_watts",
            "garage_node_solar_production_watts",
            "garage_node_power_surplus_watts",
            "garage_node_energy_joules_total",
            "garage_node_solar_energy_joules_total",
            "garage_agent_gateway_link_up",
            "garage_agent_gateway_in_flight",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing:\n{text}"
            );
        }
    }
}
