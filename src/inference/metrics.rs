//! Worker metrics on one Prometheus registry: requests by outcome, tokens in
//! and out, time to first token, inter-token latency, queue depth and
//! capacity, batch size; and per model (vLLM's, llama.cpp's and TGI's
//! families): end-to-end latency, queue time, prefill and decode time,
//! prompt and generation lengths, finish reasons and KV-cache usage. Label
//! values come from the fixed sets below (the `model` label: the one model
//! this worker serves), never from input.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, Opts, Registry, TextEncoder,
};

/// Which API route a request came through (label `endpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Completions,
    ChatCompletions,
    Embeddings,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Completions => "completions",
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Embeddings => "embeddings",
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

/// Why a sequence stopped (label `reason`): the API's finish reasons, or
/// the client left, or it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    Cancelled,
    Error,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::Cancelled => "cancelled",
            Finish::Error => "error",
        }
    }
}

/// The per-model families, with the `model` label bound.
#[derive(Debug, Clone)]
pub struct ModelMetrics {
    pub request_duration: Histogram,
    pub queue_time: Histogram,
    pub prefill_time: Histogram,
    pub decode_time: Histogram,
    pub prompt_length: Histogram,
    pub generation_length: Histogram,
    pub kv_cache_usage: Gauge,
    finished: IntCounterVec,
    model: String,
}

impl ModelMetrics {
    pub fn finished(&self, reason: Finish) {
        self.finished
            .with_label_values(&[self.model.as_str(), reason.as_str()])
            .inc();
    }
}

/// The per-model families, unbound.
#[derive(Debug, Clone)]
struct PerModel {
    request_duration: HistogramVec,
    queue_time: HistogramVec,
    prefill_time: HistogramVec,
    decode_time: HistogramVec,
    prompt_length: HistogramVec,
    generation_length: HistogramVec,
    kv_cache_usage: GaugeVec,
    finished: IntCounterVec,
}

fn per_model_histogram(name: &str, help: &str, buckets: Vec<f64>) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &["model"])
        .expect("static histogram options are valid")
}

impl PerModel {
    fn new() -> Self {
        let seconds = vec![
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ];
        let tokens = vec![
            1.0, 4.0, 16.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
        ];
        PerModel {
            request_duration: per_model_histogram(
                "garage_inference_request_duration_seconds",
                "Time from a generation's admission to its last token (end-to-end latency)",
                seconds.clone(),
            ),
            queue_time: per_model_histogram(
                "garage_inference_queue_time_seconds",
                "Time a generation waited in the queue before joining the batch",
                seconds.clone(),
            ),
            prefill_time: per_model_histogram(
                "garage_inference_prefill_seconds",
                "Time from joining the batch to the first token (the prompt's prefill)",
                seconds.clone(),
            ),
            decode_time: per_model_histogram(
                "garage_inference_decode_seconds",
                "Time from the first token to the last",
                seconds,
            ),
            prompt_length: per_model_histogram(
                "garage_inference_prompt_length_tokens",
                "Prompt tokens per generation",
                tokens.clone(),
            ),
            generation_length: per_model_histogram(
                "garage_inference_generation_length_tokens",
                "Tokens generated per finished generation",
                tokens,
            ),
            kv_cache_usage: GaugeVec::new(
                Opts::new(
                    "garage_inference_kv_cache_usage_ratio",
                    "Tokens held in the KV caches of active sequences over what the batch can hold (max batch × context)",
                ),
                &["model"],
            )
            .expect("valid"),
            finished: IntCounterVec::new(
                Opts::new(
                    "garage_inference_finished_total",
                    "Generations that ended, by finish reason (stop, length, cancelled, error)",
                ),
                &["model", "reason"],
            )
            .expect("valid"),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.request_duration.clone()),
            Box::new(self.queue_time.clone()),
            Box::new(self.prefill_time.clone()),
            Box::new(self.decode_time.clone()),
            Box::new(self.prompt_length.clone()),
            Box::new(self.generation_length.clone()),
            Box::new(self.kv_cache_usage.clone()),
            Box::new(self.finished.clone()),
        ]
    }
}

/// The worker's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    per_model: PerModel,
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
            per_model: PerModel::new(),
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
        let mut collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
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
        collectors.extend(m.per_model.collectors());
        for c in collectors {
            m.registry
                .register(c)
                .expect("metric names are unique within this registry");
        }
        m
    }

    /// The per-model families for `model` (the one this worker serves).
    pub fn for_model(&self, model: &str) -> ModelMetrics {
        let p = &self.per_model;
        let bound = |h: &HistogramVec| h.with_label_values(&[model]);
        // Every reason shows from the start, at 0.
        for reason in [
            Finish::Stop,
            Finish::Length,
            Finish::Cancelled,
            Finish::Error,
        ] {
            p.finished.with_label_values(&[model, reason.as_str()]);
        }
        ModelMetrics {
            request_duration: bound(&p.request_duration),
            queue_time: bound(&p.queue_time),
            prefill_time: bound(&p.prefill_time),
            decode_time: bound(&p.decode_time),
            prompt_length: bound(&p.prompt_length),
            generation_length: bound(&p.generation_length),
            kv_cache_usage: p.kv_cache_usage.with_label_values(&[model]),
            finished: p.finished.clone(),
            model: model.to_string(),
        }
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
