//! Field path → the line and column where that field was written, looked
//! up in the document's tree only when an error is rendered: no path string
//! is built while reading, so memory stays linear in the file. Knows nothing
//! of what the document describes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{DocumentError, Site};
use super::yaml::{self, Edge, Pos, Shape, Tree};
use super::Kind;

/// The positions of one document's nodes.
#[derive(Debug, Clone)]
pub struct Locations {
    file: PathBuf,
    tree: Tree,
}

/// The deepest node a path reached: how much of the path it matched, where
/// its key and its value were written.
#[derive(Debug, Clone, Copy)]
struct Reached {
    matched: usize,
    key: Option<Pos>,
    value: Pos,
}

impl Locations {
    /// The site of the value at `path`, or of the nearest written ancestor
    /// when the field itself is absent (a default or a missing field).
    pub fn value(&self, path: &str) -> Site {
        self.site(path, |reached| reached.value)
    }

    /// The site of the key at `path` (where a misspelt key was written), or
    /// of its value for sequence items.
    pub fn key(&self, path: &str) -> Site {
        self.site(path, |reached| reached.key.unwrap_or(reached.value))
    }

    fn site(&self, path: &str, pick: impl Fn(&Reached) -> Pos) -> Site {
        let root = self.tree.root;
        let mut best = Reached {
            matched: 0,
            key: None,
            value: root.at,
        };
        let mut seen = HashSet::new();
        self.descend(path, 0, root, None, &mut best, &mut seen);
        let (line, column) = pick(&best);
        Site {
            file: self.file.clone(),
            line,
            column,
            path: path.to_owned(),
        }
    }

    /// Follows `path[offset..]` from `edge`; true when the whole path was
    /// found. A key may itself hold `.` (`example.com/fleet`), so each split
    /// is tried; `seen` keeps the search linear in the path.
    fn descend(
        &self,
        path: &str,
        offset: usize,
        edge: Edge,
        key: Option<Pos>,
        best: &mut Reached,
        seen: &mut HashSet<(usize, usize)>,
    ) -> bool {
        if offset >= best.matched {
            *best = Reached {
                matched: offset,
                key,
                value: edge.at,
            };
        }
        if offset == path.len() {
            return true;
        }
        if !seen.insert((edge.node, offset)) {
            return false;
        }
        let rest = &path[offset..];
        match &self.tree.nodes[edge.node].shape {
            Shape::Scalar(_) => false,
            Shape::Sequence(items) => {
                let Some((index, len)) = index_segment(rest) else {
                    return false;
                };
                match items.get(index) {
                    Some(item) => self.descend(path, offset + len, *item, None, best, seen),
                    None => false,
                }
            }
            Shape::Mapping(entries) => {
                let skip = match rest.strip_prefix('.') {
                    Some(_) if offset > 0 => 1,
                    None if offset == 0 => 0,
                    _ => return false,
                };
                let rest = &rest[skip..];
                let ends = rest
                    .match_indices(['.', '['])
                    .map(|(i, _)| i)
                    .chain([rest.len()]);
                for end in ends {
                    let name = &rest[..end];
                    let Some(entry) = entries.iter().find(|e| e.key == name) else {
                        continue;
                    };
                    let next = offset + skip + end;
                    if self.descend(path, next, entry.value, Some(entry.key_at), best, seen) {
                        return true;
                    }
                }
                false
            }
        }
    }
}

/// `[12]…` → (12, 4).
fn index_segment(rest: &str) -> Option<(usize, usize)> {
    let inner = rest.strip_prefix('[')?;
    let close = inner.find(']')?;
    let index = inner[..close].parse().ok()?;
    Some((index, close + 2))
}

/// Parses `text` as exactly one YAML document, within the limits of
/// [`super::limits`]; `kind` names the document in errors.
pub fn load(
    text: &str,
    file: &Path,
    kind: &'static Kind,
) -> Result<(Value, Locations), DocumentError> {
    let tree = yaml::read(text, file, kind)?;
    let value = tree.value();
    Ok((
        value,
        Locations {
            file: file.to_owned(),
            tree,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST: Kind = Kind {
        noun: "test document",
        syntax: "YAML",
        schema: "the test",
        empty_fix: "write a document",
        fixes: &[],
    };

    #[test]
    fn keys_holding_dots_and_missing_fields() {
        let text = "m:\n  labels:\n    example.com/a.b: x\n  list:\n    - y\n";
        let (_, at) = load(text, Path::new("t.yaml"), &TEST).expect("valid yaml");
        let key = at.key("m.labels.example.com/a.b");
        assert_eq!((key.line, key.column), (3, 5));
        let item = at.value("m.list[0]");
        assert_eq!((item.line, item.column), (5, 7));
        let beyond = at.value("m.list[7].name");
        assert_eq!((beyond.line, beyond.column), (4, 3));
        assert_eq!(beyond.path, "m.list[7].name");
    }

    #[test]
    fn aliased_nodes_are_found_through_the_alias() {
        let text = "a: &x\n  k: 1\nb: *x\n";
        let (value, at) = load(text, Path::new("t.yaml"), &TEST).expect("valid yaml");
        assert_eq!(value["b"]["k"], 1);
        let site = at.value("b.k");
        assert_eq!((site.line, site.column), (2, 6));
    }

    #[test]
    fn positions_are_one_based() {
        let text = "a:\n  b: [1, 2]\n  c: x\n";
        let (value, at) = load(text, Path::new("t.yaml"), &TEST).expect("valid yaml");
        assert_eq!(value["a"]["b"][1], 2);
        let site = at.value("a.b[1]");
        assert_eq!((site.line, site.column), (2, 10));
        let key = at.key("a.c");
        assert_eq!((key.line, key.column), (3, 3));
        let missing = at.key("a.c.d");
        assert_eq!((missing.line, missing.column), (3, 3));
    }
}
