//! Executes one planned step through the runtime. Each step is safe to
//! repeat, and a recreate makes sure the new image is present before it
//! removes the old container, so a missing image never takes a running
//! component down.

use crate::runtime::labels;
use crate::runtime::{ContainerRuntime, DesiredComponent, RuntimeError};
use crate::spec::RolloutSettings;

use super::plan::{Action, Cause, Step};
use super::rollout;

/// Runs `step`; `desired` is the component's spec (absent for orphans). A
/// changed configuration is rolled out (`rollout`); a dead container is
/// replaced.
pub async fn execute<R: ContainerRuntime>(
    runtime: &R,
    node: &str,
    desired: Option<&DesiredComponent>,
    step: &Step,
    rollout: RolloutSettings,
) -> Result<(), RuntimeError> {
    match (step.action, desired) {
        (Action::Remove, _) => remove_existing(runtime, step).await,
        (Action::Start, _) => match &step.container_id {
            Some(id) => runtime.start(id).await,
            None => Ok(()),
        },
        (Action::Create, Some(component)) => create_and_start(runtime, node, component).await,
        (Action::Recreate, Some(component)) if is_change(&step.cause) => match &step.container_id {
            Some(old_id) => rollout::roll_out(runtime, node, component, old_id, rollout).await,
            None => create_and_start(runtime, node, component).await,
        },
        (Action::Recreate, Some(component)) => {
            runtime.ensure_image(&component.container().image).await?;
            remove_existing(runtime, step).await?;
            create_and_start(runtime, node, component).await
        }
        // A create or recreate always comes with its component; nothing to do otherwise.
        (Action::Create | Action::Recreate, None) => Ok(()),
    }
}

/// A new configuration, as opposed to a container to replace as it was.
fn is_change(cause: &Cause) -> bool {
    matches!(
        cause,
        Cause::ConfigChanged { .. } | Cause::HashVersionChanged { .. }
    )
}

async fn remove_existing<R: ContainerRuntime>(
    runtime: &R,
    step: &Step,
) -> Result<(), RuntimeError> {
    match &step.container_id {
        Some(id) => runtime.remove(id).await,
        None => Ok(()),
    }
}

async fn create_and_start<R: ContainerRuntime>(
    runtime: &R,
    node: &str,
    component: &DesiredComponent,
) -> Result<(), RuntimeError> {
    runtime.ensure_image(&component.container().image).await?;
    let name = labels::container_name(node, &component.name);
    let id = runtime
        .create(
            &name,
            &labels::labels_for(node, component),
            component.container(),
        )
        .await?;
    runtime.start(&id).await
}
