//! The gateway's Prometheus metrics, registered in the coordinator's
//! registry. Labels come from the fixed sets below; per-node load is a
//! total here and per node in `GET /api/gateway/links`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::frames::Endpoint;

/// `outcome` label values of `garage_gateway_requests_total`.
pub const OUTCOMES: [&str; 9] = [
    "ok",
    "client_error",
    "unauthorized",
    "unpaid",
    "rate_limited",
    "no_model",
    "no_capacity",
    "node_failed",
    "cancelled",
];

/// Every gateway metric.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    pub requests: IntCounterVec,
    pub retries: IntCounter,
    pub time_to_first_token: Histogram,
    pub first_token_overhead: Histogram,
    pub tokens_per_second: Histogram,
    pub tokens: IntCounterVec,
    pub links: IntGauge,
    pub slots: IntGauge,
    pub in_flight: IntGauge,
    pub link_connects: IntCounterVec,
}

fn seconds_histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric")
}

impl GatewayMetrics {
    /// Makes every metric and registers it in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let metrics = GatewayMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "garage_gateway_requests_total",
                    "OpenAI requests through the gateway, by endpoint and outcome.",
                ),
                &["endpoint", "outcome"],
            )
            .expect("valid metric"),
            retries: IntCounter::new(
                "garage_gateway_retries_total",
                "Requests moved to another node after their node failed before the first token.",
            )
            .expect("valid metric"),
            time_to_first_token: seconds_histogram(
                "garage_gateway_time_to_first_token_seconds",
                "From a request's arrival to its first token (streamed) or whole answer, as the gateway saw it.",
                vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            ),
            first_token_overhead: seconds_histogram(
                "garage_gateway_first_token_overhead_seconds",
                "The gateway's and link's share of the time to the worker's first byte: the gateway's wait minus the node's own.",
                vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1.0],
            ),
            tokens_per_second: seconds_histogram(
                "garage_gateway_stream_tokens_per_second",
                "Completion tokens per second of each finished streamed answer, after its first token.",
                vec![1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
            ),
            tokens: IntCounterVec::new(
                Opts::new(
                    "garage_gateway_tokens_total",
                    "Tokens billed through the gateway, by kind (prompt or completion).",
                ),
                &["kind"],
            )
            .expect("valid metric"),
            links: IntGauge::new(
                "garage_gateway_links",
                "Nodes linked to this coordinator for gateway requests.",
            )
            .expect("valid metric"),
            slots: IntGauge::new(
                "garage_gateway_slots",
                "Request slots the linked nodes announced.",
            )
            .expect("valid metric"),
            in_flight: IntGauge::new(
                "garage_gateway_requests_in_flight",
                "Gateway requests holding a node's slot now.",
            )
            .expect("valid metric"),
            link_connects: IntCounterVec::new(
                Opts::new(
                    "garage_gateway_link_connects_total",
                    "Node link upgrades, by result (accepted, refused, replaced).",
                ),
                &["result"],
            )
            .expect("valid metric"),
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(metrics.requests.clone()),
            Box::new(metrics.retries.clone()),
            Box::new(metrics.time_to_first_token.clone()),
            Box::new(metrics.first_token_overhead.clone()),
            Box::new(metrics.tokens_per_second.clone()),
            Box::new(metrics.tokens.clone()),
            Box::new(metrics.links.clone()),
            Box::new(metrics.slots.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.link_connects.clone()),
        ];
        for collector in collectors {
            registry.register(collector).expect("unique metric");
        }
        for endpoint in [Endpoint::ChatCompletions, Endpoint::Completions] {
            for outcome in OUTCOMES {
                metrics
                    .requests
                    .with_label_values(&[endpoint.label(), outcome]);
            }
        }
        for kind in ["prompt", "completion"] {
            metrics.tokens.with_label_values(&[kind]);
        }
        for result in ["accepted", "refused", "replaced"] {
            metrics.link_connects.with_label_values(&[result]);
        }
        metrics
    }

    /// Counts one request's outcome, one of [`OUTCOMES`].
    pub fn outcome(&self, endpoint: Endpoint, outcome: &'static str) {
        self.requests
            .with_label_values(&[endpoint.label(), outcome])
            .inc();
    }
}
