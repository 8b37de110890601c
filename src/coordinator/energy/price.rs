//! The day-ahead price adapter, in the shape of the public Swedish hourly
//! price API: `GET {base}/api/v1/prices/YYYY/MM-DD_SE3.json` (the Swedish
//! calendar date) answers a JSON array of `{"SEK_per_kWh", "EUR_per_kWh",
//! "EXR", "time_start", "time_end"}`, one per hour (or per quarter hour
//! since the market moved to 15-minute periods). Only the URL and the
//! parse are here; `sources` fetches.

use serde::Deserialize;

use super::calendar::{parse_offset_time, stockholm_date};
use super::fetch::FetchError;
use crate::geo::PriceArea;

/// The most an answer may hold (96 quarter hours are about 12 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Day-ahead prices have stayed within a few SEK/kWh either way.
const MAX_ABS_SEK_PER_KWH: f64 = 100.0;

/// The prices of `area` for the Swedish day of `utc_ms`.
pub fn url(base: &str, area: PriceArea, utc_ms: i64) -> String {
    let date = stockholm_date(utc_ms);
    format!(
        "{}/api/v1/prices/{}/{:02}-{:02}_{area}.json",
        base.trim_end_matches('/'),
        date.year,
        date.month,
        date.day
    )
}

#[derive(Deserialize)]
struct Period {
    #[serde(rename = "SEK_per_kWh")]
    sek_per_kwh: f64,
    time_start: String,
    time_end: String,
}

/// The SEK/kWh of the period that holds `utc_ms`.
pub fn parse(body: &[u8], utc_ms: i64) -> Result<f64, FetchError> {
    let periods: Vec<Period> = serde_json::from_slice(body)
        .map_err(|err| FetchError::Garbage(format!("not an array of prices: {err}")))?;
    for period in &periods {
        let (Some(start), Some(end)) = (
            parse_offset_time(&period.time_start),
            parse_offset_time(&period.time_end),
        ) else {
            return Err(FetchError::Garbage(format!(
                "time_start {:?} or time_end {:?} is not an RFC 3339 time",
                period.time_start, period.time_end
            )));
        };
        if (start..end).contains(&utc_ms) {
            let price = period.sek_per_kwh;
            if !(price.is_finite() && price.abs() <= MAX_ABS_SEK_PER_KWH) {
                return Err(FetchError::Garbage(format!(
                    "SEK_per_kWh {price} is outside ±{MAX_ABS_SEK_PER_KWH}"
                )));
            }
            return Ok(price);
        }
    }
    Err(FetchError::Garbage(format!(
        "none of its {} periods holds the time asked for",
        periods.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_offset_time(text).expect(text)
    }

    #[test]
    fn the_url_names_the_swedish_date() {
        assert_eq!(
            url("http://h/", PriceArea::SE3, at("2025-06-14T22:30:00Z")),
            "http://h/api/v1/prices/2025/06-15_SE3.json"
        );
        assert_eq!(
            url("http://h", PriceArea::SE1, at("2025-01-05T12:00:00Z")),
            "http://h/api/v1/prices/2025/01-05_SE1.json"
        );
    }

    #[test]
    fn the_period_holding_the_time_gives_the_price() {
        let body = br#"[
          {"SEK_per_kWh":0.25,"EUR_per_kWh":0.022,"EXR":11.3,"time_start":"2025-06-15T00:00:00+02:00","time_end":"2025-06-15T01:00:00+02:00"},
          {"SEK_per_kWh":-0.01,"EUR_per_kWh":-0.001,"EXR":11.3,"time_start":"2025-06-15T01:00:00+02:00","time_end":"2025-06-15T02:00:00+02:00"}
        ]"#;
        assert_eq!(parse(body, at("2025-06-14T22:59:59Z")), Ok(0.25));
        assert_eq!(parse(body, at("2025-06-14T23:00:00Z")), Ok(-0.01));
        assert_eq!(
            parse(body, at("2025-06-15T12:00:00Z")).map_err(|e| e.reason()),
            Err("garbage")
        );
        for bad in [
            &b"{}"[..],
            b"[{\"SEK_per_kWh\":1,\"time_start\":\"soon\",\"time_end\":\"later\"}]",
            b"[{\"SEK_per_kWh\":1e9,\"time_start\":\"2025-06-15T00:00:00+02:00\",\"time_end\":\"2025-06-15T01:00:00+02:00\"}]",
        ] {
            assert_eq!(
                parse(bad, at("2025-06-14T22:30:00Z")).map_err(|e| e.reason()),
                Err("garbage")
            );
        }
    }
}
