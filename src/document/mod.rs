//! Documents read with positions: the bounded YAML/JSON reader (`yaml`,
//! within `limits`), field path → line and column (`locate`), the one
//! located error and warning types and the [`Checker`] that places them, and the
//! read → parse → deserialize pipeline that node specs and job files share. Knows nothing of what a document
//! describes; each kind names itself with a [`Kind`].
//!
//! The text is parsed once into a YAML tree with positions; serde reads the
//! typed document from it, `serde_path_to_error` names the field that
//! failed, and [`Locations`] maps that name back to a line and column.

mod checker;
mod error;
pub mod limits;
pub mod locate;
pub mod string_or_list;
mod warning;
mod yaml;

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

pub use checker::Checker;
pub use error::{DocumentError, Site};
pub use locate::Locations;
pub use warning::DocumentWarning;

/// How errors name one kind of document (node spec, job file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// `node spec`: "cannot read the node spec".
    pub noun: &'static str,
    /// `YAML`: "invalid YAML: …".
    pub syntax: &'static str,
    /// `manifests/node.schema.json`: where every field is listed.
    pub schema: &'static str,
    /// The fix for a file that holds no document.
    pub empty_fix: &'static str,
    /// Fixes for serde messages of this kind's own types, by the start of
    /// the message, tried before the general ones.
    pub fixes: &'static [(&'static str, &'static str)],
}

/// Reads a document file as UTF-8, at most [`limits::MAX_FILE_BYTES`]: a
/// larger file is refused after reading one byte more than the limit.
pub fn read_text(path: &Path, kind: &'static Kind) -> Result<String, DocumentError> {
    let read_error = |source| DocumentError::Read {
        kind,
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

/// Parses `text` (YAML or JSON) into `T`, with the positions of every node
/// for the checks that follow; `file` is only used in error messages.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    file: &Path,
    kind: &'static Kind,
) -> Result<(T, Locations), DocumentError> {
    let (value, at) = locate::load(text, file, kind)?;
    let doc = serde_path_to_error::deserialize(value)
        .map_err(|err| deserialize_error(&err, &at, kind))?;
    Ok((doc, at))
}

/// Sorts serde's message into a typed error placed at the failing field.
fn deserialize_error(
    err: &serde_path_to_error::Error<serde_json::Error>,
    at: &Locations,
    kind: &'static Kind,
) -> DocumentError {
    let path = field_path(err.path());
    let message = err.inner().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest
            .split_once("`, expected ")
            .unwrap_or((rest, "no fields"));
        // serde_path_to_error's path already ends with the unknown key.
        return DocumentError::UnknownField {
            kind,
            site: at.key(&path),
            field: field.trim_end_matches('`').to_owned(),
            expected: expected.to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return DocumentError::MissingField {
            site: at.key(&path),
            field: rest.trim_end_matches('`').to_owned(),
        };
    }
    let own = kind
        .fixes
        .iter()
        .find(|(start, _)| message.starts_with(start));
    let fix = match own {
        Some(&(_, fix)) => fix,
        None if message.starts_with("unknown variant") => {
            "use one of the listed values; they are case-sensitive"
        }
        None => "write a value of the expected type; quote numbers and booleans meant as text",
    };
    DocumentError::WrongType {
        site: at.value(&path),
        message,
        fix: fix.to_owned(),
    }
}

/// `spec.containers[1].ports[0].hostPort`, as [`Locations`] spells paths.
fn field_path(path: &serde_path_to_error::Path) -> String {
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
