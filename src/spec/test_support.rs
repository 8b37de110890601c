//! What the spec's test files share: the example every test starts from,
//! and parsing under the file name the golden texts carry.

use std::fmt::Write as _;
use std::path::Path;

use super::{parse, NodeSpec, SpecError};

/// The example every test starts from (the YAML contract).
pub const EXAMPLE: &str = include_str!("../../examples/node.yaml");

/// The head of a minimal spec; tests append the body of `spec:`.
pub const HEAD: &str = "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: n1\nspec:\n";

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

/// `count` containers, one line each, with `ports_each` published ports.
pub fn containers(count: usize, ports_each: usize) -> String {
    let mut text = format!("{HEAD}  containers:\n");
    for i in 0..count {
        let ports: Vec<String> = (0..ports_each)
            .map(|j| format!("{{containerPort: {}}}", 10_000 + i * ports_each + j))
            .collect();
        let _ = writeln!(
            text,
            "    - {{name: c{i}, image: b, ports: [{}]}}",
            ports.join(", ")
        );
    }
    text
}
