//! Dates and timestamps as the inputs write them, read by hand.
//!
//! Every date of a market, a scenario, a run spec and the TDCV table is `YYYY-MM-DD`; a visit's
//! timestamp is RFC 3339 (`2026-07-01T08:15:00Z`, `...08:15:00.250+01:00`), `2026-07-01 08:15:00`,
//! `2026-07-01T08:15:00` or a date. These few fixed shapes are read here rather than by chrono's
//! format-string parser, which the price lambda's WebAssembly module would otherwise carry (about
//! 27 KB of it) for nothing else. chrono still does the calendar: only valid dates and times are
//! accepted.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};

/// `n` ASCII digits at the start of `s` as a number, and the rest.
fn digits(s: &[u8], n: usize) -> Option<(u32, &[u8])> {
    if s.len() < n || !s[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = s[..n]
        .iter()
        .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    Some((value, &s[n..]))
}

/// `byte` at the start of `s`, and the rest.
fn expect(s: &[u8], byte: u8) -> Option<&[u8]> {
    s.split_first().filter(|(b, _)| **b == byte).map(|(_, r)| r)
}

/// A `YYYY-MM-DD` at the start of `s`, and the rest.
fn date_prefix(s: &[u8]) -> Option<(NaiveDate, &[u8])> {
    let (year, s) = digits(s, 4)?;
    let (month, s) = digits(expect(s, b'-')?, 2)?;
    let (day, s) = digits(expect(s, b'-')?, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some((date, s))
}

/// A calendar date written `YYYY-MM-DD` (`2026-07-01`); `None` for anything else or a date that
/// does not exist (`2026-02-30`).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    match date_prefix(s.as_bytes())? {
        (date, []) => Some(date),
        _ => None,
    }
}

/// Why a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not one of the shapes [`parse_timestamp`] reads, or a date or time that does not exist.
    Malformed,
    /// Well formed, but its UTC conversion falls outside the years 0000 to 9999, which a
    /// `YYYY-MM-DD` date cannot write (`9999-12-31T23:00:00-05:00` is in the year 10000).
    OutOfRange,
}

impl TimestampError {
    /// What is wrong with `s` and how to fix it, for an error message.
    pub fn problem(self, s: &str) -> String {
        match self {
            TimestampError::Malformed => {
                format!("{s:?} is not a date-time: use RFC 3339, e.g. 2026-07-01T08:15:00Z")
            }
            TimestampError::OutOfRange => format!(
                "{s:?} is outside the years 0000 to 9999 once converted to UTC: give a date-time in those years"
            ),
        }
    }
}

/// A timestamp: RFC 3339 with its offset (`2026-07-01T08:15:00Z`, `2026-07-01T09:15:00+01:00`,
/// fractions of a second allowed; given back in UTC), `2026-07-01T08:15:00` or
/// `2026-07-01 08:15:00` (taken as UTC), or a date (midnight). Spaces around it are ignored.
/// `None` for anything [`read_timestamp`] refuses.
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    read_timestamp(s).ok()
}

/// [`parse_timestamp`], saying why a timestamp is refused.
///
/// # Errors
/// [`TimestampError::Malformed`] for text of another shape or a date or time that does not exist;
/// [`TimestampError::OutOfRange`] when the time in UTC is outside the years 0000 to 9999 (its date
/// could not be written `YYYY-MM-DD`).
pub fn read_timestamp(s: &str) -> Result<NaiveDateTime, TimestampError> {
    let utc = parse_utc(s).ok_or(TimestampError::Malformed)?;
    match utc {
        Some(t) if (0..=9999).contains(&t.year()) => Ok(t),
        _ => Err(TimestampError::OutOfRange),
    }
}

/// The shapes of [`parse_timestamp`]: `None` when malformed, `Some(None)` when well formed but the
/// conversion to UTC leaves chrono's range, otherwise the time in UTC (any year).
fn parse_utc(s: &str) -> Option<Option<NaiveDateTime>> {
    let (date, rest) = date_prefix(s.trim().as_bytes())?;
    let rest = match rest {
        [] => return date.and_hms_opt(0, 0, 0).map(Some),
        [b'T' | b't' | b' ', rest @ ..] => rest,
        _ => return None,
    };
    let (hour, rest) = digits(rest, 2)?;
    let (minute, rest) = digits(expect(rest, b':')?, 2)?;
    let (second, mut rest) = digits(expect(rest, b':')?, 2)?;
    let mut nanos = 0u32;
    if let Some(fraction) = expect(rest, b'.') {
        let n = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        // Nanoseconds: the first nine digits count, later ones are dropped (as chrono does).
        for (i, d) in fraction[..n].iter().enumerate() {
            if i < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
        }
        nanos *= 10u32.pow(9u32.saturating_sub(n as u32));
        rest = &fraction[n..];
    }
    // A leap second (:60) is the last second's nanoseconds past one second, as chrono keeps it.
    let time = match second {
        60 => NaiveTime::from_hms_nano_opt(hour, minute, 59, 1_000_000_000 + nanos)?,
        _ => NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?,
    };
    let local = date.and_time(time);
    let offset_minutes = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), offset @ ..] => {
            let (h, offset) = digits(offset, 2)?;
            let (m, offset) = digits(expect(offset, b':')?, 2)?;
            if !offset.is_empty() || h > 23 || m > 59 {
                return None;
            }
            let minutes = i64::from(h * 60 + m);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    Some(local.checked_sub_signed(TimeDelta::minutes(offset_minutes)))
}

/// Serde for a `YYYY-MM-DD` date field: `#[serde(with = "crate::dates::date")]`.
pub mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the date as `YYYY-MM-DD`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(date)
    }

    /// Reads a `YYYY-MM-DD` date.
    ///
    /// # Errors
    /// Not a string, or not a date of that shape.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_date(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a date: write it YYYY-MM-DD, e.g. 2026-07-01"
            ))
        })
    }
}

/// Serde for an optional `YYYY-MM-DD` date field (null or absent is `None`):
/// `#[serde(with = "crate::dates::opt_date", default)]`.
pub mod opt_date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the date as `YYYY-MM-DD`, or null.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(date: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(d) => s.collect_str(d),
            None => s.serialize_none(),
        }
    }

    /// Reads a `YYYY-MM-DD` date or null.
    ///
    /// # Errors
    /// Neither null nor a string, or not a date of that shape.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        match <Option<std::borrow::Cow<'de, str>>>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::parse_date(&s).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{s:?} is not a date: write it YYYY-MM-DD, e.g. 2026-07-01"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What chrono's format parsers made of the same text (the reference these replace).
    fn chrono_timestamp(s: &str) -> Option<NaiveDateTime> {
        let s = s.trim();
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.naive_utc())
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
    }

    #[test]
    fn timestamps_read_as_chrono_read_them() {
        for s in [
            "2026-07-01T08:15:00Z",
            "2026-07-01t08:15:00z",
            "2026-07-01T08:15:00.25Z",
            "2026-07-01T08:15:00.123456789123+01:00",
            "2026-07-01T00:15:00+01:30",
            "2026-01-01T00:15:00-05:00",
            "2026-07-01 08:15:00",
            "2026-07-01T08:15:00",
            "  2026-07-01  ",
            "2026-07-01",
            "2016-12-31T23:59:60Z",
            "2024-02-29T12:00:00Z",
        ] {
            assert_eq!(parse_timestamp(s), chrono_timestamp(s), "{s}");
            assert!(parse_timestamp(s).is_some(), "{s}");
        }
    }

    #[test]
    fn timestamps_whose_utc_year_leaves_0000_to_9999_are_refused() {
        for s in [
            "9999-12-31T23:00:00-05:00",
            "9999-12-31T23:59:59.5-00:01",
            "0000-01-01T00:00:00+00:01",
            "0000-01-01T04:59:59+05:00",
        ] {
            assert_eq!(read_timestamp(s), Err(TimestampError::OutOfRange), "{s}");
            assert_eq!(parse_timestamp(s), None, "{s}");
            assert!(
                TimestampError::OutOfRange
                    .problem(s)
                    .contains("outside the years 0000 to 9999"),
                "{s}"
            );
        }
        // The edges themselves are in range, and written back as four-digit years.
        for (s, written) in [
            ("9999-12-31T23:59:59Z", "9999-12-31"),
            ("9999-12-31T18:59:59-05:00", "9999-12-31"),
            ("0000-01-01T00:00:00Z", "0000-01-01"),
            ("0000-01-01T05:00:00+05:00", "0000-01-01"),
            ("0000-01-01", "0000-01-01"),
        ] {
            let t = read_timestamp(s).unwrap_or_else(|e| panic!("{s}: {e:?}"));
            assert_eq!(t.date().to_string(), written, "{s}");
        }
        assert_eq!(read_timestamp("2026-7-1"), Err(TimestampError::Malformed));
    }

    #[test]
    fn malformed_timestamps_and_dates_are_refused() {
        for s in [
            "",
            "2026-7-1",
            "2026-07-01T8:15:00Z",
            "2026-02-30",
            "2025-02-29T00:00:00Z",
            "2026-07-01T24:00:00Z",
            "2026-07-01T08:15Z",
            "2026-07-01T08:15:00.Z",
            "2026-07-01T08:15:00+0100",
            "2026-07-01T08:15:00+24:00",
            "2026-07-01X08:15:00",
            "20260701",
            "2026-07-01T08:15:00Z trailing",
            "２０２６-07-01",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
        assert_eq!(
            parse_date("2026-07-01"),
            NaiveDate::from_ymd_opt(2026, 7, 1)
        );
        for s in [
            "2026-07-01 ",
            "2026-07-1",
            "+2026-07-01",
            "2026-13-01",
            "2026/07/01",
            "",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }
}
