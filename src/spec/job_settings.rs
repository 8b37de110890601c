//! Validating `spec.jobs` together with what it depends on (the
//! coordinator, the podman host, the worker, the older
//! `spec.podman.jobs.maxConcurrent`) into [`JobSettings`].

use crate::document::Checker;

use super::jobs::{JobKind, JobSettings, DEFAULT_MAX_CONCURRENT, MAX_CONCURRENT};
use super::types::NodeDocument;
use super::SpecError;

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
