//! Lowering a validated spec onto one host: resolves each component's GPU
//! request against the inventory and yields the reconciler's `DesiredState`,
//! each component with its config hash computed once, here. Host facts
//! (GPUs, the NVIDIA persistence daemon's directory) come in through the
//! inventory; nothing here looks at the host.

use crate::gpu::GpuInventory;
use crate::runtime::{ComponentKind, DesiredComponent, DesiredState, GpuRequest};

use super::component::podman_gpu_access;
use super::node::{GpuWant, NodeSpec, UnresolvedComponent};
use super::SpecError;

impl NodeSpec {
    /// What this node must run on a host with `gpus`. Fails only when the
    /// spec explicitly asks for GPUs the host does not have.
    pub fn desired(&self, gpus: &GpuInventory) -> Result<DesiredState, SpecError> {
        let components = self
            .components
            .iter()
            .map(|component| lower(component, gpus))
            .collect::<Result<_, _>>()?;
        Ok(DesiredState {
            node: self.name.clone(),
            components,
        })
    }
}

fn lower(
    template: &UnresolvedComponent,
    gpus: &GpuInventory,
) -> Result<DesiredComponent, SpecError> {
    let mut container = template.container.clone();
    container.gpus = resolve(template, gpus)?;
    if template.kind == ComponentKind::Podman && container.gpus != GpuRequest::None {
        podman_gpu_access(&mut container, gpus.persistenced_dir.as_deref());
    }
    Ok(DesiredComponent::new(
        template.name.clone(),
        template.kind,
        template.restart,
        container,
    ))
}

fn resolve(template: &UnresolvedComponent, gpus: &GpuInventory) -> Result<GpuRequest, SpecError> {
    let count = gpus.count();
    let no_gpu = || SpecError::Unavailable {
        site: template.gpu_site.clone(),
        message: format!(
            "this host has no GPU ({})",
            gpus.unavailable_reason
                .as_deref()
                .unwrap_or("NVML found no devices")
        ),
        fix: format!(
            "use `{setting}: auto` or `{setting}: none`",
            setting = template.gpu_setting
        ),
    };
    match &template.gpu {
        GpuWant::None => Ok(GpuRequest::None),
        GpuWant::Auto if count == 0 => Ok(GpuRequest::None),
        GpuWant::Auto => Ok(GpuRequest::All),
        GpuWant::All | GpuWant::Indices(_) if count == 0 => Err(no_gpu()),
        GpuWant::All => Ok(GpuRequest::All),
        GpuWant::Indices(indices) => match indices.iter().find(|&&i| i as usize >= count) {
            Some(index) => Err(SpecError::Unavailable {
                site: template.gpu_site.clone(),
                message: format!("GPU index {index} does not exist; this host has {count} GPU(s)"),
                fix: format!("use indices 0 to {}", count - 1),
            }),
            None => Ok(GpuRequest::Indices(indices.clone())),
        },
    }
}

#[cfg(test)]
#[path = "lower_tests.rs"]
mod tests;
