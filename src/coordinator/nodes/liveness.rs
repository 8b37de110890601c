//! The liveness sweep: marks nodes offline once they have missed
//! `offline_after` heartbeat intervals, and forgets nonces of requests that
//! would now be stale. Storage errors are logged and retried next sweep.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::store::{now_ms, Store};

/// Runs until `cancel` fires.
pub async fn run(
    store: Store,
    metrics: CoordinatorMetrics,
    heartbeat_interval: Duration,
    offline_after: u32,
    cancel: CancellationToken,
) {
    let silence = heartbeat_interval.saturating_mul(offline_after.max(1));
    let silence_ms = i64::try_from(silence.as_millis()).unwrap_or(i64::MAX);
    // A quarter interval keeps the detection delay small next to the interval.
    let period =
        (heartbeat_interval / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = now_ms();
        match store.mark_offline(now.saturating_sub(silence_ms)).await {
            Ok(nodes) => {
                for node_id in nodes {
                    metrics.marked_offline.inc();
                    tracing::info!(%node_id, silent_for = ?silence, "node missed its heartbeats; marked offline");
                }
            }
            Err(err) => tracing::warn!(error = %err, "liveness sweep failed; retrying next sweep"),
        }
        if let Err(err) = store.prune_nonces(now).await {
            tracing::warn!(error = %err, "nonce pruning failed; retrying next sweep");
        }
    }
}
