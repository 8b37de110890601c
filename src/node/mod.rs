//! The node commands: `garage validate|schema|plan|apply|down` converge
//! node.yaml once, from the command line, as library calls returning typed
//! results. The one-shot sibling of `agent/` (which converges continuously);
//! both sit above `reconcile/`. Flags and printing are in [`cli`].

pub mod cli;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::gpu::GpuInventory;
use crate::metrics::AgentMetrics;
use crate::reconcile::{plan, Controller, NodeStatus, Plan, Target};
use crate::runtime::docker::DockerRuntime;
use crate::runtime::{ContainerRuntime, RuntimeError};
use crate::spec::{self, NodeSpec, SpecError};

/// Why a node command did not converge the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeCommandError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Engine(#[from] RuntimeError),
    #[error("timed out after {timeout:?} before the node converged:\n{status}")]
    Timeout { timeout: Duration, status: String },
    #[error("some steps failed:\n{}", failures.join("\n"))]
    StepsFailed { failures: Vec<String> },
}

/// Parses and validates a spec file and lowers it for this host.
pub fn load(path: &Path) -> Result<(NodeSpec, Target), NodeCommandError> {
    let spec = spec::load(path)?;
    let target = Target::from_spec(&spec, &GpuInventory::detect())?;
    Ok((spec, target))
}

/// What would change, and why (a dry run).
pub async fn plan_file(path: &Path) -> Result<Plan, NodeCommandError> {
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
) -> Result<ApplyReport, NodeCommandError> {
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
) -> Result<ApplyReport, NodeCommandError> {
    let mut controller = Controller::new(runtime, node, AgentMetrics::new());
    controller.set_target(target);
    let status = controller.status();
    let deadline = Instant::now() + timeout;
    let timed_out = |status: &NodeStatus| NodeCommandError::Timeout {
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
                return Err(NodeCommandError::StepsFailed { failures });
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
pub async fn down(path: &Path) -> Result<usize, NodeCommandError> {
    let spec = spec::load(path)?;
    let runtime = DockerRuntime::connect().await?;
    let owned = runtime.list_owned(spec.name()).await?;
    let removals = owned.iter().map(|c| runtime.remove(&c.id));
    for result in futures::future::join_all(removals).await {
        result?;
    }
    Ok(owned.len())
}
