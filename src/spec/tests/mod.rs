//! Tests of the spec module: golden error messages, defaults, lowering.

mod errors;
mod limits;
mod lowering;

use std::path::Path;

use super::{parse, NodeSpec, SpecError};

/// The example every test starts from (the YAML contract).
const EXAMPLE: &str = include_str!("../../../examples/node.yaml");

fn parse_text(text: &str) -> Result<NodeSpec, SpecError> {
    parse(text, Path::new("node.yaml"))
}

/// The rendered error for `text`, which must fail.
fn error_of(text: &str) -> String {
    match parse_text(text) {
        Ok(spec) => format!("unexpectedly valid: {}", spec.name()),
        Err(err) => err.to_string(),
    }
}
