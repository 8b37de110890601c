//! `garage job …` as library calls: load the job and the node spec, connect
//! to the node's podman host and run. The binary only prints.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::document::DocumentError;
use crate::gpu::GpuInventory;
use crate::runtime::docker::PodmanJobEngine;
use crate::spec;

use super::engine::EngineError;
use super::outcome::JobReport;
use super::runner::{check, RunError, RunEvent, RunOptions, Runner};
use super::slots::{JobLocks, SlotError};

#[derive(Debug, thiserror::Error)]
pub enum JobCommandError {
    /// The job file or the node spec.
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("{}: node {node} has no podman host (fix: add a `podman:` section to spec, then `garage apply -f {}`)", file.display(), file.display())]
    NoPodman {
        file: std::path::PathBuf,
        node: String,
    },
    #[error("cannot reach the podman host of node {node} (fix: start it with `garage apply -f {} --wait`, or keep `garage run` running)", file.display())]
    Connect {
        node: String,
        file: std::path::PathBuf,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Locks(#[from] SlotError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Runs the job file `job_file` on the node described by `node_file`, with
/// the node's job locks in `state_dir`.
pub async fn run_file(
    job_file: &Path,
    node_file: &Path,
    state_dir: &Path,
    observer: &(dyn Fn(RunEvent<'_>) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<JobReport, JobCommandError> {
    // Validate everything first: nothing may start for an invalid file.
    let job = super::load(job_file)?;
    let node = spec::load(node_file)?;
    let podman = node.podman().ok_or_else(|| JobCommandError::NoPodman {
        file: node_file.to_owned(),
        node: node.name().to_owned(),
    })?;
    let gpus = tokio::task::spawn_blocking(GpuInventory::detect)
        .await
        .unwrap_or_default();
    let locks = JobLocks::open(state_dir, node.name())?;
    let mut options = RunOptions::new(node.name(), podman.max_concurrent_jobs, gpus, locks);
    options.host_images = podman.host_images.clone();
    options.pids_limit = podman.pids_limit;
    // Refuse before connecting anywhere.
    check(&job, &options)?;
    let engine =
        PodmanJobEngine::connect(podman)
            .await
            .map_err(|source| JobCommandError::Connect {
                node: node.name().to_owned(),
                file: node_file.to_owned(),
                source,
            })?;
    let runner = Runner::new(Arc::new(engine), options);
    Ok(runner.run(&job, observer, cancel).await?)
}
