//! The one error type of documents read with positions (node specs, job
//! files): every variant says where in which file the problem is, which
//! field it concerns, and how to fix it.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use super::Kind;

/// Where a problem sits: the file, a 1-based line and column, and the field
/// path in the document (`spec.containers[1].ports[0].hostPort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    /// Dotted field path; empty for the document itself.
    pub path: String,
}

impl Site {
    /// The start of `file`, for problems with the file as a whole.
    pub fn start_of(file: &std::path::Path) -> Site {
        Site {
            file: file.to_owned(),
            line: 1,
            column: 1,
            path: String::new(),
        }
    }
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

/// Why a document could not be read, parsed, validated or used.
#[derive(Debug, Error)]
pub enum DocumentError {
    /// The file could not be read at all.
    #[error("{}: cannot read the {} (fix: check that the file exists and is readable)", file.display(), kind.noun)]
    Read {
        kind: &'static Kind,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not well-formed YAML, or holds something a document
    /// cannot (several documents, a non-string key, a non-finite number).
    #[error("{site} invalid {}: {message} (fix: {fix})", kind.syntax)]
    Syntax {
        kind: &'static Kind,
        site: Site,
        message: String,
        fix: String,
    },
    /// The file is past one of the bounds of `limits` (size, nesting depth,
    /// alias expansion, or a bound of the document's own, like the number
    /// of containers).
    #[error("{site} {message} (fix: {fix})")]
    Limit {
        site: Site,
        message: String,
        fix: String,
    },
    /// A key that the document does not know (most often a typo).
    #[error("{site} unknown field `{field}`, expected {expected} (fix: check the spelling; {} lists every field)", kind.schema)]
    UnknownField {
        kind: &'static Kind,
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
    /// The document asks for something this host does not have (GPUs): it
    /// may be fine on another host, so callers can tell it apart from
    /// [`DocumentError::Invalid`].
    #[error("{site} {message} (fix: {fix})")]
    Unavailable {
        site: Site,
        message: String,
        fix: String,
    },
}

impl DocumentError {
    /// Where in the document the error is; `None` when the file could not
    /// be read at all.
    pub fn site(&self) -> Option<&Site> {
        match self {
            DocumentError::Read { .. } => None,
            DocumentError::Syntax { site, .. }
            | DocumentError::Limit { site, .. }
            | DocumentError::UnknownField { site, .. }
            | DocumentError::MissingField { site, .. }
            | DocumentError::WrongType { site, .. }
            | DocumentError::Invalid { site, .. }
            | DocumentError::Unavailable { site, .. } => Some(site),
        }
    }
}
