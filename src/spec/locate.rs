//! YAML text → a JSON value for serde plus an index from field path to the
//! line and column where that field was written. Knows nothing of the spec.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

use super::error::{Site, SpecError};

/// Where one node was written: its key (for mapping entries) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: Option<(usize, usize)>,
    value: (usize, usize),
}

/// Field path → position, for every node of one document.
#[derive(Debug, Clone)]
pub struct Locations {
    file: PathBuf,
    entries: HashMap<String, Entry>,
}

impl Locations {
    /// The site of the value at `path`, or of the nearest written ancestor
    /// when the field itself is absent (a default or a missing field).
    pub fn value(&self, path: &str) -> Site {
        self.site(path, |entry| entry.value)
    }

    /// The site of the key at `path` (where a misspelt key was written), or
    /// of its value for sequence items.
    pub fn key(&self, path: &str) -> Site {
        self.site(path, |entry| entry.key.unwrap_or(entry.value))
    }

    fn site(&self, path: &str, pick: impl Fn(&Entry) -> (usize, usize)) -> Site {
        let mut probe = path;
        let (line, column) = loop {
            if let Some(entry) = self.entries.get(probe) {
                break pick(entry);
            }
            match parent(probe) {
                Some(up) => probe = up,
                None => break (1, 1),
            }
        };
        Site {
            file: self.file.clone(),
            line,
            column,
            path: path.to_owned(),
        }
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → none.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind(['.', '[']).map_or("", |cut| &path[..cut]))
}

/// Parses `text` as exactly one YAML document.
pub fn load(text: &str, file: &Path) -> Result<(Value, Locations), SpecError> {
    let syntax = |line: usize, column: usize, message: String, fix: &str| SpecError::Syntax {
        site: Site {
            file: file.to_owned(),
            line,
            column,
            path: String::new(),
        },
        message,
        fix: fix.to_owned(),
    };
    let docs = MarkedYaml::load_from_str(text).map_err(|err| {
        let mark = err.marker();
        syntax(
            mark.line(),
            mark.col() + 1,
            err.info().to_owned(),
            "check indentation, colons and quotes around this position",
        )
    })?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Err(syntax(
            1,
            1,
            "the file holds no document".into(),
            "write a Node spec",
        ));
    };
    if let Some(extra) = docs.next() {
        let (line, column) = position(&extra);
        return Err(syntax(
            line,
            column,
            "a second YAML document (after `---`)".into(),
            "keep one Node per file",
        ));
    }
    let mut walker = Walker {
        file,
        entries: HashMap::new(),
    };
    walker.note(String::new(), None, &doc);
    let value = walker.convert("", &doc)?;
    Ok((
        value,
        Locations {
            file: file.to_owned(),
            entries: walker.entries,
        },
    ))
}

fn position(node: &MarkedYaml<'_>) -> (usize, usize) {
    (node.span.start.line(), node.span.start.col() + 1)
}

struct Walker<'a> {
    file: &'a Path,
    entries: HashMap<String, Entry>,
}

impl Walker<'_> {
    /// A mapping or sequence under a key is reported at its key: a block
    /// collection starts on the next line, which reads as the wrong place.
    fn note(&mut self, path: String, key: Option<&MarkedYaml<'_>>, value: &MarkedYaml<'_>) {
        let key = key.map(position);
        let collection = matches!(value.data, YamlData::Mapping(_) | YamlData::Sequence(_));
        let value = match key {
            Some(key) if collection => key,
            _ => position(value),
        };
        self.entries.insert(path, Entry { key, value });
    }

    fn error(&self, node: &MarkedYaml<'_>, path: &str, message: &str, fix: &str) -> SpecError {
        let (line, column) = position(node);
        SpecError::Syntax {
            site: Site {
                file: self.file.to_owned(),
                line,
                column,
                path: path.to_owned(),
            },
            message: message.to_owned(),
            fix: fix.to_owned(),
        }
    }

    fn convert(&mut self, path: &str, node: &MarkedYaml<'_>) -> Result<Value, SpecError> {
        match &node.data {
            YamlData::Value(scalar) => self.scalar(path, node, scalar),
            YamlData::Representation(text, ..) => Ok(Value::String(text.to_string())),
            YamlData::Tagged(_, inner) => self.convert(path, inner),
            YamlData::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{index}]");
                    self.note(item_path.clone(), None, item);
                    out.push(self.convert(&item_path, item)?);
                }
                Ok(Value::Array(out))
            }
            YamlData::Mapping(entries) => {
                let mut out = Map::new();
                for (key, value) in entries {
                    let name = match &key.data {
                        YamlData::Value(Scalar::String(s)) => s.to_string(),
                        YamlData::Value(Scalar::Integer(i)) => i.to_string(),
                        YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
                        _ => {
                            return Err(self.error(
                                key,
                                path,
                                "a mapping key must be a plain string",
                                "write the key as text",
                            ))
                        }
                    };
                    let entry_path =
                        if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                    self.note(entry_path.clone(), Some(key), value);
                    let converted = self.convert(&entry_path, value)?;
                    out.insert(name, converted);
                }
                Ok(Value::Object(out))
            }
            YamlData::Alias(_) | YamlData::BadValue => Err(self.error(
                node,
                path,
                "a value that cannot be resolved (unknown alias or a value that does not fit its tag)",
                "write the value out in full",
            )),
        }
    }

    fn scalar(
        &self,
        path: &str,
        node: &MarkedYaml<'_>,
        scalar: &Scalar<'_>,
    ) -> Result<Value, SpecError> {
        Ok(match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::Number((*i).into()),
            Scalar::FloatingPoint(f) => match Number::from_f64(f.into_inner()) {
                Some(n) => Value::Number(n),
                None => {
                    return Err(self.error(
                        node,
                        path,
                        "a number that is not finite (.inf or .nan)",
                        "write a finite number",
                    ))
                }
            },
            Scalar::String(s) => Value::String(s.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_walks_up_the_path() {
        assert_eq!(
            parent("spec.containers[1].ports[0]"),
            Some("spec.containers[1].ports")
        );
        assert_eq!(parent("spec.containers[1]"), Some("spec.containers"));
        assert_eq!(parent("spec"), Some(""));
        assert_eq!(parent(""), None);
    }

    #[test]
    fn positions_are_one_based() {
        let text = "a:\n  b: [1, 2]\n  c: x\n";
        let (value, at) = load(text, Path::new("t.yaml")).expect("valid yaml");
        assert_eq!(value["a"]["b"][1], 2);
        let site = at.value("a.b[1]");
        assert_eq!((site.line, site.column), (2, 10));
        let key = at.key("a.c");
        assert_eq!((key.line, key.column), (3, 3));
        let missing = at.key("a.c.d");
        assert_eq!((missing.line, missing.column), (3, 3));
    }
}
