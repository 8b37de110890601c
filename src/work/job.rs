//! One leased job from start to end: the executor runs it while the lease
//! is renewed and its log shipped; a `cancel`, a refused lease or a lease
//! that ran out stops it (the executor removes its containers). A job
//! that ended, or was cancelled by its client, is completed: its last log
//! flushed and the result sent, retried while the lease lasts. A refused
//! or expired lease is dropped without completing (the coordinator has
//! given the job to someone else), and so is a job stopped with the agent.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, Policy};
use crate::coordinator::api::{CompleteRequest, Lease, Outcome};

use super::coordinator::{CallError, JobCoordinator};
use super::executor::{Execution, Executor};
use super::lease::{self, Expiry, LeaseEnd};
use super::logs::{self, LogSink, ShipEnd};
use super::power::{with_energy, PowerGate};

/// Retries of a completion the coordinator did not take.
pub const COMPLETE_RETRY: Policy = Policy {
    jitter: true,
    ..Policy::doubling(Duration::from_millis(250), Duration::from_secs(5))
};

/// How a job's lease ended on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// The coordinator took the completion with this outcome.
    Completed(Outcome),
    /// The lease ended first (the job was stopped, nothing completed
    /// unless cancelled).
    Lease(LeaseEnd),
    /// The agent stopped: the job was stopped and left to the sweep.
    Stopped,
    /// The node's podman host went away mid-run: not the job's failure, so
    /// the node completes nothing and stops renewing; the coordinator
    /// requeues the job when the lease runs out.
    GivenBack,
}

impl JobEnd {
    /// The `end` label of `garage_network_job_leases_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobEnd::Completed(_) => "completed",
            JobEnd::Lease(end) => end.as_str(),
            JobEnd::Stopped => "stopped",
            JobEnd::GivenBack => "given_back",
        }
    }
}

/// Why the job's run was stopped before it ended by itself.
enum Stop {
    Lease(LeaseEnd),
    Agent,
}

/// Runs the job under `lease` to its end; `stop` is the agent stopping.
/// `power` meters its energy, which the completion carries.
pub async fn run<C: JobCoordinator, X: Executor, P: PowerGate>(
    coordinator: &C,
    executor: &X,
    power: &P,
    lease: &Lease,
    stop: &CancellationToken,
) -> JobEnd {
    let expiry = Expiry::granted(lease);
    power.job_started(lease.lease_id);
    let sink = LogSink::new();
    let cancel = CancellationToken::new();
    let execution = executor.execute(lease, &sink, &cancel);
    tokio::pin!(execution);
    let watch = async {
        tokio::select! {
            end = lease::keep(coordinator, lease, &expiry) => Stop::Lease(end),
            end = logs::ship(coordinator, lease.lease_id, &sink) => Stop::Lease(match end {
                ShipEnd::Cancel => LeaseEnd::Cancel,
                ShipEnd::LeaseLost => LeaseEnd::Lost,
            }),
            () = stop.cancelled() => Stop::Agent,
        }
    };
    let (execution, stopped) = tokio::select! {
        execution = &mut execution => (execution, None),
        why = watch => {
            cancel.cancel();
            (execution.await, Some(why))
        }
    };
    let energy = power.job_finished(lease.lease_id);
    if let Some(used) = &energy {
        tracing::info!(job_id = %lease.job_id, energy_wh = used.energy_wh, measured_by = %used.measured_by, "the job's energy");
    }
    match stopped {
        None | Some(Stop::Lease(LeaseEnd::Cancel)) => {}
        Some(Stop::Lease(end)) => {
            tracing::warn!(job_id = %lease.job_id, lease_id = %lease.lease_id, end = end.as_str(), "stopped the job; the coordinator has given it to another node");
            return JobEnd::Lease(end);
        }
        Some(Stop::Agent) => return JobEnd::Stopped,
    }
    let cancelled = stopped.is_some();
    if execution.host_lost && !cancelled {
        tracing::warn!(job_id = %lease.job_id, lease_id = %lease.lease_id, reason = ?execution.reason, "the podman host went away mid-job; giving the job back (the coordinator requeues it when the lease ends)");
        return JobEnd::GivenBack;
    }
    let execution = Execution {
        result: with_energy(execution.result, energy),
        ..execution
    };
    match complete(coordinator, lease, &sink, &expiry, execution, stop).await {
        Ok(outcome) if !cancelled => JobEnd::Completed(outcome),
        Ok(_) => JobEnd::Lease(LeaseEnd::Cancel),
        Err(end) => end,
    }
}

/// Flushes the log and sends the completion while the lease lasts.
async fn complete<C: JobCoordinator>(
    coordinator: &C,
    lease: &Lease,
    sink: &LogSink,
    expiry: &Expiry,
    execution: Execution,
    stop: &CancellationToken,
) -> Result<Outcome, JobEnd> {
    let request = CompleteRequest {
        outcome: execution.outcome,
        reason: execution.reason,
        result: execution.result,
    };
    let mut retries = Backoff::new(COMPLETE_RETRY);
    loop {
        let attempt = async {
            logs::flush(coordinator, lease.lease_id, sink).await?;
            coordinator.complete(lease.lease_id, &request).await
        };
        let answer = tokio::select! {
            answer = attempt => answer,
            () = tokio::time::sleep_until(expiry.at()) => return Err(JobEnd::Lease(LeaseEnd::Expired)),
            () = stop.cancelled() => return Err(JobEnd::Stopped),
        };
        match answer {
            Ok(done) => {
                tracing::info!(job_id = %lease.job_id, outcome = ?request.outcome, state = done.state.as_str(), "completed the job");
                return Ok(request.outcome);
            }
            Err(CallError::LeaseLost(err)) => {
                tracing::warn!(job_id = %lease.job_id, error = %crate::error_text::one_line(&err), "the coordinator refused the completion: the lease is gone");
                return Err(JobEnd::Lease(LeaseEnd::Lost));
            }
            Err(err) => {
                let delay = retries.fail();
                tracing::warn!(job_id = %lease.job_id, error = %crate::error_text::one_line(&err), ?delay, "cannot complete the job yet; retrying while the lease lasts");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = tokio::time::sleep_until(expiry.at()) => return Err(JobEnd::Lease(LeaseEnd::Expired)),
                    () = stop.cancelled() => return Err(JobEnd::Stopped),
                }
            }
        }
    }
}
