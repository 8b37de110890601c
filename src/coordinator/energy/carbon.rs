//! The carbon-intensity adapter, in the shape of Electricity Maps' API:
//! `GET {base}/v3/carbon-intensity/latest?zone=SE-SE3` with an
//! `auth-token` header answers `{"zone", "carbonIntensity", "datetime", …}`
//! (gCO₂eq/kWh). Only the URL and the parse are here; `sources` fetches.

use serde::Deserialize;

use super::fetch::FetchError;

/// The most an answer may hold (a real one is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Above any grid on Earth (coal alone is about 1,000 g/kWh).
const MAX_INTENSITY: f64 = 2_000.0;

/// The latest intensity of `zone` at the API under `base`.
pub fn url(base: &str, zone: &str) -> String {
    format!(
        "{}/v3/carbon-intensity/latest?zone={zone}",
        base.trim_end_matches('/')
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Latest {
    zone: String,
    carbon_intensity: f64,
}

/// gCO₂eq/kWh from an answer about `zone`.
pub fn parse(body: &[u8], zone: &str) -> Result<f64, FetchError> {
    let latest: Latest = serde_json::from_slice(body)
        .map_err(|err| FetchError::Garbage(format!("not the latest-intensity object: {err}")))?;
    if latest.zone != zone {
        return Err(FetchError::Garbage(format!(
            "it is about zone {:?}, not {zone:?}",
            latest.zone
        )));
    }
    let value = latest.carbon_intensity;
    if !(value.is_finite() && (0.0..=MAX_INTENSITY).contains(&value)) {
        return Err(FetchError::Garbage(format!(
            "carbonIntensity {value} is outside 0..={MAX_INTENSITY} g/kWh"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_garbage_is_refused() {
        let good = br#"{"zone":"SE-SE3","carbonIntensity":31,"datetime":"2025-06-15T12:00:00.000Z","updatedAt":"x","isEstimated":false}"#;
        assert_eq!(parse(good, "SE-SE3"), Ok(31.0));
        assert_eq!(
            url("http://127.0.0.1:9/", "SE-SE3"),
            "http://127.0.0.1:9/v3/carbon-intensity/latest?zone=SE-SE3"
        );
        for bad in [
            &br#"{"zone":"SE-SE4","carbonIntensity":31}"#[..],
            br#"{"zone":"SE-SE3","carbonIntensity":-5}"#,
            br#"{"zone":"SE-SE3","carbonIntensity":"31"}"#,
            br#"{"zone":"SE-SE3"}"#,
            b"<html>",
        ] {
            assert_eq!(parse(bad, "SE-SE3").map_err(|e| e.reason()), Err("garbage"));
        }
    }
}
