//! Ownership labels: the only source of truth for which containers the agent
//! owns. Every label key is spelled here and nowhere else.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::container::{ComponentKind, DesiredComponent};

/// Every ownership label starts with this; users cannot set such labels.
pub const PREFIX: &str = "ai.garage.";
pub const MANAGED_BY: &str = "ai.garage.managed-by";
pub const MANAGED_BY_VALUE: &str = "garage";
pub const NODE: &str = "ai.garage.node";
pub const COMPONENT: &str = "ai.garage.component";
pub const KIND: &str = "ai.garage.kind";
pub const CONFIG_HASH: &str = "ai.garage.config-hash";
/// The canonical JSON of the hashed fields, so a plan can say *what* changed.
pub const CONFIG: &str = "ai.garage.config";
pub const HASH_VERSION: &str = "ai.garage.hash-version";

/// Version of the hashed field set. Bump it when [`super::ContainerSpec`]
/// gains or loses a field; the planner then says so instead of guessing.
pub const CURRENT_HASH_VERSION: &str = "1";

/// Name of the container that runs `component` of `node`.
pub fn container_name(node: &str, component: &str) -> String {
    format!("garage-{node}-{component}")
}

/// Canonical JSON of the hashed fields of a component.
pub fn config_json(component: &DesiredComponent) -> String {
    // ContainerSpec uses only ordered maps, so the serialisation is stable.
    serde_json::to_string(&component.container).unwrap_or_default()
}

/// Short hex hash over [`config_json`].
pub fn config_hash(component: &DesiredComponent) -> String {
    let digest = Sha256::digest(config_json(component).as_bytes());
    hex::encode(&digest[..8])
}

/// All labels a container of `component` carries: the user's, then ours
/// (ours win on a clash, so a user label can never forge ownership).
pub fn labels_for(node: &str, component: &DesiredComponent) -> BTreeMap<String, String> {
    let mut labels = component.container.labels.clone();
    let ours = [
        (MANAGED_BY, MANAGED_BY_VALUE.to_string()),
        (NODE, node.to_string()),
        (COMPONENT, component.name.clone()),
        (KIND, component.kind.as_str().to_string()),
        (CONFIG_HASH, config_hash(component)),
        (CONFIG, config_json(component)),
        (HASH_VERSION, CURRENT_HASH_VERSION.to_string()),
    ];
    labels.extend(ours.into_iter().map(|(k, v)| (k.to_string(), v)));
    labels
}

/// Label filters (`key=value`) that select exactly the containers of `node`.
pub fn owned_filter(node: &str) -> Vec<String> {
    vec![
        format!("{MANAGED_BY}={MANAGED_BY_VALUE}"),
        format!("{NODE}={node}"),
    ]
}

/// The kind recorded on an observed container, if it is one we know.
pub fn parse_kind(value: &str) -> Option<ComponentKind> {
    match value {
        "podman" => Some(ComponentKind::Podman),
        "worker" => Some(ComponentKind::Worker),
        "extra" => Some(ComponentKind::Extra),
        _ => None,
    }
}
