//! `spec.gc`: disk hygiene, kubelet's image garbage collection for the
//! images the node's components used. The document type, its validation
//! and the [`GcSettings`] the agent's collector (`crate::gc`) reads.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::document::Checker;

use super::quantity::parse_duration;
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
    let duration = |field: &str, text: Option<&String>, default: &str| {
        let text = text.map_or(default, String::as_str);
        parse_duration(text).map_err(|message| {
            c.invalid(
                &format!("spec.gc.{field}"),
                message,
                "write a duration such as 30s, 5m or 1h",
            )
        })
    };
    let interval = duration("interval", gc.interval.as_ref(), "5m")?;
    if interval.is_zero() {
        return Err(c.invalid(
            "spec.gc.interval",
            "the interval must be longer than 0s",
            "write a duration such as 5m",
        ));
    }
    let min_age = duration("minAge", gc.min_age.as_ref(), "2m")?;
    let max_age = match &gc.max_age {
        Some(text) => Some(duration("maxAge", Some(text), "")?),
        None => None,
    };
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
