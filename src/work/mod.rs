//! The agent's work task (`spec.jobs.accept`): takes jobs from the
//! coordinator and runs them on this node. The claim loop long-polls with
//! the node's free slots; each lease runs as its own job (`job`: executor,
//! lease keeper, log shipper, completion) in the task's `JoinSet`. A
//! coordinator that does not answer pauses claiming (with backoff) while
//! running jobs go on until their leases run out. It never touches the
//! reconcile loop: converging goes on whatever the coordinator does.
//!
//! The coordinator is behind [`JobCoordinator`] and the node's runners
//! behind [`Executor`], so the logic here is tested with fakes.

pub mod coordinator;
pub mod execution;
pub mod executor;
pub mod inference;
pub mod job;
pub mod lease;
pub mod logs;
pub mod power;
pub mod running;

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, Policy};
use crate::coordinator::api::{ClaimRequest, JobType};
use crate::metrics::{AgentMetrics, CLAIM_EMPTY, CLAIM_ERROR, CLAIM_LEASED};
use crate::spec::JobKind;

pub use coordinator::{CallError, JobCoordinator};
pub use executor::{Execution, Executor, NodeExecutor};
pub use job::JobEnd;
pub use power::{PowerGate, Unmetered};
pub use running::{RunningJob, RunningJobs};

/// Seconds a claim waits for a job at the coordinator.
pub const CLAIM_WAIT_SECONDS: u32 = 25;
/// Retries of a claim that failed: from 1 s doubling to 30 s, jittered.
pub const CLAIM_RETRY: Policy = Policy {
    jitter: true,
    ..Policy::doubling(Duration::from_secs(1), Duration::from_secs(30))
};
/// How often a node that can start no job looks again.
pub const NOT_READY_POLL: Duration = Duration::from_secs(1);
/// How often a node whose power policy allows no job looks again (the
/// energy monitor samples about this often).
pub const POWER_POLL: Duration = Duration::from_secs(5);
/// How long running jobs get to stop when the agent stops (the
/// supervisor's grace is longer).
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// What the claim loop asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkSettings {
    /// Jobs at once (`spec.jobs.maxConcurrent`).
    pub max_concurrent: u32,
    /// The types this node takes.
    pub job_types: Vec<JobType>,
    /// The node's labels, matched against a job's `placement.labels`.
    pub labels: BTreeMap<String, String>,
    /// Seconds each claim waits at the coordinator.
    pub claim_wait_seconds: u32,
}

impl WorkSettings {
    pub fn new(max_concurrent: u32, types: &[JobKind], labels: BTreeMap<String, String>) -> Self {
        WorkSettings {
            max_concurrent,
            job_types: types
                .iter()
                .map(|kind| match kind {
                    JobKind::Container => JobType::Container,
                    JobKind::Inference => JobType::Inference,
                })
                .collect(),
            labels,
            claim_wait_seconds: CLAIM_WAIT_SECONDS,
        }
    }
}

/// Claims and runs jobs until `stop` fires; then stops the running jobs
/// (their leases run out and the coordinator requeues them). `power` says
/// how many slots may be claimed and meters each job's energy.
pub async fn run<C: JobCoordinator, X: Executor, P: PowerGate>(
    coordinator: Arc<C>,
    executor: Arc<X>,
    power: Arc<P>,
    settings: WorkSettings,
    running: RunningJobs,
    metrics: AgentMetrics,
    stop: CancellationToken,
) {
    let mut jobs: JoinSet<()> = JoinSet::new();
    let mut retries = Backoff::new(CLAIM_RETRY);
    // What the last look found ready, to log changes only.
    let mut ready: Vec<JobType> = Vec::new();
    // Whether the power policy held claims back at the last look.
    let mut held_back = false;
    let max = usize::try_from(settings.max_concurrent.max(1)).unwrap_or(1);
    tracing::info!(slots = max, types = ?settings.job_types, "taking jobs from the coordinator");
    loop {
        while jobs.try_join_next().is_some() {}
        let free = max.saturating_sub(jobs.len());
        if free == 0 {
            tokio::select! {
                _ = jobs.join_next() => continue,
                () = stop.cancelled() => break,
            }
        }
        let free = power.claimable(u32::try_from(free).unwrap_or(u32::MAX));
        if (free == 0) != held_back {
            held_back = free == 0;
            if held_back {
                tracing::info!("not claiming jobs: the solar surplus does not cover a job (spec.power.policy: solar-only)");
            } else {
                tracing::info!("claiming jobs again: the solar surplus covers a job");
            }
        }
        if free == 0 {
            tokio::select! {
                () = tokio::time::sleep(POWER_POLL) => continue,
                () = stop.cancelled() => break,
            }
        }
        let job_types = executor.ready_types(&settings.job_types).await;
        if job_types != ready {
            tracing::info!(ready = ?job_types, wanted = ?settings.job_types, "job types this node can start now");
            ready.clone_from(&job_types);
        }
        if job_types.is_empty() {
            // Nothing here can start a job yet (podman or the worker is
            // still coming up): claim nothing rather than fail what comes.
            tokio::select! {
                () = tokio::time::sleep(NOT_READY_POLL) => continue,
                () = stop.cancelled() => break,
            }
        }
        let request = ClaimRequest {
            slots: free,
            job_types,
            labels: settings.labels.clone(),
            wait_seconds: Some(settings.claim_wait_seconds),
            power: power.report(),
        };
        // A claim in flight is not given up for a job that ends (the
        // coordinator may have granted a lease); only a stop drops it.
        let answer = tokio::select! {
            answer = coordinator.claim(&request) => answer,
            () = stop.cancelled() => break,
        };
        match answer {
            Ok(Some(lease)) => {
                metrics
                    .network_job_claims
                    .with_label_values(&[CLAIM_LEASED])
                    .inc();
                retries.reset();
                tracing::info!(job_id = %lease.job_id, lease_id = %lease.lease_id, attempt = lease.attempt, kind = lease.kind.as_str(), "took a job");
                running.start(&lease, &metrics);
                let coordinator = Arc::clone(&coordinator);
                let executor = Arc::clone(&executor);
                let power = Arc::clone(&power);
                let running = running.clone();
                let metrics = metrics.clone();
                let stop = stop.clone();
                jobs.spawn(async move {
                    let end = job::run(&*coordinator, &*executor, &*power, &lease, &stop).await;
                    running.end(lease.lease_id, &metrics);
                    metrics
                        .network_job_leases
                        .with_label_values(&[end.as_str()])
                        .inc();
                    if let JobEnd::Completed(outcome) = end {
                        let label = match outcome {
                            crate::coordinator::api::Outcome::Succeeded => "succeeded",
                            crate::coordinator::api::Outcome::Failed => "failed",
                            crate::coordinator::api::Outcome::TimedOut => "timed_out",
                            crate::coordinator::api::Outcome::NotStarted => "not_started",
                        };
                        metrics
                            .network_job_completions
                            .with_label_values(&[label])
                            .inc();
                    }
                });
            }
            Ok(None) => {
                metrics
                    .network_job_claims
                    .with_label_values(&[CLAIM_EMPTY])
                    .inc();
                retries.reset();
            }
            Err(err) => {
                metrics
                    .network_job_claims
                    .with_label_values(&[CLAIM_ERROR])
                    .inc();
                let delay = retries.fail();
                let failures = retries.failures();
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %crate::error_text::one_line(&err), failures, ?delay, running = running.count(), "cannot claim jobs; running jobs go on, retrying");
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => break,
                }
            }
        }
    }
    let drain = async { while jobs.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
        tracing::warn!("network jobs did not stop in time");
        jobs.abort_all();
    }
}
