//! The module order, checked on the source text of `src/**/*.rs`: (a) no
//! two files import each other through a circle, and (b) the layers read one
//! way: main/cli → agent/node commands → reconcile → runtime → spec/document,
//! with spec and document importing no other module of the crate. An import
//! is a `use crate::…`/`super::…`/`self::…`/child-module path, or such a
//! path written inline in code; a `pub use` re-export is followed to the file
//! that defines the name. Test files (`*_tests.rs`, `tests.rs`, `tests/`
//! folders, `#[cfg(test)] mod … { }` blocks) and comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Imports that close today's known circles, each being removed by another
/// change of issue 10 (item 4); the lead empties this list after merging
/// them. An entry that no longer exists fails the test, so the list never
/// hides a new circle behind an old excuse.
const KNOWN_CIRCLE_EDGES: &[(&str, &str)] = &[
    // coordinator: the error bodies and the routes share types (issue 10, item 4).
    ("src/coordinator/error.rs", "src/coordinator/routes.rs"),
    (
        "src/coordinator/token_routes.rs",
        "src/coordinator/routes.rs",
    ),
    (
        "src/coordinator/join_tokens.rs",
        "src/coordinator/admission.rs",
    ),
    // inference: the loaders return the checkpoint type they are called from.
    ("src/inference/gguf/mod.rs", "src/inference/checkpoint.rs"),
    ("src/inference/hf/mod.rs", "src/inference/checkpoint.rs"),
    // reconcile: the status projection reads the controller's memory.
    ("src/reconcile/report.rs", "src/reconcile/controller.rs"),
    // spec: types ↔ container and validate ↔ component, reworked by the
    // one-document-layer change (issue 10, items 1 and 2).
    ("src/spec/container.rs", "src/spec/types.rs"),
    ("src/spec/validate.rs", "src/spec/component.rs"),
];

/// Imports against the layer order that exist today, by top-level module
/// (`from`, `to`), each being removed by the `spec` as a leaf change (issue
/// 10, item 2); the lead empties this list after merging it. An entry that
/// no longer matches any import fails the test.
const KNOWN_LAYER_BREAKS: &[(&str, &str)] = &[
    // spec/node.rs and validate.rs name `ReconcileSettings`.
    ("spec", "reconcile"),
    // spec names `HubModel`/`ModelRef` for the worker's model.
    ("spec", "inference"),
    // spec lowers into runtime's `DesiredComponent` and names its labels.
    ("spec", "runtime"),
    // spec names `HostImages` and the default pids limit of jobs.
    ("spec", "jobs"),
    // spec/lower.rs places GPUs from the host's inventory.
    ("spec", "gpu"),
];

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
        "spec" | "document" => Some(4),
        _ => None,
    }
}

/// `src/spec/node.rs` → `spec`.
fn top_module(file: &str) -> &str {
    let rest = file.strip_prefix("src/").unwrap_or(file);
    let top = rest.split('/').next().unwrap_or(rest);
    top.strip_suffix(".rs").unwrap_or(top)
}

/// One source file: its path, module path and the text that counts.
struct Source {
    file: String,
    text: String,
    /// Names this file re-exports (`pub use`), to the path they come from.
    reexports: BTreeMap<String, Vec<String>>,
}

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn source_files_import_no_circles_and_keep_the_layer_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("src"), root, &mut files);
    assert!(files.len() > 50, "found only {} source files", files.len());
    let graph = import_graph(&files);
    let mut problems = Vec::new();
    for &(from, to) in KNOWN_CIRCLE_EDGES {
        if !graph.get(from).is_some_and(|t| t.contains(to)) {
            problems.push(format!(
                "{from} no longer imports {to}: remove it from KNOWN_CIRCLE_EDGES"
            ));
        }
    }
    let mut open = graph.clone();
    for &(from, to) in KNOWN_CIRCLE_EDGES {
        if let Some(targets) = open.get_mut(from) {
            targets.remove(to);
        }
    }
    for (circle, set) in circles(&open) {
        let mut text = format!("import circle: {}", circle.join(" → "));
        if set.len() + 1 > circle.len() {
            let all: Vec<_> = set.into_iter().collect();
            text.push_str(&format!(" (all files in circles here: {})", all.join(", ")));
        }
        text.push_str(" (fix: move what they share into a file they both import)");
        problems.push(text);
    }
    let breaks = layer_breaks(&graph);
    for &(from, to) in KNOWN_LAYER_BREAKS {
        if !breaks
            .iter()
            .any(|(f, t, _)| top_module(f) == from && top_module(t) == to)
        {
            problems.push(format!(
                "{from} no longer imports {to}: remove it from KNOWN_LAYER_BREAKS"
            ));
        }
    }
    for (from, to, rule) in &breaks {
        if !KNOWN_LAYER_BREAKS.contains(&(top_module(from), top_module(to))) {
            problems.push(format!("{from} imports {to}: {rule}"));
        }
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

/// Every `.rs` file under `dir` that is not a test file, as (path relative
/// to `root`, text).
fn collect(dir: &Path, root: &Path, files: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "tests" {
                collect(&path, root, files);
            }
        } else if name.ends_with(".rs")
            && !name.ends_with("_tests.rs")
            && name != "tests.rs"
            && name != "main.rs"
            && name != "lib.rs"
        {
            let file = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("read source");
            files.push((file, text));
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `a::b`.
fn module_of(file: &str) -> Vec<String> {
    let rest = file.strip_prefix("src/").unwrap_or(file);
    let rest = rest.strip_suffix(".rs").unwrap_or(rest);
    let mut path: Vec<String> = rest.split('/').map(str::to_string).collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// Which file imports which, from (path, text) pairs.
fn import_graph(files: &[(String, String)]) -> Graph {
    let mut sources = BTreeMap::new();
    for (file, text) in files {
        let text = code_only(text);
        let reexports = use_trees(&text)
            .into_iter()
            .filter(|(public, _)| *public)
            .flat_map(|(_, tree)| expand(&tree))
            .collect();
        sources.insert(
            module_of(file),
            Source {
                file: file.clone(),
                text,
                reexports,
            },
        );
    }
    let mut graph = Graph::new();
    for (module, source) in &sources {
        let private_uses = use_trees(&source.text)
            .into_iter()
            .filter(|(public, _)| !*public)
            .flat_map(|(_, tree)| expand(&tree))
            .map(|(_, path)| path);
        let targets = graph.entry(source.file.clone()).or_default();
        for path in private_uses.chain(inline_paths(&source.text)) {
            let Some(absolute) = absolute(module, &path, &sources) else {
                continue;
            };
            if let Some(target) = resolve(&absolute, &sources, 0) {
                if target != source.file {
                    targets.insert(target);
                }
            }
        }
    }
    graph
}

/// The text without comment lines and without `#[cfg(test)]` modules.
fn code_only(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.starts_with("//") {
            i += 1;
            continue;
        }
        if line.starts_with("#[cfg(test)]") {
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim_start().starts_with("#[") {
                j += 1;
            }
            let item = lines.get(j).map_or("", |l| l.trim_start());
            let item = item.strip_prefix("pub ").unwrap_or(item);
            if item.starts_with("mod ") && item.trim_end().ends_with(';') {
                i = j + 1;
                continue;
            }
            if item.starts_with("mod ") && item.trim_end().ends_with('{') {
                let mut depth = 0i64;
                while j < lines.len() {
                    depth += lines[j].matches('{').count() as i64;
                    depth -= lines[j].matches('}').count() as i64;
                    j += 1;
                    if depth <= 0 {
                        break;
                    }
                }
                i = j;
                continue;
            }
        }
        out.push_str(lines[i]);
        out.push('\n');
        i += 1;
    }
    out
}

/// Each `use` statement's tree, and whether it re-exports (`pub`, `pub(…)`).
fn use_trees(text: &str) -> Vec<(bool, String)> {
    let mut trees = Vec::new();
    let mut current: Option<(bool, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if current.is_none() {
            let (public, rest) = match trimmed.strip_prefix("pub") {
                Some(rest) if rest.starts_with(' ') || rest.starts_with('(') => {
                    let rest = match rest.strip_prefix('(') {
                        Some(inner) => inner.split_once(')').map_or("", |(_, r)| r),
                        None => rest,
                    };
                    (true, rest.trim_start())
                }
                _ => (false, trimmed),
            };
            if let Some(tree) = rest.strip_prefix("use ") {
                current = Some((public, tree.to_string()));
            }
        } else if let Some((_, tree)) = current.as_mut() {
            tree.push(' ');
            tree.push_str(trimmed);
        }
        if let Some((public, tree)) = current.take() {
            match tree.split_once(';') {
                Some((tree, _)) => trees.push((public, tree.to_string())),
                None => current = Some((public, tree)),
            }
        }
    }
    trees
}

/// A use tree as (name it binds, path) pairs: `a::{b, c::d as e}` →
/// (`b`, a::b), (`e`, a::c::d); `a::{self}` binds `a`.
fn expand(tree: &str) -> Vec<(String, Vec<String>)> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    expand_into(&[], tree.trim(), &mut out);
    out
}

fn expand_into(prefix: &[String], tree: &str, out: &mut Vec<(String, Vec<String>)>) {
    let tree = tree.trim().trim_start_matches("::");
    if let Some(open) = tree.find('{') {
        let mut path = prefix.to_vec();
        path.extend(segments(&tree[..open]));
        let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_into(&path, &body[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand_into(&path, &body[start..], out);
        return;
    }
    if tree.is_empty() || tree == "*" || tree.ends_with("::*") {
        return;
    }
    let (tree, alias) = match tree.split_once(" as ") {
        Some((tree, alias)) => (tree, Some(alias.trim().to_string())),
        None => (tree, None),
    };
    let mut path = prefix.to_vec();
    path.extend(segments(tree));
    if path.last().is_some_and(|last| last == "self") {
        path.pop();
    }
    if let Some(name) = alias.or_else(|| path.last().cloned()) {
        out.push((name, path));
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Paths starting with `crate::` or `super::` written inside code.
fn inline_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for keyword in ["crate::", "super::"] {
        for (at, _) in text.match_indices(keyword) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = text[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(segments(&path));
        }
    }
    paths
}

/// `path` as written in `module`, from the crate root; `None` for other crates.
fn absolute(
    module: &[String],
    path: &[String],
    sources: &BTreeMap<Vec<String>, Source>,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut base = module.to_vec();
    let mut rest = path;
    match first.as_str() {
        "crate" => return Some(path[1..].to_vec()),
        "self" => rest = &path[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        child => {
            let mut candidate = base.clone();
            candidate.push(child.to_string());
            if !sources.contains_key(&candidate) {
                return None;
            }
        }
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The file that defines what `path` (from the crate root) names: the
/// deepest module file on it, through that module's re-exports.
fn resolve(path: &[String], sources: &BTreeMap<Vec<String>, Source>, hops: u8) -> Option<String> {
    let depth = (1..=path.len())
        .rev()
        .find(|&n| sources.contains_key(&path[..n]))?;
    let module = &path[..depth];
    let source = &sources[module];
    if hops < 8 {
        if let Some(name) = path.get(depth) {
            if let Some(from) = source.reexports.get(name) {
                if let Some(mut target) = absolute(module, from, sources) {
                    target.extend(path[depth + 1..].iter().cloned());
                    if let Some(file) = resolve(&target, sources, hops + 1) {
                        return Some(file);
                    }
                }
            }
        }
    }
    Some(source.file.clone())
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
                    Some("spec and document import no other module of the crate")
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
