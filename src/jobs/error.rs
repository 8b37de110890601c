//! Why a job file was rejected: every error names the file, line, column and
//! field path, and says how to fix it. Nothing has run when one is returned.

use std::path::PathBuf;

use thiserror::Error;

pub use crate::spec::Site;

#[derive(Debug, Error)]
pub enum JobFileError {
    #[error("{}: cannot read the job file (fix: check that the file exists and is readable)", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not well-formed YAML (JSON is YAML too).
    #[error("{site} invalid YAML/JSON: {message} (fix: {fix})")]
    Syntax {
        site: Site,
        message: String,
        fix: String,
    },
    /// Past a bound of `crate::spec::limits` (size, depth, aliases).
    #[error("{site} {message} (fix: {fix})")]
    Limit {
        site: Site,
        message: String,
        fix: String,
    },
    #[error("{site} unknown field `{field}`, expected {expected} (fix: check the spelling; manifests/job.schema.json lists every field)")]
    UnknownField {
        site: Site,
        field: String,
        expected: String,
    },
    #[error("{site} missing field `{field}` (fix: add `{field}`)")]
    MissingField { site: Site, field: String },
    #[error("{site} {message} (fix: {fix})")]
    WrongType {
        site: Site,
        message: String,
        fix: String,
    },
    #[error("{site} {message} (fix: {fix})")]
    Invalid {
        site: Site,
        message: String,
        fix: String,
    },
}

impl JobFileError {
    /// Where the problem is; `None` only when the file was unreadable.
    pub fn site(&self) -> Option<&Site> {
        match self {
            JobFileError::Read { .. } => None,
            JobFileError::Syntax { site, .. }
            | JobFileError::Limit { site, .. }
            | JobFileError::UnknownField { site, .. }
            | JobFileError::MissingField { site, .. }
            | JobFileError::WrongType { site, .. }
            | JobFileError::Invalid { site, .. } => Some(site),
        }
    }
}
