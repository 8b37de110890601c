//! `spec.power`, validated: the power source, the job policy and the solar
//! panels with where their production is read. Checked once here into
//! [`PowerSettings`]; the energy monitor reads only that.

use std::time::Duration;

use crate::document::Checker;

use super::checks::SpecChecks;
use super::limits;
use super::types::{
    HttpProduction, Location, Power, PowerPolicy, PowerSource, PowerUnit, Production,
};
use super::SpecError;

/// How the node is powered, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PowerSettings {
    pub source: PowerSource,
    pub policy: PowerPolicy,
    /// Present exactly when `source` is `solar` or `mixed`.
    pub solar: Option<SolarSettings>,
}

/// The node's panels, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SolarSettings {
    /// Above 0, at most [`limits::MAX_SOLAR_CAPACITY_KW`].
    pub capacity_kw: f64,
    /// 0 to 90.
    pub tilt_deg: f64,
    /// 0 to below 360, clockwise from north.
    pub azimuth_deg: f64,
    pub production: ProductionSource,
}

/// Where solar production is read.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductionSource {
    /// The clear-sky model at these coordinates (degrees).
    Model {
        latitude: f64,
        longitude: f64,
    },
    Http(HttpSource),
}

/// A local inverter's JSON endpoint, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSource {
    /// An `http(s)://` URL.
    pub url: String,
    /// An RFC 6901 JSON pointer (empty or starting with `/`).
    pub pointer: String,
    pub unit: PowerUnit,
    pub timeout: Duration,
}

/// Checks `spec.power` (the model needs `spec.location.coordinates`).
pub(super) fn power_settings(
    c: &Checker<'_>,
    power: &Power,
    location: Option<&Location>,
) -> Result<PowerSettings, SpecError> {
    let solar = match (power.source, &power.solar) {
        (PowerSource::Grid, Some(_)) => {
            return Err(c.invalid(
                "spec.power.solar",
                "`solar` is only used with `source: solar` or `source: mixed`",
                "set `source: solar` or `mixed`, or remove `solar`",
            ))
        }
        (PowerSource::Grid, None) => None,
        (source, None) => {
            return Err(c.invalid(
                "spec.power.source",
                format!(
                    "`source: {}` needs `spec.power.solar` (capacityKw, tiltDeg, azimuthDeg)",
                    source.as_str()
                ),
                "add `solar: {capacityKw: 6.5, tiltDeg: 35, azimuthDeg: 180}`",
            ))
        }
        (_, Some(solar)) => {
            let in_range = |path: &str, value: f64, ok: bool, fix: &str| {
                if ok {
                    Ok(value)
                } else {
                    Err(c.invalid(path, format!("{value} is out of range"), fix))
                }
            };
            let capacity_kw = in_range(
                "spec.power.solar.capacityKw",
                solar.capacity_kw,
                solar.capacity_kw > 0.0 && solar.capacity_kw <= limits::MAX_SOLAR_CAPACITY_KW,
                "write the panels' peak power in kW, above 0 and at most 10000, e.g. 6.5",
            )?;
            let tilt_deg = in_range(
                "spec.power.solar.tiltDeg",
                solar.tilt_deg,
                (0.0..=90.0).contains(&solar.tilt_deg),
                "write the tilt from horizontal in degrees, 0 to 90",
            )?;
            let azimuth_deg = in_range(
                "spec.power.solar.azimuthDeg",
                solar.azimuth_deg,
                (0.0..360.0).contains(&solar.azimuth_deg),
                "write degrees clockwise from north, 0 to below 360 (180 faces south)",
            )?;
            let production = match &solar.production {
                Production::Model => model_source(c, location)?,
                Production::Http(http) => ProductionSource::Http(http_source(c, http)?),
            };
            Some(SolarSettings {
                capacity_kw,
                tilt_deg,
                azimuth_deg,
                production,
            })
        }
    };
    if solar.is_none() && power.policy != PowerPolicy::Any {
        return Err(c.invalid(
            "spec.power.policy",
            "a solar policy needs solar panels (`source: solar` or `mixed`)",
            "set `policy: any`, or describe the panels in `spec.power.solar`",
        ));
    }
    Ok(PowerSettings {
        source: power.source,
        policy: power.policy,
        solar,
    })
}

fn model_source(
    c: &Checker<'_>,
    location: Option<&Location>,
) -> Result<ProductionSource, SpecError> {
    match location.and_then(|l| l.coordinates) {
        Some(at) => Ok(ProductionSource::Model {
            latitude: at.latitude,
            longitude: at.longitude,
        }),
        None => Err(c.invalid(
            "spec.power.solar",
            "the production model needs the node's coordinates",
            "add `spec.location.coordinates` (latitude, longitude), or read an inverter with `production: {http: ...}`",
        )),
    }
}

fn http_source(c: &Checker<'_>, http: &HttpProduction) -> Result<HttpSource, SpecError> {
    let path = "spec.power.solar.production.http";
    let rest = http
        .url
        .strip_prefix("http://")
        .or_else(|| http.url.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    if !host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace)) {
        return Err(c.invalid(
            &format!("{path}.url"),
            format!("`{}` is not an http(s) URL", http.url),
            "write the inverter's URL, e.g. http://192.168.1.20/api/power",
        ));
    }
    if !json_pointer(&http.pointer) {
        return Err(c.invalid(
            &format!("{path}.pointer"),
            format!("`{}` is not a JSON pointer", http.pointer),
            "start it with `/` and write `~` as `~0`, `/` in a key as `~1`, e.g. /inverters/0/acPower; leave it empty for a bare number",
        ));
    }
    let timeout = c.duration(
        &format!("{path}.timeout"),
        &http.timeout,
        limits::PRODUCTION_TIMEOUT,
    )?;
    Ok(HttpSource {
        url: http.url.clone(),
        pointer: http.pointer.clone(),
        unit: http.unit,
        timeout,
    })
}

/// RFC 6901: empty, or `/`-separated tokens where `~` is only `~0` or `~1`.
fn json_pointer(text: &str) -> bool {
    (text.is_empty() || text.starts_with('/'))
        && text
            .split('~')
            .skip(1)
            .all(|after| after.starts_with(['0', '1']))
}

#[cfg(test)]
#[path = "power_tests.rs"]
mod tests;
