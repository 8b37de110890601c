//! `node.yaml`: the typed document, its JSON Schema, validation into
//! [`NodeSpec`] with file, line, column and field path in every error, and
//! the plain data a valid spec describes (containers, label keys,
//! settings). A leaf: reading the text with positions is
//! `crate::document`'s (the spec's errors are its [`DocumentError`]);
//! lowering onto a host is `crate::reconcile::lower`'s.

mod checks;
mod component;
pub mod container;
mod container_fields;
pub mod container_spec;
pub mod gateway;
mod gateway_settings;
pub mod gc;
mod host_images;
mod job_settings;
pub mod jobs;
pub mod label_keys;
pub mod limits;
mod location;
mod model_ref;
pub(crate) mod names;
mod node;
mod ports;
mod power;
pub mod quantity;
mod settings;
pub mod types;
mod validate;

#[cfg(test)]
pub(crate) mod test_support;

use std::path::Path;

use schemars::generate::SchemaSettings;

use crate::document::{self, Kind};

pub use crate::document::{DocumentError, DocumentWarning, Site};
pub use component::podman_gpu_access;
pub use gateway::GatewaySettings;
pub use host_images::{HostImages, PatternError};
pub use jobs::{JobKind, JobSettings};
pub use model_ref::{HubModel, ModelRef, ModelRefError};
pub use node::{GpuWant, NodeSpec, PodmanHost, UnresolvedComponent, WorkerModel};
pub use power::{HttpSource, PowerSettings, ProductionSource, SolarSettings};
pub use settings::{BackoffSettings, ReconcileSettings, RolloutSettings};
pub use types::NodeDocument;

/// The node spec's errors: the document error, placed in node.yaml.
pub type SpecError = DocumentError;

/// How the node spec's errors name it.
pub static NODE_SPEC: Kind = Kind {
    noun: "node spec",
    syntax: "YAML",
    schema: "manifests/node.schema.json",
    empty_fix: "write a Node spec",
    fixes: &[],
};

/// Reads and validates the node spec at `path`.
pub fn load(path: &Path) -> Result<NodeSpec, SpecError> {
    parse(&read_text(path)?, path)
}

/// Reads the node spec file at `path` as text, within the document limits.
pub fn read_text(path: &Path) -> Result<String, SpecError> {
    document::read_text(path, &NODE_SPEC)
}

/// Parses and validates `text`; `file` is only used in error messages.
pub fn parse(text: &str, file: &Path) -> Result<NodeSpec, SpecError> {
    let (doc, at): (NodeDocument, _) = document::parse(text, file, &NODE_SPEC)?;
    validate::validate(&doc, &at)
}

/// The JSON Schema (draft 2020-12) of `node.yaml`, generated from the types.
pub fn schema() -> serde_json::Value {
    let schema = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<NodeDocument>();
    schema.to_value()
}

/// The node's state directory (identity) when none is given: `.garage`
/// next to the spec file.
pub fn default_state_dir(spec_path: &Path) -> std::path::PathBuf {
    spec_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(".garage")
}
