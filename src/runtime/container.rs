//! The desired state the reconciler converges to: the components of one
//! node, each a [`ContainerSpec`] with its hashed configuration computed
//! once. The container description itself is the spec's
//! ([`crate::spec::container_spec`]).

use sha2::{Digest, Sha256};

use crate::spec::container_spec::{ComponentKind, ContainerSpec, RestartPolicy};

/// One component the node must run. Its container's hashed configuration
/// is computed once, when the component is made (the desired state is
/// lowered), and read by the planner and the ownership labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredComponent {
    /// Unique within the node; part of the container name.
    pub name: String,
    pub kind: ComponentKind,
    pub restart: RestartPolicy,
    container: ContainerSpec,
    config: HashedConfig,
}

impl DesiredComponent {
    pub fn new(
        name: impl Into<String>,
        kind: ComponentKind,
        restart: RestartPolicy,
        container: ContainerSpec,
    ) -> Self {
        DesiredComponent {
            name: name.into(),
            kind,
            restart,
            config: HashedConfig::of(&container),
            container,
        }
    }

    pub fn container(&self) -> &ContainerSpec {
        &self.container
    }

    /// The hashed fields of [`Self::container`] and their hash.
    pub fn config(&self) -> &HashedConfig {
        &self.config
    }
}

/// The canonical JSON of a container's hashed fields and a short hash of
/// it, recorded in labels next to each other so a plan can say *what*
/// changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedConfig {
    pub json: String,
    /// The first 8 bytes of the JSON's SHA-256, in hex.
    pub hash: String,
}

impl HashedConfig {
    pub fn of(container: &ContainerSpec) -> Self {
        // ContainerSpec uses only ordered maps, so the serialisation is stable.
        let json = serde_json::to_string(container).unwrap_or_default();
        let digest = Sha256::digest(json.as_bytes());
        HashedConfig {
            hash: hex::encode(&digest[..8]),
            json,
        }
    }
}

/// Everything one node must run: the reconciler's input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredState {
    pub node: String,
    pub components: Vec<DesiredComponent>,
}
