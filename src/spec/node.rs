//! The validated node spec: what the rest of the agent reads. Built only by
//! `validate`; nothing here is re-checked later.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::reconcile::ReconcileSettings;
use crate::runtime::{ComponentKind, ContainerSpec, RestartPolicy};

use super::error::Site;
use super::types::{Location, Power};

/// A node spec that parsed and validated; the only way to get one is
/// [`super::parse`] or [`super::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub(super) name: String,
    pub(super) generation: String,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) coordinator_url: Option<String>,
    pub(super) location: Option<Location>,
    pub(super) power: Power,
    pub(super) metrics_listen: SocketAddr,
    pub(super) reconcile: ReconcileSettings,
    pub(super) components: Vec<Template>,
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

    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    pub fn power(&self) -> &Power {
        &self.power
    }

    pub fn metrics_listen(&self) -> SocketAddr {
        self.metrics_listen
    }

    pub fn reconcile(&self) -> ReconcileSettings {
        self.reconcile
    }
}

/// GPUs a component asks for, before the host's inventory is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GpuWant {
    None,
    Auto,
    All,
    Indices(Vec<u32>),
}

/// A component with everything decided except its GPUs.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template {
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
