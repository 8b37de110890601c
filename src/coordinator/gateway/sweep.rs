//! The stale-bill sweep: a gateway bill still held long after any request
//! could have ended belongs to a coordinator that stopped mid-request; it
//! is voided (the whole hold back to the account), so no hold outlives its
//! request. Safe on any number of replicas: settling is conditional.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::relay::{FIRST_TOKEN_TIMEOUT, WHOLE_TIMEOUT};
use crate::clock::unix_millis;
use crate::coordinator::store::Store;

/// How often the sweep runs.
const PERIOD: Duration = Duration::from_secs(60);

/// The age past which a held bill is stale: longer than any request may
/// take (its first token, then a whole answer's limit), with a margin.
pub fn stale_after() -> Duration {
    (FIRST_TOKEN_TIMEOUT + WHOLE_TIMEOUT) * 2
}

/// Sweeps every [`PERIOD`] until `cancel` fires (first at start: a
/// restarted coordinator voids what its last run left).
pub async fn run(store: Store, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stale_ms = i64::try_from(stale_after().as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = unix_millis();
        match store
            .void_stale_gateway_bills(now.saturating_sub(stale_ms), now)
            .await
        {
            Ok(0) => {}
            Ok(voided) => tracing::info!(voided, "voided stale gateway bills"),
            Err(err) => {
                tracing::warn!(error = %crate::error_text::one_line(&err), "the stale gateway bill sweep failed; retrying next period")
            }
        }
    }
}
