//! The liveness sweep: marks nodes offline once they have missed
//! `offlineAfterIntervals` heartbeat intervals, and forgets nonces of
//! requests that would now be stale. Both parameters are read live at every
//! sweep, so a passed proposal changes them without a restart. Storage
//! errors are logged and retried next sweep.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::unix_millis;
use crate::coordinator::metrics::CoordinatorMetrics;
use crate::coordinator::parameters::{Parameter, Parameters};
use crate::coordinator::store::{Store, StoreError};

/// The silence after which a node is offline, and the sweep's period for
/// it: a quarter interval keeps the detection delay small next to the
/// interval.
fn timing(interval_s: i64, offline_after: i64) -> (Duration, Duration) {
    let interval = Duration::from_secs(u64::try_from(interval_s).unwrap_or(1).max(1));
    let intervals = u32::try_from(offline_after).unwrap_or(1).max(1);
    let period = (interval / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
    (interval.saturating_mul(intervals), period)
}

/// The live timing at `now_ms`.
async fn live_timing(
    parameters: &Parameters,
    now_ms: i64,
) -> Result<(Duration, Duration), StoreError> {
    let interval = parameters
        .get(&Parameter::HeartbeatIntervalSeconds, now_ms)
        .await?
        .unwrap_or(1);
    let offline_after = parameters
        .get(&Parameter::OfflineAfterIntervals, now_ms)
        .await?
        .unwrap_or(1);
    Ok(timing(interval, offline_after))
}

/// Runs until `cancel` fires.
pub async fn run(
    store: Store,
    metrics: CoordinatorMetrics,
    parameters: Parameters,
    cancel: CancellationToken,
) {
    // Until the first read: the defaults the coordinator was started with.
    let mut period = timing(
        parameters
            .default_value(&Parameter::HeartbeatIntervalSeconds)
            .unwrap_or(1),
        1,
    )
    .1;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let now = unix_millis();
        let silence = match live_timing(&parameters, now).await {
            Ok((silence, live_period)) => {
                period = live_period;
                silence
            }
            Err(err) => {
                tracing::warn!(error = %err, "liveness sweep cannot read its parameters; retrying next sweep");
                continue;
            }
        };
        let silence_ms = i64::try_from(silence.as_millis()).unwrap_or(i64::MAX);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_intervals_times_the_interval_and_the_period_a_bounded_quarter() {
        assert_eq!(
            timing(30, 3),
            (Duration::from_secs(90), Duration::from_millis(7_500))
        );
        assert_eq!(
            timing(1, 3),
            (Duration::from_secs(3), Duration::from_millis(250))
        );
        assert_eq!(
            timing(3_600, 100),
            (Duration::from_secs(360_000), Duration::from_secs(10))
        );
        assert_eq!(
            timing(0, 0),
            (Duration::from_secs(1), Duration::from_millis(250))
        );
    }
}
