//! The network jobs running on this node right now, as `/status` shows
//! them and the `garage_network_jobs_running` gauge counts them. Written
//! only by the work task.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use uuid::Uuid;

use crate::coordinator::api::{JobType, Lease};
use crate::metrics::AgentMetrics;

/// One running network job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningJob {
    pub job_id: Uuid,
    pub lease_id: Uuid,
    pub attempt: u32,
    #[serde(rename = "type")]
    pub kind: JobType,
    /// RFC 3339: when this node took the job.
    pub started_at: String,
    /// RFC 3339: the lease's end as the coordinator last said at the claim.
    pub lease_expires_at: String,
}

/// The running jobs, shared by the work task and the status endpoint.
#[derive(Debug, Clone, Default)]
pub struct RunningJobs {
    jobs: Arc<Mutex<BTreeMap<Uuid, RunningJob>>>,
}

impl RunningJobs {
    pub fn new() -> Self {
        RunningJobs::default()
    }

    /// A job started under `lease`.
    pub fn start(&self, lease: &Lease, metrics: &AgentMetrics) {
        let job = RunningJob {
            job_id: lease.job_id,
            lease_id: lease.lease_id,
            attempt: lease.attempt,
            kind: lease.kind,
            started_at: crate::clock::rfc3339_millis(crate::clock::unix_millis()),
            lease_expires_at: lease.expires_at.clone(),
        };
        let mut jobs = self.lock();
        jobs.insert(lease.lease_id, job);
        metrics.network_jobs_running.set(gauge(jobs.len()));
    }

    /// How many jobs of `kind` run now.
    pub fn count_of(&self, kind: JobType) -> usize {
        self.lock().values().filter(|job| job.kind == kind).count()
    }

    /// The job under `lease_id` ended on this node.
    pub fn end(&self, lease_id: Uuid, metrics: &AgentMetrics) {
        let mut jobs = self.lock();
        jobs.remove(&lease_id);
        metrics.network_jobs_running.set(gauge(jobs.len()));
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Every running job, oldest lease first.
    pub fn list(&self) -> Vec<RunningJob> {
        let mut jobs: Vec<RunningJob> = self.lock().values().cloned().collect();
        jobs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        jobs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Uuid, RunningJob>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
