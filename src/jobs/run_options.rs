//! What a job run is given (the node's [`RunOptions`]), what it tells its
//! caller ([`RunEvent`]), and what it refuses before anything starts
//! ([`check`], [`RunError`]). The runner itself is in `runner`.

use crate::gpu::GpuInventory;

use super::engine::{EngineError, LogChunk};
use super::images::HostImages;
use super::job::Job;
use super::limits::DEFAULT_PIDS_LIMIT;
use super::logs::DEFAULT_LOG_CAP;
use super::output::DEFAULT_OUTPUT_CAP;
use super::slots::{JobLocks, SlotError};

/// How the node runs jobs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub node: String,
    /// Jobs that may run at once on the node (`spec.jobs.maxConcurrent`).
    pub max_concurrent: u32,
    pub gpus: GpuInventory,
    /// Slot and run locks, in the node's state directory.
    pub locks: JobLocks,
    /// Images jobs may copy from the host engine (`spec.podman.jobs.hostImages`).
    pub host_images: HostImages,
    /// Pids limit of ops that set none (`spec.podman.jobs.pidsLimit`).
    pub pids_limit: u32,
    /// Log bytes kept per op.
    pub log_cap: usize,
    /// Output-directory bytes read per op.
    pub output_cap: usize,
}

impl RunOptions {
    /// Copies no image from the host engine and uses the default pids limit.
    pub fn new(node: &str, max_concurrent: u32, gpus: GpuInventory, locks: JobLocks) -> Self {
        RunOptions {
            node: node.to_owned(),
            max_concurrent: max_concurrent.max(1),
            gpus,
            locks,
            host_images: HostImages::default(),
            pids_limit: DEFAULT_PIDS_LIMIT,
            log_cap: DEFAULT_LOG_CAP,
            output_cap: DEFAULT_OUTPUT_CAP,
        }
    }
}

/// What the runner tells its caller while a job runs.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// A step, in words ("pulling image …").
    Progress(String),
    /// Output of op `op`.
    Log { op: &'a str, chunk: &'a LogChunk },
}

/// Why a job did not run at all. Once an op has started, failures are in
/// the [`JobReport`] instead.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("job refused before anything started: {reason}")]
    Refused { reason: String },
    #[error("the node's podman host is not ready{}", diagnosis.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotReady {
        diagnosis: Option<String>,
        #[source]
        source: EngineError,
    },
    #[error("no free job slot within the job's timeout ({max} job(s) may run at once; raise spec.jobs.maxConcurrent or try later)")]
    NoSlot { max: u32 },
    #[error(transparent)]
    Lock(#[from] SlotError),
    #[error("cancelled while waiting for a job slot")]
    Cancelled,
}

/// Refuses what this node can never run (GPU work on a node without
/// GPUs, more VRAM than any GPU has). Touches no engine.
pub fn check(job: &Job, options: &RunOptions) -> Result<(), RunError> {
    let gpus = &options.gpus;
    if let Some(op) = job.ops.iter().find(|op| op.gpu) {
        if gpus.count() == 0 {
            return Err(RunError::Refused {
                reason: format!(
                    "op `{}` asks for a GPU (`gpu: true`) but node {} has none ({})",
                    op.id,
                    options.node,
                    gpus.unavailable_reason
                        .as_deref()
                        .unwrap_or("NVML found no devices")
                ),
            });
        }
    }
    if let Some(needed) = job.required_vram_bytes.filter(|&b| b > 0) {
        let largest = gpus
            .devices
            .iter()
            .map(|d| d.memory_total_bytes)
            .max()
            .unwrap_or(0);
        if largest < needed {
            return Err(RunError::Refused {
                reason: format!(
                    "the job needs {:.1} GB of GPU memory; the largest GPU of node {} has {:.1} GB",
                    needed as f64 / 1e9,
                    options.node,
                    largest as f64 / 1e9
                ),
            });
        }
    }
    Ok(())
}
