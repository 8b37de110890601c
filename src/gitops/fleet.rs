//! The fleet layout: `fleet.yaml` holds every node's defaults,
//! `nodes/<name>.yaml` one node's overlay, merged by JSON Merge Patch
//! (RFC 7396: a mapping merges key by key, `null` removes a key, anything
//! else replaces). The result is one node spec, written as JSON (a YAML
//! subset) for the spec reader. Both files are read within the document
//! limits, with positions in their errors.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::document::{self, DocumentError};
use crate::spec::{self, SpecError, NODE_SPEC};

use super::source::FLEET_FILE;

/// Why a node's spec could not be rendered or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Document(Box<DocumentError>),
    #[error("{file}: the document is {found}, not a mapping (fix: write `apiVersion`, `kind`, `metadata` and `spec` keys at the top level)")]
    NotAMapping { file: String, found: &'static str },
    #[error("{file}: metadata.name is {written:?} but the file is node {node:?}'s (fix: remove metadata.name from the node file, or name the file after the node)")]
    NameMismatch {
        file: String,
        written: String,
        node: String,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the rendered spec of node {node} is not valid")]
    Invalid {
        node: String,
        #[source]
        source: Box<SpecError>,
    },
}

/// One file's text and the name it goes by in errors.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub label: &'a str,
    pub text: &'a str,
}

/// Merges `node` onto `fleet` (when there is one) and returns the node's
/// spec as text; `metadata.name` is `name` unless the files say otherwise,
/// and the node file may not name another node.
pub fn render(fleet: Option<Layer<'_>>, node: Layer<'_>, name: &str) -> Result<String, FleetError> {
    let mut merged = match fleet {
        Some(fleet) => mapping(fleet)?,
        None => Value::Object(serde_json::Map::new()),
    };
    let overlay = mapping(node)?;
    if let Some(written) = overlay.pointer("/metadata/name").and_then(Value::as_str) {
        if written != name {
            return Err(FleetError::NameMismatch {
                file: node.label.to_string(),
                written: written.to_string(),
                node: name.to_string(),
            });
        }
    }
    json_patch::merge(&mut merged, &overlay);
    if merged.pointer("/metadata/name").is_none() {
        let metadata = merged.as_object_mut().map(|doc| {
            doc.entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()))
        });
        if let Some(Value::Object(metadata)) = metadata {
            metadata.insert("name".into(), Value::String(name.to_string()));
        }
    }
    let mut text = serde_json::to_string_pretty(&merged).unwrap_or_default();
    text.push('\n');
    Ok(text)
}

/// Renders and validates one node: the spec it would run.
pub fn render_valid(
    fleet: Option<Layer<'_>>,
    node: Layer<'_>,
    name: &str,
) -> Result<(String, spec::NodeSpec), FleetError> {
    let text = render(fleet, node, name)?;
    let label = format!("{} (rendered)", node.label);
    let spec = spec::parse(&text, Path::new(&label)).map_err(|source| FleetError::Invalid {
        node: name.to_string(),
        source: Box::new(source),
    })?;
    Ok((text, spec))
}

/// The node names of a fleet directory: the stems of `nodes/*.yaml`, sorted.
pub fn node_names(dir: &Path) -> Result<Vec<String>, FleetError> {
    let nodes = dir.join("nodes");
    let entries = std::fs::read_dir(&nodes).map_err(|source| FleetError::Read {
        path: nodes.clone(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .filter_map(|path| path.file_stem()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// Renders and validates node `name` of the fleet directory `dir`.
pub fn render_from_dir(dir: &Path, name: &str) -> Result<(String, spec::NodeSpec), FleetError> {
    let fleet_path = dir.join(FLEET_FILE);
    let fleet_text = match fleet_path.exists() {
        true => Some(read(&fleet_path)?),
        false => None,
    };
    let node_path = dir.join("nodes").join(format!("{name}.yaml"));
    let node_text = read(&node_path)?;
    let fleet_label = fleet_path.display().to_string();
    let node_label = node_path.display().to_string();
    render_valid(
        fleet_text.as_deref().map(|text| Layer {
            label: &fleet_label,
            text,
        }),
        Layer {
            label: &node_label,
            text: &node_text,
        },
        name,
    )
}

fn read(path: &Path) -> Result<String, FleetError> {
    spec::read_text(path).map_err(|err| match err {
        SpecError::Read { source, .. } => FleetError::Read {
            path: path.to_path_buf(),
            source,
        },
        other => FleetError::Invalid {
            node: path.display().to_string(),
            source: Box::new(other),
        },
    })
}

/// One file as a JSON value; it must hold a mapping.
fn mapping(layer: Layer<'_>) -> Result<Value, FleetError> {
    let (value, _) = document::locate::load(layer.text, Path::new(layer.label), &NODE_SPEC)
        .map_err(|err| FleetError::Document(Box::new(err)))?;
    let found = match &value {
        Value::Object(_) => return Ok(value),
        Value::Null => "empty",
        Value::Array(_) => "a list",
        _ => "a single value",
    };
    Err(FleetError::NotAMapping {
        file: layer.label.to_string(),
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  labels:\n    fleet: home\nspec:\n  metrics:\n    listen: 127.0.0.1:9464\n  reconcile:\n    resyncPeriod: 45s\n";

    fn layer<'a>(label: &'a str, text: &'a str) -> Layer<'a> {
        Layer { label, text }
    }

    #[test]
    fn the_overlay_merges_key_by_key_and_null_removes() {
        let node = "metadata:\n  labels:\n    fleet: null\n    room: garage\nspec:\n  metrics:\n    listen: 127.0.0.1:9500\n";
        let text = render(
            Some(layer("fleet.yaml", FLEET)),
            layer("nodes/n1.yaml", node),
            "n1",
        )
        .expect("renders");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value["metadata"]["name"], "n1");
        assert_eq!(
            value["metadata"]["labels"],
            serde_json::json!({"room": "garage"})
        );
        assert_eq!(value["spec"]["metrics"]["listen"], "127.0.0.1:9500");
        assert_eq!(
            value["spec"]["reconcile"]["resyncPeriod"], "45s",
            "kept from the fleet"
        );
    }

    #[test]
    fn a_node_file_may_not_name_another_node_or_be_a_list() {
        let err = render(
            None,
            layer("nodes/n1.yaml", "metadata:\n  name: n2\n"),
            "n1",
        )
        .expect_err("mismatch");
        assert!(err.to_string().contains("\"n2\""), "{err}");
        let err = render(None, layer("nodes/n1.yaml", "- a\n"), "n1").expect_err("list");
        assert!(err.to_string().contains("a list"), "{err}");
    }

    #[test]
    fn a_syntax_error_names_the_file_it_is_in() {
        let err = render(
            Some(layer("fleet.yaml", "spec: [\n")),
            layer("nodes/n1.yaml", "{}"),
            "n1",
        )
        .expect_err("bad YAML");
        assert!(err.to_string().contains("fleet.yaml"), "{err}");
    }

    #[test]
    fn the_rendered_spec_is_validated_as_a_node_spec() {
        let (_, spec) = render_valid(
            Some(layer("fleet.yaml", FLEET)),
            layer("nodes/n1.yaml", "{}"),
            "n1",
        )
        .expect("valid");
        assert_eq!(spec.name(), "n1");
        let err = render_valid(
            Some(layer("fleet.yaml", FLEET)),
            layer("nodes/n1.yaml", "spec:\n  metrics:\n    listen: nowhere\n"),
            "n1",
        )
        .expect_err("invalid listen");
        assert!(matches!(err, FleetError::Invalid { .. }), "{err}");
    }
}
