//! Humane values: Kubernetes-style byte and CPU quantities (`512Mi`, `16Gi`,
//! `500m`) and durations (`10s`, `5m`, `1h30m`), the one duration grammar of
//! spec files, job files and flags. Pure parsing, no locations.

use std::time::Duration;

/// Bytes from `512Mi`, `16Gi`, `1G`, `500M`, `1.5Gi` or plain `1048576`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (number, suffix) = split_number(text)?;
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        other => return Err(format!("unknown unit `{other}`")),
    };
    let bytes = (number * multiplier).round();
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err("must be at least one byte".into());
    }
    Ok(bytes as u64)
}

/// Billionths of a CPU from `0.5`, `2`, `"2"` or millicores `500m`.
pub fn parse_nano_cpus(text: &str) -> Result<u64, String> {
    let (number, suffix) = split_number(text)?;
    let cpus = match suffix {
        "" => number,
        "m" => number / 1000.0,
        other => return Err(format!("unknown unit `{other}` (only `m`, millicores)")),
    };
    let nanos = (cpus * 1e9).round();
    if !(1e6..=1e15).contains(&nanos) {
        return Err("must be between 0.001 and 1000000 CPUs".into());
    }
    Ok(nanos as u64)
}

/// Durations are written `<integer><unit>` with units `ms`, `s`, `m`, `h`,
/// `d`, `y`, combinable (`1h30m`): [`parse_duration`]'s grammar as a JSON
/// Schema pattern, for the document types.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(ms|s|m|h|d|y))+)$";

/// The one duration grammar of the project: spec files, job files and
/// command-line flags (usable as a clap `value_parser`). One or more
/// `<integer><unit>` parts, units `ms`, `s`, `m`, `h`, `d` (24 h) and `y`
/// (365 d): `500ms`, `10s`, `5m`, `1h30m`, `24h`, `365d`. `0` alone means
/// zero. [`DURATION_PATTERN`] is the same grammar as a
/// JSON Schema pattern; amounts past `Duration::MAX` saturate, so a range
/// check names them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let amount: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_owned())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = |size: u64| Duration::from_secs(amount.saturating_mul(size));
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(amount),
            "s" => seconds(1),
            "m" => seconds(60),
            "h" => seconds(3600),
            "d" => seconds(24 * 3600),
            "y" => seconds(365 * 24 * 3600),
            "" => return Err(format!("`{amount}` has no unit")),
            other => return Err(format!("unknown unit `{other}`")),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `1.5Gi` → (1.5, "Gi"); the number must be plain decimal, not negative.
fn split_number(text: &str) -> Result<(f64, &str), String> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(end);
    if digits.is_empty() {
        return Err("expected a number first".into());
    }
    let number: f64 = digits
        .parse()
        .map_err(|_| format!("`{digits}` is not a number"))?;
    Ok((number, suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("512Mi"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_bytes("16Gi"), Ok(16 << 30));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("500M"), Ok(500_000_000));
        assert_eq!(parse_bytes("1.5Ki"), Ok(1536));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("16Gx"), Err("unknown unit `Gx`".into()));
        assert!(parse_bytes("-1Gi").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1.2.3Mi").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_nano_cpus("250m"), Ok(250_000_000));
        assert!(parse_nano_cpus("0").is_err());
        assert!(parse_nano_cpus("2Gi").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }

    /// Every duration the docs, examples, tests and scripts pass to a flag
    /// (`--timeout`, `--ttl`, `--heartbeat-interval`) or write in a file.
    #[test]
    fn durations_of_flags_and_files() {
        let secs = Duration::from_secs;
        for (text, want) in [
            ("120s", secs(120)),
            ("80s", secs(80)),
            ("60s", secs(60)),
            ("90s", secs(90)),
            ("1s", secs(1)),
            ("30s", secs(30)),
            ("0s", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("1500ms", Duration::from_millis(1500)),
            ("10m", secs(600)),
            ("30m", secs(1800)),
            ("1h", secs(3600)),
            ("2h", secs(7200)),
            ("24h", secs(24 * 3600)),
            ("1d", secs(24 * 3600)),
            ("365d", secs(365 * 24 * 3600)),
            ("400d", secs(400 * 24 * 3600)),
            ("500000000000y", secs(500_000_000_000 * 365 * 24 * 3600)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        assert_eq!(
            parse_duration("99999999999999999999y"),
            Err("number too large".into())
        );
        assert_eq!(parse_duration("600000000000y"), Ok(secs(u64::MAX)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1h 30m").is_err());
    }

    #[test]
    fn the_schema_pattern_is_the_same_grammar() {
        let pattern = regex::Regex::new(super::DURATION_PATTERN).expect("pattern");
        for text in [
            "0", "0s", "500ms", "1h30m", "365d", "2y", "5m", "5x", "s", "10", "1h 30m", "",
        ] {
            assert_eq!(
                pattern.is_match(text),
                parse_duration(text).is_ok(),
                "{text}"
            );
        }
    }
}
