//! Claims on reminders, so that overlapping expiration-mailer runs (a cron job that starts
//! again before the last one ended) never send one reminder twice.
//!
//! A run claims a reminder's certificates right before sending: one UPDATE per certificate,
//! in one transaction, matching only rows that are still due and that no live claim holds.
//! The database serialises the UPDATEs (SQLite: one writer at a time; MariaDB/InnoDB: row
//! locks, the WHERE re-read after the other transaction commits), so of two runs exactly one
//! gets every row; the other sees fewer rows changed, rolls back and leaves the reminder
//! alone. Recording the reminder clears the claim; a failed send gives it back; a run that
//! dies leaves it until `claimed_until`, after which any run may claim it again.

use super::{Store, StoreError};

impl Store {
    /// Claims the certificates `serials` (one reminder) for `owner` until `until`, all or
    /// none. A certificate can be claimed when it is still due for its window (no reminder
    /// recorded within `nag_seconds` of its expiry) and no claim holds it at `now`.
    /// Times are Unix seconds of the real clock: a lease is about processes, not about
    /// the (possibly fake) date the reminders are for.
    pub async fn claim_reminder(
        &self,
        serials: &[String],
        owner: &str,
        now: i64,
        until: i64,
        nag_seconds: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        for serial in serials {
            let claimed = sqlx::query(
                "UPDATE certificate_status SET claimed_by = ?, claimed_until = ?
                  WHERE serial = ?
                    AND (claimed_until IS NULL OR claimed_until <= ?)
                    AND (last_expiration_nag_sent IS NULL
                         OR not_after - last_expiration_nag_sent > ?)",
            )
            .bind(owner)
            .bind(until)
            .bind(serial)
            .bind(now)
            .bind(nag_seconds)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives back `owner`'s claim on `serials` (the send failed; the next run may try).
    pub async fn release_claim(&self, serials: &[String], owner: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for serial in serials {
            sqlx::query(
                "UPDATE certificate_status SET claimed_by = NULL, claimed_until = NULL
                  WHERE serial = ? AND claimed_by = ?",
            )
            .bind(serial)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Who holds a claim on `serial` and until when (`None`: nobody).
    pub async fn claim_of(&self, serial: &str) -> Result<Option<(String, i64)>, StoreError> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT claimed_by, claimed_until FROM certificate_status
              WHERE serial = ? AND claimed_by IS NOT NULL",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((
                row.try_get("claimed_by")?,
                row.try_get("claimed_until")?,
            ))),
            None => Ok(None),
        }
    }
}
