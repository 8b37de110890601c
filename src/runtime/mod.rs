//! The narrow seam between the reconciler and a container engine.
//!
//! [`ContainerRuntime`] is all the reconciler may ask of an engine; `docker`
//! (the agent's containers and the jobs' podman) is the only module that
//! imports bollard, `fake` is an in-memory engine for fast tests of the same
//! contract, compiled for tests only.

pub mod container;
pub mod docker;
#[cfg(test)]
pub mod fake;
pub mod labels;

use std::collections::BTreeMap;
use std::future::Future;

use futures::stream::BoxStream;

pub use crate::spec::container_spec::{
    ComponentKind, ContainerSpec, DeviceMapping, GpuRequest, HealthCheck, Mount, MountSource,
    PortBinding, Protocol, Resources, RestartPolicy, Security,
};
pub use container::{DesiredComponent, DesiredState, HashedConfig};

/// What the engine says a container is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Restarting,
    Paused,
    Exited,
    Dead,
    Removing,
    Unknown,
}

impl ContainerState {
    pub fn parse(value: &str) -> Self {
        match value {
            "created" | "configured" | "initialized" => ContainerState::Created,
            "running" => ContainerState::Running,
            "restarting" => ContainerState::Restarting,
            "paused" => ContainerState::Paused,
            "exited" | "stopped" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            "removing" => ContainerState::Removing,
            _ => ContainerState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Restarting => "restarting",
            ContainerState::Paused => "paused",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Removing => "removing",
            ContainerState::Unknown => "unknown",
        }
    }
}

/// Health as the engine's health check reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::None => "none",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// One container that carries our ownership labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    /// Every label on the container (ownership, config hash, user labels).
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub health: Health,
    pub exit_code: Option<i64>,
    /// RFC 3339 time the container last started, as the engine reports it.
    pub started_at: Option<String>,
}

impl ObservedContainer {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn component(&self) -> Option<&str> {
        self.label(labels::COMPONENT)
    }
}

/// Why a container stopped, as the engine remembers it: shown in the
/// status of a component that crashes (issue 9, D20).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Termination {
    /// The engine's own words (`State.Error`, "killed: out of memory").
    pub reason: Option<String>,
    /// The last lines the container wrote (stdout and stderr), oldest first.
    pub log_tail: Vec<String>,
}

/// How many log lines a [`Termination`] keeps.
pub const LOG_TAIL_LINES: usize = 5;
/// Longest log line a [`Termination`] keeps, in bytes.
pub const LOG_LINE_MAX: usize = 300;

/// Something happened to an owned container; carries no state on purpose:
/// the reconciler re-lists (level-triggered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEvent {
    pub container_id: String,
    pub action: String,
}

/// The engine's own error under a [`RuntimeError`]: a [`docker::ApiError`]
/// from the engine, a plain message from the test fake.
pub type EngineCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the engine seam, each naming the step that failed; the
/// engine's words are the `source` (print with [`crate::error_text::one_line`]).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot reach the container engine at {endpoint} (is the Docker daemon running? check `docker info` and DOCKER_HOST)")]
    Unreachable {
        endpoint: String,
        #[source]
        source: EngineCause,
    },
    #[error("image {image} is not present and could not be pulled")]
    ImageUnavailable {
        image: String,
        #[source]
        source: EngineCause,
    },
    #[error("removing image {image} failed")]
    RemoveImage {
        image: String,
        #[source]
        source: EngineCause,
    },
    #[error("creating container {name} failed")]
    Create {
        name: String,
        #[source]
        source: EngineCause,
    },
    #[error("starting container {id} failed")]
    Start {
        id: String,
        #[source]
        source: EngineCause,
    },
    #[error("the rollout of {component} failed: {reason}; the previous container runs on, and this configuration is not tried again until the spec changes")]
    RolloutFailed { component: String, reason: String },
    #[error("stopping container {id} failed")]
    Stop {
        id: String,
        #[source]
        source: EngineCause,
    },
    #[error("removing container {id} failed")]
    Remove {
        id: String,
        #[source]
        source: EngineCause,
    },
    #[error("listing containers failed")]
    List {
        #[source]
        source: EngineCause,
    },
    #[error("the engine's event stream failed")]
    Events {
        #[source]
        source: EngineCause,
    },
    #[error("reading why container {id} stopped failed")]
    Inspect {
        id: String,
        #[source]
        source: EngineCause,
    },
}

/// All the reconciler may ask of a container engine. Every call is
/// idempotent where it can be: removing a missing container succeeds.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Containers of `node` that carry our ownership labels, in any state.
    fn list_owned(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<Vec<ObservedContainer>, RuntimeError>> + Send;

    /// Makes `image` present locally: pulls it when missing.
    fn ensure_image(&self, image: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Creates (does not start) a container; returns its id.
    fn create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send;

    fn start(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Stops a container and keeps it (to start again); a stopped or
    /// missing one is fine.
    fn stop(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Force-removes a container and its anonymous volumes; a missing one is fine.
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Why the stopped container `id` stopped: the engine's reason and the
    /// last [`LOG_TAIL_LINES`] lines of its output.
    fn termination(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Termination, RuntimeError>> + Send;

    /// Events about the owned containers of `node`, until the stream breaks.
    fn events(&self, node: &str) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>>;
}
