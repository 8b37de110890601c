//! `spec.gc`: disk hygiene, kubelet's image garbage collection for the
//! images the node's components used. The document type, its validation
//! and the [`GcSettings`] the agent's collector (`crate::gc`) reads.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::document::Checker;

use super::checks::SpecChecks;
use super::limits;
use super::SpecError;

/// Removing images the node no longer uses; present means on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gc {
    /// How often the collector looks (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// An image stays at least this long after its last use (default `2m`,
    /// kubelet's `imageMinimumGCAge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<String>,
    /// An image unused this long is removed whatever the disk (kubelet's
    /// `imageMaximumGCAge`; default: never for age alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    /// Disk use (percent of the engine's data filesystem) above which
    /// unused images are removed, least recently used first (default 85).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub high_percent: Option<u8>,
    /// ...until the use is at or below this (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub low_percent: Option<u8>,
}

/// `spec.gc`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcSettings {
    pub interval: Duration,
    pub min_age: Duration,
    pub max_age: Option<Duration>,
    pub high_percent: u8,
    pub low_percent: u8,
}

pub(super) fn gc_settings(
    c: &Checker<'_>,
    gc: Option<&Gc>,
) -> Result<Option<GcSettings>, SpecError> {
    let Some(gc) = gc else {
        return Ok(None);
    };
    let interval = c.duration(
        "spec.gc.interval",
        gc.interval.as_deref().unwrap_or("5m"),
        limits::GC_INTERVAL,
    )?;
    let min_age = c.duration(
        "spec.gc.minAge",
        gc.min_age.as_deref().unwrap_or("2m"),
        limits::GC_AGE,
    )?;
    let max_age = gc
        .max_age
        .as_deref()
        .map(|text| c.duration("spec.gc.maxAge", text, limits::GC_AGE))
        .transpose()?;
    let high_percent = gc.high_percent.unwrap_or(85);
    let low_percent = gc.low_percent.unwrap_or(80);
    for (field, value) in [("highPercent", high_percent), ("lowPercent", low_percent)] {
        if value > 100 {
            return Err(c.invalid(
                &format!("spec.gc.{field}"),
                format!("a percentage is 0 to 100, got {value}"),
                "write a percentage of the disk, e.g. 85",
            ));
        }
    }
    if low_percent > high_percent {
        return Err(c.invalid(
            "spec.gc.lowPercent",
            format!("lowPercent {low_percent} is above highPercent {high_percent}"),
            "collect down to a use at or below the threshold that starts it, e.g. high 85, low 80",
        ));
    }
    Ok(Some(GcSettings {
        interval,
        min_age,
        max_age,
        high_percent,
        low_percent,
    }))
}
