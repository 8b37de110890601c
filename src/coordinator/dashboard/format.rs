//! How the dashboard writes numbers and times for people: tokens in GAI,
//! times in UTC with their age, power, energy and mass with units, and
//! values for the query strings of links.

use crate::clock::{parse_rfc3339_millis, rfc3339_millis};
use crate::coordinator::parameters::names::MICRO_GAI;

/// `12.345678 GAI`.
pub fn gai(ugai: i64) -> String {
    let sign = if ugai < 0 { "-" } else { "" };
    let abs = ugai.unsigned_abs();
    let unit = MICRO_GAI.unsigned_abs();
    format!("{sign}{}.{:06} GAI", abs / unit, abs % unit)
}

/// `2026-12-06 17:03:12 UTC`.
pub fn utc(ms: i64) -> String {
    let text = rfc3339_millis(ms);
    format!("{} {} UTC", &text[..10], &text[11..19])
}

/// An RFC 3339 time (as the API's views hold them) as [`utc`]; shown as
/// it is when it does not parse.
pub fn utc_text(rfc3339: &str) -> String {
    parse_rfc3339_millis(rfc3339).map_or_else(|| rfc3339.to_string(), utc)
}

/// An RFC 3339 time as [`utc`] with its [`age`] at `now_ms`.
pub fn utc_with_age(rfc3339: &str, now_ms: i64) -> String {
    parse_rfc3339_millis(rfc3339).map_or_else(
        || rfc3339.to_string(),
        |ms| format!("{} ({})", utc(ms), age(ms, now_ms)),
    )
}

/// `5 s ago`, `3 min ago`, `2 h ago`, `4 d ago`; `in 5 s` for the future.
pub fn age(ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - ms) / 1000;
    let (amount, unit) = match secs.unsigned_abs() {
        s if s < 120 => (s, "s"),
        s if s < 7_200 => (s / 60, "min"),
        s if s < 172_800 => (s / 3_600, "h"),
        s => (s / 86_400, "d"),
    };
    if secs < 0 {
        format!("in {amount} {unit}")
    } else {
        format!("{amount} {unit} ago")
    }
}

/// `1.2 kW`, `350 W`.
pub fn watts(w: f64) -> String {
    if w.abs() >= 1_000.0 {
        format!("{:.1} kW", w / 1_000.0)
    } else {
        format!("{w:.0} W")
    }
}

/// `3.4 kWh`, `120 Wh`.
pub fn watt_hours(wh: f64) -> String {
    if wh.abs() >= 1_000.0 {
        format!("{:.2} kWh", wh / 1_000.0)
    } else {
        format!("{wh:.1} Wh")
    }
}

/// `1.3 kg`, `42 g`.
pub fn grams(g: f64) -> String {
    if g.abs() >= 1_000.0 {
        format!("{:.2} kg", g / 1_000.0)
    } else {
        format!("{g:.1} g")
    }
}

/// `24 GiB`, `512 MiB`.
pub fn mib(mib: u64) -> String {
    if mib >= 1024 {
        format!("{:.0} GiB", mib as f64 / 1024.0)
    } else {
        format!("{mib} MiB")
    }
}

/// `value` for a query string (`a b&c` → `a+b%26c`).
pub fn query_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(gai(12_345_678), "12.345678 GAI");
        assert_eq!(gai(-1), "-0.000001 GAI");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc_text("1970-01-01T00:00:01.000Z"),
            "1970-01-01 00:00:01 UTC"
        );
        assert_eq!(utc_text("not a time"), "not a time");
        assert_eq!(
            utc_with_age("1970-01-01T00:00:00Z", 5_000),
            "1970-01-01 00:00:00 UTC (5 s ago)"
        );
        assert_eq!(age(0, 5_000), "5 s ago");
        assert_eq!(age(0, 600_000), "10 min ago");
        assert_eq!(age(10_000, 0), "in 10 s");
        assert_eq!(watts(1_234.0), "1.2 kW");
        assert_eq!(watt_hours(12.34), "12.3 Wh");
        assert_eq!(grams(2_500.0), "2.50 kg");
        assert_eq!(mib(24_576), "24 GiB");
        assert_eq!(query_value("RTX 4090&x=<y>"), "RTX+4090%26x%3D%3Cy%3E");
    }
}
