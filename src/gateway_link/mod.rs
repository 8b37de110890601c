//! The node's side of the network's OpenAI gateway (`spec.gateway.serve`,
//! issue 14): one outbound, signed, long-lived WebSocket to the
//! coordinator, over which requests come in and the worker's answers
//! stream back, many at once. Nothing listens on the node for it.
//!
//! The loop here: wait until the worker lists its models, open the link
//! (`connect`), announce the models and slots, serve it (`session`: one
//! `relay` per request) until it ends, then try again with backoff. A
//! refused upgrade (the node is not registered yet) is retried the same
//! way. The wire format is `crate::coordinator::gateway::frames`'; the
//! coordinator's side is not here.

pub mod connect;
pub mod relay;
pub mod session;
pub mod status;
pub mod utf8;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, Policy};
use crate::coordinator::gateway::frames::{self, FromNode};
use crate::coordinator::CoordinatorClient;
use crate::error_text::one_line;
use crate::metrics::AgentMetrics;
use crate::spec::{self, NodeSpec};

pub use status::{LinkReporter, LinkState, LinkStatus, Outcome};

// The spec's bound on slots is the wire format's (the spec imports nothing).
const _: () = assert!(spec::gateway::MAX_SLOTS == frames::MAX_SLOTS);

/// Retries of a link that failed or went down: from 1 s doubling to 30 s,
/// each scaled to between half and all of it.
pub const RETRY: Policy = Policy {
    jitter: true,
    ..Policy::doubling(Duration::from_secs(1), Duration::from_secs(30))
};
/// A link that stayed up this long forgets earlier failures.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// What the link serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// The worker's base URL, no trailing `/`.
    pub worker_url: String,
    /// Requests taken at once.
    pub slots: u32,
}

impl LinkSettings {
    /// The link `spec` asks for: `None` unless `spec.gateway.serve`.
    pub fn from_spec(spec: &NodeSpec) -> Option<Self> {
        let gateway = spec.gateway();
        let worker_url = gateway.worker_url.clone().filter(|_| gateway.serve)?;
        Some(LinkSettings {
            worker_url,
            slots: gateway.slots,
        })
    }
}

/// Keeps this node's link to the coordinator `client` talks to until
/// `cancel` fires; `status` shows it (`/status`'s `gateway`).
pub async fn run(
    client: CoordinatorClient,
    settings: LinkSettings,
    status: watch::Sender<Option<LinkStatus>>,
    metrics: AgentMetrics,
    cancel: CancellationToken,
) {
    let reporter = LinkReporter::new(status, metrics, settings.slots);
    let http = match relay::worker_client() {
        Ok(http) => http,
        Err(err) => {
            tracing::error!(error = %one_line(&err), "cannot build the worker's HTTP client; not serving the gateway");
            reporter.attempt_failed(one_line(&err), false);
            // Ending early would stop the agent (the supervisor's rule).
            cancel.cancelled().await;
            return;
        }
    };
    let upstream = session::Upstream {
        http,
        url: Arc::from(settings.worker_url.as_str()),
        slots: settings.slots,
    };
    let node_id = client.identity().node_id();
    let mut retries = Backoff::new(RETRY);
    loop {
        reporter.connecting();
        let waiting = |err: &worker::ModelsError| reporter.note(one_line(err));
        let Some(models) =
            worker::wait_for_models(&upstream.http, &upstream.url, &cancel, waiting).await
        else {
            return;
        };
        let opened = tokio::select! {
            () = cancel.cancelled() => return,
            opened = connect::connect(&client) => opened,
        };
        match opened {
            Ok(stream) => {
                tracing::info!(%node_id, ?models, slots = settings.slots, "gateway link up");
                let hello = FromNode::Hello {
                    models: models.clone(),
                    slots: settings.slots,
                };
                reporter.connected(models);
                let up = Instant::now();
                let down = session::serve(stream, hello, &upstream, &reporter, &cancel).await;
                if matches!(down, session::LinkDown::Stopped) {
                    reporter.stopped();
                    return;
                }
                reporter.dropped(one_line(&down));
                tracing::warn!(%node_id, error = %one_line(&down), "gateway link down; reconnecting");
                if up.elapsed() >= STABLE_AFTER {
                    retries.reset();
                }
            }
            Err(err) => {
                if err.status() == Some(401) {
                    // Perhaps signed for a coordinator id that changed.
                    client.forget_coordinator_id();
                }
                let failures = retries.failures() + 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(%node_id, status = err.status(), error = %one_line(&err), failures, "cannot open the gateway link; retrying (a 403 or 404 is normal until the node is registered)");
                }
                reporter.attempt_failed(one_line(&err), true);
            }
        }
        let delay = retries.fail();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}
