//! The module order, checked on the source text of `src/**/*.rs`: (a) no
//! two files import each other through a circle, and (b) the layers read one
//! way: main/cli → agent/node commands → reconcile → runtime → spec/document,
//! with spec, document and geo (pure geography, which the spec's checks use)
//! importing no other module of the crate. An import
//! is a `use crate::…`/`super::…`/`self::…`/child-module path, or such a
//! path written inline in code; a `pub use` re-export is followed to the file
//! that defines the name. Test files (`*_tests.rs`, `tests.rs`, `tests/`
//! folders, `#[cfg(test)] mod … { }` blocks) and comments are left out.

#[path = "module_layers/imports.rs"]
mod imports;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use imports::{collect, import_graph, Graph};

/// A layer's rank: lower ranks may import higher ranks, never the reverse.
fn rank(file: &str) -> Option<u8> {
    let name = file.rsplit('/').next().unwrap_or(file);
    if name == "cli.rs" || name.ends_with("_cli.rs") {
        return Some(0);
    }
    match top_module(file) {
        "agent" | "node" => Some(1),
        "reconcile" => Some(2),
        "runtime" => Some(3),
        "spec" | "document" | "geo" => Some(4),
        _ => None,
    }
}

/// `src/spec/node.rs` → `spec`.
fn top_module(file: &str) -> &str {
    let rest = file.strip_prefix("src/").unwrap_or(file);
    let top = rest.split('/').next().unwrap_or(rest);
    top.strip_suffix(".rs").unwrap_or(top)
}

#[test]
fn source_files_import_no_circles_and_keep_the_layer_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("src"), root, &mut files);
    assert!(files.len() > 50, "found only {} source files", files.len());
    let graph = import_graph(&files);
    let mut problems = Vec::new();
    for (circle, set) in circles(&graph) {
        let mut text = format!("import circle: {}", circle.join(" → "));
        if set.len() + 1 > circle.len() {
            let all: Vec<_> = set.into_iter().collect();
            text.push_str(&format!(" (all files in circles here: {})", all.join(", ")));
        }
        text.push_str(" (fix: move what they share into a file they both import)");
        problems.push(text);
    }
    for (from, to, rule) in layer_breaks(&graph) {
        problems.push(format!("{from} imports {to}: {rule}"));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn a_circle_through_a_reexport_and_an_upward_import_are_found() {
    let files = vec![
        (
            "src/reconcile/mod.rs".to_string(),
            "pub mod plan;\npub use plan::Plan;\nuse crate::runtime::Engine;\n".to_string(),
        ),
        (
            "src/reconcile/plan.rs".to_string(),
            "use super::super::runtime::{docker::{self, Docker as D}};\npub struct Plan;\n"
                .to_string(),
        ),
        (
            "src/runtime/mod.rs".to_string(),
            "pub mod docker;\npub struct Engine;\n// use crate::spec::Ignored;\n".to_string(),
        ),
        (
            "src/runtime/docker.rs".to_string(),
            "fn f() -> crate::reconcile::Plan { todo!() }\n#[cfg(test)]\nmod tests {\n    use crate::spec::X;\n}\n"
                .to_string(),
        ),
        ("src/spec/mod.rs".to_string(), "pub struct X;\n".to_string()),
    ];
    let graph = import_graph(&files);
    let plan = "src/reconcile/plan.rs".to_string();
    let docker = "src/runtime/docker.rs".to_string();
    assert_eq!(
        circles(&graph),
        vec![(
            vec![plan.clone(), docker.clone(), plan.clone()],
            BTreeSet::from([plan, docker])
        )]
    );
    let breaks: Vec<_> = layer_breaks(&graph)
        .into_iter()
        .map(|(from, to, _)| (from, to))
        .collect();
    assert_eq!(
        breaks,
        vec![(
            "src/runtime/docker.rs".to_string(),
            "src/reconcile/plan.rs".to_string()
        )]
    );
}

/// Each set of files that import each other (a strongly connected set),
/// as one circle through them (first file repeated at the end) and the
/// whole set.
fn circles(graph: &Graph) -> Vec<(Vec<String>, BTreeSet<String>)> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for start in graph.keys() {
        if seen.contains(start) {
            continue;
        }
        if let Some(mut circle) = path_between(graph, start, start) {
            let reached = reachable(graph, start);
            let set: BTreeSet<String> = reached
                .into_iter()
                .filter(|file| reachable(graph, file).contains(start))
                .collect();
            seen.extend(set.iter().cloned());
            circle.insert(0, start.clone());
            found.push((circle, set));
        }
    }
    found
}

/// Every file `from` imports, directly or not.
fn reachable(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut reached = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(file) = stack.pop() {
        for next in graph.get(&file).into_iter().flatten() {
            if reached.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    reached
}

/// The shortest import path from `from` to `to` (excluding `from`).
fn path_between(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(file) = queue.pop_front() {
        for next in graph.get(file).into_iter().flatten() {
            if next == to {
                let mut path = vec![to.to_string()];
                let mut at = file;
                while at != from {
                    path.push(at.to_string());
                    at = previous[at];
                }
                path.reverse();
                return Some(path);
            }
            if !previous.contains_key(next.as_str()) && next != from {
                previous.insert(next, file);
                queue.push_back(next);
            }
        }
    }
    None
}

/// Imports against the layer order, with the rule each breaks.
fn layer_breaks(graph: &Graph) -> Vec<(String, String, &'static str)> {
    let mut breaks = Vec::new();
    for (from, targets) in graph {
        for to in targets {
            let rule = match (rank(from), rank(to)) {
                (a, Some(0)) if a != Some(0) => {
                    Some("only main.rs and other cli.rs files import a cli.rs")
                }
                (Some(4), b) if b != Some(4) => {
                    Some("spec, document and geo import no other module of the crate")
                }
                (Some(a), Some(b)) if a > b => Some(
                    "a lower layer imports a higher one (order: cli → agent/node → reconcile → runtime → spec/document)",
                ),
                _ => None,
            };
            if let Some(rule) = rule {
                breaks.push((from.clone(), to.clone(), rule));
            }
        }
    }
    breaks
}
