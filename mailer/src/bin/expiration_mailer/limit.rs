//! `--mails-per-address-per-day`: how many reminders each address may still get today.
//!
//! The count of earlier runs comes from the store (it is recorded with each reminder); the
//! count of this run is kept here, reserved before a send and released when the send fails,
//! so parallel workers cannot overshoot the limit between them.

use std::collections::HashMap;
use std::sync::Mutex;

use mailer::db::{Store, StoreError};

#[derive(Debug)]
pub struct Limiter {
    /// 0: no limit.
    limit: u32,
    day: i64,
    /// Lower-case address -> messages counted today (store + this run's reservations).
    /// A std mutex, never held across an await: the store is read before locking.
    counts: Mutex<HashMap<String, i64>>,
}

impl Limiter {
    pub fn new(limit: u32, day: i64) -> Limiter {
        Limiter {
            limit,
            day,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The addresses that may get one more message today, each reserved for it.
    pub async fn reserve(
        &self,
        store: &Store,
        addresses: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if self.limit == 0 {
            return Ok(addresses.to_vec());
        }
        for address in addresses {
            let key = address.to_ascii_lowercase();
            if self.lock().contains_key(&key) {
                continue;
            }
            let stored = store.sent_on_day(&key, self.day).await?;
            self.lock().entry(key).or_insert(stored);
        }
        let mut counts = self.lock();
        let mut allowed = Vec::new();
        for address in addresses {
            let count = counts.entry(address.to_ascii_lowercase()).or_insert(0);
            if *count < i64::from(self.limit) {
                *count += 1;
                allowed.push(address.clone());
            }
        }
        Ok(allowed)
    }

    /// Gives back reservations of a message that did not go out.
    pub fn release(&self, addresses: &[String]) {
        if self.limit == 0 {
            return;
        }
        let mut counts = self.lock();
        for address in addresses {
            if let Some(count) = counts.get_mut(&address.to_ascii_lowercase()) {
                *count = (*count - 1).max(0);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // A poisoned map only means another worker panicked mid-update; the counts stay usable.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}
