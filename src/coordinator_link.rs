//! The node's link to its coordinator (`spec.coordinator.url`): the
//! registration and heartbeat requests built from the spec and the status
//! (also used by `garage register`), and the agent's heartbeat loop, which
//! registers the node with its identity, then sends its status as a signed
//! heartbeat when the status changes and on the interval the coordinator
//! asks for. A coordinator that is down or failing is retried with
//! exponential backoff and jitter; a permanent refusal (e.g. 409
//! `key_conflict`) stops heartbeats until the agent restarts. Heartbeats
//! never wait on, or hold up, converging.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::backoff::{later, Backoff, Policy};
use crate::coordinator::api::{GpuInfo, HeartbeatRequest, Location, RegisterRequest};
use crate::coordinator::{ClientError, CoordinatorClient};
use crate::energy::PowerStatus;
use crate::gpu::GpuInventory;
use crate::metrics::{
    AgentMetrics, REPORT_HEARTBEAT, REPORT_REGISTER, RESULT_ERROR, RESULT_SUCCESS,
};
use crate::reconcile::NodeStatus;
use crate::spec::NodeSpec;

/// Retries of a failed call: from 1 s doubling up to a minute, each scaled
/// to between half and all of it.
pub const RETRY: Policy = Policy {
    jitter: true,
    ..Policy::doubling(Duration::from_secs(1), Duration::from_secs(60))
};
/// Status changes closer together than this share one heartbeat.
pub const MIN_GAP: Duration = Duration::from_secs(1);
/// The range a coordinator's `heartbeat_interval_seconds` hint is clamped to
/// (issue 9, C12: a hint of 2^64-1 overflowed the clock and panicked agents).
pub const INTERVAL_MIN: Duration = Duration::from_secs(1);
pub const INTERVAL_MAX: Duration = Duration::from_secs(3600);

/// The heartbeat interval for the coordinator's hint, within
/// [`INTERVAL_MIN`]..=[`INTERVAL_MAX`].
pub fn interval_from_hint(seconds: u64) -> Duration {
    Duration::from_secs(seconds).clamp(INTERVAL_MIN, INTERVAL_MAX)
}

/// The registration this node sends: its GPUs, where it is, and its saved
/// benchmark report.
pub fn registration(
    client: &CoordinatorClient,
    spec: &NodeSpec,
    gpus: &GpuInventory,
    benchmark: Option<serde_json::Value>,
) -> RegisterRequest {
    let location = spec
        .location()
        .map(|l| Location {
            country: Some(l.country.clone()),
            region: l.price_area.map(|area| area.as_str().to_owned()),
            latitude: l.coordinates.as_ref().map(|c| c.latitude),
            longitude: l.coordinates.as_ref().map(|c| c.longitude),
        })
        .unwrap_or_default();
    let gpu_info = gpus.devices.iter().map(GpuInfo::from).collect();
    client.registration(gpu_info, location, benchmark)
}

/// The heartbeat for `status` and the node's last power sample.
pub fn heartbeat(
    status: &NodeStatus,
    gpus: &GpuInventory,
    power: Option<&PowerStatus>,
) -> HeartbeatRequest {
    HeartbeatRequest {
        observed_generation: status.observed_generation.clone(),
        ready: status.ready(),
        gpus: gpus.devices.iter().map(GpuInfo::from).collect(),
        status: serde_json::to_value(status).unwrap_or_default(),
        power: power.map(PowerStatus::report),
        spec_revision: status.last_applied_revision.clone(),
    }
}

/// Registers, then heartbeats until the status channel closes. Runs under
/// the agent's supervisor, which cancels it on stop. Each heartbeat carries
/// the last power sample; a new sample alone sends none.
pub async fn run(
    client: CoordinatorClient,
    registration: RegisterRequest,
    gpus: GpuInventory,
    mut status: watch::Receiver<NodeStatus>,
    power: watch::Receiver<Option<PowerStatus>>,
    metrics: AgentMetrics,
) {
    let node_id = client.identity().node_id();
    let mut registered = false;
    let mut retries = Backoff::new(RETRY);
    loop {
        let was_registered = registered;
        let request = if registered {
            REPORT_HEARTBEAT
        } else {
            REPORT_REGISTER
        };
        let result = if registered {
            let request = heartbeat(&status.borrow_and_update(), &gpus, power.borrow().as_ref());
            client
                .heartbeat(&request)
                .await
                .map(|answer| answer.heartbeat_interval_seconds)
        } else {
            client.register(&registration).await.map(|answer| {
                tracing::info!(%node_id, market = %answer.market, created = answer.created, "registered with the coordinator");
                registered = true;
                answer.heartbeat_interval_seconds
            })
        };
        let outcome = if result.is_ok() {
            RESULT_SUCCESS
        } else {
            RESULT_ERROR
        };
        metrics
            .coordinator_reports
            .with_label_values(&[request, outcome])
            .inc();
        match result {
            Ok(seconds) => {
                metrics
                    .coordinator_last_report
                    .set(crate::clock::unix_secs_f64());
                if retries.failures() > 0 {
                    tracing::info!(%node_id, "the coordinator answers again");
                }
                retries.reset();
                let interval = interval_from_hint(seconds);
                // Right after registering, the first heartbeat goes at once.
                if was_registered && !wait_for_change_or(&mut status, interval).await {
                    return;
                }
            }
            Err(err) => {
                let delay = retries.fail();
                if err.code() == Some("unknown_node") {
                    // The coordinator lost or deleted the node: register again.
                    registered = false;
                } else if !err.is_transient() {
                    // Asking again cannot succeed (issue 9, D21: a 409 was
                    // retried forever); converging goes on without reports.
                    tracing::error!(%node_id, error = %err, "the coordinator refused this node; not reporting until the agent restarts (fix what the coordinator names, e.g. restore the node's key in its state directory, then restart the agent)");
                    while status.changed().await.is_ok() {}
                    return;
                }
                log_failure(&err, retries.failures(), delay);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Waits for the interval to pass, or for a status change (but at least
/// [`MIN_GAP`]); false when the status channel closed.
async fn wait_for_change_or(status: &mut watch::Receiver<NodeStatus>, interval: Duration) -> bool {
    let due = later(Instant::now(), interval);
    let earliest = later(Instant::now(), MIN_GAP.min(interval));
    tokio::select! {
        () = tokio::time::sleep_until(due) => true,
        changed = status.changed() => {
            if changed.is_err() {
                return false;
            }
            tokio::time::sleep_until(earliest.min(due)).await;
            true
        }
    }
}

fn log_failure(err: &ClientError, failures: u32, retry_in: Duration) {
    let cause = std::error::Error::source(err).map(ToString::to_string);
    if failures == 1 || failures.is_power_of_two() {
        tracing::warn!(error = %err, cause, failures, ?retry_in, "cannot report to the coordinator; converging goes on, retrying");
    } else {
        tracing::debug!(error = %err, failures, ?retry_in, "coordinator still unreachable");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::http::StatusCode;

    use super::*;
    use crate::identity::NodeIdentity;

    /// A coordinator that answers every request with `code` and `body`;
    /// returns a client for it and the count of requests it got.
    async fn stub_coordinator(
        code: StatusCode,
        body: serde_json::Value,
        identity_dir: &std::path::Path,
    ) -> (CoordinatorClient, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let info = crate::coordinator::api::CoordinatorInfo {
            coordinator_id: uuid::Uuid::new_v4(),
            signature_scheme: crate::identity::signing::SCHEME.to_string(),
        };
        // The audience every client fetches first is not counted.
        let app = axum::Router::new()
            .route(
                "/api/coordinator",
                axum::routing::get(move || async move { axum::Json(info) }),
            )
            .fallback(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move { (code, axum::Json(body)) }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stub");
        let addr = listener.local_addr().expect("stub address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let identity = NodeIdentity::load_or_create(identity_dir).expect("identity");
        let client =
            CoordinatorClient::new(&format!("http://{addr}"), Arc::new(identity)).expect("client");
        (client, calls)
    }

    fn start_heartbeats(client: CoordinatorClient) -> tokio::task::JoinHandle<()> {
        let registration = client.registration(Vec::new(), Location::default(), None);
        let (status_tx, status) = watch::channel(NodeStatus::new("n1"));
        tokio::spawn(async move {
            run(
                client,
                registration,
                GpuInventory::none("test"),
                status,
                watch::channel(None).1,
                AgentMetrics::new(),
            )
            .await;
            drop(status_tx);
        })
    }

    #[tokio::test]
    async fn a_permanent_refusal_is_not_retried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let body = serde_json::json!({"error": {"code": "key_conflict", "message": "registered with another key"}});
        let (client, calls) =
            stub_coordinator(StatusCode::CONFLICT, body, &dir.path().join("identity")).await;
        let heartbeats = start_heartbeats(client);
        // Retries of a transient failure come after 0.5-1 s and 1-2 s.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 409 was retried");
        assert!(
            !heartbeats.is_finished(),
            "heartbeats must not end the agent"
        );
        heartbeats.abort();
    }

    #[tokio::test]
    async fn a_huge_interval_hint_is_clamped_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let body = serde_json::json!({
            "node_id": uuid::Uuid::new_v4(),
            "created": true,
            "market": "cpu",
            "state": "online",
            "heartbeat_interval_seconds": u64::MAX,
        });
        let (client, calls) =
            stub_coordinator(StatusCode::OK, body, &dir.path().join("identity")).await;
        let heartbeats = start_heartbeats(client);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !heartbeats.is_finished(),
            "the heartbeat loop ended (panicked?)"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "register, then one heartbeat"
        );
        heartbeats.abort();
        assert_eq!(interval_from_hint(u64::MAX), INTERVAL_MAX);
        assert_eq!(interval_from_hint(0), INTERVAL_MIN);
        assert_eq!(interval_from_hint(30), Duration::from_secs(30));
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_a_cap() {
        assert_eq!(RETRY.delay(1, 0.999_999).as_millis(), 999);
        assert_eq!(RETRY.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(RETRY.delay(2, 0.0), Duration::from_secs(1));
        assert_eq!(RETRY.delay(4, 0.0), Duration::from_secs(4));
        assert_eq!(RETRY.delay(7, 0.0), Duration::from_secs(30));
        assert_eq!(RETRY.delay(100, 0.0), Duration::from_secs(30));
        assert!(RETRY.delay(100, 0.99) <= RETRY.max);
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_heartbeat_waits_for_the_interval_or_a_change() {
        let (tx, mut rx) = watch::channel(NodeStatus::new("n1"));
        let interval = Duration::from_secs(30);

        // Nothing changes: the interval decides.
        let start = Instant::now();
        assert!(wait_for_change_or(&mut rx, interval).await);
        assert_eq!(start.elapsed(), interval);

        // A change goes out after MIN_GAP, not after the interval.
        let start = Instant::now();
        let changer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send_modify(|s| s.observed_generation = Some("g2".into()));
            tx
        });
        assert!(wait_for_change_or(&mut rx, interval).await);
        assert_eq!(start.elapsed(), MIN_GAP);
        let tx = changer.await.expect("joined");

        // The channel closing ends reporting.
        drop(tx);
        assert!(!wait_for_change_or(&mut rx, interval).await);
    }

    #[test]
    fn heartbeats_carry_the_generation_and_readiness() {
        let mut status = NodeStatus::new("n1");
        status.observed_generation = Some("abc123".into());
        let beat = heartbeat(&status, &GpuInventory::none("test"), None);
        assert_eq!(beat.observed_generation.as_deref(), Some("abc123"));
        assert_eq!(beat.ready, None, "Ready is Unknown before the first pass");
        assert_eq!(beat.status["node"], "n1");
        assert_eq!(beat.power, None, "no sample yet");
    }

    #[tokio::test]
    async fn heartbeats_carry_the_last_power_sample() {
        let monitor = crate::energy::EnergyMonitor::for_host(
            &crate::spec::PowerSettings::default(),
            AgentMetrics::new(),
        );
        let sample = monitor.sample().await;
        let beat = heartbeat(
            &NodeStatus::new("n1"),
            &GpuInventory::none("test"),
            monitor.latest().as_ref(),
        );
        let power = beat.power.expect("a power report");
        assert_eq!(power.source, "grid");
        assert_eq!(power.draw_watts, sample.draw.watts);
        assert_eq!(power.production_watts, None);
    }
}
