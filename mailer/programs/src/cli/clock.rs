//! Time in the programs: the clock of a run (`FAKECLOCK` or the system's) and the day and
//! second numbers the store keeps.

use std::time::SystemTime;

use super::exit::Fatal;

/// The clock of this run: `FAKECLOCK` when set (a bad value is a usage error), else the system's.
pub fn clock() -> Result<std::sync::Arc<dyn mailer::Clock>, Fatal> {
    crate::fakeclock::clock_from_env().map_err(Fatal::usage)
}

/// Days since the Unix epoch (UTC) of a time; the unit of `--mails-per-address-per-day`.
pub fn day_of(time: SystemTime) -> i64 {
    unix_seconds(time).div_euclid(86_400)
}

/// Seconds since the Unix epoch, negative before it.
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn days_are_utc_days_since_the_epoch() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 5);
        assert_eq!(day_of(t), 3);
        assert_eq!(day_of(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), -1);
    }
}
