//! The agent's Prometheus metrics: one registry per process, names after
//! Prometheus conventions, label values only from small fixed sets (result,
//! cause, component kind, container state) — never component names or ids.

use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::runtime::{ComponentKind, ContainerState};

/// Every metric the agent exports.
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    registry: Registry,
    pub reconciles: IntCounterVec,
    pub reconcile_duration: Histogram,
    pub drift_corrections: IntCounterVec,
    pub owned_containers: IntGaugeVec,
    pub restarts: IntCounterVec,
    pub backoff_seconds: GaugeVec,
    pub spec_valid: IntGauge,
    pub observed_generation: Gauge,
    pub last_success: Gauge,
    pub event_reconnects: IntCounter,
    pub spec_reloads: IntCounterVec,
    pub spec_revision: IntGaugeVec,
    pub git_syncs: IntCounterVec,
    pub gc_removed_images: IntCounterVec,
    pub gc_reclaimed_bytes: IntCounterVec,
    pub gc_disk_used_ratio: GaugeVec,
    pub coordinator_reports: IntCounterVec,
    pub coordinator_last_report: Gauge,
    pub network_job_claims: IntCounterVec,
    pub network_job_leases: IntCounterVec,
    pub network_job_completions: IntCounterVec,
    pub network_jobs_running: IntGauge,
    pub power_draw_watts: Gauge,
    pub solar_production_watts: Gauge,
    pub power_surplus_watts: Gauge,
    pub energy_joules: Counter,
    pub solar_energy_joules: Counter,
    pub gateway_link_up: IntGauge,
    pub gateway_link_connects: IntCounterVec,
    pub gateway_requests: IntCounterVec,
    pub gateway_in_flight: IntGauge,
}

/// Result label values.
pub const RESULT_SUCCESS: &str = "success";
pub const RESULT_ERROR: &str = "error";
/// Request label values of `garage_coordinator_reports_total`.
pub const REPORT_REGISTER: &str = "register";
pub const REPORT_HEARTBEAT: &str = "heartbeat";

/// Result label values of `garage_network_job_claims_total`.
pub const CLAIM_LEASED: &str = "leased";
pub const CLAIM_EMPTY: &str = "empty";
pub const CLAIM_ERROR: &str = "error";
/// End label values of `garage_network_job_leases_total`: completed, or
/// [`crate::work::lease::LeaseEnd`]'s, or stopped with the agent.
pub const LEASE_ENDS: [&str; 6] = [
    "completed",
    "cancelled",
    "lost",
    "expired",
    "stopped",
    "given_back",
];
/// Outcome label values of `garage_network_job_completions_total`.
pub const COMPLETION_OUTCOMES: [&str; 3] = ["succeeded", "failed", "timed_out"];
/// Outcome label values of `garage_agent_gateway_requests_total`: the
/// worker's answer relayed to its end, failed on the node, cancelled by the
/// coordinator (or cut off with the link), refused for want of a slot.
pub const GATEWAY_OK: &str = "ok";
pub const GATEWAY_FAILED: &str = "failed";
pub const GATEWAY_CANCELLED: &str = "cancelled";
pub const GATEWAY_REFUSED: &str = "refused";
pub const GATEWAY_OUTCOMES: [&str; 4] = [
    GATEWAY_OK,
    GATEWAY_FAILED,
    GATEWAY_CANCELLED,
    GATEWAY_REFUSED,
];

const KINDS: [ComponentKind; 3] = [
    ComponentKind::Podman,
    ComponentKind::Worker,
    ComponentKind::Extra,
];
const STATES: [ContainerState; 8] = [
    ContainerState::Created,
    ContainerState::Running,
    ContainerState::Restarting,
    ContainerState::Paused,
    ContainerState::Exited,
    ContainerState::Dead,
    ContainerState::Removing,
    ContainerState::Unknown,
];

impl AgentMetrics {
    /// Registers every metric; the names are fixed, so this cannot clash.
    pub fn new() -> Self {
        let registry = Registry::new();
        let metrics = AgentMetrics {
            reconciles: IntCounterVec::new(
                Opts::new("garage_reconciles_total", "Reconcile passes, by result."),
                &["result"],
            )
            .expect("valid metric"),
            reconcile_duration: Histogram::with_opts(
                HistogramOpts::new("garage_reconcile_duration_seconds", "Time to observe and plan one reconcile pass.")
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            )
            .expect("valid metric"),
            drift_corrections: IntCounterVec::new(
                Opts::new("garage_drift_corrections_total", "Steps executed to correct drift, by cause."),
                &["cause"],
            )
            .expect("valid metric"),
            owned_containers: IntGaugeVec::new(
                Opts::new("garage_owned_containers", "Containers the agent owns, by component kind and state."),
                &["kind", "state"],
            )
            .expect("valid metric"),
            restarts: IntCounterVec::new(
                Opts::new("garage_container_restarts_total", "Restarts of containers that stopped by themselves."),
                &["kind"],
            )
            .expect("valid metric"),
            backoff_seconds: GaugeVec::new(
                Opts::new("garage_component_backoff_seconds", "Largest current restart backoff, by component kind."),
                &["kind"],
            )
            .expect("valid metric"),
            spec_valid: IntGauge::new("garage_spec_valid", "1 when the last read of node.yaml was valid.")
                .expect("valid metric"),
            observed_generation: Gauge::new(
                "garage_observed_generation",
                "The generation being converged to: the first 32 bits of the spec hash, as a number.",
            )
            .expect("valid metric"),
            last_success: Gauge::new(
                "garage_last_successful_reconcile_timestamp_seconds",
                "Unix time of the last reconcile pass that converged.",
            )
            .expect("valid metric"),
            event_reconnects: IntCounter::new(
                "garage_event_stream_reconnects_total",
                "Times the engine's event stream was re-established.",
            )
            .expect("valid metric"),
            spec_reloads: IntCounterVec::new(
                Opts::new("garage_spec_reloads_total", "Reads of node.yaml, by result."),
                &["result"],
            )
            .expect("valid metric"),
            spec_revision: IntGaugeVec::new(
                Opts::new(
                    "garage_spec_revision_info",
                    "1 for the git commit of the last spec fully converged (a spec from git only).",
                ),
                &["revision"],
            )
            .expect("valid metric"),
            git_syncs: IntCounterVec::new(
                Opts::new(
                    "garage_spec_git_syncs_total",
                    "Fetches of the spec's git repository, by result.",
                ),
                &["result"],
            )
            .expect("valid metric"),
            gc_removed_images: IntCounterVec::new(
                Opts::new(
                    "garage_gc_removed_images_total",
                    "Images and model files spec.gc removed, by store (docker: the host engine, models: model files in volumes, podman: the job host) and reason (max-age, disk-pressure).",
                ),
                &["store", "reason"],
            )
            .expect("valid metric"),
            gc_reclaimed_bytes: IntCounterVec::new(
                Opts::new(
                    "garage_gc_reclaimed_bytes_total",
                    "Bytes of the images spec.gc removed, as the store sized them, by store.",
                ),
                &["store"],
            )
            .expect("valid metric"),
            gc_disk_used_ratio: GaugeVec::new(
                Opts::new(
                    "garage_gc_disk_used_ratio",
                    "Used share of the filesystem under each image store at the last collection (0 to 1).",
                ),
                &["store"],
            )
            .expect("valid metric"),
            coordinator_reports: IntCounterVec::new(
                Opts::new(
                    "garage_coordinator_reports_total",
                    "Requests to the coordinator, by request (register, heartbeat) and result.",
                ),
                &["request", "result"],
            )
            .expect("valid metric"),
            coordinator_last_report: Gauge::new(
                "garage_coordinator_last_report_timestamp_seconds",
                "Unix time of the last request the coordinator accepted (0: none yet).",
            )
            .expect("valid metric"),
            network_job_claims: IntCounterVec::new(
                Opts::new(
                    "garage_network_job_claims_total",
                    "Claims of network jobs, by result (leased, empty, error).",
                ),
                &["result"],
            )
            .expect("valid metric"),
            network_job_leases: IntCounterVec::new(
                Opts::new(
                    "garage_network_job_leases_total",
                    "Leases of network jobs that ended, by how (completed, cancelled, lost, expired, stopped).",
                ),
                &["end"],
            )
            .expect("valid metric"),
            network_job_completions: IntCounterVec::new(
                Opts::new(
                    "garage_network_job_completions_total",
                    "Network jobs the coordinator took the completion of, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            network_jobs_running: IntGauge::new(
                "garage_network_jobs_running",
                "Network jobs running on this node now.",
            )
            .expect("valid metric"),
            power_draw_watts: Gauge::new(
                "garage_node_power_draw_watts",
                "The node's draw (GPUs and CPU) over the last sample period.",
            )
            .expect("valid metric"),
            solar_production_watts: Gauge::new(
                "garage_node_solar_production_watts",
                "Solar production (0 on grid nodes and while it cannot be read).",
            )
            .expect("valid metric"),
            power_surplus_watts: Gauge::new(
                "garage_node_power_surplus_watts",
                "Solar production minus draw (negative: the grid covers the rest).",
            )
            .expect("valid metric"),
            energy_joules: Counter::new(
                "garage_node_energy_joules_total",
                "Energy the node drew (GPUs and CPU), as metered.",
            )
            .expect("valid metric"),
            solar_energy_joules: Counter::new(
                "garage_node_solar_energy_joules_total",
                "The part of that energy the node's solar production covered.",
            )
            .expect("valid metric"),
            gateway_link_up: IntGauge::new(
                "garage_agent_gateway_link_up",
                "1 while the gateway link to the coordinator is connected.",
            )
            .expect("valid metric"),
            gateway_link_connects: IntCounterVec::new(
                Opts::new(
                    "garage_agent_gateway_link_connects_total",
                    "Attempts to open the gateway link, by result (success, error).",
                ),
                &["result"],
            )
            .expect("valid metric"),
            gateway_requests: IntCounterVec::new(
                Opts::new(
                    "garage_agent_gateway_requests_total",
                    "Gateway requests that ended on this node, by outcome (ok, failed, cancelled, refused).",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            gateway_in_flight: IntGauge::new(
                "garage_agent_gateway_in_flight",
                "Gateway requests this node's worker is answering now.",
            )
            .expect("valid metric"),
            registry,
        };
        metrics.register_all();
        metrics.initialise_label_sets();
        metrics
    }

    fn register_all(&self) {
        let build_info = IntGaugeVec::new(
            Opts::new("garage_build_info", "Build information; always 1."),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.reconciles.clone()),
            Box::new(self.reconcile_duration.clone()),
            Box::new(self.drift_corrections.clone()),
            Box::new(self.owned_containers.clone()),
            Box::new(self.restarts.clone()),
            Box::new(self.backoff_seconds.clone()),
            Box::new(self.spec_valid.clone()),
            Box::new(self.observed_generation.clone()),
            Box::new(self.last_success.clone()),
            Box::new(self.event_reconnects.clone()),
            Box::new(self.spec_reloads.clone()),
            Box::new(self.spec_revision.clone()),
            Box::new(self.git_syncs.clone()),
            Box::new(self.gc_removed_images.clone()),
            Box::new(self.gc_reclaimed_bytes.clone()),
            Box::new(self.gc_disk_used_ratio.clone()),
            Box::new(self.coordinator_reports.clone()),
            Box::new(self.coordinator_last_report.clone()),
            Box::new(self.network_job_claims.clone()),
            Box::new(self.network_job_leases.clone()),
            Box::new(self.network_job_completions.clone()),
            Box::new(self.network_jobs_running.clone()),
            Box::new(self.power_draw_watts.clone()),
            Box::new(self.solar_production_watts.clone()),
            Box::new(self.power_surplus_watts.clone()),
            Box::new(self.energy_joules.clone()),
            Box::new(self.solar_energy_joules.clone()),
            Box::new(self.gateway_link_up.clone()),
            Box::new(self.gateway_link_connects.clone()),
            Box::new(self.gateway_requests.clone()),
            Box::new(self.gateway_in_flight.clone()),
            Box::new(build_info),
            // Sampled from NVML at scrape time; `garage_gpus 0` without one.
            Box::new(crate::gpu::telemetry::GpuCollector::new()),
        ];
        for collector in collectors {
            self.registry
                .register(collector)
                .expect("metric names are unique");
        }
    }

    /// Exports every label combination from the start, so rates and absent
    /// series behave (Prometheus' advice for known label sets).
    fn initialise_label_sets(&self) {
        for store in ["docker", "models", "podman"] {
            for reason in [
                crate::gc::policy::Reason::MaxAge,
                crate::gc::policy::Reason::DiskPressure,
            ] {
                self.gc_removed_images
                    .with_label_values(&[store, reason.as_str()]);
            }
            self.gc_reclaimed_bytes.with_label_values(&[store]);
        }
        for result in [RESULT_SUCCESS, RESULT_ERROR] {
            self.reconciles.with_label_values(&[result]);
            self.spec_reloads.with_label_values(&[result]);
            self.git_syncs.with_label_values(&[result]);
            self.gateway_link_connects.with_label_values(&[result]);
            for request in [REPORT_REGISTER, REPORT_HEARTBEAT] {
                self.coordinator_reports
                    .with_label_values(&[request, result]);
            }
        }
        for result in [CLAIM_LEASED, CLAIM_EMPTY, CLAIM_ERROR] {
            self.network_job_claims.with_label_values(&[result]);
        }
        for end in LEASE_ENDS {
            self.network_job_leases.with_label_values(&[end]);
        }
        for outcome in COMPLETION_OUTCOMES {
            self.network_job_completions.with_label_values(&[outcome]);
        }
        for outcome in GATEWAY_OUTCOMES {
            self.gateway_requests.with_label_values(&[outcome]);
        }
        for cause in crate::reconcile::Cause::METRIC_LABELS {
            self.drift_corrections.with_label_values(&[cause]);
        }
        for kind in KINDS {
            self.restarts.with_label_values(&[kind.as_str()]);
            self.backoff_seconds.with_label_values(&[kind.as_str()]);
        }
    }

    /// The applied revision's info series is the only one (an `_info`
    /// gauge, as Prometheus' build_info).
    pub fn set_applied_revision(&self, revision: &str) {
        let current = self.spec_revision.get_metric_with_label_values(&[revision]);
        if current.is_ok_and(|gauge| gauge.get() == 1) {
            return;
        }
        self.spec_revision.reset();
        self.spec_revision.with_label_values(&[revision]).set(1);
    }

    /// Sets the owned-containers gauge from a fresh observation.
    pub fn set_owned(&self, counts: &[(ComponentKind, ContainerState)]) {
        for kind in KINDS {
            for state in STATES {
                let n = counts
                    .iter()
                    .filter(|(k, s)| *k == kind && *s == state)
                    .count();
                self.owned_containers
                    .with_label_values(&[kind.as_str(), state.as_str()])
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The first 32 bits of a hex generation as a number (exact in an f64).
pub fn generation_number(generation: &str) -> f64 {
    u32::from_str_radix(generation.get(..8).unwrap_or(generation), 16)
        .map(f64::from)
        .unwrap_or(0.0)
}
