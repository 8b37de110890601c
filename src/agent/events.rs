//! Engine events for the node's containers → "reconcile now". When the
//! stream breaks (engine restarted, socket cut) it reconnects with backoff
//! ([`RECONNECT`]) and asks for a full re-list, since events may have been
//! missed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backoff::{Backoff, Policy};
use crate::metrics::AgentMetrics;
use crate::reconcile::Input;
use crate::runtime::ContainerRuntime;

/// Reconnects after a break: 100 ms doubling to 5 s, reset by an event.
const RECONNECT: Policy = Policy::doubling(Duration::from_millis(100), Duration::from_secs(5));
/// A second look after an event, for state the engine reports late.
const RECHECK_AFTER: Duration = Duration::from_millis(300);

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Forwards events until `inputs` closes.
pub async fn forward_events<R: ContainerRuntime>(
    runtime: Arc<R>,
    node: String,
    inputs: mpsc::Sender<Input>,
    metrics: AgentMetrics,
) {
    let mut reconnects = Backoff::new(RECONNECT);
    let mut first = true;
    loop {
        let mut stream = runtime.events(&node);
        if !first {
            metrics.event_reconnects.inc();
            tracing::info!("event stream re-established; re-listing containers");
        }
        first = false;
        // Missed events while disconnected: converge from a full re-list.
        if inputs.send(Input::Reconcile).await.is_err() {
            return;
        }
        let mut recheck: Option<Instant> = None;
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                () = sleep_until_some(recheck) => {
                    recheck = None;
                    if inputs.send(Input::Reconcile).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            match event {
                Some(Ok(event)) => {
                    reconnects.reset();
                    // Health-check probes (`exec_*`) say nothing about state;
                    // their result arrives as `health_status` on a change.
                    if event.action.starts_with("exec_") {
                        continue;
                    }
                    tracing::debug!(container = %event.container_id, action = %event.action, "engine event");
                    if inputs.send(Input::Reconcile).await.is_err() {
                        return;
                    }
                    // Docker 20.10 sends `die` before its container list shows
                    // the exit, so a pass right after it can still see
                    // "running"; look again shortly.
                    if recheck.is_none() {
                        recheck = Some(Instant::now() + RECHECK_AFTER);
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %crate::error_text::one_line(&err), "engine event stream broke");
                    break;
                }
                None => break,
            }
        }
        tokio::time::sleep(reconnects.fail()).await;
    }
}
