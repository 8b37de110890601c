//! The node agent (`garage run`): wires the spec watch, the engine's event
//! stream, the reconcile controller, the HTTP endpoints and (with
//! `spec.coordinator`) the coordinator heartbeats, (with `spec.jobs.accept`)
//! the work task that runs network jobs, (with `spec.gateway.serve`) the
//! gateway link, and the energy monitor (power draw,
//! solar production), under one supervisor. The
//! first task to fail stops the rest; a stop (SIGTERM) leaves every workload
//! running.

pub mod cli;
pub mod events;
pub mod git_source;
pub mod http;
pub mod lock;
pub mod spec_source;
mod work_task;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::benchmark::saved;
use crate::coordinator::api::JobType;
use crate::coordinator::CoordinatorClient;
use crate::coordinator_link;
use crate::energy::EnergyMonitor;
use crate::gateway_link::{self, LinkSettings};
use crate::gitops::GitSource;
use crate::gpu::GpuInventory;
use crate::http_server;
use crate::identity::{IdentityError, NodeIdentity};
use crate::metrics::AgentMetrics;
use crate::reconcile::{Controller, JobsOn, Target};
use crate::runtime::docker::DockerRuntime;
use crate::runtime::ComponentKind;
use crate::runtime::RuntimeError;
use crate::spec::{self, SpecError};
use crate::supervisor::{supervise, TaskPanicked};
use crate::watch::{SpecWatch, WatchError};
use crate::work::RunningJobs;

use lock::{LockError, NodeLock, LOCK_ROOT};
use spec_source::SpecSource;

/// Quiet time after the last write to node.yaml before it is read: long
/// enough that a burst of saves is one revision (issue 9, D16: 20 saves in
/// 2 s recreated a container 5 times).
pub const SPEC_DEBOUNCE: Duration = Duration::from_millis(500);
/// Retry delay while the engine does not answer at start (the node lock
/// is keyed by the engine's id).
const ENGINE_WAIT: Duration = Duration::from_secs(1);

/// Why the agent could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot read the node spec {path} (fix: check the path, or create one from examples/node.yaml)")]
    ReadSpec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start: {path} is not a valid node spec")]
    InitialSpec {
        path: PathBuf,
        #[source]
        source: SpecError,
    },
    #[error(transparent)]
    Engine(#[from] RuntimeError),
    #[error("cannot watch the spec file")]
    Watch(#[from] WatchError),
    #[error("cannot listen on {addr} for /status and /metrics (is another agent running? change spec.metrics.listen)")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the node identity for spec.coordinator")]
    Identity(#[source] IdentityError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot open the job slots for spec.jobs in the state directory")]
    JobSlots(#[source] crate::jobs::slots::SlotError),
    #[error(transparent)]
    Git(#[from] git_source::StartError),
    #[error(transparent)]
    Panicked(#[from] TaskPanicked),
}

/// Where the node's spec comes from.
#[derive(Debug, Clone)]
pub enum SpecOrigin {
    /// A file, watched for saves.
    File(PathBuf),
    /// A git repository, polled (`garage run --git`).
    Git(GitSource),
}

/// The spec the agent starts from, and how it goes on reading it.
struct Start {
    /// The file, or the git source's label, as errors name it.
    path: PathBuf,
    text: String,
    revision: Option<String>,
    git: Option<(
        GitSource,
        Option<Arc<crate::gitops::signature::AllowedSigners>>,
    )>,
}

async fn start(origin: &SpecOrigin, state_dir: &Path) -> Result<Start, AgentError> {
    match origin {
        SpecOrigin::File(path) => {
            let text = spec::read_text(path).map_err(|err| match err {
                spec::SpecError::Read { source, .. } => AgentError::ReadSpec {
                    path: path.to_path_buf(),
                    source,
                },
                other => AgentError::InitialSpec {
                    path: path.to_path_buf(),
                    source: other,
                },
            })?;
            Ok(Start {
                path: path.clone(),
                text,
                revision: None,
                git: None,
            })
        }
        SpecOrigin::Git(source) => {
            let signers = git_source::signers(source).map_err(git_source::StartError::from)?;
            let first = git_source::first_revision(source, state_dir, signers.clone()).await?;
            tracing::info!(url = %source.url, reference = %source.reference, commit = %first.commit, "starting from the git spec");
            Ok(Start {
                path: PathBuf::from(source.label()),
                text: first.text,
                revision: Some(first.commit),
                git: Some((source.clone(), signers)),
            })
        }
    }
}

/// The spec `garage run` starts from when no node.yaml exists yet.
pub const DEFAULT_SPEC: &str = include_str!("../../examples/node.yaml");

/// Returns `path`, first writing [`DEFAULT_SPEC`] there when nothing exists.
pub fn ensure_default_spec(path: &Path) -> Result<PathBuf, std::io::Error> {
    if !path.exists() {
        std::fs::write(path, DEFAULT_SPEC)?;
        tracing::info!(path = %path.display(), "wrote the default node spec; edit it and the agent converges to it");
    }
    Ok(path.to_path_buf())
}

/// Runs the agent for the spec from `origin` until `cancel` fires. The
/// node's identity (and a git spec's repository) lives in `state_dir` (made
/// there at first start when the spec names a coordinator).
pub async fn run(
    origin: &SpecOrigin,
    state_dir: &Path,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let Start {
        path,
        text: initial_text,
        revision,
        git,
    } = start(origin, state_dir).await?;
    let path = path.as_path();
    let spec = spec::parse(&initial_text, path).map_err(|source| AgentError::InitialSpec {
        path: path.to_path_buf(),
        source,
    })?;
    spec_source::log_warnings(&spec);
    let gpus = tokio::task::spawn_blocking(GpuInventory::detect)
        .await
        .unwrap_or_default();
    match &gpus.unavailable_reason {
        Some(reason) => tracing::info!(%reason, "no GPU: running CPU-only"),
        None => tracing::info!(count = gpus.count(), "GPUs found"),
    }
    let target = Target::from_spec(&spec, &gpus).map_err(|source| AgentError::InitialSpec {
        path: path.to_path_buf(),
        source,
    })?;
    let target_revision = revision.clone();
    let target = Target { revision, ..target };
    let node = spec.name().to_string();
    let metrics = AgentMetrics::new();
    let runtime = Arc::new(DockerRuntime::connect().await?);
    let Some(engine_id) = engine_id(&runtime, &cancel).await else {
        return Ok(());
    };
    let lock = NodeLock::acquire(Path::new(LOCK_ROOT), &engine_id, &node, path)?;
    tracing::info!(lock = %lock.path().display(), "holding the node lock");
    let mut controller = Controller::new(Arc::clone(&runtime), &node, metrics.clone());
    controller.set_target(target);
    let running = RunningJobs::new();
    controller.protect_jobs(jobs_on(running.clone()));
    let status = controller.status();

    let listen = spec.metrics_listen();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: listen,
            source,
        })?;
    tracing::info!(%listen, node = %node, "agent serving /status, /metrics, /healthz, /readyz");

    let client = match spec.coordinator_url() {
        Some(url) => {
            let identity = NodeIdentity::load_or_create(state_dir).map_err(AgentError::Identity)?;
            match CoordinatorClient::new(url, Arc::new(identity)) {
                Ok(client) => {
                    tracing::info!(%url, node_id = %client.identity().node_id(), "reporting to the coordinator");
                    Some(client)
                }
                Err(err) => {
                    tracing::error!(error = %err, "not reporting to the coordinator");
                    None
                }
            }
        }
        None => None,
    };
    // spec.gc too.
    let collector = spec.gc().map(|settings| {
        crate::gc::Collector::new(
            Arc::clone(&runtime),
            &node,
            spec.podman().cloned(),
            settings,
            state_dir,
            metrics.clone(),
        )
    });
    // spec.power is read at start, like spec.coordinator and spec.jobs.
    let energy = EnergyMonitor::for_host(spec.power(), metrics.clone());
    let heartbeats = client.clone().map(|client| {
        let benchmark = saved::read_saved(state_dir).unwrap_or_else(|err| {
            tracing::warn!(error = %crate::error_text::one_line(&err), "registering without the saved benchmark");
            None
        });
        let registration = coordinator_link::registration(&client, &spec, &gpus, benchmark);
        coordinator_link::run(
            client,
            registration,
            gpus.clone(),
            status.clone(),
            energy.subscribe(),
            metrics.clone(),
        )
    });
    // spec.gateway is read at start too; without a coordinator (or a
    // client for it) there is no link, and /status shows no `gateway`.
    let (gateway_tx, gateway_rx) = watch::channel(None);
    let gateway = client
        .clone()
        .zip(LinkSettings::from_spec(&spec))
        .map(|(client, settings)| {
            gateway_link::run(
                client,
                settings,
                gateway_tx,
                metrics.clone(),
                cancel.clone(),
            )
        });
    let work = match client.filter(|_| spec.jobs().accept) {
        Some(client) => work_task::work(
            client,
            &spec,
            &gpus,
            state_dir,
            work_task::Shared {
                running: running.clone(),
                metrics: metrics.clone(),
                energy: energy.clone(),
            },
            cancel.clone(),
        )
        .map_err(AgentError::JobSlots)?,
        None => None,
    };

    let (inputs_tx, inputs_rx) = mpsc::channel(256);
    let source = SpecSource::new(
        path.to_path_buf(),
        &node,
        gpus,
        initial_text,
        metrics.clone(),
    );

    let mut tasks: JoinSet<Result<(), AgentError>> = JoinSet::new();
    match git {
        Some((git, signers)) => {
            let poller = git_source::Poller::new(
                git,
                state_dir,
                signers,
                source,
                target_revision,
                metrics.clone(),
            );
            tasks.spawn(until_cancelled(
                cancel.clone(),
                poller.run(inputs_tx.clone()),
            ));
        }
        None => {
            let (ticks_tx, ticks_rx) = mpsc::channel(8);
            let watch = SpecWatch::new(path, SPEC_DEBOUNCE)?;
            tasks.spawn(until_cancelled(cancel.clone(), watch.run(ticks_tx)));
            tasks.spawn(until_cancelled(
                cancel.clone(),
                source.run(ticks_rx, inputs_tx.clone()),
            ));
        }
    }
    let events = events::forward_events(
        Arc::clone(&runtime),
        node.clone(),
        inputs_tx,
        metrics.clone(),
    );
    tasks.spawn(until_cancelled(cancel.clone(), events));
    tasks.spawn(until_cancelled(cancel.clone(), energy.clone().run()));
    if let Some(collector) = collector {
        tasks.spawn(until_cancelled(cancel.clone(), collector.run()));
    }
    if let Some(heartbeats) = heartbeats {
        tasks.spawn(until_cancelled(cancel.clone(), heartbeats));
    }
    if let Some(gateway) = gateway {
        // Not `until_cancelled`: on a stop it closes the link itself.
        tasks.spawn(async move {
            gateway.await;
            Ok(())
        });
    }
    if let Some(work) = work {
        // Not `until_cancelled`: on a stop it stops its jobs itself.
        tasks.spawn(async move {
            work.await;
            Ok(())
        });
    }
    {
        let cancel = cancel.clone();
        tasks.spawn(async move {
            controller.run(inputs_rx, cancel).await;
            Ok(())
        });
    }
    {
        let cancel = cancel.clone();
        let app = http_server::with_request_timeout(
            http::router(status, metrics, running, energy.subscribe(), gateway_rx),
            http_server::REQUEST_TIMEOUT,
        );
        tasks.spawn(async move {
            let limits = http_server::ServerLimits::for_this_process();
            http_server::serve(listener, app, limits, cancel.cancelled_owned()).await;
            Ok(())
        });
    }
    let result = supervise(tasks, cancel.clone().cancelled_owned(), &cancel, "agent").await;
    drop(lock);
    result
}

/// The engine's id, waiting for the engine to answer; `None` when
/// cancelled first.
async fn engine_id(runtime: &DockerRuntime, cancel: &CancellationToken) -> Option<String> {
    let mut logged = false;
    loop {
        match runtime.engine_id().await {
            Ok(id) => return Some(id),
            Err(err) if !logged => {
                tracing::warn!(error = %crate::error_text::one_line(&err), "waiting for the engine to answer before taking the node lock");
                logged = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(ENGINE_WAIT) => {}
        }
    }
}

/// The network jobs each kind of component carries: the worker answers
/// inference jobs, the podman host runs container jobs.
fn jobs_on(running: RunningJobs) -> JobsOn {
    JobsOn(Arc::new(move |kind| match kind {
        ComponentKind::Worker => running.count_of(JobType::Inference),
        ComponentKind::Podman => running.count_of(JobType::Container),
        ComponentKind::Extra => 0,
    }))
}

/// Runs a plain loop until it ends or `cancel` fires.
async fn until_cancelled(
    cancel: CancellationToken,
    task: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = task => {}
    }
    Ok(())
}
