//! Wall-clock instants in the report, written as RFC 3339 UTC with microseconds.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock instant, e.g. `2026-11-27T19:29:17.123456Z`. Microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_micros: i64,
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// The instant `micros` microseconds after the Unix epoch.
    pub fn from_unix_micros(micros: i64) -> Self {
        Self {
            unix_micros: micros,
        }
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.unix_micros
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.unix_micros - earlier.unix_micros) as f64 / 1e6
    }

    /// This instant moved by `duration`.
    pub fn plus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self {
            unix_micros: self.unix_micros.saturating_add(micros),
        }
    }

    /// The instant for people, to the second: `Friday 27 November 2026, 22:26:55 UTC`.
    pub fn in_words(self) -> String {
        const DAYS: [&str; 7] = [
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
        ];
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let seconds = self.unix_micros.div_euclid(1_000_000);
        let (days, secs_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = DAYS[days.rem_euclid(7) as usize];
        let month = MONTHS[(month - 1).clamp(0, 11) as usize];
        format!(
            "{weekday} {day} {month} {year}, {:02}:{:02}:{:02} UTC",
            secs_of_day / 3_600,
            secs_of_day % 3_600 / 60,
            secs_of_day % 60
        )
    }

    /// Parses an HTTP `Date` header (RFC 9110's IMF-fixdate, `Sun, 29 Nov 2026 12:00:00 GMT`).
    pub fn parse_http_date(text: &str) -> Option<Self> {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut parts = text.trim().split_ascii_whitespace();
        let _weekday = parts.next()?.strip_suffix(',')?;
        let day: i64 = parts.next()?.parse().ok()?;
        let month_name = parts.next()?;
        let month = MONTHS.iter().position(|m| *m == month_name)? as i64 + 1;
        let year: i64 = parts.next()?.parse().ok()?;
        let mut clock = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
        let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
        if parts.next()? != "GMT" || parts.next().is_some() || clock.next().is_some() {
            return None;
        }
        if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let seconds =
            days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
        Some(Self::from_unix_micros(seconds * 1_000_000))
    }

    /// Parses the RFC 3339 UTC form this type writes (`Z` suffix, optional fraction).
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let s = text.get(range)?;
            s.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| s.parse().ok())?
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
            return None;
        }
        if b[16] != b':' || *b.last()? != b'Z' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        if second > 60 {
            return None;
        }
        let mut micros = 0;
        let rest = &text[19..text.len() - 1];
        if let Some(fraction) = rest.strip_prefix('.') {
            if fraction.is_empty()
                || fraction.len() > 9
                || !fraction.bytes().all(|c| c.is_ascii_digit())
            {
                return None;
            }
            let padded = format!("{fraction:0<6}");
            micros = padded[..6].parse().ok()?;
        } else if !rest.is_empty() {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
        Some(Self::from_unix_micros(seconds * 1_000_000 + micros))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let micros = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Self::from_unix_micros(micros)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.unix_micros.div_euclid(1_000_000);
        let micros = self.unix_micros.rem_euclid(1_000_000);
        let (days, secs_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            secs_of_day / 3_600,
            secs_of_day % 3_600 / 60,
            secs_of_day % 60
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid timestamp `{text}`, expected RFC 3339 UTC like 2026-11-27T19:29:17.123456Z"
            ))
        })
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 UTC instant with microseconds, e.g. 2026-11-27T19:29:17.123456Z"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_date_header_parses_to_its_second() {
        let parsed = Timestamp::parse_http_date("Sun, 29 Nov 2026 12:00:07 GMT").unwrap();
        assert_eq!(parsed, Timestamp::parse("2026-11-29T12:00:07Z").unwrap());
        for bad in [
            "",
            "Sun, 29 Nov 2026 12:00:07",
            "Sun, 29 Foo 2026 12:00:07 GMT",
            "Sun 29 Nov 2026 12:00:07 GMT",
            "Sun, 29 Nov 2026 25:00:07 GMT",
        ] {
            assert_eq!(Timestamp::parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_instant_reads_in_words_with_its_weekday() {
        let words = |text: &str| Timestamp::parse(text).unwrap().in_words();
        assert_eq!(
            words("2026-11-27T22:26:55.039364Z"),
            "Friday 27 November 2026, 22:26:55 UTC"
        );
        assert_eq!(
            words("1970-01-01T00:00:00Z"),
            "Thursday 1 January 1970, 00:00:00 UTC"
        );
        assert_eq!(
            words("2000-02-29T23:59:59Z"),
            "Tuesday 29 February 2000, 23:59:59 UTC"
        );
        assert_eq!(
            words("1969-12-31T23:59:59.5Z"),
            "Wednesday 31 December 1969, 23:59:59 UTC"
        );
    }

    #[test]
    fn formats_and_parses_round_trip() {
        for (micros, text) in [
            (0, "1970-01-01T00:00:00.000000Z"),
            (1_795_807_757_123_456, "2026-11-27T19:29:17.123456Z"),
            (951_782_400_000_001, "2000-02-29T00:00:00.000001Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
        ] {
            let t = Timestamp::from_unix_micros(micros);
            assert_eq!(t.to_string(), text);
            assert_eq!(Timestamp::parse(text), Some(t));
        }
        assert_eq!(
            Timestamp::parse("2026-11-27T19:29:17Z"),
            Some(Timestamp::from_unix_micros(1_795_807_757_000_000))
        );
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "",
            "2026-11-27 19:29:17Z",
            "2026-11-27T19:29:17+01:00",
            "2026-13-01T00:00:00Z",
            "2026-11-27T19:29:17.Z",
            "2026-11-27T19:29:17.12a4Z",
            "yyyy-11-27T19:29:17Z",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }
}
