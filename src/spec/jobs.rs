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

use super::types::NodeDocument;
use super::validate::Checker;
use super::SpecError;

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

/// Validates `spec.jobs` together with what it depends on.
pub(super) fn job_settings(c: &Checker<'_>, doc: &NodeDocument) -> Result<JobSettings, SpecError> {
    let spec = &doc.spec;
    let jobs = spec.jobs.clone().unwrap_or_default();
    let podman = spec.podman.as_ref().filter(|p| p.enabled);
    let worker = spec.worker.as_ref().filter(|w| w.enabled);
    let old = podman.and_then(|p| p.jobs.max_concurrent);
    let (max_concurrent, written_at) =
        match (jobs.max_concurrent, old) {
            (Some(_), Some(_)) => return Err(c.invalid(
                "spec.podman.jobs.maxConcurrent",
                "the job concurrency is written twice, here and in spec.jobs.maxConcurrent",
                "remove spec.podman.jobs.maxConcurrent; spec.jobs.maxConcurrent is the one setting",
            )),
            (Some(n), None) => (n, "spec.jobs.maxConcurrent"),
            (None, Some(n)) => (n, "spec.podman.jobs.maxConcurrent"),
            (None, None) => (DEFAULT_MAX_CONCURRENT, "spec.jobs.maxConcurrent"),
        };
    if !(1..=MAX_CONCURRENT).contains(&max_concurrent) {
        return Err(c.invalid(
            written_at,
            format!("jobs at once must be 1 to {MAX_CONCURRENT}, got {max_concurrent}"),
            "write 1 or more",
        ));
    }
    let runnable = |kind: JobKind| match kind {
        JobKind::Container => podman.is_some(),
        JobKind::Inference => worker.is_some(),
    };
    let types = match &jobs.types {
        Some(types) => {
            for (i, kind) in types.iter().enumerate() {
                let path = format!("spec.jobs.types[{i}]");
                if types[..i].contains(kind) {
                    return Err(c.invalid(&path, "listed twice", "list each type once"));
                }
                if !runnable(*kind) {
                    let (what, section) = match kind {
                        JobKind::Container => ("container jobs run in the podman host", "podman"),
                        JobKind::Inference => ("inference jobs run on the worker", "worker"),
                    };
                    return Err(c.invalid(
                        &path,
                        format!("{what}, and spec.{section} is missing or disabled"),
                        &format!("add spec.{section}, or remove this type"),
                    ));
                }
            }
            let mut types = types.clone();
            types.sort();
            types
        }
        None => [JobKind::Container, JobKind::Inference]
            .into_iter()
            .filter(|kind| runnable(*kind))
            .collect(),
    };
    if jobs.accept {
        if spec.coordinator.is_none() {
            return Err(c.invalid(
                "spec.jobs.accept",
                "network jobs come from a coordinator, and spec.coordinator is missing",
                "add spec.coordinator.url, or set `accept: false`",
            ));
        }
        if types.is_empty() {
            return Err(c.invalid(
                "spec.jobs.accept",
                "this node runs neither podman nor a worker, so it can take no job",
                "add spec.podman (container jobs) or spec.worker (inference jobs), or set `accept: false`",
            ));
        }
    }
    Ok(JobSettings {
        accept: jobs.accept,
        types,
        max_concurrent,
        worker_port: worker.map(|w| w.port),
    })
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
