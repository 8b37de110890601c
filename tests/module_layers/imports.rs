//! Reading `src/**/*.rs` into a file-level import graph for
//! `module_layers.rs`: module paths from file paths, `use` trees (braces,
//! `self`, `as`), inline `crate::`/`super::` paths, and `pub use`
//! re-exports followed to the file that defines a name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One source file: its path, module path and the text that counts.
struct Source {
    file: String,
    text: String,
    /// Names this file re-exports (`pub use`), to the path they come from.
    reexports: BTreeMap<String, Vec<String>>,
}

pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir` that is not a test file, as (path relative
/// to `root`, text).
pub fn collect(dir: &Path, root: &Path, files: &mut Vec<(String, String)>) {
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
pub fn import_graph(files: &[(String, String)]) -> Graph {
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
