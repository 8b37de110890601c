//! YAML text → a node tree with positions, read from saphyr's event parser so
//! that every bound (file size, nesting depth, alias expansion) is checked
//! before anything is built or recursed into. An alias shares the anchored
//! node instead of copying it; the expansion is paid for once, by
//! [`Tree::value`], after the budget has been checked. Knows nothing of
//! what the document describes; `locate` reads positions from the tree.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

use super::error::{DocumentError, Site};
use super::limits::{MAX_ALIAS_BYTES, MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES};
use super::Kind;

/// A 1-based line and column; `u32` keeps every error small, and a file
/// within [`MAX_FILE_BYTES`] has far fewer lines and columns.
pub(super) type Pos = (u32, u32);

/// A child as written at one place: the node and where it was written (a
/// collection under a key is placed at its key).
#[derive(Debug, Clone, Copy)]
pub(super) struct Edge {
    pub node: usize,
    pub at: Pos,
}

/// One mapping entry.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: String,
    pub key_at: Pos,
    pub value: Edge,
}

#[derive(Debug, Clone)]
pub(super) enum Shape {
    Scalar(Value),
    Sequence(Vec<Edge>),
    Mapping(Vec<Entry>),
}

/// A node and what it costs to expand: the nodes (keys included) and the
/// bytes of keys and scalars under it, and how deep it nests.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub shape: Shape,
    height: usize,
    nodes: u64,
    bytes: u64,
}

/// One document: an arena of nodes (aliases share entries) and its root.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    pub nodes: Vec<Node>,
    pub root: Edge,
}

impl Tree {
    /// The JSON value of the document, aliases expanded; bounded by the
    /// limits checked while reading.
    pub fn value(&self) -> Value {
        self.value_of(self.root.node)
    }

    fn value_of(&self, id: usize) -> Value {
        match &self.nodes[id].shape {
            Shape::Scalar(value) => value.clone(),
            Shape::Sequence(items) => {
                Value::Array(items.iter().map(|e| self.value_of(e.node)).collect())
            }
            Shape::Mapping(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), self.value_of(e.value.node)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

/// Reads `text` as exactly one YAML document.
pub(super) fn read(text: &str, file: &Path, kind: &'static Kind) -> Result<Tree, DocumentError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(file_too_large(file));
    }
    let mut reader = Reader {
        file,
        kind,
        nodes: Vec::new(),
        open: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        alias_bytes: 0,
        root: None,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|err| {
            let mark = err.marker();
            syntax(
                (file, kind),
                position(mark.line(), mark.col() + 1),
                err.info(),
                "check indentation, colons and quotes around this position",
            )
        })?;
        if !reader.event(event, span)? {
            break;
        }
    }
    match reader.root {
        Some(root) => Ok(Tree {
            nodes: reader.nodes,
            root,
        }),
        None => Err(syntax(
            (file, kind),
            (1, 1),
            "the file holds no document",
            kind.empty_fix,
        )),
    }
}

/// The error for a file over [`MAX_FILE_BYTES`].
pub(super) fn file_too_large(file: &Path) -> DocumentError {
    DocumentError::Limit {
        site: Site::start_of(file),
        message: format!("the file is larger than the limit of {MAX_FILE_BYTES} bytes (1 MiB)"),
        fix: "a spec is a few KB: remove what is not needed, or split jobs into several files"
            .into(),
    }
}

fn syntax(
    (file, kind): (&Path, &'static Kind),
    (line, column): Pos,
    message: &str,
    fix: &str,
) -> DocumentError {
    DocumentError::Syntax {
        kind,
        site: Site {
            file: file.to_owned(),
            line,
            column,
            path: String::new(),
        },
        message: message.to_owned(),
        fix: fix.to_owned(),
    }
}

fn pos(span: &Span) -> Pos {
    position(span.start.line(), span.start.col() + 1)
}

fn position(line: usize, column: usize) -> Pos {
    let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    (narrow(line), narrow(column))
}

/// A sequence or mapping whose end has not been read yet.
#[derive(Debug)]
struct Open {
    shape: Shape,
    anchor: usize,
    at: Pos,
    /// A mapping's key waiting for its value.
    key: Option<(String, Pos)>,
    keys: HashSet<String>,
    height: usize,
    nodes: u64,
    bytes: u64,
}

#[derive(Debug)]
struct Reader<'a> {
    file: &'a Path,
    kind: &'static Kind,
    nodes: Vec<Node>,
    open: Vec<Open>,
    /// Anchor id → its finished node.
    anchors: HashMap<usize, usize>,
    alias_nodes: u64,
    alias_bytes: u64,
    root: Option<Edge>,
}

impl Reader<'_> {
    /// Takes one event; false once the stream has ended.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<bool, DocumentError> {
        let at = pos(&span);
        match event {
            Event::StreamEnd => return Ok(false),
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart(_) if self.root.is_some() => {
                return Err(self.error(
                    at,
                    "a second YAML document (after `---`)",
                    "keep one document per file",
                ))
            }
            Event::DocumentStart(_) => {}
            Event::Scalar(text, style, anchor, tag) => {
                let value = self.scalar(at, text, style, tag.as_ref())?;
                let bytes = match &value {
                    Value::String(s) => s.len() as u64,
                    _ => 1,
                };
                let id = self.push(Node {
                    shape: Shape::Scalar(value),
                    height: 0,
                    nodes: 1,
                    bytes,
                });
                self.finish(id, anchor, at)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.start(Shape::Sequence(Vec::new()), anchor, at)?
            }
            Event::MappingStart(anchor, _) => self.start(Shape::Mapping(Vec::new()), anchor, at)?,
            Event::SequenceEnd | Event::MappingEnd => {
                // The parser pairs every end with a start.
                if let Some(open) = self.open.pop() {
                    let id = self.push(Node {
                        shape: open.shape,
                        height: open.height + 1,
                        nodes: open.nodes.saturating_add(1),
                        bytes: open.bytes,
                    });
                    self.finish(id, open.anchor, open.at)?;
                }
            }
            Event::Alias(anchor) => self.alias(anchor, at)?,
        }
        Ok(true)
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn error(&self, at: Pos, message: &str, fix: &str) -> DocumentError {
        syntax((self.file, self.kind), at, message, fix)
    }

    fn limit(&self, at: Pos, message: String, fix: &str) -> DocumentError {
        DocumentError::Limit {
            site: Site {
                file: self.file.to_owned(),
                line: at.0,
                column: at.1,
                path: String::new(),
            },
            message,
            fix: fix.to_owned(),
        }
    }

    fn in_key_position(&self) -> bool {
        self.open
            .last()
            .is_some_and(|o| matches!(o.shape, Shape::Mapping(_)) && o.key.is_none())
    }

    fn start(&mut self, shape: Shape, anchor: usize, at: Pos) -> Result<(), DocumentError> {
        if self.in_key_position() {
            return Err(self.error(
                at,
                "a mapping key must be a plain string",
                "write the key as text",
            ));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        self.open.push(Open {
            shape,
            anchor,
            at,
            key: None,
            keys: HashSet::new(),
            height: 0,
            nodes: 0,
            bytes: 0,
        });
        Ok(())
    }

    fn too_deep(&self, at: Pos) -> DocumentError {
        self.limit(
            at,
            format!("sequences and mappings nest deeper than {MAX_DEPTH} levels"),
            "flatten the document; a spec needs fewer than 10 levels",
        )
    }

    fn alias(&mut self, anchor: usize, at: Pos) -> Result<(), DocumentError> {
        let Some(&id) = self.anchors.get(&anchor) else {
            return Err(self.error(
                at,
                "an alias to the node it is inside of",
                "write the value out in full",
            ));
        };
        let node = &self.nodes[id];
        let (scalar, height, nodes, bytes) = (
            matches!(node.shape, Shape::Scalar(_)),
            node.height,
            node.nodes,
            node.bytes,
        );
        if self.in_key_position() && !scalar {
            return Err(self.error(
                at,
                "a mapping key must be a plain string",
                "write the key as text",
            ));
        }
        if self.open.len() + height > MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        self.alias_nodes = self.alias_nodes.saturating_add(nodes);
        self.alias_bytes = self.alias_bytes.saturating_add(bytes);
        if self.alias_nodes > MAX_ALIAS_NODES || self.alias_bytes > MAX_ALIAS_BYTES {
            return Err(self.limit(
                at,
                format!(
                    "aliases expand to more than {MAX_ALIAS_NODES} nodes or {MAX_ALIAS_BYTES} bytes (keys and values counted)"
                ),
                "write the repeated parts out, or use fewer aliases",
            ));
        }
        self.attach(id, at)
    }

    /// Records `id` under its anchor and hangs it into its parent.
    fn finish(&mut self, id: usize, anchor: usize, at: Pos) -> Result<(), DocumentError> {
        // Anchor ids start at 1; 0 means none.
        if anchor > 0 {
            self.anchors.insert(anchor, id);
        }
        self.attach(id, at)
    }

    fn attach(&mut self, id: usize, at: Pos) -> Result<(), DocumentError> {
        let node = &self.nodes[id];
        let (height, nodes, bytes) = (node.height, node.nodes, node.bytes);
        let collection = !matches!(node.shape, Shape::Scalar(_));
        let key_name = match &node.shape {
            Shape::Scalar(Value::String(s)) => Some(s.clone()),
            Shape::Scalar(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            Shape::Scalar(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        };
        let origin = (self.file, self.kind);
        let Some(parent) = self.open.last_mut() else {
            self.root = Some(Edge { node: id, at });
            return Ok(());
        };
        parent.height = parent.height.max(height);
        parent.nodes = parent.nodes.saturating_add(nodes);
        parent.bytes = parent.bytes.saturating_add(bytes);
        match &mut parent.shape {
            Shape::Sequence(items) => items.push(Edge { node: id, at }),
            Shape::Mapping(entries) => match parent.key.take() {
                Some((key, key_at)) => {
                    let at = if collection { key_at } else { at };
                    entries.push(Entry {
                        key,
                        key_at,
                        value: Edge { node: id, at },
                    });
                }
                None => {
                    let Some(key) = key_name else {
                        return Err(syntax(
                            origin,
                            at,
                            "a mapping key must be a plain string",
                            "write the key as text",
                        ));
                    };
                    if !parent.keys.insert(key.clone()) {
                        return Err(syntax(
                            origin,
                            at,
                            &format!("the key `{key}` appears twice in this mapping"),
                            "write each key once",
                        ));
                    }
                    parent.key = Some((key, at));
                }
            },
            Shape::Scalar(_) => {}
        }
        Ok(())
    }

    fn scalar(
        &self,
        at: Pos,
        text: std::borrow::Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&std::borrow::Cow<'_, Tag>>,
    ) -> Result<Value, DocumentError> {
        let Some(scalar) = Scalar::parse_from_cow_and_metadata(text, style, tag) else {
            return Err(self.error(
                at,
                "a value that does not fit its tag",
                "remove the tag or write a value of that type",
            ));
        };
        Ok(match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(b),
            Scalar::Integer(i) => Value::Number(i.into()),
            Scalar::FloatingPoint(f) => match Number::from_f64(f.into_inner()) {
                Some(n) => Value::Number(n),
                None => {
                    return Err(self.error(
                        at,
                        "a number that is not finite (.inf or .nan)",
                        "write a finite number",
                    ))
                }
            },
            Scalar::String(s) => Value::String(s.into_owned()),
        })
    }
}
