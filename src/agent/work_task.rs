//! Builds the agent's work task from the node spec: the node's executor
//! (container jobs in its podman host, inference jobs on its worker, as
//! `spec.jobs.types` says), the claim settings, and the energy monitor
//! that gates claims (`solar-only`) and meters each job. The task itself is
//! `crate::work`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::coordinator::CoordinatorClient;
use crate::energy::EnergyMonitor;
use crate::gpu::GpuInventory;
use crate::jobs::slots::{JobLocks, SlotError};
use crate::jobs::RunOptions;
use crate::metrics::AgentMetrics;
use crate::spec::{JobKind, NodeSpec};
use crate::work::executor::ContainerJobs;
use crate::work::inference::InferenceRunner;
use crate::work::{self, NodeExecutor, RunningJobs, WorkSettings};

/// What the work task shares with the rest of the agent.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The running jobs, as `/status` lists them.
    pub running: RunningJobs,
    pub metrics: AgentMetrics,
    /// Gates claims (`solar-only`) and meters each job's energy.
    pub energy: EnergyMonitor,
}

/// The work task for `spec`, ready to run under the supervisor; `None`
/// when the node can run none of the types.
pub fn work(
    client: CoordinatorClient,
    spec: &NodeSpec,
    gpus: &GpuInventory,
    state_dir: &Path,
    shared: Shared,
    stop: CancellationToken,
) -> Result<Option<impl Future<Output = ()>>, SlotError> {
    let jobs = spec.jobs();
    let takes = |kind| jobs.types.contains(&kind);
    let containers = match spec.podman().filter(|_| takes(JobKind::Container)) {
        Some(podman) => {
            let locks = JobLocks::open(state_dir, spec.name())?;
            let mut options =
                RunOptions::new(spec.name(), podman.max_concurrent_jobs, gpus.clone(), locks);
            options.host_images = podman.host_images.clone();
            options.pids_limit = podman.pids_limit;
            Some(ContainerJobs::new(podman.clone(), options))
        }
        None => None,
    };
    let inference = jobs
        .worker_port
        .filter(|_| takes(JobKind::Inference))
        .and_then(|port| {
            InferenceRunner::new(&format!("http://127.0.0.1:{port}"))
                .inspect_err(|err| tracing::error!(error = %crate::error_text::one_line(err), "not taking inference jobs"))
                .ok()
        });
    let mut types = Vec::new();
    if containers.is_some() {
        types.push(JobKind::Container);
    }
    if inference.is_some() {
        types.push(JobKind::Inference);
    }
    if types.is_empty() {
        tracing::error!(
            "spec.jobs.accept is set but this node can run none of the job types; not taking jobs"
        );
        return Ok(None);
    }
    let settings = WorkSettings::new(jobs.max_concurrent, &types, spec.labels().clone());
    let executor = NodeExecutor {
        containers,
        inference,
    };
    Ok(Some(work::run(
        Arc::new(client),
        Arc::new(executor),
        Arc::new(shared.energy),
        settings,
        shared.running,
        shared.metrics,
        stop,
    )))
}
