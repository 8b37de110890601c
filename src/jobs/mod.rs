//! Container jobs: job files (modelled on Nosana's job definitions) and the
//! runner that executes them inside the node's podman host, never on the
//! host's Docker engine.
//!
//! `types` is the document as written (serde + JSON Schema), `validate`
//! turns it into a [`Job`], and `runner` runs one through the narrow
//! [`JobEngine`] seam; the bollard implementation of that seam lives in
//! `crate::runtime::jobs`, so this module imports no engine client.

pub mod cli;
pub mod engine;
pub mod error;
pub mod images;
pub mod job;
pub mod limits;
pub mod logs;
pub mod output;
pub mod report;
mod run_options;
pub mod runner;
pub mod slots;
pub mod types;
mod validate;

#[cfg(test)]
mod runner_tests;
#[cfg(test)]
mod slots_tests;
#[cfg(test)]
mod tests;

use std::path::Path;

use schemars::generate::SchemaSettings;

pub use engine::{EngineError, JobEngine};
pub use error::JobFileError;
pub use job::Job;
pub use report::{JobReport, JobStatus};
pub use runner::{RunOptions, Runner};
pub use types::JobDocument;

/// Reads and validates the job file at `path` (YAML or JSON).
pub fn load(path: &Path) -> Result<Job, JobFileError> {
    let text = crate::spec::read_text(path).map_err(|err| yaml_error(err, path))?;
    parse(&text, path)
}

/// Parses and validates `text`; `file` names the job and places errors.
pub fn parse(text: &str, file: &Path) -> Result<Job, JobFileError> {
    let (value, at) = crate::spec::locate::load(text, file).map_err(|err| yaml_error(err, file))?;
    let doc: JobDocument =
        serde_path_to_error::deserialize(value).map_err(|err| deserialize_error(&err, &at))?;
    validate::validate(&doc, &at, file)
}

/// Job files share the spec's YAML layer; its errors keep their place.
fn yaml_error(err: crate::spec::SpecError, file: &Path) -> JobFileError {
    use crate::spec::SpecError;
    match err {
        SpecError::Read { file, source } => JobFileError::Read { file, source },
        SpecError::Syntax { site, message, fix } => JobFileError::Syntax { site, message, fix },
        SpecError::Limit { site, message, fix } => JobFileError::Limit { site, message, fix },
        other => JobFileError::Syntax {
            site: other.site().cloned().unwrap_or_else(|| crate::spec::Site {
                file: file.to_owned(),
                line: 1,
                column: 1,
                path: String::new(),
            }),
            message: other.to_string(),
            fix: "check the file".into(),
        },
    }
}

/// The JSON Schema (draft 2020-12) of job files, generated from the types.
pub fn schema() -> serde_json::Value {
    SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<JobDocument>()
        .to_value()
}

fn deserialize_error(
    err: &serde_path_to_error::Error<serde_json::Error>,
    at: &crate::spec::locate::Locations,
) -> JobFileError {
    let path = crate::spec::field_path(err.path());
    let message = err.inner().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest
            .split_once("`, expected ")
            .unwrap_or((rest, "no fields"));
        return JobFileError::UnknownField {
            site: at.key(&path),
            field: field.trim_end_matches('`').to_owned(),
            expected: expected.to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return JobFileError::MissingField {
            site: at.key(&path),
            field: rest.trim_end_matches('`').to_owned(),
        };
    }
    let fix = if message.starts_with("unknown variant") {
        "use one of the listed values; they are case-sensitive"
    } else if message.starts_with("data did not match any variant") {
        "write a regular expression, or {regex: ..., logType: [stdout, stderr]}"
    } else {
        "write a value of the expected type; quote numbers and booleans meant as text"
    };
    JobFileError::WrongType {
        site: at.value(&path),
        message,
        fix: fix.to_owned(),
    }
}
