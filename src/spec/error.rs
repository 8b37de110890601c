//! The spec module's one error type: every variant says where in which file
//! the problem is, which field it concerns, and how to fix it.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// Where a problem sits: the file, a 1-based line and column, and the field
/// path in the document (`spec.containers[1].ports[0].hostPort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted field path; empty for the document itself.
    pub path: String,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}:", self.file.display(), self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        Ok(())
    }
}

/// Why a node spec could not be read, parsed, validated or lowered.
#[derive(Debug, Error)]
pub enum SpecError {
    /// The file could not be read at all.
    #[error("{}: cannot read the node spec (fix: check that the file exists and is readable)", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not well-formed YAML, or holds something a spec cannot
    /// (several documents, a non-string key, a non-finite number).
    #[error("{site} invalid YAML: {message} (fix: {fix})")]
    Syntax {
        site: Site,
        message: String,
        fix: String,
    },
    /// The file is past one of the bounds of `limits` (size, nesting depth,
    /// alias expansion, number of containers).
    #[error("{site} {message} (fix: {fix})")]
    Limit {
        site: Site,
        message: String,
        fix: String,
    },
    /// A key that the spec does not know (most often a typo).
    #[error("{site} unknown field `{field}`, expected {expected} (fix: check the spelling; manifests/node.schema.json lists every field)")]
    UnknownField {
        site: Site,
        field: String,
        expected: String,
    },
    /// A required key is missing.
    #[error("{site} missing field `{field}` (fix: add `{field}`)")]
    MissingField { site: Site, field: String },
    /// A value of the wrong type or an unknown enum value.
    #[error("{site} {message} (fix: {fix})")]
    WrongType {
        site: Site,
        message: String,
        fix: String,
    },
    /// The document is well-typed but a value is not acceptable.
    #[error("{site} {message} (fix: {fix})")]
    Invalid {
        site: Site,
        message: String,
        fix: String,
    },
    /// The spec asks for GPUs this host does not have: the spec may be fine
    /// on another host, so callers can tell it apart from [`SpecError::Invalid`].
    #[error("{site} {message} (fix: {fix})")]
    Gpu {
        site: Site,
        message: String,
        fix: String,
    },
}

impl SpecError {
    /// The location of the problem; `None` only when the file was unreadable.
    pub fn site(&self) -> Option<&Site> {
        match self {
            SpecError::Read { .. } => None,
            SpecError::Syntax { site, .. }
            | SpecError::Limit { site, .. }
            | SpecError::UnknownField { site, .. }
            | SpecError::MissingField { site, .. }
            | SpecError::WrongType { site, .. }
            | SpecError::Invalid { site, .. }
            | SpecError::Gpu { site, .. } => Some(site),
        }
    }
}
