//! The node.yaml document as written: serde + JSON Schema types with their
//! named defaults. Shape only; every value check lives in `validate`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::container::{Capabilities, Container, Resources};
use super::gateway::Gateway;
use super::jobs::Jobs;
use super::quantity::DURATION_PATTERN;

pub use crate::geo::PriceArea;

/// A Garage AI node: what one host runs and how it describes itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Garage AI Node")]
pub struct NodeDocument {
    /// Version of this document format.
    pub api_version: ApiVersion,
    /// Kind of document; always `Node`.
    pub kind: Kind,
    /// Name and labels of the node.
    pub metadata: Metadata,
    /// What the node runs and how it describes itself.
    pub spec: Spec,
}

/// The one supported format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "garage.ai/v1alpha1")]
    V1Alpha1,
}

/// The one supported kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    Node,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// Node name, a DNS label (lowercase letters, digits, `-`; at most 63);
    /// containers are named `garage-<name>-<component>`.
    pub name: String,
    /// Labels copied onto every container of the node. Keys are
    /// Kubernetes-style (`[prefix/]name`); the prefix `garage.ai/` is reserved.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    /// The coordinator this node registers with; none runs the node standalone.
    #[serde(default)]
    pub coordinator: Option<Coordinator>,
    /// Where the node is, for clustering and data residency.
    #[serde(default)]
    pub location: Option<Location>,
    /// How the node is powered.
    #[serde(default)]
    pub power: Power,
    /// Which GPUs the podman host and the worker get.
    #[serde(default)]
    pub gpu: GpuSelection,
    /// The agent's Prometheus endpoint.
    #[serde(default)]
    pub metrics: Metrics,
    /// Tunables of the reconcile loop.
    #[serde(default)]
    pub reconcile: Reconcile,
    /// The Podman-in-Docker job host; present means run it.
    #[serde(default)]
    pub podman: Option<Podman>,
    /// The inference worker; present means run it.
    #[serde(default)]
    pub worker: Option<Worker>,
    /// Extra containers the node runs next to podman and the worker.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Jobs from the network, and how many jobs run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Jobs>,
    /// Serving the network's OpenAI gateway through this node's worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,
    /// Removing images the node's components no longer use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<super::gc::Gc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Coordinator {
    /// Base URL of the coordinator API, `http://` or `https://`.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code, upper case (`SE`, `NO`, `DE`).
    pub country: String,
    /// Swedish electricity price area; only valid when `country` is `SE`.
    /// Implied by `coordinates` in Sweden when not written.
    #[serde(default)]
    pub price_area: Option<PriceArea>,
    /// Position of the node in WGS 84 degrees.
    #[serde(default)]
    pub coordinates: Option<Coordinates>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Coordinates {
    /// Latitude in degrees, -90 to 90.
    #[schemars(range(min = -90.0, max = 90.0))]
    pub latitude: f64,
    /// Longitude in degrees, -180 to 180.
    #[schemars(range(min = -180.0, max = 180.0))]
    pub longitude: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Power {
    /// Main power source (default `grid`); `solar` and `mixed` need `solar`.
    #[serde(default)]
    pub source: PowerSource,
    /// When the node takes network jobs (default `any`): `prefer-solar`
    /// says so to the coordinator, `solar-only` claims a job only while the
    /// solar surplus covers its expected draw.
    #[serde(default)]
    pub policy: PowerPolicy,
    /// The panels, for `source: solar` or `mixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solar: Option<Solar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum PowerSource {
    #[default]
    Grid,
    Solar,
    Mixed,
}

impl PowerSource {
    /// As written in node.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerSource::Grid => "grid",
            PowerSource::Solar => "solar",
            PowerSource::Mixed => "mixed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PowerPolicy {
    #[default]
    Any,
    PreferSolar,
    SolarOnly,
}

impl PowerPolicy {
    /// As written in node.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerPolicy::Any => "any",
            PowerPolicy::PreferSolar => "prefer-solar",
            PowerPolicy::SolarOnly => "solar-only",
        }
    }
}

/// Solar panels and where their production is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Solar {
    /// Peak power in kW: the output at 1000 W/m² on the panels (more than 0, at most 10000).
    #[schemars(range(max = 10000.0), extend("exclusiveMinimum" = 0.0))]
    pub capacity_kw: f64,
    /// Panel tilt from horizontal in degrees, 0 (flat) to 90 (vertical); default 35.
    #[serde(default = "default_tilt")]
    #[schemars(range(min = 0.0, max = 90.0))]
    pub tilt_deg: f64,
    /// Direction the panels face, degrees clockwise from north (90 east,
    /// 180 south, 270 west), 0 to below 360; default 180.
    #[serde(default = "default_azimuth")]
    #[schemars(range(min = 0.0), extend("exclusiveMaximum" = 360.0))]
    pub azimuth_deg: f64,
    /// Where production comes from: `model` (default; clear-sky model for
    /// `spec.location.coordinates`) or `http` (a local inverter's JSON).
    #[serde(default)]
    pub production: Production,
}

fn default_tilt() -> f64 {
    35.0
}
fn default_azimuth() -> f64 {
    180.0
}

/// `model`, or `{http: {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Production {
    /// Clear-sky production for the node's coordinates, the time, tilt,
    /// azimuth and capacity (no weather: an upper bound).
    #[default]
    Model,
    /// Measured: GET a local inverter's JSON endpoint.
    Http(HttpProduction),
}

/// A local inverter's JSON endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpProduction {
    /// `http://` or `https://` URL answering JSON to a GET.
    pub url: String,
    /// JSON pointer (RFC 6901) to the number in the answer, e.g.
    /// `/inverters/0/acPower`; empty for an answer that is the number itself.
    pub pointer: String,
    /// Unit of that number (default `W`).
    #[serde(default)]
    pub unit: PowerUnit,
    /// Longest wait for an answer (default `2s`, 100ms to 30s).
    #[serde(default = "default_production_timeout")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: String,
}

fn default_production_timeout() -> String {
    "2s".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum PowerUnit {
    #[default]
    W,
    #[serde(rename = "kW")]
    KW,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GpuSelection {
    /// `auto` (default): all GPUs when the host has some, none otherwise;
    /// `none`; `all` (an error on a host without GPUs); `indices`: those in
    /// `indices`.
    #[serde(default)]
    pub mode: GpuMode,
    /// GPU indices (as `nvidia-smi` numbers them) for `mode: indices`.
    #[serde(default)]
    pub indices: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum GpuMode {
    #[default]
    Auto,
    None,
    All,
    Indices,
}

/// Default `metrics.listen`: loopback only, Prometheus' conventional range.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metrics {
    /// Socket address of the agent's `/metrics` endpoint (default `127.0.0.1:9464`).
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen: default_metrics_listen(),
        }
    }
}

fn default_metrics_listen() -> String {
    DEFAULT_METRICS_LISTEN.to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Reconcile {
    /// Full re-list and converge even when nothing changed (default `30s`).
    #[serde(default = "default_resync")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub resync_period: String,
    /// Restart backoff for crashing containers.
    #[serde(default)]
    pub backoff: Backoff,
    /// Changed components: the new container must be ready before the old
    /// goes, or the old comes back.
    #[serde(default)]
    pub rollout: Rollout,
}

impl Default for Reconcile {
    fn default() -> Self {
        Reconcile {
            resync_period: default_resync(),
            backoff: Backoff::default(),
            rollout: Rollout::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rollout {
    /// How long a changed component's new container may take to be ready
    /// (healthy where it has a health check) before the previous container
    /// is restored and the change is not tried again until the spec
    /// changes (default `2m`).
    #[serde(default = "default_readiness_timeout")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub readiness_timeout: String,
    /// How long the new container must run, healthy, to count as ready
    /// (default `1s`).
    #[serde(default = "default_min_ready")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub min_ready: String,
    /// Roll out the worker or the podman host while network jobs run on
    /// them (killing those jobs); by default the rollout waits until they
    /// end (default `false`).
    #[serde(default)]
    pub interrupt_jobs: bool,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            readiness_timeout: default_readiness_timeout(),
            min_ready: default_min_ready(),
            interrupt_jobs: false,
        }
    }
}

fn default_readiness_timeout() -> String {
    "2m".into()
}

fn default_min_ready() -> String {
    "1s".into()
}

fn default_resync() -> String {
    "30s".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backoff {
    /// First restart delay, doubled on each crash (default `10s`).
    #[serde(default = "default_backoff_initial")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub initial: String,
    /// Longest restart delay (default `5m`).
    #[serde(default = "default_backoff_max")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub max: String,
    /// Running this long forgets earlier crashes (default `10m`).
    #[serde(default = "default_backoff_reset")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub reset_after: String,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: default_backoff_initial(),
            max: default_backoff_max(),
            reset_after: default_backoff_reset(),
        }
    }
}

fn default_backoff_initial() -> String {
    "10s".into()
}
fn default_backoff_max() -> String {
    "5m".into()
}
fn default_backoff_reset() -> String {
    "10m".into()
}

/// Default podman image, built from `docker/`.
pub const DEFAULT_PODMAN_IMAGE: &str = "garage/podman:0.1";
/// Default worker image, built from `docker/`.
pub const DEFAULT_WORKER_IMAGE: &str = "garage/worker:0.1";

/// The Podman-in-Docker host. Unless `privileged`, it gets the capability
/// set that works where `--privileged` cannot (see ENVIRONMENT.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Podman {
    /// `false` keeps the section but does not run podman (default `true`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Image with podman inside (default `garage/podman:0.1`).
    #[serde(default = "default_podman_image")]
    pub image: String,
    /// Run privileged (real GPU hosts); excludes `capabilities`.
    #[serde(default)]
    pub privileged: bool,
    /// Capabilities when not privileged (default add `ALL`, drop `SYS_RESOURCE`).
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Docker security options when not privileged (default seccomp,
    /// apparmor and systempaths `unconfined`).
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    /// Devices, `host[:container[:permissions]]`, when not privileged
    /// (default `/dev/fuse`).
    #[serde(default)]
    pub devices: Option<Vec<String>>,
    /// Named volume holding the API socket, mounted at `/podman`.
    #[serde(default = "default_socket_volume")]
    pub socket_volume: String,
    /// Named volume holding podman's images and containers, mounted at
    /// `/var/lib/containers`.
    #[serde(default = "default_cache_volume")]
    pub cache_volume: String,
    /// How container jobs (`garage job run`) use this podman host.
    #[serde(default)]
    pub jobs: PodmanJobs,
}

/// Container jobs on the podman host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodmanJobs {
    /// Deprecated: write `spec.jobs.maxConcurrent`. Read only when that is
    /// not written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("deprecated" = true))]
    pub max_concurrent: Option<u32>,
    /// Images jobs may copy from the host's Docker engine, as patterns
    /// matched against the reference the job writes (`garage-test/*`,
    /// `myorg/model:1.2`; `*` stays within a `/` segment, `**` spans them).
    /// Any other image is pulled (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_images: Vec<String>,
    /// Most processes and threads one job container may have, unless the
    /// job's `resources.pids` says otherwise (default 1024).
    #[serde(default = "default_pids_limit")]
    #[schemars(range(min = 1, max = 4194304))]
    pub pids_limit: u32,
}

impl Default for PodmanJobs {
    fn default() -> Self {
        PodmanJobs {
            max_concurrent: None,
            host_images: Vec::new(),
            pids_limit: default_pids_limit(),
        }
    }
}

fn default_pids_limit() -> u32 {
    super::limits::DEFAULT_PIDS_LIMIT
}

fn yes() -> bool {
    true
}
fn default_podman_image() -> String {
    DEFAULT_PODMAN_IMAGE.into()
}
fn default_socket_volume() -> String {
    "garage-podman-socket".into()
}
fn default_cache_volume() -> String {
    "garage-podman-cache".into()
}

/// The inference worker (`garage worker`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Worker {
    /// `false` keeps the section but does not run the worker (default `true`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Worker image (default `garage/worker:0.1`).
    #[serde(default = "default_worker_image")]
    pub image: String,
    /// Which model to serve.
    pub model: ModelSource,
    /// Named volume with the models, mounted read-only at `/models`
    /// (default `garage-models`).
    #[serde(default = "default_model_volume")]
    pub model_volume: String,
    /// Port of the OpenAI-compatible API, bound to 127.0.0.1 (default 8000).
    #[serde(default = "default_worker_port")]
    pub port: u16,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Limits for the worker container.
    #[serde(default)]
    pub resources: Resources,
}

fn default_worker_image() -> String {
    DEFAULT_WORKER_IMAGE.into()
}
fn default_model_volume() -> String {
    "garage-models".into()
}
fn default_worker_port() -> u16 {
    8000
}

/// Exactly one of `path` and `huggingFace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["path"]}, {"required": ["huggingFace"]}]))]
pub struct ModelSource {
    /// Absolute path of the model inside the worker container (the model
    /// volume is at `/models`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A Hugging Face repository, fetched by the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugging_face: Option<HuggingFace>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HuggingFace {
    /// Repository id, `owner/name`.
    pub repo: String,
    /// Branch, tag or commit (default `main`).
    #[serde(default = "default_revision")]
    pub revision: String,
    /// One `.gguf` file of the repository (a path inside it). Without it the
    /// worker takes the Hugging Face layout (config.json, tokenizer.json,
    /// safetensors), or the repository's only `.gguf` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

fn default_revision() -> String {
    "main".into()
}
