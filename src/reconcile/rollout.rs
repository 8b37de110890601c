//! Rolling a changed component out safely (issue 18, Nomad's
//! `auto_revert`): the new container starts beside the old one (or, where
//! both cannot run at once — a host port or GPUs — after the old one is
//! stopped, not removed), must be ready within the readiness timeout
//! (healthy where it has a health check, and running for `min_ready`), and
//! only then does the old one go. Otherwise the new one goes and the old
//! one runs on: [`RuntimeError::RolloutFailed`].

use std::time::Duration;

use tokio::time::Instant;

use crate::error_text::one_line;
use crate::runtime::labels;
use crate::runtime::{
    ContainerRuntime, ContainerState, DesiredComponent, GpuRequest, Health, RuntimeError,
};
use crate::spec::RolloutSettings;

/// How often the new container is looked at while it becomes ready.
const READY_POLL: Duration = Duration::from_millis(250);

/// Replaces the container `old_id` of `component` with one of its new
/// configuration, or leaves the old one running.
pub async fn roll_out<R: ContainerRuntime>(
    runtime: &R,
    node: &str,
    component: &DesiredComponent,
    old_id: &str,
    settings: RolloutSettings,
) -> Result<(), RuntimeError> {
    let spec = component.container();
    runtime.ensure_image(&spec.image).await?;
    let exclusive = !spec.ports.is_empty() || spec.gpus != GpuRequest::None;
    if exclusive {
        runtime.stop(old_id).await?;
    }
    // Its own name: the old container keeps its own until it goes.
    let name = format!(
        "{}-{}",
        labels::container_name(node, &component.name),
        component.config().hash.get(..8).unwrap_or("next")
    );
    let created = runtime
        .create(&name, &labels::labels_for(node, component), spec)
        .await;
    let new_id = match created {
        Ok(id) => id,
        Err(err) => {
            restore(runtime, old_id, exclusive).await?;
            return Err(err);
        }
    };
    let ready = match runtime.start(&new_id).await {
        Ok(()) => wait_ready(runtime, node, component, &new_id, settings).await,
        Err(err) => Err(one_line(&err)),
    };
    match ready {
        Ok(()) => runtime.remove(old_id).await,
        Err(reason) => {
            runtime.remove(&new_id).await?;
            restore(runtime, old_id, exclusive).await?;
            Err(RuntimeError::RolloutFailed {
                component: component.name.clone(),
                reason,
            })
        }
    }
}

/// Starts the old container again where it was stopped for the new one.
async fn restore<R: ContainerRuntime>(
    runtime: &R,
    old_id: &str,
    exclusive: bool,
) -> Result<(), RuntimeError> {
    if exclusive {
        runtime.start(old_id).await?;
    }
    Ok(())
}

/// Waits until the container `id` is ready; says why not otherwise.
async fn wait_ready<R: ContainerRuntime>(
    runtime: &R,
    node: &str,
    component: &DesiredComponent,
    id: &str,
    settings: RolloutSettings,
) -> Result<(), String> {
    let checked = component.container().health.is_some();
    let deadline = Instant::now() + settings.readiness_timeout;
    let mut ready_since: Option<Instant> = None;
    loop {
        let observed = runtime
            .list_owned(node)
            .await
            .map_err(|err| one_line(&err))?;
        let container = observed
            .iter()
            .find(|c| c.id == id)
            .ok_or("the new container disappeared")?;
        let now = Instant::now();
        match container.state {
            ContainerState::Running => {
                let healthy = if checked {
                    container.health == Health::Healthy
                } else {
                    container.health != Health::Unhealthy
                };
                if healthy {
                    let since = *ready_since.get_or_insert(now);
                    if now - since >= settings.min_ready {
                        return Ok(());
                    }
                } else {
                    ready_since = None;
                }
            }
            ContainerState::Exited | ContainerState::Dead => {
                let code = container
                    .exit_code
                    .map_or("unknown".to_string(), |code| code.to_string());
                return Err(format!(
                    "the new container exited (code {code}) before it was ready"
                ));
            }
            _ => ready_since = None,
        }
        if now >= deadline {
            return Err(format!(
                "the new container was not ready within {:?} (state {}, health {})",
                settings.readiness_timeout,
                container.state.as_str(),
                container.health.as_str()
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}
