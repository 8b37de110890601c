//! The calendar arithmetic the price source needs, pure: Unix days to and
//! from civil dates (proleptic Gregorian, Howard Hinnant's algorithms),
//! Swedish local time (CET, CEST from the last Sunday of March to the last
//! Sunday of October at 01:00 UTC, the EU rule of Directive 2000/84/EC),
//! and RFC 3339 times with an offset, as the price API writes them.

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(date: Civil) -> i64 {
    let year = if date.month <= 2 {
        date.year - 1
    } else {
        date.year
    };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(date.month);
    let shifted = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day since 1970-01-01.
pub fn civil_from_days(days: i64) -> Civil {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted + 2) / 5 + 1;
    let month = if shifted < 10 {
        shifted + 3
    } else {
        shifted - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month: u32::try_from(month).unwrap_or(1),
        day: u32::try_from(day).unwrap_or(1),
    }
}

/// The day (since 1970-01-01) of the last Sunday of `month` in `year`.
fn last_sunday(year: i64, month: u32) -> i64 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let last = days_from_civil(Civil {
        year: next_year,
        month: next_month,
        day: 1,
    }) - 1;
    // 1970-01-01 was a Thursday: (days + 4) mod 7 is 0 on Sundays.
    last - (last + 4).rem_euclid(7)
}

/// Sweden's offset from UTC at `utc_ms`, in milliseconds (1 h or 2 h).
pub fn stockholm_offset_ms(utc_ms: i64) -> i64 {
    let year = civil_from_days(utc_ms.div_euclid(DAY_MS)).year;
    let summer_from = last_sunday(year, 3) * DAY_MS + HOUR_MS;
    let summer_until = last_sunday(year, 10) * DAY_MS + HOUR_MS;
    if (summer_from..summer_until).contains(&utc_ms) {
        2 * HOUR_MS
    } else {
        HOUR_MS
    }
}

/// The Swedish calendar date at `utc_ms`.
pub fn stockholm_date(utc_ms: i64) -> Civil {
    civil_from_days((utc_ms + stockholm_offset_ms(utc_ms)).div_euclid(DAY_MS))
}

fn number(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Unix milliseconds of `YYYY-MM-DDTHH:MM:SS` followed by `Z` or `±HH:MM`
/// (fractions of a second are not used by the price API and refused).
pub fn parse_offset_time(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once('T')?;
    let mut parts = date.split('-');
    let (year, month, day) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_ms) = if let Some(clock) = rest.strip_suffix('Z') {
        (clock, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (clock, offset) = rest.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':')?;
        let (hours, minutes) = (number(hours)?, number(minutes)?);
        if hours > 23 || minutes > 59 {
            return None;
        }
        (clock, sign * (hours * HOUR_MS + minutes * 60_000))
    };
    let mut fields = clock.split(':');
    let (hour, minute, second) = (
        number(fields.next()?)?,
        number(fields.next()?)?,
        number(fields.next()?)?,
    );
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(Civil {
        year,
        month: u32::try_from(month).ok()?,
        day: u32::try_from(day).ok()?,
    });
    Some(days * DAY_MS + hour * HOUR_MS + minute * 60_000 + second * 1000 - offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 19_723, 20_000, 30_000] {
            assert_eq!(days_from_civil(civil_from_days(days)), days, "{days}");
        }
        assert_eq!(
            civil_from_days(19_723),
            Civil {
                year: 2024,
                month: 1,
                day: 1
            }
        );
    }

    #[test]
    fn swedish_summer_time_follows_the_eu_rule() {
        // 2025: summer time from 30 March 01:00 UTC to 26 October 01:00 UTC.
        let at = |text: &str| parse_offset_time(text).expect(text);
        assert_eq!(stockholm_offset_ms(at("2025-03-30T00:59:59Z")), HOUR_MS);
        assert_eq!(stockholm_offset_ms(at("2025-03-30T01:00:00Z")), 2 * HOUR_MS);
        assert_eq!(stockholm_offset_ms(at("2025-10-26T00:59:59Z")), 2 * HOUR_MS);
        assert_eq!(stockholm_offset_ms(at("2025-10-26T01:00:00Z")), HOUR_MS);
        assert_eq!(stockholm_offset_ms(at("2025-01-15T12:00:00Z")), HOUR_MS);
        // 23:30 UTC on 14 June is already 15 June in Stockholm.
        assert_eq!(
            stockholm_date(at("2025-06-14T23:30:00Z")),
            Civil {
                year: 2025,
                month: 6,
                day: 15
            }
        );
    }

    #[test]
    fn offset_times_parse() {
        assert_eq!(
            parse_offset_time("2025-06-15T00:00:00+02:00"),
            parse_offset_time("2025-06-14T22:00:00Z")
        );
        assert_eq!(parse_offset_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_offset_time("1970-01-01T00:00:00-00:30"),
            Some(1_800_000)
        );
        for bad in [
            "",
            "2025-06-15",
            "2025-13-01T00:00:00Z",
            "2025-06-15T25:00:00Z",
            "2025-06-15T00:00:00+2:00x",
            "2025-06-15T00:00Z",
            "tomorrow",
        ] {
            assert_eq!(parse_offset_time(bad), None, "{bad}");
        }
    }
}
