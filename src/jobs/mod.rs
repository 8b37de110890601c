//! Container jobs: job files (modelled on Nosana's job definitions) and the
//! runner that executes them inside the node's podman host, never on the
//! host's Docker engine.
//!
//! `types` is the document as written (serde + JSON Schema), read with
//! positions by `crate::document`; `validate` turns it into a [`Job`], and
//! `runner` runs one through the narrow
//! [`JobEngine`] seam; the bollard implementation of that seam lives in
//! `crate::runtime::docker`, so this module imports no engine client.

mod cleanup;
pub mod cli;
pub mod engine;
pub mod images;
pub mod job;
pub mod limits;
pub mod logs;
pub mod outcome;
pub mod output;
mod run_options;
pub mod runner;
pub mod slots;
pub mod types;
mod validate;

use std::path::Path;

use schemars::generate::SchemaSettings;

use crate::document::{self, DocumentError, Kind};

pub use engine::{EngineError, JobEngine};
pub use job::Job;
pub use outcome::{JobReport, JobStatus};
pub use runner::{RunOptions, Runner};
pub use types::JobDocument;

/// How job files' errors name them.
pub static JOB_FILE: Kind = Kind {
    noun: "job file",
    syntax: "YAML/JSON",
    schema: "manifests/job.schema.json",
    empty_fix: "write a job: version, type and ops",
    fixes: &[(
        "data did not match any variant",
        "write a regular expression, or {regex: ..., logType: [stdout, stderr]}",
    )],
};

/// Job files' errors: the document error, placed in the job file.
pub type JobFileError = DocumentError;

/// Reads and validates the job file at `path` (YAML or JSON).
pub fn load(path: &Path) -> Result<Job, JobFileError> {
    parse(&document::read_text(path, &JOB_FILE)?, path)
}

/// Parses and validates `text`; `file` names the job and places errors.
pub fn parse(text: &str, file: &Path) -> Result<Job, JobFileError> {
    let (doc, at): (JobDocument, _) = document::parse(text, file, &JOB_FILE)?;
    validate::validate(&doc, &at, file)
}

/// The JSON Schema (draft 2020-12) of job files, generated from the types.
pub fn schema() -> serde_json::Value {
    SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<JobDocument>()
        .to_value()
}
