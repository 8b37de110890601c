//! What the spec's test files share: the example every test starts from,
//! and parsing under the file name the golden texts carry.

use std::path::Path;

use super::{parse, NodeSpec, SpecError};

/// The example every test starts from (the YAML contract).
pub const EXAMPLE: &str = include_str!("../../examples/node.yaml");

pub fn parse_text(text: &str) -> Result<NodeSpec, SpecError> {
    parse(text, Path::new("node.yaml"))
}

/// The rendered error for `text`, which must fail.
pub fn error_of(text: &str) -> String {
    match parse_text(text) {
        Ok(spec) => format!("unexpectedly valid: {}", spec.name()),
        Err(err) => err.to_string(),
    }
}
