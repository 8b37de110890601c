//! The one-shot commands behind the CLI (`validate`, `plan`, `apply`,
//! `down`, `status`, `identity`, `register`), as library functions returning
//! typed results; the binary only parses arguments and prints.

pub mod api;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::benchmark::saved::{self, SavedReportError};
use crate::coordinator::{ClientError, CoordinatorClient};
use crate::coordinator_link;
use crate::gpu::GpuInventory;
use crate::identity::{IdentityError, NodeIdentity};
use crate::metrics::AgentMetrics;
use crate::reconcile::{plan, Controller, NodeStatus, Plan, Target};
use crate::runtime::docker::DockerRuntime;
use crate::runtime::{ContainerRuntime, RuntimeError};
use crate::spec::{self, NodeSpec, SpecError};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Engine(#[from] RuntimeError),
    #[error("timed out after {timeout:?} before the node converged:\n{status}")]
    Timeout { timeout: Duration, status: String },
    #[error("some steps failed:\n{}", failures.join("\n"))]
    StepsFailed { failures: Vec<String> },
    #[error("cannot get the agent's status from {url}: {message} (is `garage run` running? check spec.metrics.listen)")]
    Status { url: String, message: String },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{path}: spec.coordinator.url is not set (fix: add `coordinator: {{url: http://HOST:7070}}` under spec)")]
    NoCoordinator { path: std::path::PathBuf },
    #[error(transparent)]
    Benchmark(#[from] SavedReportError),
    #[error("registering with the coordinator")]
    Register(#[source] ClientError),
    #[error("cannot read the join token file {path} (fix: pass the file the admin's `garage coordinator token create` output was saved to)")]
    JoinTokenFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where `register` finds a join token: the file wins over the value
/// (`--join-token` or `GARAGE_JOIN_TOKEN`).
#[derive(Debug, Default)]
pub struct JoinTokenInput {
    pub file: Option<std::path::PathBuf>,
    pub value: Option<String>,
}

impl JoinTokenInput {
    fn read(self) -> Result<Option<String>, CommandError> {
        let text = match self.file {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|source| CommandError::JoinTokenFile { path, source })?,
            ),
            None => self.value,
        };
        Ok(text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
    }
}

/// The node id kept in `state_dir`, made (with its key) when missing.
pub fn identity(state_dir: &Path) -> Result<uuid::Uuid, CommandError> {
    Ok(NodeIdentity::load_or_create(state_dir)?.node_id())
}

/// What `register` got from the coordinator.
#[derive(Debug)]
pub struct Registered {
    pub node_id: uuid::Uuid,
    pub market: String,
    /// False when the node was known and its facts were updated.
    pub created: bool,
    pub coordinator: String,
    pub with_benchmark: bool,
}

/// Registers the node of the spec at `path` with `spec.coordinator.url`,
/// once: its identity from `state_dir`, its GPUs and location, and the
/// benchmark report in `benchmark` (else the one saved in `state_dir`), and
/// the join token a new node needs. Registering again updates the node's
/// facts and needs no token.
pub async fn register(
    path: &Path,
    state_dir: &Path,
    benchmark: Option<&Path>,
    join_token: JoinTokenInput,
) -> Result<Registered, CommandError> {
    let spec = spec::load(path)?;
    let url = spec
        .coordinator_url()
        .ok_or_else(|| CommandError::NoCoordinator {
            path: path.to_path_buf(),
        })?
        .to_string();
    let join_token = join_token.read()?;
    let identity = Arc::new(NodeIdentity::load_or_create(state_dir)?);
    let report = match benchmark {
        Some(file) => Some(saved::read(file)?),
        None => saved::read_saved(state_dir)?,
    };
    let with_benchmark = report.is_some();
    let gpus = tokio::task::spawn_blocking(GpuInventory::detect)
        .await
        .unwrap_or_default();
    let client = CoordinatorClient::new(&url, identity).map_err(CommandError::Register)?;
    let mut request = coordinator_link::registration(&client, &spec, &gpus, report);
    request.join_token = join_token;
    let answer = client
        .register(&request)
        .await
        .map_err(CommandError::Register)?;
    Ok(Registered {
        node_id: client.identity().node_id(),
        market: answer.market,
        created: answer.created,
        coordinator: url,
        with_benchmark,
    })
}

/// Parses and validates a spec file and lowers it for this host.
pub fn load(path: &Path) -> Result<(NodeSpec, Target), CommandError> {
    let spec = spec::load(path)?;
    let target = Target::from_spec(&spec, &GpuInventory::detect())?;
    Ok((spec, target))
}

/// What would change, and why (a dry run).
pub async fn plan_file(path: &Path) -> Result<Plan, CommandError> {
    let (spec, target) = load(path)?;
    let runtime = DockerRuntime::connect().await?;
    let observed = runtime.list_owned(spec.name()).await?;
    Ok(plan(&target.desired, &observed))
}

/// What `apply` did.
#[derive(Debug)]
pub struct ApplyReport {
    /// The plan of the first pass (what was changed).
    pub plan: Plan,
    pub status: NodeStatus,
}

/// Converges once; with `wait`, keeps converging until every component runs
/// (and is healthy where it has a health check) or `timeout` passes.
pub async fn apply(
    path: &Path,
    wait: bool,
    timeout: Duration,
) -> Result<ApplyReport, CommandError> {
    let (spec, target) = load(path)?;
    let runtime = Arc::new(DockerRuntime::connect().await?);
    apply_with(runtime, spec.name(), target, wait, timeout).await
}

/// [`apply`] against any runtime (tests use the fake).
pub async fn apply_with<R: ContainerRuntime>(
    runtime: Arc<R>,
    node: &str,
    target: Target,
    wait: bool,
    timeout: Duration,
) -> Result<ApplyReport, CommandError> {
    let mut controller = Controller::new(runtime, node, AgentMetrics::new());
    controller.set_target(target);
    let status = controller.status();
    let deadline = Instant::now() + timeout;
    let timed_out = |status: &NodeStatus| CommandError::Timeout {
        timeout,
        status: status.render(),
    };
    let mut first_plan = None;
    loop {
        let outcome = match tokio::time::timeout_at(deadline, controller.pass()).await {
            Ok(outcome) => outcome?,
            Err(_) => return Err(timed_out(&status.borrow())),
        };
        let next_wakeup = outcome.next_wakeup;
        first_plan.get_or_insert(outcome.plan);
        while controller.has_in_flight() {
            if tokio::time::timeout_at(deadline, controller.finish_one())
                .await
                .is_err()
            {
                return Err(timed_out(&status.borrow()));
            }
        }
        if !wait {
            // Record the results of this round's steps.
            controller.pass().await?;
            let failures: Vec<String> = status
                .borrow()
                .components
                .iter()
                .filter_map(|c| c.last_error.as_ref().map(|e| format!("{}: {e}", c.name)))
                .collect();
            if !failures.is_empty() {
                return Err(CommandError::StepsFailed { failures });
            }
            break;
        }
        if status.borrow().is_ready() {
            break;
        }
        let poll = Instant::now() + Duration::from_millis(100);
        let wake = next_wakeup.map_or(poll, |w| w.min(deadline).max(poll));
        if wake >= deadline {
            return Err(timed_out(&status.borrow()));
        }
        tokio::time::sleep_until(wake).await;
    }
    let status = status.borrow().clone();
    Ok(ApplyReport {
        plan: first_plan.unwrap_or_default(),
        status,
    })
}

/// Removes every container the node owns; returns how many.
pub async fn down(path: &Path) -> Result<usize, CommandError> {
    let spec = spec::load(path)?;
    let runtime = DockerRuntime::connect().await?;
    let owned = runtime.list_owned(spec.name()).await?;
    let removals = owned.iter().map(|c| runtime.remove(&c.id));
    for result in futures::future::join_all(removals).await {
        result?;
    }
    Ok(owned.len())
}

/// The status a running agent serves at `base_url` (e.g. `http://127.0.0.1:9464`).
pub async fn fetch_status(base_url: &str) -> Result<NodeStatus, CommandError> {
    let url = format!("{}/status", base_url.trim_end_matches('/'));
    let error = |message: String| CommandError::Status {
        url: url.clone(),
        message,
    };
    let response = reqwest::get(&url).await.map_err(|e| error(e.to_string()))?;
    let response = response
        .error_for_status()
        .map_err(|e| error(e.to_string()))?;
    response
        .json::<NodeStatus>()
        .await
        .map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_token_file_wins_over_the_value_and_is_trimmed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("join-token");
        std::fs::write(&file, "gjt_from_file\n").expect("write");
        let both = JoinTokenInput {
            file: Some(file.clone()),
            value: Some("gjt_from_env".into()),
        };
        assert_eq!(both.read().expect("read").as_deref(), Some("gjt_from_file"));
        let value = JoinTokenInput {
            file: None,
            value: Some(" gjt_from_env ".into()),
        };
        assert_eq!(value.read().expect("read").as_deref(), Some("gjt_from_env"));
        assert_eq!(JoinTokenInput::default().read().expect("none"), None);
        let missing = JoinTokenInput {
            file: Some(tmp.path().join("nope")),
            value: None,
        };
        let err = missing.read().expect_err("missing");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
