//! The label keys of ownership and the names of the agent's containers,
//! spelled here and nowhere else: the spec refuses user labels under
//! [`PREFIX`] and names the podman container; `crate::runtime::labels`
//! writes and selects containers with the same keys.

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

/// Version of the hashed field set. Bump it when
/// [`super::container_spec::ContainerSpec`] gains or loses a field; the
/// planner then says so instead of guessing.
pub const CURRENT_HASH_VERSION: &str = "1";

/// Job runs (inside podman): the run that made a container, network or
/// volume, the job's name and the op. Ownership is MANAGED_BY + NODE as above.
pub const JOB_RUN: &str = "ai.garage.job-run";
pub const JOB_NAME: &str = "ai.garage.job";
pub const JOB_OP: &str = "ai.garage.job-op";

/// Name of the container that runs `component` of `node`.
pub fn container_name(node: &str, component: &str) -> String {
    format!("garage-{node}-{component}")
}
