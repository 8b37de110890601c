//! `garage job …`: the job subcommands, their flags and output, and the
//! library call behind `garage job run` (load the job and the node spec,
//! connect to the node's podman host and run). New job commands are
//! variants of [`JobCommand`].

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use crate::document::DocumentError;
use crate::gpu::GpuInventory;
use crate::runtime::docker::PodmanJobEngine;
use crate::spec;

use super::engine::EngineError;
use super::outcome::{JobReport, JobStatus};
use super::runner::{check, RunError, RunEvent, RunOptions, Runner};
use super::slots::{JobLocks, SlotError};

/// `garage job` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run a job file in the node's podman host; logs stream to stderr, the
    /// result is printed as JSON. Exit 0 succeeded, 1 failed, timed out or refused.
    Run {
        file: PathBuf,
        /// The node spec naming the podman host.
        #[arg(long = "node-file", default_value = "node.yaml")]
        node_file: PathBuf,
        /// The node's state directory, holding its job-slot locks (default
        /// `.garage` next to the node file, as `garage run` uses).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Check a job file; exit 0 when valid, 1 with the error's file:line:column when not.
    Validate { file: PathBuf },
    /// Print the JSON Schema of job files.
    Schema,
    /// Jobs on the network, through a coordinator (submit, get, list, logs, cancel).
    #[command(flatten)]
    Network(crate::coordinator::jobs::cli::NetworkJobCommand),
}

impl JobCommand {
    /// Runs the command and prints its result on stdout; `garage job run`
    /// kills the job and cleans up when `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<ExitCode, JobCommandError> {
        match self {
            JobCommand::Network(command) => {
                let succeeded = crate::coordinator::jobs::cli::run(command).await?;
                return Ok(ExitCode::from(u8::from(!succeeded)));
            }
            JobCommand::Validate { file } => {
                let job = super::load(&file)?;
                println!(
                    "{}: valid (job {}, {} op(s))",
                    file.display(),
                    job.name,
                    job.ops.len()
                );
            }
            JobCommand::Schema => {
                let schema = super::schema();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&schema).unwrap_or_default()
                );
            }
            JobCommand::Run {
                file,
                node_file,
                state_dir,
            } => {
                let state_dir =
                    state_dir.unwrap_or_else(|| crate::spec::default_state_dir(&node_file));
                let job = run_until(&file, &node_file, &state_dir, stop).await?;
                println!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
                if job.status != JobStatus::Succeeded {
                    return Err(JobCommandError::NotSucceeded {
                        status: job.status.as_str(),
                        reason: job.reason.unwrap_or_default(),
                    });
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// [`run_file`] with progress and the job's logs on stderr, killed when
/// `stop` resolves.
async fn run_until(
    file: &Path,
    node_file: &Path,
    state_dir: &Path,
    stop: impl Future<Output = ()>,
) -> Result<JobReport, JobCommandError> {
    let observer = |event: RunEvent<'_>| match event {
        RunEvent::Progress(text) => eprintln!("==> {text}"),
        RunEvent::Log { chunk, .. } => {
            let _ = std::io::stderr().write_all(&chunk.bytes);
        }
    };
    let cancel = CancellationToken::new();
    let run = run_file(file, node_file, state_dir, &observer, &cancel);
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => result,
        () = stop => {
            eprintln!("==> stop signal: killing the job and cleaning up");
            cancel.cancel();
            run.await
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobCommandError {
    /// The job file or the node spec.
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("{}: node {node} has no podman host (fix: add a `podman:` section to spec, then `garage apply -f {}`)", file.display(), file.display())]
    NoPodman { file: PathBuf, node: String },
    #[error("cannot reach the podman host of node {node} (fix: start it with `garage apply -f {} --wait`, or keep `garage run` running)", file.display())]
    Connect {
        node: String,
        file: PathBuf,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Locks(#[from] SlotError),
    #[error(transparent)]
    Network(#[from] crate::coordinator::jobs::cli::JobCliError),
    #[error(transparent)]
    Run(#[from] RunError),
    /// The job ran and did not succeed (its report is printed).
    #[error("job {status}: {reason}")]
    NotSucceeded {
        status: &'static str,
        reason: String,
    },
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
