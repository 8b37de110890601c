//! Ownership labels: the only source of truth for which containers the agent
//! owns. The keys are spelled once, in [`crate::spec::label_keys`]; this
//! module writes them onto containers and selects containers by them.

use std::collections::BTreeMap;

use super::container::DesiredComponent;
use crate::spec::container_spec::ComponentKind;

pub use crate::spec::label_keys::{
    container_name, COMPONENT, CONFIG, CONFIG_HASH, CURRENT_HASH_VERSION, HASH_VERSION, JOB_NAME,
    JOB_OP, JOB_RUN, KIND, MANAGED_BY, MANAGED_BY_VALUE, NODE,
};

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
