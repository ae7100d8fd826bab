//! `--mails-per-address-per-day`: how many reminders each address may still get today.
//!
//! The count of earlier runs comes from the store (it is recorded with each reminder); the
//! count of this run is kept here, reserved before a send and released when the send fails,
//! so parallel workers cannot overshoot the limit between them.

use std::collections::HashMap;
use std::sync::Mutex;

use mailer_programs::db::{Store, StoreError};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_respect_the_stored_count_and_can_be_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
        let store = Store::open(&url).await.expect("store");
        // Earlier today, one message to a@ was recorded by another run.
        store
            .record_reminder(&[], 0, &["a@example.com".to_owned()], 5)
            .await
            .expect("record");
        let both = vec!["A@example.com".to_owned(), "b@example.com".to_owned()];

        let limiter = Limiter::new(2, 5);
        assert_eq!(limiter.reserve(&store, &both).await.unwrap(), both);
        // a@ is at 2 now (one stored, one reserved); b@ at 1.
        assert_eq!(
            limiter.reserve(&store, &both).await.unwrap(),
            ["b@example.com"]
        );
        assert!(limiter.reserve(&store, &both).await.unwrap().is_empty());
        limiter.release(&["b@example.com".to_owned()]);
        assert_eq!(
            limiter.reserve(&store, &both).await.unwrap(),
            ["b@example.com"]
        );

        // Another day starts from zero; 0 means no limit.
        assert_eq!(
            Limiter::new(1, 6).reserve(&store, &both).await.unwrap(),
            both
        );
        let unlimited = Limiter::new(0, 5);
        for _ in 0..5 {
            assert_eq!(unlimited.reserve(&store, &both).await.unwrap(), both);
        }
        store.close().await;
    }
}
