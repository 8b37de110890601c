//! Ownership labels: the only source of truth for which containers the agent
//! owns. Every label key is spelled here and nowhere else.

use std::collections::BTreeMap;

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

/// All labels a container of `component` carries: the user's, then ours
/// (ours win on a clash, so a user label can never forge ownership).
pub fn labels_for(node: &str, component: &DesiredComponent) -> BTreeMap<String, String> {
    let mut labels = component.container().labels.clone();
    let ours = [
        (MANAGED_BY, MANAGED_BY_VALUE.to_string()),
        (NODE, node.to_string()),
        (COMPONENT, component.name.clone()),
        (KIND, component.kind.as_str().to_string()),
        (CONFIG_HASH, component.config().hash.clone()),
        (CONFIG, component.config().json.clone()),
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

/// Job runs (inside podman): the run that made a container, network or
/// volume, the job's name and the op. Ownership is MANAGED_BY + NODE as above.
pub const JOB_RUN: &str = "ai.garage.job-run";
pub const JOB_NAME: &str = "ai.garage.job";
pub const JOB_OP: &str = "ai.garage.job-op";

/// Labels of everything job run `run` of `node` creates.
pub fn job_labels(node: &str, job: &str, run: &str, op: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        (NODE.to_string(), node.to_string()),
        (JOB_RUN.to_string(), run.to_string()),
        (JOB_NAME.to_string(), job.to_string()),
    ]);
    if let Some(op) = op {
        labels.insert(JOB_OP.to_string(), op.to_string());
    }
    labels
}

/// Label filters that select every job resource of `node`.
pub fn job_filter(node: &str) -> Vec<String> {
    let mut filter = owned_filter(node);
    filter.push(JOB_RUN.to_string());
    filter
}
