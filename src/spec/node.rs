//! The validated node spec: what the rest of the agent reads. Built only by
//! `validate`; nothing here is re-checked later.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::container_spec::{ComponentKind, ContainerSpec, RestartPolicy};
use super::gateway::GatewaySettings;
use super::gc::GcSettings;
use super::host_images::HostImages;
use super::jobs::JobSettings;
use super::model_ref::HubModel;
use super::power::PowerSettings;
use super::settings::ReconcileSettings;
use super::types::Location;
use super::{DocumentWarning, Site};

/// A node spec that parsed and validated; the only way to get one is
/// [`super::parse`] or [`super::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub(super) name: String,
    pub(super) generation: String,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) coordinator_url: Option<String>,
    pub(super) location: Option<Location>,
    pub(super) power: PowerSettings,
    pub(super) warnings: Vec<DocumentWarning>,
    pub(super) metrics_listen: SocketAddr,
    pub(super) reconcile: ReconcileSettings,
    pub(super) components: Vec<UnresolvedComponent>,
    pub(super) podman: Option<PodmanHost>,
    pub(super) worker_model: Option<WorkerModel>,
    pub(super) jobs: JobSettings,
    pub(super) gateway: GatewaySettings,
    pub(super) gc: Option<GcSettings>,
}

/// The model `spec.worker` serves, as written (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerModel {
    /// An absolute path inside the worker container, where `volume` is
    /// mounted at `/models`.
    Path { path: String, volume: String },
    /// A Hugging Face repository the worker fetches into `volume`.
    Hub { model: HubModel, volume: String },
}

/// Where the node's podman job host is, for the job runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodmanHost {
    /// The podman container's name on the Docker engine.
    pub container: String,
    /// The named volume holding the API socket.
    pub socket_volume: String,
    /// The named volume holding podman's image store.
    pub cache_volume: String,
    /// The socket's file name inside that volume.
    pub socket_file: String,
    /// The node's one job concurrency (`spec.jobs.maxConcurrent`).
    pub max_concurrent_jobs: u32,
    /// `spec.podman.jobs.hostImages`.
    pub host_images: HostImages,
    /// `spec.podman.jobs.pidsLimit`, at least 1.
    pub pids_limit: u32,
}

impl NodeSpec {
    /// `metadata.name`, a DNS label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// First 12 hex digits of the SHA-256 of the document with defaults
    /// applied: the same spec gives the same generation, any change a new one.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// `metadata.labels`, already copied into every component's container.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    pub fn coordinator_url(&self) -> Option<&str> {
        self.coordinator_url.as_deref()
    }

    /// `spec.location`, with the price area the coordinates imply when
    /// none was written.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    pub fn power(&self) -> &PowerSettings {
        &self.power
    }

    /// What validation accepted but doubts (a price area the coordinates
    /// contradict): `garage validate` prints them, the agent logs them.
    pub fn warnings(&self) -> &[DocumentWarning] {
        &self.warnings
    }

    pub fn metrics_listen(&self) -> SocketAddr {
        self.metrics_listen
    }

    pub fn reconcile(&self) -> ReconcileSettings {
        self.reconcile
    }

    /// The podman job host, when `spec.podman` is present and enabled.
    pub fn podman(&self) -> Option<&PodmanHost> {
        self.podman.as_ref()
    }

    /// The worker's model, when `spec.worker` is present and enabled.
    pub fn worker_model(&self) -> Option<&WorkerModel> {
        self.worker_model.as_ref()
    }

    /// Every component, waiting only for the host's GPUs (the reconciler
    /// lowers them onto the host).
    pub fn components(&self) -> &[UnresolvedComponent] {
        &self.components
    }

    /// `spec.jobs`: network jobs and the job concurrency.
    pub fn jobs(&self) -> &JobSettings {
        &self.jobs
    }

    /// `spec.gateway`: serving the network's OpenAI endpoint over the link.
    pub fn gateway(&self) -> &GatewaySettings {
        &self.gateway
    }

    /// `spec.gc`: removing unused images; `None` when off.
    pub fn gc(&self) -> Option<GcSettings> {
        self.gc
    }
}

/// GPUs a component asks for, before the host's inventory is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuWant {
    None,
    Auto,
    All,
    Indices(Vec<u32>),
}

/// A component with everything decided except its GPUs, which lowering
/// resolves against the host's inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct UnresolvedComponent {
    pub name: String,
    pub kind: ComponentKind,
    pub restart: RestartPolicy,
    /// Complete except `gpus` (and podman's `ENABLE_GPU`), set by lowering.
    pub container: ContainerSpec,
    pub gpu: GpuWant,
    /// Where the GPU request was written, for host-dependent errors.
    pub gpu_site: Site,
    /// The setting to change when the host lacks GPUs (`mode` or `gpu`).
    pub gpu_setting: &'static str,
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
