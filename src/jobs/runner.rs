//! Runs one job through a [`JobEngine`]: refuse what this node cannot run
//! before anything starts, wait for a job slot, sweep what crashed runs
//! left behind, bring the images in (as `images` admits them), run the ops
//! in order on a network of their own under one deadline and the node's
//! limits, capture logs and results, and remove everything the run created,
//! whatever happened.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::runtime::labels;

use super::cleanup;
use super::engine::{EngineError, ImageSource, JobContainer, JobEngine};
use super::images;
use super::job::{Job, RunOp};
use super::logs::LogCapture;
use super::outcome::{JobReport, JobStatus, OpReport};
use super::output;

pub use super::run_options::{check, RunError, RunEvent, RunOptions};

/// How long logs may trail the container's exit.
const LOG_GRACE: Duration = Duration::from_secs(2);

/// Runs jobs on one node.
#[derive(Debug)]
pub struct Runner<E: JobEngine> {
    engine: Arc<E>,
    options: RunOptions,
    /// Set once "limits are not enforced" was logged.
    told_unenforced: AtomicBool,
}

type Observer<'o> = &'o (dyn Fn(RunEvent<'_>) + Send + Sync);

impl<E: JobEngine> Runner<E> {
    pub fn new(engine: Arc<E>, options: RunOptions) -> Self {
        Runner {
            engine,
            options,
            told_unenforced: AtomicBool::new(false),
        }
    }

    /// See [`check`].
    pub fn check(&self, job: &Job) -> Result<(), RunError> {
        check(job, &self.options)
    }

    /// Runs `job` to the end. `cancel` stops it like its deadline would.
    pub async fn run(
        &self,
        job: &Job,
        observer: Observer<'_>,
        cancel: &CancellationToken,
    ) -> Result<JobReport, RunError> {
        self.check(job)?;
        if let Err(source) = self.engine.ping().await {
            return Err(RunError::NotReady {
                diagnosis: self.engine.diagnose().await,
                source,
            });
        }
        let limits = self.engine.limits().await;
        if !limits.is_enforced() && !self.told_unenforced.swap(true, Ordering::Relaxed) {
            tracing::warn!(limits = %limits.describe(), node = %self.options.node, "job resource limits are not enforced on this host");
        }
        observer(RunEvent::Progress(format!(
            "resource limits {}",
            limits.describe()
        )));
        let started = Instant::now();
        let started_at = crate::clock::rfc3339_secs(SystemTime::now());
        let deadline = started + job.timeout;
        let node = &self.options.node;
        let locks = &self.options.locks;
        let max = self.options.max_concurrent;
        let slot = tokio::select! {
            slot = locks.wait_for_slot(max, deadline, || {
                observer(RunEvent::Progress(format!(
                    "waiting for a free job slot ({max} job(s) may run at once)"
                )));
            }) => slot?.ok_or(RunError::NoSlot { max })?,
            () = cancel.cancelled() => return Err(RunError::Cancelled),
        };
        let run_id = new_run_id();
        let _run_lock = locks.hold_run(&run_id)?;
        let mut notes = Vec::new();
        for error in self.sweep(Some(&run_id)).await {
            notes.push(format!("sweep of earlier runs: {error}"));
        }
        observer(RunEvent::Progress(format!(
            "job {} run {run_id} on node {node} (slot {})",
            job.name, slot.name
        )));
        let mut run = Run {
            runner: self,
            job,
            run_id: run_id.clone(),
            deadline,
            observer,
            cancel,
            ops: Vec::new(),
            notes,
            host_lost: AtomicBool::new(false),
        };
        let (status, reason) = run.execute().await;
        let host_lost = run.host_lost.load(Ordering::Relaxed);
        let Run { ops, notes, .. } = run;
        let cleanup_errors = cleanup::cleanup_run(&*self.engine, &self.options.node, &run_id).await;
        drop(slot);
        Ok(JobReport {
            job: job.name.clone(),
            node: node.clone(),
            run_id,
            status,
            reason,
            host_lost,
            started_at,
            duration_seconds: started.elapsed().as_secs_f64(),
            limits: limits.describe(),
            ops,
            cleanup_errors,
            notes,
        })
    }

    /// Removes what job runs of this node left behind, except runs still
    /// alive (their process holds the run lock) and `keep`. Returns the
    /// errors; an unreachable engine is one error, retried next time.
    pub async fn sweep(&self, keep: Option<&str>) -> Vec<String> {
        cleanup::sweep(&*self.engine, &self.options.node, &self.options.locks, keep).await
    }
}

/// One run in progress.
struct Run<'r, E: JobEngine> {
    runner: &'r Runner<E>,
    job: &'r Job,
    run_id: String,
    deadline: Instant,
    observer: Observer<'r>,
    cancel: &'r CancellationToken,
    ops: Vec<OpReport>,
    notes: Vec<String>,
    /// A step failed because the podman host is gone.
    host_lost: AtomicBool,
}

/// Why an op or a step stopped early.
enum Stop {
    Deadline,
    Cancelled,
    Engine(EngineError),
}

impl<E: JobEngine> Run<'_, E> {
    fn engine(&self) -> &E {
        &self.runner.engine
    }

    fn labels(&self, op: Option<&str>) -> BTreeMap<String, String> {
        labels::job_labels(&self.runner.options.node, &self.job.name, &self.run_id, op)
    }

    fn name(&self, part: &str) -> String {
        format!("garage-job-{}-{part}", self.run_id)
    }

    /// Runs `step` unless the deadline passes or the run is cancelled first.
    async fn bounded<T>(
        &self,
        step: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, Stop> {
        tokio::select! {
            result = step => result.map_err(Stop::Engine),
            () = tokio::time::sleep_until(self.deadline) => Err(Stop::Deadline),
            () = self.cancel.cancelled() => Err(Stop::Cancelled),
        }
    }

    async fn stop_reason(&self, stop: Stop, during: &str) -> (JobStatus, String) {
        match stop {
            Stop::Deadline => (
                JobStatus::TimedOut,
                format!(
                    "timed out after the job's timeout of {} while {during}",
                    humantime::format_duration(self.job.timeout)
                ),
            ),
            Stop::Cancelled => (JobStatus::Failed, format!("cancelled while {during}")),
            Stop::Engine(err) => {
                let reason = match self.engine().diagnose().await {
                    Some(why) => {
                        self.host_lost.store(true, Ordering::Relaxed);
                        format!("lost the podman host while {during}: {why} ({err})")
                    }
                    None => format!("{err} while {during}"),
                };
                (JobStatus::Failed, reason)
            }
        }
    }

    async fn execute(&mut self) -> (JobStatus, Option<String>) {
        let mut sources = BTreeMap::new();
        for image in self.job.images() {
            (self.observer)(RunEvent::Progress(format!("image {image}")));
            let step = images::ensure_image(
                self.engine(),
                &self.runner.options.host_images,
                &image,
                |text| (self.observer)(RunEvent::Progress(text)),
            );
            match self.bounded(step).await {
                Ok(source) => {
                    sources.insert(image, source);
                }
                Err(stop) => {
                    let (status, reason) = self
                        .stop_reason(stop, &format!("bringing image {image} into podman"))
                        .await;
                    return (status, Some(reason));
                }
            }
        }
        let network = self.name("net");
        let labels = self.labels(None);
        let network_step = self.engine().create_network(&network, &labels);
        if let Err(stop) = self.bounded(network_step).await {
            let (status, reason) = self.stop_reason(stop, "creating the job's network").await;
            return (status, Some(reason));
        }
        for volume in self.job.volumes() {
            let name = self.name(&format!("vol-{volume}"));
            let step = self.engine().create_volume(&name, &labels);
            if let Err(stop) = self.bounded(step).await {
                let (status, reason) = self
                    .stop_reason(stop, &format!("creating volume {volume}"))
                    .await;
                return (status, Some(reason));
            }
        }
        for op in &self.job.ops {
            let report = self
                .run_op(op, &network, sources.get(&op.image).copied())
                .await;
            let status = report.status;
            let reason = report.reason.clone();
            self.ops.push(report);
            if status != JobStatus::Succeeded {
                let reason = reason.map(|r| format!("op `{}`: {r}", op.id));
                return (status, reason);
            }
        }
        (JobStatus::Succeeded, None)
    }

    fn container_spec(&self, op: &RunOp, network: &str) -> JobContainer {
        JobContainer {
            image: op.image.clone(),
            entrypoint: op.entrypoint.clone(),
            cmd: op.cmd.clone(),
            env: op.env.clone(),
            work_dir: op.work_dir.clone(),
            labels: self.labels(Some(&op.id)),
            network: network.to_owned(),
            volumes: op
                .volumes
                .iter()
                .map(|v| {
                    (
                        self.name(&format!("vol-{}", v.name)),
                        v.dest.clone(),
                        v.read_only,
                    )
                })
                .collect(),
            expose: op.expose.clone(),
            limits: super::job::Limits {
                pids: op.limits.pids.or(Some(self.runner.options.pids_limit)),
                ..op.limits
            },
            gpu: op.gpu,
        }
    }

    async fn run_op(&self, op: &RunOp, network: &str, source: Option<ImageSource>) -> OpReport {
        let started = Instant::now();
        let name = self.name(&op.id);
        let mut report = OpReport {
            id: op.id.clone(),
            image: op.image.clone(),
            image_source: source,
            container: Some(name.clone()),
            status: JobStatus::Failed,
            exit_code: None,
            reason: None,
            duration_seconds: 0.0,
            logs: LogCapture::new(0, Vec::new()).finish().0,
            results: op.results.iter().map(|e| (e.name.clone(), None)).collect(),
            files: Vec::new(),
        };
        (self.observer)(RunEvent::Progress(format!("op {}: starting {name}", op.id)));
        let spec = self.container_spec(op, network);
        let id = match self
            .bounded(self.engine().create_container(&name, &spec))
            .await
        {
            Ok(id) => id,
            Err(stop) => {
                let (status, reason) = self.stop_reason(stop, "creating the container").await;
                report.status = status;
                report.reason = Some(reason);
                return report;
            }
        };
        if let Err(stop) = self.bounded(self.engine().start(&id)).await {
            let (status, reason) = self.stop_reason(stop, "starting the container").await;
            report.status = status;
            report.reason = Some(reason);
            return report;
        }
        let mut capture = LogCapture::new(self.runner.options.log_cap, op.results.clone());
        let mut logs = self.engine().logs(&id);
        let mut logs_open = true;
        let wait = self.engine().wait(&id);
        tokio::pin!(wait);
        let outcome = loop {
            tokio::select! {
                chunk = logs.next(), if logs_open => match chunk {
                    Some(Ok(chunk)) => {
                        (self.observer)(RunEvent::Log { op: &op.id, chunk: &chunk });
                        capture.push(&chunk);
                    }
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "log stream ended with an error");
                        logs_open = false;
                    }
                    None => logs_open = false,
                },
                code = &mut wait => break code.map_err(Stop::Engine),
                () = tokio::time::sleep_until(self.deadline) => break Err(Stop::Deadline),
                () = self.cancel.cancelled() => break Err(Stop::Cancelled),
            }
        };
        let killed = matches!(outcome, Err(Stop::Deadline | Stop::Cancelled));
        if killed {
            if let Err(err) = self.engine().kill(&id).await {
                tracing::warn!(error = %err, "killing the job container failed");
            }
        }
        // What the container wrote just before it ended may still be in flight.
        let drain = async {
            while logs_open {
                match logs.next().await {
                    Some(Ok(chunk)) => {
                        (self.observer)(RunEvent::Log {
                            op: &op.id,
                            chunk: &chunk,
                        });
                        capture.push(&chunk);
                    }
                    _ => logs_open = false,
                }
            }
        };
        let _ = tokio::time::timeout(LOG_GRACE, drain).await;
        match outcome {
            Ok(code) => {
                report.exit_code = Some(code);
                if code == 0 {
                    report.status = JobStatus::Succeeded;
                } else {
                    report.reason = Some(format!("exited with code {code}"));
                }
                if let Some(dir) = &op.output {
                    let cap = self.runner.options.output_cap;
                    match self.engine().copy_out(&id, dir, cap).await {
                        Ok(archive) => report.files = output::files(&archive),
                        Err(err) => {
                            report.reason.get_or_insert(format!(
                                "exited with code {code}; reading output directory {dir}: {err}"
                            ));
                        }
                    }
                }
            }
            Err(stop) => {
                let (status, reason) = self.stop_reason(stop, "the container ran").await;
                report.status = status;
                report.reason = Some(reason);
                if killed {
                    report.exit_code =
                        tokio::time::timeout(Duration::from_secs(5), self.engine().wait(&id))
                            .await
                            .ok()
                            .and_then(Result::ok);
                }
            }
        }
        let (logs, results) = capture.finish();
        report.logs = logs;
        report.results = results;
        report.duration_seconds = started.elapsed().as_secs_f64();
        report
    }
}

/// 12 hex digits of a random (v4) UUID: unique per run on a node, short
/// enough for the container, network and volume names built from it.
fn new_run_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(12);
    id
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
