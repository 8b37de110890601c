//! The coordinator's Prometheus metrics: its own registry, label values only
//! from the fixed sets below (never node ids).

use prometheus::{
    CounterVec, Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::energy::fetch::FALLBACK_REASONS;
use super::energy::zone::ZONE_LABELS;
use super::gateway::metrics::GatewayMetrics;

/// `reason` label values of `garage_coordinator_auth_rejections_total`.
pub const REJECTION_REASONS: [&str; 10] = [
    "unsigned",
    "malformed",
    "stale",
    "wrong_coordinator",
    "unknown_node",
    "bad_signature",
    "replayed",
    "cross_node",
    "admin_token",
    "api_key",
];

/// `state` label values of `garage_coordinator_job_transitions_total`.
pub const JOB_STATES: [&str; 7] = [
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "CANCELLED",
    "EXPIRED",
];

/// `result` label values of `garage_coordinator_registrations_total`.
pub const REGISTRATION_RESULTS: [&str; 5] = [
    "created",
    "updated",
    "key_conflict",
    "not_admitted",
    "rate_limited",
];

/// Every metric the coordinator exports.
#[derive(Debug, Clone)]
pub struct CoordinatorMetrics {
    registry: Registry,
    pub auth_rejections: IntCounterVec,
    pub registrations: IntCounterVec,
    pub heartbeats: IntCounter,
    pub heartbeat_batch: Histogram,
    pub admin_throttled: IntCounter,
    pub marked_offline: IntCounter,
    pub nodes: IntGaugeVec,
    pub jobs_submitted: IntCounter,
    pub jobs_unfunded: IntCounter,
    pub job_transitions: IntCounterVec,
    pub claims: IntCounterVec,
    pub placement_rounds: IntCounter,
    pub claims_parked: IntGauge,
    pub job_energy_wh: CounterVec,
    pub job_co2_grams: CounterVec,
    pub grid_source_fallbacks: IntCounterVec,
    pub ledger_audit_ok: IntGauge,
    pub ledger_audit_last_run: Gauge,
    pub gateway: GatewayMetrics,
}

impl Default for CoordinatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CoordinatorMetrics {
    /// Registers every metric; the names are fixed, so this cannot clash.
    pub fn new() -> Self {
        let registry = Registry::new();
        let metrics = CoordinatorMetrics {
            auth_rejections: IntCounterVec::new(
                Opts::new(
                    "garage_coordinator_auth_rejections_total",
                    "Requests refused by authentication, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            registrations: IntCounterVec::new(
                Opts::new(
                    "garage_coordinator_registrations_total",
                    "Node registrations, by result.",
                ),
                &["result"],
            )
            .expect("valid metric"),
            heartbeats: IntCounter::new(
                "garage_coordinator_heartbeats_total",
                "Heartbeats accepted.",
            )
            .expect("valid metric"),
            heartbeat_batch: Histogram::with_opts(
                HistogramOpts::new(
                    "garage_coordinator_heartbeat_batch_size",
                    "Heartbeats written per transaction by the group commit.",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
            )
            .expect("valid metric"),
            admin_throttled: IntCounter::new(
                "garage_coordinator_admin_throttled_total",
                "Admin requests refused with 429 after too many failed attempts from their address.",
            )
            .expect("valid metric"),
            marked_offline: IntCounter::new(
                "garage_coordinator_nodes_marked_offline_total",
                "Times a node was marked offline after missing its heartbeats.",
            )
            .expect("valid metric"),
            nodes: IntGaugeVec::new(
                Opts::new("garage_coordinator_nodes", "Registered nodes, by state."),
                &["state"],
            )
            .expect("valid metric"),
            jobs_submitted: IntCounter::new(
                "garage_coordinator_jobs_submitted_total",
                "Jobs accepted (an idempotent resubmission is not counted again).",
            )
            .expect("valid metric"),
            jobs_unfunded: IntCounter::new(
                "garage_coordinator_jobs_unfunded_total",
                "Submissions refused with 402: the account's balance did not cover price x timeout.",
            )
            .expect("valid metric"),
            job_transitions: IntCounterVec::new(
                Opts::new(
                    "garage_coordinator_job_transitions_total",
                    "Job state transitions made by this replica, by the state entered.",
                ),
                &["state"],
            )
            .expect("valid metric"),
            claims: IntCounterVec::new(
                Opts::new(
                    "garage_coordinator_claims_total",
                    "Node claims answered, by result (leased or empty).",
                ),
                &["result"],
            )
            .expect("valid metric"),
            placement_rounds: IntCounter::new(
                "garage_coordinator_placement_rounds_total",
                "Placement rounds this replica ran over its parked claims (scored placement).",
            )
            .expect("valid metric"),
            claims_parked: IntGauge::new(
                "garage_coordinator_claims_parked",
                "Node claims parked on this replica, waiting for a placement round.",
            )
            .expect("valid metric"),
            job_energy_wh: CounterVec::new(
                Opts::new(
                    "garage_coordinator_job_energy_wh_total",
                    "Energy of completed jobs as their nodes reported it, Wh, by price area (SE1-SE4, other, unknown).",
                ),
                &["price_area"],
            )
            .expect("valid metric"),
            job_co2_grams: CounterVec::new(
                Opts::new(
                    "garage_coordinator_job_co2_grams_total",
                    "CO2 of completed jobs' grid energy, grams, by price area (SE1-SE4, other, unknown).",
                ),
                &["price_area"],
            )
            .expect("valid metric"),
            grid_source_fallbacks: IntCounterVec::new(
                Opts::new(
                    "garage_coordinator_grid_source_fallbacks_total",
                    "Lookups of a configured carbon-intensity or price API that failed and used the built-in figure, by source and reason.",
                ),
                &["source", "reason"],
            )
            .expect("valid metric"),
            ledger_audit_ok: IntGauge::new(
                "garage_coordinator_ledger_audit_ok",
                "1 when the last periodic ledger audit found every invariant holding; 0 when one broke, the audit could not run, or none ran yet.",
            )
            .expect("valid metric"),
            ledger_audit_last_run: Gauge::new(
                "garage_coordinator_ledger_audit_last_run_timestamp_seconds",
                "Unix time the last periodic ledger audit finished reading the ledger (0: none yet).",
            )
            .expect("valid metric"),
            gateway: GatewayMetrics::register(&registry),
            registry,
        };
        for collector in [
            Box::new(metrics.auth_rejections.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.registrations.clone()),
            Box::new(metrics.heartbeats.clone()),
            Box::new(metrics.heartbeat_batch.clone()),
            Box::new(metrics.admin_throttled.clone()),
            Box::new(metrics.marked_offline.clone()),
            Box::new(metrics.nodes.clone()),
            Box::new(metrics.jobs_submitted.clone()),
            Box::new(metrics.jobs_unfunded.clone()),
            Box::new(metrics.job_transitions.clone()),
            Box::new(metrics.claims.clone()),
            Box::new(metrics.placement_rounds.clone()),
            Box::new(metrics.claims_parked.clone()),
            Box::new(metrics.job_energy_wh.clone()),
            Box::new(metrics.job_co2_grams.clone()),
            Box::new(metrics.grid_source_fallbacks.clone()),
            Box::new(metrics.ledger_audit_ok.clone()),
            Box::new(metrics.ledger_audit_last_run.clone()),
        ] {
            metrics.registry.register(collector).expect("unique metric");
        }
        for reason in REJECTION_REASONS {
            metrics.auth_rejections.with_label_values(&[reason]);
        }
        for result in REGISTRATION_RESULTS {
            metrics.registrations.with_label_values(&[result]);
        }
        for state in JOB_STATES {
            metrics.job_transitions.with_label_values(&[state]);
        }
        for result in ["leased", "empty"] {
            metrics.claims.with_label_values(&[result]);
        }
        for zone in ZONE_LABELS {
            metrics.job_energy_wh.with_label_values(&[zone]);
            metrics.job_co2_grams.with_label_values(&[zone]);
        }
        for source in ["carbon", "price"] {
            for reason in FALLBACK_REASONS {
                metrics
                    .grid_source_fallbacks
                    .with_label_values(&[source, reason]);
            }
        }
        metrics
    }

    /// Counts one refused request; `reason` is one of [`REJECTION_REASONS`].
    pub fn rejected(&self, reason: &'static str) {
        self.auth_rejections.with_label_values(&[reason]).inc();
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
