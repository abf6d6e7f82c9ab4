//! Points in time and calendar dates as the signed formats carry them.
//!
//! Records carry `issued_at` as Unix milliseconds and `review_by`/`birth_date` as ISO
//! dates; the roster carries RFC 3339 datetimes. This module owns the parsing and
//! formatting so that every crate agrees on one representation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Unix time in milliseconds (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

/// Why a date or time string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected {expected}")]
pub struct TimeError {
    /// What was being parsed ("date", "datetime").
    pub what: &'static str,
    /// The offending input (truncated to 64 characters).
    pub value: String,
    /// The accepted forms.
    pub expected: &'static str,
}

impl TimeError {
    fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        Self {
            what,
            value: value.chars().take(64).collect(),
            expected,
        }
    }
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Self(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// Parses an RFC 3339 datetime such as `2026-11-21T10:00:00Z`.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeError> {
        const EXPECTED: &str = "an RFC 3339 datetime with offset, e.g. 2026-11-21T10:00:00Z";
        let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| TimeError::new("datetime", s, EXPECTED))?;
        let ms = dt.unix_timestamp_nanos() / 1_000_000;
        u64::try_from(ms)
            .map(Self)
            .map_err(|_| TimeError::new("datetime", s, "a datetime after 1970-01-01"))
    }

    /// Formats as RFC 3339 in UTC with millisecond precision.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(dt) => {
                let fmt = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                );
                dt.format(&fmt).unwrap_or_else(|_| self.0.to_string())
            }
            Err(_) => self.0.to_string(),
        }
    }

    /// The UTC calendar date this instant falls on.
    pub fn date(self) -> Date {
        let days = i64::try_from(self.0 / 86_400_000).unwrap_or(i64::MAX);
        Date::from_days_since_epoch(days)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Millis(u64),
            Text(String),
            Toml(toml::value::Datetime),
        }
        match Repr::deserialize(d)? {
            Repr::Millis(ms) => Ok(Self(ms)),
            Repr::Text(s) => Self::parse_rfc3339(&s).map_err(serde::de::Error::custom),
            Repr::Toml(dt) => {
                Self::parse_rfc3339(&dt.to_string()).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// A full calendar date `YYYY-MM-DD` (proleptic Gregorian, years 1000..=9999).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn parse_digits(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Date {
    /// Builds a date, checking the calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        if !(1000..=9999).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        const EXPECTED: &str = "a date YYYY-MM-DD";
        let err = || TimeError::new("date", s, EXPECTED);
        if s.len() != 10 {
            return Err(err());
        }
        let mut parts = s.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(err());
        }
        let year = parse_digits(y).ok_or_else(err)?;
        let month = u8::try_from(parse_digits(m).ok_or_else(err)?).map_err(|_| err())?;
        let day = u8::try_from(parse_digits(d).ok_or_else(err)?).map_err(|_| err())?;
        Self::new(year, month, day).ok_or_else(err)
    }

    /// Year component.
    pub fn year(self) -> u16 {
        self.year
    }

    /// Month component (1..=12).
    pub fn month(self) -> u8 {
        self.month
    }

    /// Day component (1..=31).
    pub fn day(self) -> u8 {
        self.day
    }

    fn from_days_since_epoch(days: i64) -> Self {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = if m <= 2 { y + 1 } else { y };
        let clamp = |v: i64, lo: i64, hi: i64| v.clamp(lo, hi);
        Self {
            year: u16::try_from(clamp(y, 1000, 9999)).unwrap_or(9999),
            month: u8::try_from(clamp(m, 1, 12)).unwrap_or(1),
            day: u8::try_from(clamp(d, 1, 31)).unwrap_or(1),
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A possibly partial date as watchlists give birth or incorporation dates:
/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartialDate {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
}

impl PartialDate {
    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        const EXPECTED: &str = "a date YYYY, YYYY-MM or YYYY-MM-DD";
        let err = || TimeError::new("date", s, EXPECTED);
        match s.len() {
            4 => {
                let year = parse_digits(s).ok_or_else(err)?;
                if !(1000..=9999).contains(&year) {
                    return Err(err());
                }
                Ok(Self {
                    year,
                    month: None,
                    day: None,
                })
            }
            7 => {
                let (y, m) = s.split_once('-').ok_or_else(err)?;
                if y.len() != 4 || m.len() != 2 {
                    return Err(err());
                }
                let year = parse_digits(y).ok_or_else(err)?;
                let month = u8::try_from(parse_digits(m).ok_or_else(err)?).map_err(|_| err())?;
                Date::new(year, month, 1).ok_or_else(err)?;
                Ok(Self {
                    year,
                    month: Some(month),
                    day: None,
                })
            }
            10 => {
                let d = Date::parse(s)?;
                Ok(Self {
                    year: d.year,
                    month: Some(d.month),
                    day: Some(d.day),
                })
            }
            _ => Err(err()),
        }
    }

    /// Year component.
    pub fn year(self) -> u16 {
        self.year
    }

    /// Month, when known.
    pub fn month(self) -> Option<u8> {
        self.month
    }

    /// Day, when known.
    pub fn day(self) -> Option<u8> {
        self.day
    }

    /// True when the two dates agree on every component both of them know.
    pub fn compatible(self, other: Self) -> bool {
        let agree = |a: Option<u8>, b: Option<u8>| match (a, b) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        };
        self.year == other.year && agree(self.month, other.month) && agree(self.day, other.day)
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
            if let Some(d) = self.day {
                write!(f, "-{d:02}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for PartialDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_schema("RFC 3339 UTC datetime, e.g. 2026-11-21T10:00:00.000Z")
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Date {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_schema("Date YYYY-MM-DD")
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Date {}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PartialDate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_schema("Date YYYY, YYYY-MM or YYYY-MM-DD")
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PartialDate {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_validate_the_calendar() {
        assert!(Date::parse("2024-02-29").is_ok());
        assert!(Date::parse("2023-02-29").is_err());
        assert!(Date::parse("2023-13-01").is_err());
        assert!(Date::parse("2023-1-01").is_err());
        assert!(Date::parse("+023-01-01").is_err());
        assert!(PartialDate::parse("1970").is_ok());
        assert!(PartialDate::parse("1970-07").is_ok());
        assert!(PartialDate::parse("1970-00").is_err());
        assert!(PartialDate::parse("19700").is_err());
    }

    #[test]
    fn timestamp_round_trips_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-21T10:00:00.250Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T10:00:00.250Z");
        assert_eq!(t.date().to_string(), "2026-11-21");
        let t2 = Timestamp::parse_rfc3339("2026-11-21T12:00:00+02:00").unwrap();
        assert_eq!(t2.as_millis(), t.as_millis() - 250);
    }

    #[test]
    fn civil_from_days_matches_known_dates() {
        assert_eq!(Date::from_days_since_epoch(0).to_string(), "1970-01-01");
        assert_eq!(
            Date::from_days_since_epoch(19_782).to_string(),
            "2024-02-29"
        );
    }

    #[test]
    fn partial_dates_compare_on_known_parts() {
        let a = PartialDate::parse("1970").unwrap();
        let b = PartialDate::parse("1970-05-02").unwrap();
        let c = PartialDate::parse("1971-05-02").unwrap();
        assert!(a.compatible(b));
        assert!(!b.compatible(c));
    }
}
