//! Errors placed at the positions recorded while parsing: the one helper
//! every document's validation builds its [`DocumentError::Invalid`] with.
//! Knows nothing of what a document describes; each document adds its own
//! checks on top (`crate::spec`'s durations and environment maps,
//! `crate::jobs`' sizes).

use super::{DocumentError, DocumentWarning, Locations};

/// Builds errors at the positions recorded while parsing.
#[derive(Debug)]
pub struct Checker<'a> {
    pub at: &'a Locations,
}

impl Checker<'_> {
    /// A bad value at `path`.
    pub fn invalid(&self, path: &str, message: impl Into<String>, fix: &str) -> DocumentError {
        DocumentError::Invalid {
            site: self.at.value(path),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// A suspicious but accepted value at `path`.
    pub fn warning(&self, path: &str, message: impl Into<String>, fix: &str) -> DocumentWarning {
        DocumentWarning {
            site: self.at.value(path),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// A bad map key at `path` (points at the key, not its value).
    pub fn invalid_key(&self, path: &str, message: impl Into<String>, fix: &str) -> DocumentError {
        DocumentError::Invalid {
            site: self.at.key(path),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// `result`'s message, if any, as a bad value at `path`.
    pub fn check(
        &self,
        path: &str,
        result: Result<(), String>,
        fix: &str,
    ) -> Result<(), DocumentError> {
        result.map_err(|message| self.invalid(path, message, fix))
    }
}
