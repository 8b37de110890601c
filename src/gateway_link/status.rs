//! What the agent shows of its gateway link: the state with its time, the
//! models and slots announced, the counters, the last error (`/status`'s
//! `gateway` object), and the `garage_agent_gateway_*` metrics, written
//! together so they cannot disagree. Only the link's loop writes here.

use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::watch;

use crate::metrics::{
    AgentMetrics, GATEWAY_CANCELLED, GATEWAY_FAILED, GATEWAY_OK, GATEWAY_REFUSED, RESULT_ERROR,
    RESULT_SUCCESS,
};

/// Where the link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Waiting for the worker, or opening the WebSocket.
    Connecting,
    /// Hello sent; requests are served.
    Connected,
    /// The last link or attempt failed; waiting to try again.
    Disconnected,
}

/// How a gateway request ended on this node (the metric's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The worker's answer went out to its end (whatever its status).
    Ok,
    /// A `failed` frame went out (worker unreachable, its stream broke).
    Failed,
    /// The coordinator cancelled it, or the link went down under it.
    Cancelled,
    /// No slot was free.
    Refused,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => GATEWAY_OK,
            Outcome::Failed => GATEWAY_FAILED,
            Outcome::Cancelled => GATEWAY_CANCELLED,
            Outcome::Refused => GATEWAY_REFUSED,
        }
    }
}

/// `/status`'s `gateway` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    pub state: LinkState,
    /// RFC 3339: when `state` last changed.
    pub since: String,
    /// The models announced on the current (or last) link.
    pub models: Vec<String>,
    /// Requests taken at once.
    pub slots: u32,
    pub in_flight: u32,
    /// Requests whose answer was relayed to its end.
    pub served: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub refused: u64,
    /// Links that went down after connecting.
    pub reconnects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The link's one writer of its status and metrics.
#[derive(Debug)]
pub struct LinkReporter {
    status: watch::Sender<Option<LinkStatus>>,
    metrics: AgentMetrics,
}

impl LinkReporter {
    /// Starts `status` as connecting with `slots`.
    pub fn new(
        status: watch::Sender<Option<LinkStatus>>,
        metrics: AgentMetrics,
        slots: u32,
    ) -> Self {
        status.send_replace(Some(LinkStatus {
            state: LinkState::Connecting,
            since: now(),
            models: Vec::new(),
            slots,
            in_flight: 0,
            served: 0,
            failed: 0,
            cancelled: 0,
            refused: 0,
            reconnects: 0,
            last_error: None,
        }));
        metrics.gateway_link_up.set(0);
        metrics.gateway_in_flight.set(0);
        LinkReporter { status, metrics }
    }

    /// The status now (for tests and logs).
    pub fn current(&self) -> Option<LinkStatus> {
        self.status.borrow().clone()
    }

    fn update(&self, change: impl FnOnce(&mut LinkStatus)) {
        self.status.send_modify(|status| {
            if let Some(status) = status {
                change(status);
            }
        });
    }

    fn set_state(&self, state: LinkState) {
        self.update(|s| {
            if s.state != state {
                s.state = state;
                s.since = now();
            }
        });
    }

    /// Why the link is not up yet (the worker does not answer), without
    /// changing the state.
    pub fn note(&self, error: String) {
        self.update(|s| s.last_error = Some(error));
    }

    pub fn connecting(&self) {
        self.set_state(LinkState::Connecting);
    }

    /// An attempt (waiting for the worker, or the upgrade) failed.
    pub fn attempt_failed(&self, error: String, counts_as_connect: bool) {
        if counts_as_connect {
            self.metrics
                .gateway_link_connects
                .with_label_values(&[RESULT_ERROR])
                .inc();
        }
        self.update(|s| s.last_error = Some(error));
        self.set_state(LinkState::Disconnected);
    }

    /// The link is up and hello went out with `models`.
    pub fn connected(&self, models: Vec<String>) {
        self.metrics
            .gateway_link_connects
            .with_label_values(&[RESULT_SUCCESS])
            .inc();
        self.metrics.gateway_link_up.set(1);
        self.update(|s| s.models = models);
        self.set_state(LinkState::Connected);
    }

    /// The link went down (`error` says why).
    pub fn dropped(&self, error: String) {
        self.metrics.gateway_link_up.set(0);
        self.metrics.gateway_in_flight.set(0);
        self.update(|s| {
            s.reconnects += 1;
            s.in_flight = 0;
            s.last_error = Some(error);
        });
        self.set_state(LinkState::Disconnected);
    }

    /// The agent stopped: the link closed on purpose (not a reconnect).
    pub fn stopped(&self) {
        self.metrics.gateway_link_up.set(0);
        self.metrics.gateway_in_flight.set(0);
        self.update(|s| s.in_flight = 0);
        self.set_state(LinkState::Disconnected);
    }

    /// `in_flight` requests are being answered now.
    pub fn in_flight(&self, in_flight: usize) {
        let n = u32::try_from(in_flight).unwrap_or(u32::MAX);
        self.metrics.gateway_in_flight.set(i64::from(n));
        self.update(|s| s.in_flight = n);
    }

    /// A request ended with `outcome`.
    pub fn ended(&self, outcome: Outcome) {
        self.metrics
            .gateway_requests
            .with_label_values(&[outcome.label()])
            .inc();
        self.update(|s| match outcome {
            Outcome::Ok => s.served += 1,
            Outcome::Failed => s.failed += 1,
            Outcome::Cancelled => s.cancelled += 1,
            Outcome::Refused => s.refused += 1,
        });
    }
}

fn now() -> String {
    crate::clock::rfc3339_secs(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_metrics_move_together() {
        let (tx, rx) = watch::channel(None);
        let metrics = AgentMetrics::new();
        let reporter = LinkReporter::new(tx, metrics.clone(), 4);
        assert_eq!(
            rx.borrow().as_ref().map(|s| s.state),
            Some(LinkState::Connecting)
        );
        reporter.connected(vec!["m1".into()]);
        reporter.in_flight(2);
        reporter.ended(Outcome::Ok);
        reporter.ended(Outcome::Refused);
        let status = reporter.current().expect("a status");
        assert_eq!(status.state, LinkState::Connected);
        assert_eq!((status.in_flight, status.served, status.refused), (2, 1, 1));
        let json = serde_json::to_value(&status).expect("JSON");
        assert_eq!(json["state"], "connected");
        assert_eq!(json["models"], serde_json::json!(["m1"]));
        assert_eq!(json["inFlight"], 2);
        assert!(json.get("lastError").is_none());
        let text = metrics.render();
        assert!(text.contains("garage_agent_gateway_link_up 1"), "{text}");
        assert!(text.contains("garage_agent_gateway_in_flight 2"), "{text}");
        assert!(
            text.contains(r#"garage_agent_gateway_requests_total{outcome="refused"} 1"#),
            "{text}"
        );
        reporter.dropped("the coordinator went away".into());
        let status = reporter.current().expect("a status");
        assert_eq!(
            (status.state, status.reconnects, status.in_flight),
            (LinkState::Disconnected, 1, 0)
        );
        assert_eq!(
            status.last_error.as_deref(),
            Some("the coordinator went away")
        );
        assert!(metrics.render().contains("garage_agent_gateway_link_up 0"));
    }
}
