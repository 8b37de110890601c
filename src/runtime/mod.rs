//! The narrow seam between the reconciler and a container engine.
//!
//! [`ContainerRuntime`] is all the reconciler may ask of an engine; `docker`
//! is the only module that imports bollard, `fake` is an in-memory engine for
//! fast tests of the same contract.

pub mod container;
pub mod labels;

pub use container::{
    ComponentKind, ContainerSpec, DesiredComponent, DesiredState, DeviceMapping, GpuRequest,
    HealthCheck, Mount, MountSource, PortBinding, Protocol, Resources, RestartPolicy, Security,
};
