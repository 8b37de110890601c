//! The benchmark report a node keeps in its state directory
//! (`benchmark.json`, written by `start.sh` from `garage benchmark --json`),
//! which the agent and `garage register` send to the coordinator.

use std::path::{Path, PathBuf};

use super::BenchmarkReport;

/// File name of the saved report in a node's state directory.
pub const SAVED_FILE: &str = "benchmark.json";

/// Why a saved report cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum SavedReportError {
    #[error("reading the benchmark report {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a `garage benchmark --json` report (run the benchmark again)")]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The report in `path`, checked to be one `garage benchmark --json` wrote,
/// as the JSON the coordinator stores.
pub fn read(path: &Path) -> Result<serde_json::Value, SavedReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| SavedReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |source| SavedReportError::Invalid {
        path: path.to_path_buf(),
        source,
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(invalid)?;
    serde_json::from_value::<BenchmarkReport>(value.clone()).map_err(invalid)?;
    Ok(value)
}

/// The report saved in `state_dir`, if there is one.
pub fn read_saved(state_dir: &Path) -> Result<Option<serde_json::Value>, SavedReportError> {
    let path = state_dir.join(SAVED_FILE);
    if path.exists() {
        read(&path).map(Some)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_report_is_none_and_a_foreign_one_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_saved(dir.path()).expect("no file").is_none());
        std::fs::write(dir.path().join(SAVED_FILE), r#"{"gpu": "fast"}"#).expect("write");
        let e = read_saved(dir.path()).expect_err("foreign").to_string();
        assert!(
            e.contains("is not a `garage benchmark --json` report"),
            "{e}"
        );
    }
}
