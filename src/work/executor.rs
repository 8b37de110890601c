//! What runs a leased job on this node: the [`Executor`] seam, and the
//! node's real one, which runs container jobs through the podman job
//! runner (`crate::jobs`) and inference jobs on the node's worker
//! (`super::inference`). Whatever happens, an execution ends in an
//! [`Execution`] (a job that cannot run here is a failed one); a cancelled
//! one ends only after its containers are gone.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::coordinator::api::{JobType, Lease, LogStream, Outcome};
use crate::jobs::engine::LogStream as EngineStream;
use crate::jobs::runner::{RunError, RunEvent, RunOptions, Runner};
use crate::jobs::{JobEngine, JobStatus};
use crate::runtime::docker::PodmanJobEngine;
use crate::spec::PodmanHost;

pub use super::execution::Execution;
use super::inference::InferenceRunner;
use super::logs::LogSink;

/// Runs leased jobs on this node.
pub trait Executor: Send + Sync + 'static {
    /// The types of `wanted` this node can start now (its podman host or
    /// worker answers): only those are claimed.
    fn ready_types(&self, wanted: &[JobType]) -> impl Future<Output = Vec<JobType>> + Send;

    /// Runs one leased job to its end; stops early when `cancel` fires.
    fn execute(
        &self,
        lease: &Lease,
        logs: &LogSink,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Execution> + Send;
}

/// The node's executor: container jobs in its podman host, inference jobs
/// on its worker; a type without its host fails the job.
#[derive(Debug)]
pub struct NodeExecutor {
    pub containers: Option<ContainerJobs>,
    pub inference: Option<InferenceRunner>,
}

impl Executor for NodeExecutor {
    async fn ready_types(&self, wanted: &[JobType]) -> Vec<JobType> {
        let mut ready = Vec::new();
        for kind in wanted {
            let up = match (kind, &self.containers, &self.inference) {
                (JobType::Container, Some(containers), _) => containers.ready().await,
                (JobType::Inference, _, Some(worker)) => worker.ready().await,
                _ => false,
            };
            if up {
                ready.push(*kind);
            }
        }
        ready
    }

    async fn execute(
        &self,
        lease: &Lease,
        logs: &LogSink,
        cancel: &CancellationToken,
    ) -> Execution {
        let timeout = Duration::from_secs(lease.timeout_seconds);
        match (lease.kind, &self.containers, &self.inference) {
            (JobType::Container, Some(containers), _) => {
                containers.run(&lease.spec, timeout, logs, cancel).await
            }
            (JobType::Inference, _, Some(worker)) => {
                worker.run(&lease.spec, timeout, logs, cancel).await
            }
            (kind, _, _) => Execution::failed(format!(
                "this node does not run {} jobs (spec.jobs.types)",
                kind.as_str()
            )),
        }
    }
}

/// Container jobs through the podman runner; the podman host is connected
/// when a job comes (it may start after the agent, or restart).
#[derive(Debug)]
pub struct ContainerJobs {
    podman: PodmanHost,
    options: RunOptions,
}

impl ContainerJobs {
    pub fn new(podman: PodmanHost, options: RunOptions) -> Self {
        ContainerJobs { podman, options }
    }

    /// The podman host answers.
    async fn ready(&self) -> bool {
        match PodmanJobEngine::connect(&self.podman).await {
            Ok(engine) => engine.ping().await.is_ok(),
            Err(_) => false,
        }
    }

    async fn run(
        &self,
        spec: &serde_json::Value,
        timeout: Duration,
        logs: &LogSink,
        cancel: &CancellationToken,
    ) -> Execution {
        // The job was checked at submission; the node checks it again
        // with its own rules (and its own node-side limits).
        let mut job = match crate::jobs::parse(&spec.to_string(), Path::new("job")) {
            Ok(job) => job,
            Err(err) => {
                return Execution::failed(format!("the job is not valid on this node: {err}"))
            }
        };
        if !timeout.is_zero() {
            job.timeout = job.timeout.min(timeout);
        }
        let engine = match PodmanJobEngine::connect(&self.podman).await {
            Ok(engine) => engine,
            Err(err) => {
                return Execution::host_lost(format!("cannot reach this node's podman host: {err}"))
            }
        };
        let runner = Runner::new(Arc::new(engine), self.options.clone());
        let observer = |event: RunEvent<'_>| match event {
            RunEvent::Log { chunk, .. } => {
                let stream = match chunk.stream {
                    EngineStream::Stdout => LogStream::Stdout,
                    EngineStream::Stderr => LogStream::Stderr,
                };
                logs.push(stream, &chunk.bytes);
            }
            RunEvent::Progress(text) => tracing::debug!(job = %job.name, "{text}"),
        };
        match runner.run(&job, &observer, cancel).await {
            Ok(report) => {
                let outcome = match report.status {
                    JobStatus::Succeeded => Outcome::Succeeded,
                    JobStatus::Failed => Outcome::Failed,
                    JobStatus::TimedOut => Outcome::TimedOut,
                };
                Execution {
                    outcome,
                    reason: report.reason.clone(),
                    result: serde_json::to_value(&report).unwrap_or_default(),
                    host_lost: report.host_lost,
                }
            }
            Err(err @ RunError::NotReady { .. }) => {
                Execution::host_lost(crate::error_text::one_line(&err))
            }
            Err(err) => Execution::failed(crate::error_text::one_line(&err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(kind: JobType) -> Lease {
        Lease {
            lease_id: uuid::Uuid::new_v4(),
            job_id: uuid::Uuid::new_v4(),
            attempt: 1,
            expires_at: String::new(),
            lease_seconds: 30,
            renew_every_seconds: 3,
            kind,
            timeout_seconds: 60,
            spec: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn a_type_without_its_host_is_neither_ready_nor_run() {
        let node = NodeExecutor {
            containers: None,
            inference: None,
        };
        let wanted = [JobType::Container, JobType::Inference];
        assert!(node.ready_types(&wanted).await.is_empty());
        let execution = node
            .execute(
                &lease(JobType::Container),
                &LogSink::new(),
                &CancellationToken::new(),
            )
            .await;
        assert_eq!(execution.outcome, Outcome::NotStarted);
        assert_eq!(
            execution.reason.as_deref(),
            Some("this node does not run container jobs (spec.jobs.types)")
        );
    }
}
