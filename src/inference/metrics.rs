//! Worker metrics on one Prometheus registry: requests by outcome, tokens in
//! and out, time to first token, inter-token latency, queue depth and
//! capacity, batch size. Label values come from the fixed sets below, never from input.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Which API route a request came through (label `endpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Completions,
    ChatCompletions,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Completions => "completions",
            Endpoint::ChatCompletions => "chat_completions",
        }
    }
}

/// How a request ended (label `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    BadRequest,
    QueueFull,
    Cancelled,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::BadRequest => "bad_request",
            Outcome::QueueFull => "queue_full",
            Outcome::Cancelled => "cancelled",
            Outcome::Error => "error",
        }
    }
}

/// The worker's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    pub prompt_tokens: IntCounter,
    pub completion_tokens: IntCounter,
    pub time_to_first_token: Histogram,
    pub inter_token: Histogram,
    pub queue_depth: IntGauge,
    pub queue_capacity: IntGauge,
    pub active_sequences: IntGauge,
    pub batch_size: Histogram,
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("static histogram options are valid")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "garage_inference_requests_total",
                "Inference API requests by endpoint and outcome",
            ),
            &["endpoint", "outcome"],
        )
        .expect("static counter options are valid");
        let latency = vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let m = Metrics {
            requests,
            prompt_tokens: IntCounter::new(
                "garage_inference_prompt_tokens_total",
                "Prompt tokens processed",
            )
            .expect("valid"),
            completion_tokens: IntCounter::new(
                "garage_inference_completion_tokens_total",
                "Tokens generated",
            )
            .expect("valid"),
            time_to_first_token: histogram(
                "garage_inference_time_to_first_token_seconds",
                "Time from request admission to its first generated token",
                latency.clone(),
            ),
            inter_token: histogram(
                "garage_inference_inter_token_seconds",
                "Time between consecutive generated tokens of one request",
                latency,
            ),
            queue_depth: IntGauge::new(
                "garage_inference_queue_depth",
                "Requests waiting for a batch slot",
            )
            .expect("valid"),
            queue_capacity: IntGauge::new(
                "garage_inference_queue_capacity",
                "Requests that may wait for a batch slot before new ones get 429 (--queue; 0 until the model is loaded)",
            )
            .expect("valid"),
            active_sequences: IntGauge::new(
                "garage_inference_active_sequences",
                "Sequences being generated",
            )
            .expect("valid"),
            batch_size: histogram(
                "garage_inference_batch_size",
                "Sequences per forward pass",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            ),
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.requests.clone()),
            Box::new(m.prompt_tokens.clone()),
            Box::new(m.completion_tokens.clone()),
            Box::new(m.time_to_first_token.clone()),
            Box::new(m.inter_token.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.queue_capacity.clone()),
            Box::new(m.active_sequences.clone()),
            Box::new(m.batch_size.clone()),
        ];
        for c in collectors {
            m.registry
                .register(c)
                .expect("metric names are unique within this registry");
        }
        m
    }

    pub fn request(&self, endpoint: Endpoint, outcome: Outcome) {
        self.requests
            .with_label_values(&[endpoint.as_str(), outcome.as_str()])
            .inc();
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding gathered metrics into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
