//! The coordinator's files import one another in one direction (issue 10:
//! no import circles; issue 11: domains over shared `http` and `store`
//! layers). Reads every `use` and inline path of `src/coordinator/**.rs`
//! (tests excluded), resolves `super::`, `self::` and `crate::coordinator::`
//! paths to the file that defines the module, and fails naming the files
//! of any cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/coordinator") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/coordinator/jobs/routes.rs` → `[coordinator, jobs, routes]`.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Module = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Paths written inline in code (`super::routes::LIMIT`), outside `use`.
fn inline_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for prefix in ["super::", "crate::coordinator::"] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if !path.ends_with("::") {
                paths.push(path);
            }
        }
    }
    paths
}

/// The `use` paths of `text` before its tests, braces expanded one level,
/// and the paths written inline.
fn use_paths(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut paths = inline_paths(code);
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement
            .strip_prefix("use ")
            .or_else(|| statement.strip_prefix("pub use "))
            .or_else(|| statement.split_once(") use ").map(|(_, r)| r))
        else {
            continue;
        };
        let rest: String = rest.split_whitespace().collect::<Vec<_>>().join("");
        match rest.split_once("::{") {
            Some((head, inner)) => {
                for item in inner.trim_end_matches('}').split(',') {
                    let item = item.split("::{").next().unwrap_or_default();
                    if !item.is_empty() {
                        paths.push(format!("{head}::{item}"));
                    }
                }
            }
            None => paths.push(rest),
        }
    }
    paths
}

fn resolve(current: &Module, path: &str, modules: &BTreeSet<Module>) -> Option<Module> {
    let mut parts: Vec<&str> = path
        .split("::")
        .filter(|p| !p.is_empty() && *p != "self")
        .collect();
    let mut base: Module = current.clone();
    match parts.first() {
        Some(&"crate") => {
            base.clear();
            parts.remove(0);
        }
        Some(&"super") => {
            while parts.first() == Some(&"super") {
                base.pop();
                parts.remove(0);
            }
        }
        _ if path.starts_with("self::") => {}
        _ => return None,
    }
    let full: Module = base
        .into_iter()
        .chain(parts.iter().map(|p| p.to_string()))
        .collect();
    (1..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|m| modules.contains(m) && m != current)
}

#[test]
fn coordinator_files_import_one_another_without_circles() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src.join("coordinator"), &mut all);
    let modules: BTreeSet<Module> = all.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &all {
        let module = module_of(&src, file);
        let text = std::fs::read_to_string(file).expect("read");
        let deps = use_paths(&text)
            .iter()
            .filter_map(|p| resolve(&module, p, &modules))
            .collect();
        edges.insert(module, deps);
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        done: &mut BTreeSet<Module>,
        stack: &mut Vec<Module>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = stack.iter().position(|m| m == node) {
            let cycle: Vec<String> = stack[at..].iter().map(|m| m.join("::")).collect();
            panic!(
                "import circle: {} -> {}",
                cycle.join(" -> "),
                node.join("::")
            );
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, done, stack);
        }
        stack.pop();
        done.insert(node.clone());
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut done, &mut Vec::new());
    }
    assert!(
        edges.len() > 40,
        "found only {} coordinator files",
        edges.len()
    );
    let jobs_routes = vec!["coordinator".to_string(), "jobs".into(), "routes".into()];
    assert!(
        edges[&jobs_routes].contains(&vec!["coordinator".into(), "http".into(), "error".into()]),
        "the resolver sees imports: {:?}",
        edges[&jobs_routes]
    );
}
