//! One run: find the certificates due for a reminder in each nag window, set the renewed
//! ones aside, and group the rest into one reminder per registration.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use mailer_programs::cli::{Fatal, unix_seconds};
use mailer_programs::db::{ExpiringCertificate, Store, StoreError};

use crate::certs::names_from_der;
use crate::templates::{MAX_LISTED_DOMAINS, ReminderData};

/// The nag windows' upper bounds: each `--nag-times` value plus `--frequency` (so a
/// certificate crossing a nag time between two runs is still caught), sorted, unique.
pub fn nag_windows(nag_times: &[Duration], frequency: Duration) -> Vec<Duration> {
    let mut windows: Vec<Duration> = nag_times.iter().map(|t| *t + frequency).collect();
    windows.sort();
    windows.dedup();
    windows
}

/// One message to send: a registration, its addresses and its due certificates.
#[derive(Debug, Clone)]
pub struct Reminder {
    pub registration_id: i64,
    /// Addresses from the registration's `mailto:` contacts, de-duplicated.
    pub addresses: Vec<String>,
    pub serials: Vec<String>,
    /// The window's nag time in seconds: the certificates are due while no reminder was
    /// recorded within this long of their expiry (checked again when claiming them).
    pub nag_seconds: i64,
    pub data: ReminderData,
}

/// What a run found before sending anything.
#[derive(Debug, Default)]
pub struct Selection {
    pub examined: u64,
    /// Serials renewed since (a later certificate for the same names): marked, not mailed.
    pub renewed: Vec<String>,
    /// Serials of registrations with no usable `mailto:` contact: marked, not mailed.
    pub no_contact: Vec<String>,
    pub no_contact_registrations: u64,
    pub reminders: Vec<Reminder>,
}

/// Selects what is due at `now` in every window, in window order, oldest expiry first.
pub async fn select(
    store: &Store,
    now: SystemTime,
    windows: &[Duration],
    cert_limit: u32,
) -> Result<Selection, Fatal> {
    let now_s = unix_seconds(now);
    let mut selection = Selection::default();
    let mut previous = 0i64;
    for window in windows {
        let nag = i64::try_from(window.as_secs()).unwrap_or(i64::MAX / 4);
        let due = store
            .expiring(now_s + previous, now_s + nag, nag, i64::from(cert_limit))
            .await?;
        previous = nag;
        selection.examined += due.len() as u64;
        // Group by registration, keeping the oldest-expiry-first order of first appearance.
        let mut groups: Vec<(i64, Vec<ExpiringCertificate>)> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        for cert in due {
            if cert.renewed {
                selection.renewed.push(cert.serial);
                continue;
            }
            let slot = *index.entry(cert.registration_id).or_insert_with(|| {
                groups.push((cert.registration_id, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(cert);
        }
        for (registration_id, certs) in groups {
            let contacts = match store.registration_contacts(registration_id).await {
                Ok(contacts) => contacts.unwrap_or_default(),
                // One damaged row must not stop everyone's reminders: it has no usable
                // contact, like a registration without mailto:.
                Err(e @ StoreError::BadContact { .. }) => {
                    tracing::warn!("{e}");
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            };
            let addresses = mailto_addresses(&contacts);
            let serials: Vec<String> = certs.iter().map(|c| c.serial.clone()).collect();
            if addresses.is_empty() {
                selection.no_contact_registrations += 1;
                selection.no_contact.extend(serials);
                continue;
            }
            selection.reminders.push(Reminder {
                registration_id,
                addresses,
                data: reminder_data(registration_id, &certs, now_s),
                serials,
                nag_seconds: nag,
            });
        }
    }
    Ok(selection)
}

/// The addresses of the `mailto:` contacts (others, such as `tel:`, are not ours to use),
/// without query parts, de-duplicated ignoring case.
pub fn mailto_addresses(contacts: &[String]) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    let mut out = Vec::new();
    for contact in contacts {
        let Some(rest) = contact
            .strip_prefix("mailto:")
            .or_else(|| contact.strip_prefix("MAILTO:"))
        else {
            continue;
        };
        let address = rest.split('?').next().unwrap_or("").trim();
        if address.is_empty() || !address.contains('@') {
            continue;
        }
        let key = address.to_ascii_lowercase();
        if !seen.contains(&key) {
            seen.push(key);
            out.push(address.to_owned());
        }
    }
    out
}

fn reminder_data(registration_id: i64, certs: &[ExpiringCertificate], now: i64) -> ReminderData {
    let mut names: Vec<String> = certs
        .iter()
        .flat_map(|c| {
            let names = names_from_der(&c.der);
            if names.is_empty() {
                vec![format!("(certificate {})", c.serial)]
            } else {
                names
            }
        })
        .collect();
    names.sort();
    names.dedup();
    let total = names.len();
    names.truncate(MAX_LISTED_DOMAINS);
    let soonest = certs.iter().map(|c| c.expires).min().unwrap_or(now);
    ReminderData {
        more_domains: total - names.len(),
        domains: names,
        total_domains: total,
        expiration_date: format_date(soonest),
        expiration_time: format_rfc3339(soonest),
        days_left: (soonest - now).max(0) / 86_400,
        registration_id,
        serials: certs.iter().map(|c| c.serial.clone()).collect(),
    }
}

fn to_system_time(seconds: i64) -> SystemTime {
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

fn format_rfc3339(seconds: i64) -> String {
    humantime::format_rfc3339_seconds(to_system_time(seconds)).to_string()
}

fn format_date(seconds: i64) -> String {
    format_rfc3339(seconds).chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_add_frequency_and_sort() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(nag_windows(&[h(480), h(240)], h(1)), vec![h(241), h(481)]);
    }

    #[test]
    fn only_mailto_contacts_count() {
        let contacts = vec![
            "tel:+1555".to_owned(),
            "mailto:A@example.com".to_owned(),
            "mailto:a@example.com".to_owned(),
            "mailto:".to_owned(),
            "mailto:b@example.com?subject=x".to_owned(),
        ];
        assert_eq!(
            mailto_addresses(&contacts),
            vec!["A@example.com", "b@example.com"]
        );
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(format_date(1_136_214_245), "2006-01-02");
        assert_eq!(format_rfc3339(1_136_214_245), "2006-01-02T15:04:05Z");
    }
}
