//! Checks a parsed document and turns it into a [`NodeSpec`]; every error
//! points at the line and column of the offending field.

use std::net::SocketAddr;

use sha2::{Digest, Sha256};

use crate::document::{Checker, Locations};

use super::checks::{unique_indices, SpecChecks};
use super::component;
use super::gateway_settings::gateway_settings;
use super::host_images::HostImages;
use super::job_settings::job_settings;
use super::jobs::JobSettings;
use super::label_keys;
use super::limits;
use super::location;
use super::model_ref::HubModel;
use super::names;
use super::node::{GpuWant, NodeSpec, PodmanHost, WorkerModel};
use super::power;
use super::settings::{BackoffSettings, ReconcileSettings, RolloutSettings};
use super::types::{GpuMode, GpuSelection, NodeDocument, Reconcile};
use super::SpecError;

/// Validates `doc`; `at` holds the positions of the text it came from.
pub(super) fn validate(doc: &NodeDocument, at: &Locations) -> Result<NodeSpec, SpecError> {
    let c = Checker { at };
    let name = &doc.metadata.name;
    c.check(
        "metadata.name",
        names::dns_label(name),
        "use lowercase letters, digits and `-`",
    )?;
    let labels = &doc.metadata.labels;
    if labels.len() > limits::MAX_LABELS {
        return Err(c.invalid(
            "metadata.labels",
            format!(
                "{} labels, more than the limit of {}",
                labels.len(),
                limits::MAX_LABELS
            ),
            "keep the labels that select or describe the node",
        ));
    }
    for (key, value) in labels {
        names::label_key(key).map_err(|message| {
            c.invalid_key(
                &format!("metadata.labels.{key}"),
                message,
                "use a key like `fleet` or `example.com/fleet`",
            )
        })?;
        if value.len() > limits::MAX_LABEL_VALUE_BYTES {
            return Err(c.invalid(
                &format!("metadata.labels.{key}"),
                format!(
                    "the value is {} bytes, more than the limit of {}",
                    value.len(),
                    limits::MAX_LABEL_VALUE_BYTES
                ),
                "keep label values short; put data in a container's env or a mount",
            ));
        }
    }
    let spec = &doc.spec;
    let coordinator_url = match &spec.coordinator {
        Some(coordinator) => Some(coordinator_url(&c, &coordinator.url)?),
        None => None,
    };
    let (location, warnings) = match &spec.location {
        Some(written) => {
            let (checked, warnings) = location::location(&c, written)?;
            (Some(checked), warnings)
        }
        None => (None, Vec::new()),
    };
    let power = power::power_settings(&c, &spec.power, location.as_ref())?;
    let node_gpu = gpu_selection(&c, &spec.gpu)?;
    let metrics_listen: SocketAddr = spec.metrics.listen.parse().map_err(|_| {
        c.invalid(
            "spec.metrics.listen",
            format!("`{}` is not a socket address", spec.metrics.listen),
            "write `IP:port`, e.g. 127.0.0.1:9464 or [::1]:9464",
        )
    })?;
    let reconcile = reconcile_settings(&c, &spec.reconcile)?;
    let components = component::components(&c, doc, node_gpu, metrics_listen)?;
    let jobs = job_settings(&c, doc)?;
    let gateway = gateway_settings(&c, doc)?;
    let gc = super::gc::gc_settings(&c, spec.gc.as_ref())?;
    Ok(NodeSpec {
        name: name.clone(),
        generation: generation(doc),
        labels: doc.metadata.labels.clone(),
        coordinator_url,
        location,
        power,
        warnings,
        metrics_listen,
        reconcile,
        components,
        podman: podman_host(&c, doc, &jobs)?,
        worker_model: worker_model(doc),
        jobs,
        gateway,
        gc,
    })
}

/// The enabled worker's model; `component::components` has checked that
/// exactly one of `path` and `huggingFace` is set.
fn worker_model(doc: &NodeDocument) -> Option<WorkerModel> {
    let worker = doc.spec.worker.as_ref().filter(|w| w.enabled)?;
    match (&worker.model.path, &worker.model.hugging_face) {
        (Some(path), _) => Some(WorkerModel::Path {
            path: path.clone(),
            volume: worker.model_volume.clone(),
        }),
        (None, Some(hf)) => Some(WorkerModel::Hub {
            model: HubModel {
                repo: hf.repo.clone(),
                revision: hf.revision.clone(),
                file: hf.file.clone(),
            },
            volume: worker.model_volume.clone(),
        }),
        (None, None) => None,
    }
}

fn podman_host(
    c: &Checker<'_>,
    doc: &NodeDocument,
    jobs: &JobSettings,
) -> Result<Option<PodmanHost>, SpecError> {
    let Some(podman) = doc.spec.podman.as_ref().filter(|p| p.enabled) else {
        return Ok(None);
    };
    if !(1..=4_194_304).contains(&podman.jobs.pids_limit) {
        return Err(c.invalid(
            "spec.podman.jobs.pidsLimit",
            format!(
                "the pids limit must be 1 to 4194304 (the kernel's largest pid_max), got {}",
                podman.jobs.pids_limit
            ),
            "write e.g. 1024",
        ));
    }
    let host_images = HostImages::parse(&podman.jobs.host_images).map_err(|err| {
        c.invalid(
            &format!("spec.podman.jobs.hostImages[{}]", err.index),
            err.to_string(),
            "write an image reference with `*`, `?` or `[...]` wildcards, e.g. `garage-test/*`",
        )
    })?;
    Ok(Some(PodmanHost {
        container: label_keys::container_name(&doc.metadata.name, "podman"),
        socket_volume: podman.socket_volume.clone(),
        cache_volume: podman.cache_volume.clone(),
        socket_file: component::PODMAN_SOCKET_FILE.to_owned(),
        max_concurrent_jobs: jobs.max_concurrent,
        host_images,
        pids_limit: podman.jobs.pids_limit,
    }))
}

/// sha256 over the JSON of the document with defaults applied, 12 hex digits.
fn generation(doc: &NodeDocument) -> String {
    // Serialising plain structs, string maps and finite floats cannot fail;
    // an empty input would still give a stable (if shared) hash.
    let json = serde_json::to_vec(doc).unwrap_or_default();
    let digest = Sha256::digest(&json);
    hex::encode(&digest[..6])
}

fn coordinator_url(c: &Checker<'_>, url: &str) -> Result<String, SpecError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(c.invalid(
            "spec.coordinator.url",
            format!("`{url}` is not an http(s) URL"),
            "write a URL like https://coordinator.example.org",
        )),
    }
}

fn gpu_selection(c: &Checker<'_>, gpu: &GpuSelection) -> Result<GpuWant, SpecError> {
    match gpu.mode {
        GpuMode::Indices => {
            if gpu.indices.is_empty() {
                return Err(c.invalid(
                    "spec.gpu.indices",
                    "`mode: indices` needs at least one index",
                    "list GPU indices, e.g. `indices: [0]`",
                ));
            }
            unique_indices(c, "spec.gpu.indices", &gpu.indices)?;
            Ok(GpuWant::Indices(gpu.indices.clone()))
        }
        _ if !gpu.indices.is_empty() => Err(c.invalid(
            "spec.gpu.indices",
            "`indices` is only used with `mode: indices`",
            "set `mode: indices` or remove `indices`",
        )),
        GpuMode::Auto => Ok(GpuWant::Auto),
        GpuMode::None => Ok(GpuWant::None),
        GpuMode::All => Ok(GpuWant::All),
    }
}

fn reconcile_settings(c: &Checker<'_>, r: &Reconcile) -> Result<ReconcileSettings, SpecError> {
    let resync = c.duration(
        "spec.reconcile.resyncPeriod",
        &r.resync_period,
        limits::RESYNC_PERIOD,
    )?;
    let backoff = BackoffSettings {
        initial: c.duration(
            "spec.reconcile.backoff.initial",
            &r.backoff.initial,
            limits::BACKOFF_INITIAL,
        )?,
        max: c.duration(
            "spec.reconcile.backoff.max",
            &r.backoff.max,
            limits::BACKOFF_MAX,
        )?,
        reset_after: c.duration(
            "spec.reconcile.backoff.resetAfter",
            &r.backoff.reset_after,
            limits::BACKOFF_RESET_AFTER,
        )?,
    };
    if backoff.initial.is_zero() || backoff.initial > backoff.max {
        return Err(c.invalid(
            "spec.reconcile.backoff.initial",
            format!(
                "the initial backoff ({}) must be above 0 and at most `max` ({})",
                r.backoff.initial, r.backoff.max
            ),
            "make `initial` smaller than `max`",
        ));
    }
    let rollout = RolloutSettings {
        readiness_timeout: c.duration(
            "spec.reconcile.rollout.readinessTimeout",
            &r.rollout.readiness_timeout,
            limits::ROLLOUT_READINESS_TIMEOUT,
        )?,
        min_ready: c.duration(
            "spec.reconcile.rollout.minReady",
            &r.rollout.min_ready,
            limits::ROLLOUT_MIN_READY,
        )?,
        interrupt_jobs: r.rollout.interrupt_jobs,
    };
    Ok(ReconcileSettings {
        resync,
        backoff,
        rollout,
    })
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
