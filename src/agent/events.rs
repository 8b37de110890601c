//! Engine events for the node's containers → "reconcile now". When the
//! stream breaks (engine restarted, socket cut) it reconnects with backoff
//! and asks for a full re-list, since events may have been missed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::metrics::AgentMetrics;
use crate::reconcile::Input;
use crate::runtime::ContainerRuntime;

const RECONNECT_INITIAL: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Forwards events until `inputs` closes.
pub async fn forward_events<R: ContainerRuntime>(
    runtime: Arc<R>,
    node: String,
    inputs: mpsc::Sender<Input>,
    metrics: AgentMetrics,
) {
    let mut delay = RECONNECT_INITIAL;
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
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    delay = RECONNECT_INITIAL;
                    tracing::debug!(container = %event.container_id, action = %event.action, "engine event");
                    if inputs.send(Input::Reconcile).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "engine event stream broke");
                    break;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}
