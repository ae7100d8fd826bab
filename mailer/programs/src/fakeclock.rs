//! `FAKECLOCK`: the fixed "now" the integration harness gives the programs, so they run as
//! if days before a certificate expires. Unset or empty means the system clock.

use std::sync::Arc;
use std::time::SystemTime;

use mailer::{Clock, FixedClock, SystemClock};
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

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
    let parsed = if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        parse_rfc3339(s)
    } else {
        parse_unix_date(s)
    };
    parsed.map(SystemTime::from).map_err(|reason| ClockError {
        value: s.to_owned(),
        reason,
    })
}

/// Go's `UnixDate` without its zone field: the day as `date` writes it (`02`) or as Go's `_2`
/// pads it (` 2`, one space more, which splitting on whitespace already took).
const UNIX_DATE: &[BorrowedFormatItem<'_>] = format_description!(
    "[weekday repr:short] [month repr:short] [day padding:none] [hour]:[minute]:[second] [year]"
);

fn parse_unix_date(s: &str) -> Result<OffsetDateTime, String> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    let [weekday, month, day, clock, zone, year] = fields[..] else {
        return Err("expected 6 fields: weekday month day hh:mm:ss zone year".to_owned());
    };
    // Abbreviations other than UTC/GMT are ambiguous (CST is three zones), so refuse them;
    // time's format descriptions have no zone-name component, hence the field is taken out.
    if zone != "UTC" && zone != "GMT" {
        return Err(format!("zone {zone:?} is not UTC or GMT"));
    }
    // Like Go, the weekday is checked for form only: time builds the date from year, month
    // and day when it has them, and ignores the weekday.
    let without_zone = [weekday, month, day, clock, year].join(" ");
    PrimitiveDateTime::parse(&without_zone, UNIX_DATE)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|e| e.to_string())
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    // time accepts any byte between date and time (RFC 3339 allows other separators);
    // FAKECLOCK takes the usual ones only, so a typo is not read as a date.
    match s.as_bytes().get(10) {
        Some(b'T' | b't' | b' ') => {}
        Some(_) => return Err("missing 'T' between date and time".to_owned()),
        None => return Err("bad RFC 3339 time".to_owned()),
    }
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| e.to_string())
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
    fn the_weekday_is_checked_for_form_only_as_in_go() {
        let t = parse_fakeclock("Fri Jan 2 15:04:05 UTC 2006").unwrap();
        assert_eq!(secs(t), GO_REFERENCE);
        assert!(parse_fakeclock("Xyz Jan 02 15:04:05 UTC 2006").is_err());
    }

    #[test]
    fn errors_say_which_part_is_wrong() {
        let reason = |value| parse_fakeclock(value).unwrap_err().reason;
        assert_eq!(
            reason("Mon Jan 02 15:04:05 CST 2006"),
            "zone \"CST\" is not UTC or GMT"
        );
        assert!(reason("Mon Foo 02 15:04:05 UTC 2006").contains("month"));
        assert!(reason("Mon Feb 30 15:04:05 UTC 2006").contains("day"));
        assert!(reason("2006-13-02T15:04:05Z").contains("month"));
        assert!(reason("2006-01-02T15:04:05+99:00").contains("offset hour"));
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
