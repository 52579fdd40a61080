//! Timestamps: whole seconds since the Unix epoch, UTC.
//!
//! Stored as `i64` in both databases (compact, indexable, no time-zone ambiguity) and written
//! as RFC 3339 (`2026-11-22T07:50:59Z`) wherever a person or another program reads them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with one-second resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

/// Seconds in a day.
pub const DAY: i64 = 86_400;

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp(Utc::now().timestamp())
    }

    /// Seconds since the epoch.
    pub const fn secs(self) -> i64 {
        self.0
    }

    /// This time plus `secs` seconds, saturating.
    pub const fn plus(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }

    /// This time plus `days` days, saturating.
    pub const fn plus_days(self, days: i64) -> Timestamp {
        self.plus(days.saturating_mul(DAY))
    }

    /// The UTC date-time, if representable.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(self.0, 0).single()
    }

    /// RFC 3339 text, `1970-01-01T00:00:00Z` style.
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None => self.0.to_string(),
        }
    }

    /// Parses the time formats feeds use: RFC 3339 / ISO 8601 with or without a zone
    /// (no zone means UTC), `YYYY-MM-DD HH:MM:SS`, a bare date, or a Unix epoch in seconds
    /// or milliseconds.
    ///
    /// # Errors
    /// [`BadTimestamp`] naming the text when it is none of these.
    pub fn parse(text: &str) -> Result<Timestamp, BadTimestamp> {
        let s = text.trim();
        let bad = || BadTimestamp(s.to_string());
        if s.is_empty() {
            return Err(bad());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = s.parse().map_err(|_| bad())?;
            // 13 digits and more are milliseconds (any seconds value that large is past 2286).
            return Ok(Timestamp(if s.len() >= 13 { n / 1000 } else { n }));
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(Timestamp(dt.timestamp()));
        }
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), format) {
                return Ok(Timestamp(dt.and_utc().timestamp()));
            }
        }
        for format in [
            "%Y-%m-%d %H:%M:%S%.f %z",
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%a, %d %b %Y %H:%M:%S %z",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(s, format) {
                return Ok(Timestamp(dt.timestamp()));
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            && let Some(dt) = date.and_hms_opt(0, 0, 0)
        {
            return Ok(Timestamp(dt.and_utc().timestamp()));
        }
        Err(bad())
    }
}

/// Text that is not a time iocx understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a time; use RFC 3339 (2026-01-31T12:00:00Z), a date (2026-01-31) or Unix seconds"
)]
pub struct BadTimestamp(pub String);

impl FromStr for Timestamp {
    type Err = BadTimestamp;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Int(n) => Ok(Timestamp(if n > 99_999_999_999 { n / 1000 } else { n })),
            Raw::Text(s) => Timestamp::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses a duration such as `90s`, `15m`, `12h`, `7d` or `2w` into seconds.
///
/// # Errors
/// A message naming the text when it is not a number followed by one of `s m h d w`.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write a number and a unit, such as 7d"))?;
    let scale = match unit.trim() {
        "s" | "" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => DAY,
        "w" => 7 * DAY,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {s:?}; use s, m, h, d or w"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_feed_time_formats() {
        let t = Timestamp(1_767_225_600); // 2026-01-01T00:00:00Z
        for text in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T01:00:00+01:00",
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00.000Z",
            "2026-01-01",
            "1767225600",
            "1767225600000",
        ] {
            assert_eq!(Timestamp::parse(text), Ok(t), "{text}");
        }
        assert!(Timestamp::parse("yesterday").is_err());
        assert_eq!(t.to_rfc3339(), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(7 * DAY));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("7y").is_err());
        assert!(parse_duration("d").is_err());
    }
}
