//! `FAKECLOCK`: the fixed "now" the integration harness gives the programs, so they run as
//! if days before a certificate expires. Unset or empty means the system clock.

use std::sync::Arc;
use std::time::SystemTime;

use mailer::{Clock, FixedClock, SystemClock};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Why `FAKECLOCK` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad FAKECLOCK {value:?}: {reason} (expected like \"Mon Jan 02 15:04:05 UTC 2006\" or RFC 3339 \"2006-01-02T15:04:05Z\")"
)]
pub struct ClockError {
    pub value: String,
    pub reason: String,
}

/// The fixed clock named by `FAKECLOCK` when it is set (and not empty), else the system clock.
pub fn clock_from_env() -> Result<Arc<dyn Clock>, ClockError> {
    match std::env::var("FAKECLOCK") {
        Ok(value) if !value.trim().is_empty() => Ok(Arc::new(FixedClock(parse_fakeclock(&value)?))),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Arc::new(SystemClock)),
        Err(std::env::VarError::NotUnicode(raw)) => Err(ClockError {
            value: raw.to_string_lossy().into_owned(),
            reason: "not UTF-8".to_owned(),
        }),
    }
}

/// Parses Go's `time.UnixDate` layout (`Mon Jan _2 15:04:05 MST 2006`, zone UTC or GMT, as the
/// original's `date`-based scripts write it) or RFC 3339 with `Z` or a numeric offset.
pub fn parse_fakeclock(s: &str) -> Result<SystemTime, ClockError> {
    let s = s.trim();
    let fail = |reason: &str| ClockError {
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        parse_rfc3339(s)
    } else {
        parse_unix_date(s)
    };
    parsed.map(SystemTime::from).map_err(|reason| fail(&reason))
}

fn parse_unix_date(s: &str) -> Result<OffsetDateTime, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [weekday, month, day, clock, zone, year] = parts[..] else {
        return Err("expected 6 fields: weekday month day hh:mm:ss zone year".to_owned());
    };
    // Like Go, the weekday is checked for form only: the date decides the instant.
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    if !WEEKDAYS.contains(&weekday) {
        return Err(format!("unknown weekday {weekday:?}"));
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month_index = MONTHS
        .iter()
        .position(|m| *m == month)
        .ok_or_else(|| format!("unknown month {month:?}"))?;
    // Abbreviations other than UTC/GMT are ambiguous (CST is three zones), so refuse them.
    if zone != "UTC" && zone != "GMT" {
        return Err(format!("zone {zone:?} is not UTC or GMT"));
    }
    let [h, m, sec] = split_numbers::<3>(clock, ':').ok_or("bad hh:mm:ss")?;
    let date = make_date(number(year)?, month_index as u32 + 1, number(day)?)?;
    let time = Time::from_hms(byte(h)?, byte(m)?, byte(sec)?).map_err(|e| e.to_string())?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    let bad = || "bad RFC 3339 time".to_owned();
    let (date_part, rest) = s.split_at_checked(10).ok_or_else(bad)?;
    let [year, month, day] = split_numbers::<3>(date_part, '-').ok_or_else(bad)?;
    let rest = rest
        .strip_prefix(['T', 't', ' '])
        .ok_or("missing 'T' between date and time")?;
    // The offset starts at the first Z, + or - after the seconds.
    let zone_at = rest
        .find(['Z', 'z', '+', '-'])
        .ok_or("missing offset (Z or +hh:mm)")?;
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (clock, None),
    };
    let [h, m, sec] = split_numbers::<3>(hms, ':').ok_or_else(bad)?;
    let nanos = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            number(f)? * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return Err("bad fraction of a second".to_owned()),
    };
    let offset = if zone.eq_ignore_ascii_case("z") {
        UtcOffset::UTC
    } else {
        let sign: i8 = if zone.starts_with('-') { -1 } else { 1 };
        let [oh, om] = split_numbers::<2>(&zone[1..], ':').ok_or("bad offset")?;
        let (oh, om) = (byte(oh)?, byte(om)?);
        if oh > 25 || om > 59 {
            return Err("offset out of range".to_owned());
        }
        UtcOffset::from_hms(sign * oh as i8, sign * om as i8, 0).map_err(|e| e.to_string())?
    };
    let date = make_date(year, month, day)?;
    let time =
        Time::from_hms_nano(byte(h)?, byte(m)?, byte(sec)?, nanos).map_err(|e| e.to_string())?;
    Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

fn make_date(year: u32, month: u32, day: u32) -> Result<Date, String> {
    let month = Month::try_from(u8::try_from(month).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let year = i32::try_from(year).map_err(|e| e.to_string())?;
    Date::from_calendar_date(year, month, u8::try_from(day).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())
}

/// A clock or offset field; `time` then checks its range.
fn byte(v: u32) -> Result<u8, String> {
    u8::try_from(v).map_err(|_| format!("{v} is out of range"))
}

fn number(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 9 {
        return Err(format!("{s:?} is not a number"));
    }
    s.parse().map_err(|_| format!("{s:?} is not a number"))
}

/// Exactly `N` numbers of at most 4 digits separated by `sep`.
fn split_numbers<const N: usize>(s: &str, sep: char) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    let mut parts = s.split(sep);
    for slot in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    // 2006-01-02T15:04:05Z is 1136214245 seconds after the epoch.
    const GO_REFERENCE: u64 = 1_136_214_245;

    #[test]
    fn unix_date_layout_as_written_by_date_and_go() {
        let t = parse_fakeclock("Mon Jan 02 15:04:05 UTC 2006").unwrap();
        assert_eq!(secs(t), GO_REFERENCE);
        // Go's `_2` pads the day with a space; split_whitespace takes both.
        let t = parse_fakeclock("Mon Jan  2 15:04:05 GMT 2006").unwrap();
        assert_eq!(secs(t), GO_REFERENCE);
    }

    #[test]
    fn rfc3339_with_zulu_fraction_and_offsets() {
        assert_eq!(
            secs(parse_fakeclock("2006-01-02T15:04:05Z").unwrap()),
            GO_REFERENCE
        );
        let t = parse_fakeclock("2006-01-02T15:04:05.25Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(GO_REFERENCE * 1000 + 250)
        );
        assert_eq!(
            secs(parse_fakeclock("2006-01-02T17:04:05+02:00").unwrap()),
            GO_REFERENCE
        );
        assert_eq!(
            secs(parse_fakeclock("2006-01-02T10:04:05-05:00").unwrap()),
            GO_REFERENCE
        );
    }

    #[test]
    fn bad_values_are_errors_naming_the_value() {
        for bad in [
            "",
            "yesterday",
            "Mon Jan 02 15:04:05 CST 2006",
            "Mon Foo 02 15:04:05 UTC 2006",
            "Mon Feb 30 15:04:05 UTC 2006",
            "Mon Jan 02 25:04:05 UTC 2006",
            "Mon Jan 02 300:04:05 UTC 2006",
            "2006-01-02T15:04:05",
            "2006-13-02T15:04:05Z",
            "2006-01-02T15:04:05+99:00",
            "2006-01-02T15:04:05.Z",
            "2006-01-02X15:04:05Z",
            "20",
            "Mon Jan 02 15:04:05 UTC 99999999999",
        ] {
            let err = parse_fakeclock(bad).expect_err(bad);
            assert!(err.to_string().contains("FAKECLOCK"), "{err}");
        }
    }
}
