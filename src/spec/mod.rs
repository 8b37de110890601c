//! `node.yaml`: the typed document, its JSON Schema, parsing with file, line,
//! column and field path in every error, validation into [`NodeSpec`], and
//! lowering onto a host as the reconciler's desired state.
//!
//! The text is parsed once into a YAML tree with positions (`yaml`, within
//! the bounds of `limits`); serde reads the typed document from it,
//! `serde_path_to_error` names the field that failed, and `locate` maps that
//! name back to a line and column.

mod component;
pub mod container;
mod container_fields;
mod error;
pub mod limits;
pub(crate) mod locate;
mod lower;
pub(crate) mod names;
mod node;
mod ports;
pub(crate) mod quantity;
pub mod types;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

use schemars::generate::SchemaSettings;

pub use error::{Site, SpecError};
pub use node::{NodeSpec, PodmanHost, WorkerModel};
pub use types::NodeDocument;

/// Reads and validates the node spec at `path`.
pub fn load(path: &Path) -> Result<NodeSpec, SpecError> {
    parse(&read_text(path)?, path)
}

/// Reads a spec or job file as UTF-8, at most [`limits::MAX_FILE_BYTES`]:
/// a larger file is refused after reading one byte more than the limit.
pub fn read_text(path: &Path) -> Result<String, SpecError> {
    let read_error = |source| SpecError::Read {
        file: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limits::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > limits::MAX_FILE_BYTES {
        return Err(yaml::file_too_large(path));
    }
    String::from_utf8(bytes)
        .map_err(|err| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, err)))
}

/// Parses and validates `text`; `file` is only used in error messages.
pub fn parse(text: &str, file: &Path) -> Result<NodeSpec, SpecError> {
    let (value, at) = locate::load(text, file)?;
    let doc: NodeDocument =
        serde_path_to_error::deserialize(value).map_err(|err| deserialize_error(&err, &at))?;
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

/// Sorts serde's message into a typed error placed at the failing field.
fn deserialize_error(
    err: &serde_path_to_error::Error<serde_json::Error>,
    at: &locate::Locations,
) -> SpecError {
    let path = field_path(err.path());
    let message = err.inner().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest
            .split_once("`, expected ")
            .unwrap_or((rest, "no fields"));
        let field = field.trim_end_matches('`').to_owned();
        // serde_path_to_error's path already ends with the unknown key.
        let site = at.key(&path);
        return SpecError::UnknownField {
            site,
            field,
            expected: expected.to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`').to_owned();
        return SpecError::MissingField {
            site: at.key(&path),
            field,
        };
    }
    let fix = if message.starts_with("unknown variant") {
        "use one of the listed values; they are case-sensitive"
    } else {
        "write a value of the expected type; quote numbers and booleans meant as text"
    };
    SpecError::WrongType {
        site: at.value(&path),
        message,
        fix: fix.to_owned(),
    }
}

/// `spec.containers[1].ports[0].hostPort`, as `locate` spells paths.
pub(crate) fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join(&out, key),
            Segment::Enum { variant } => out = join(&out, variant),
            Segment::Unknown => out = join(&out, "?"),
        }
    }
    out
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}
