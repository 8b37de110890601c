//! What the controller is told: the target it converges to (one validated
//! revision of the spec, lowered onto this host) and the inputs that change
//! it. Shared by the controller, its status projection and the one-shot
//! commands; imports nothing else of the reconcile layer but lowering.

use std::collections::{HashMap, HashSet};

use crate::gpu::GpuInventory;
use crate::runtime::DesiredState;
use crate::spec::{NodeSpec, ReconcileSettings, SpecError};

use super::lower::desired_state;

/// What the controller converges to: one validated revision of the spec.
#[derive(Debug, Clone)]
pub struct Target {
    pub generation: String,
    /// The commit the spec was read at, for a spec from git (`gitops`).
    pub revision: Option<String>,
    pub desired: DesiredState,
    pub settings: ReconcileSettings,
}

impl Target {
    /// The target for a validated spec on a host with `gpus`; fails only
    /// when the spec asks for GPUs the host does not have.
    pub fn from_spec(spec: &NodeSpec, gpus: &GpuInventory) -> Result<Target, SpecError> {
        Ok(Target {
            generation: spec.generation().to_string(),
            revision: None,
            desired: desired_state(spec, gpus)?,
            settings: spec.reconcile(),
        })
    }

    /// The config hash of every component, by name.
    pub(super) fn config_hashes(&self) -> HashMap<&str, &str> {
        self.desired
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.config().hash.as_str()))
            .collect()
    }

    pub(super) fn component_names(&self) -> HashSet<&str> {
        self.desired
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// Inputs from the rest of the agent.
#[derive(Debug)]
pub enum Input {
    /// Something may have changed (engine event, resync): re-list and converge.
    Reconcile,
    /// A new valid spec revision.
    Target(Box<Target>),
    /// The spec file is invalid; keep the last good target.
    SpecInvalid(String),
    /// The spec file cannot be found; keep the last good target.
    SpecMissing(String),
    /// The spec's git repository cannot be fetched; keep the last good target.
    SpecUnreachable(String),
}
