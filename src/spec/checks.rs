//! The spec's own checks on top of the document's [`Checker`]: durations
//! within a range, environment maps, GPU index lists. Shared by `validate`
//! and the component builders (`component`, `container_fields`), so none of
//! them reaches into another for them.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::document::Checker;

use super::limits::DurationRange;
use super::names;
use super::quantity;
use super::SpecError;

/// Checks only node specs make, as methods of the document's [`Checker`].
pub(super) trait SpecChecks {
    /// A duration written at `path`, within `range`.
    fn duration(&self, path: &str, text: &str, range: DurationRange)
        -> Result<Duration, SpecError>;

    /// An environment map at `path`: valid keys, within the size limits.
    fn env(&self, path: &str, env: &BTreeMap<String, String>) -> Result<(), SpecError>;
}

impl SpecChecks for Checker<'_> {
    fn duration(
        &self,
        path: &str,
        text: &str,
        range: DurationRange,
    ) -> Result<Duration, SpecError> {
        let value = quantity::parse_duration(text).map_err(|why| {
            self.invalid(
                path,
                format!("invalid duration `{text}`: {why}"),
                "write a duration like 500ms, 10s, 5m or 1h30m",
            )
        })?;
        range.check(text, value).map_err(|why| {
            self.invalid(path, why, &format!("write a duration {}", range.describe()))
        })
    }

    fn env(&self, path: &str, env: &BTreeMap<String, String>) -> Result<(), SpecError> {
        for key in env.keys() {
            names::env_key(key).map_err(|m| {
                self.invalid_key(&format!("{path}.{key}"), m, "rename the variable")
            })?;
        }
        names::env_sizes(env).map_err(|(key, why)| {
            self.invalid(
                &format!("{path}.{key}"),
                why,
                "pass large data in a file (a mount) instead of the environment",
            )
        })
    }
}

/// GPU indices at `path`, each listed once.
pub(super) fn unique_indices(
    c: &Checker<'_>,
    path: &str,
    indices: &[u32],
) -> Result<(), SpecError> {
    let mut seen = HashSet::with_capacity(indices.len());
    for (i, index) in indices.iter().enumerate() {
        if !seen.insert(index) {
            return Err(c.invalid(
                &format!("{path}[{i}]"),
                format!("GPU index {index} is listed twice"),
                "list each GPU once",
            ));
        }
    }
    Ok(())
}
