//! `spec.jobs`: whether the node takes jobs from the network, which types,
//! and the node's one job concurrency (network and `garage job run` jobs
//! share it). The document type, its validation with locations, and the
//! validated [`JobSettings`] the agent's work task reads.
//!
//! `spec.podman.jobs.maxConcurrent` was the concurrency before `spec.jobs`
//! existed: it is still read when `spec.jobs.maxConcurrent` is not written,
//! and writing both is an error pointing at the old one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Jobs at once when neither `spec.jobs.maxConcurrent` nor the older
/// `spec.podman.jobs.maxConcurrent` says.
pub const DEFAULT_MAX_CONCURRENT: u32 = 1;
/// The most jobs a node may run at once.
pub const MAX_CONCURRENT: u32 = 64;

/// Jobs from the network and how many jobs run at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Jobs {
    /// Take jobs from `spec.coordinator` (default `false`).
    #[serde(default)]
    pub accept: bool,
    /// The job types taken from the network (default: every type this node
    /// can run: `container` with `spec.podman`, `inference` with
    /// `spec.worker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<JobKind>>,
    /// Jobs that may run at once, network and `garage job run` together;
    /// more wait for a free slot (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent: Option<u32>,
}

/// A type of network job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A container job run in the node's podman host (needs `spec.podman`).
    Container,
    /// A completion answered by the node's worker (needs `spec.worker`).
    Inference,
}

/// `spec.jobs`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// Take jobs from the coordinator (only ever true with one configured).
    pub accept: bool,
    /// The types taken, sorted, none twice; each has what runs it.
    pub types: Vec<JobKind>,
    /// Jobs at once, 1 to [`MAX_CONCURRENT`].
    pub max_concurrent: u32,
    /// The worker's port on 127.0.0.1, when the worker runs.
    pub worker_port: Option<u16>,
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
