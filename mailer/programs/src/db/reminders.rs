//! The reminder side of the store: which certificates are due, which were renewed, and
//! recording a reminder together with the per-address daily count.

use sqlx::Row;

use super::{Store, StoreError};

/// A certificate due for a reminder, with what the message needs.
#[derive(Debug, Clone)]
pub struct ExpiringCertificate {
    pub serial: String,
    pub registration_id: i64,
    pub der: Vec<u8>,
    pub issued: i64,
    pub expires: i64,
    /// A later certificate for the same set of names exists.
    pub renewed: bool,
}

impl Store {
    /// Non-revoked certificates with `after < not_after <= until` whose last reminder is
    /// absent or was sent more than `nag_seconds` before expiry, oldest expiry first, at
    /// most `limit`.
    pub async fn expiring(
        &self,
        after: i64,
        until: i64,
        nag_seconds: i64,
        limit: i64,
    ) -> Result<Vec<ExpiringCertificate>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.serial, c.registration_id, c.der, c.issued, c.expires,
                    (SELECT COUNT(*) FROM fqdn_sets f JOIN fqdn_sets later
                        ON later.set_hash = f.set_hash AND later.issued > f.issued
                      WHERE f.serial = c.serial) AS later_issues
               FROM certificate_status cs
               JOIN certificates c ON c.serial = cs.serial
              WHERE cs.not_after > ? AND cs.not_after <= ?
                AND cs.status <> 'revoked'
                AND (cs.last_expiration_nag_sent IS NULL
                     OR cs.not_after - cs.last_expiration_nag_sent > ?)
              ORDER BY cs.not_after ASC, cs.serial ASC
              LIMIT ?",
        )
        .bind(after)
        .bind(until)
        .bind(nag_seconds)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let later: i64 = row.try_get("later_issues")?;
                Ok(ExpiringCertificate {
                    serial: row.try_get("serial")?,
                    registration_id: row.try_get("registration_id")?,
                    der: row.try_get("der")?,
                    issued: row.try_get("issued")?,
                    expires: row.try_get("expires")?,
                    renewed: later > 0,
                })
            })
            .collect()
    }

    /// Records, in one transaction, that a reminder for `serials` went out at `sent_at`
    /// (or needs none), and counts one message for each of `addresses` on `day`.
    /// Called right after the server accepted the message, so a crash can repeat at most
    /// that one reminder and never lose one.
    pub async fn record_reminder(
        &self,
        serials: &[String],
        sent_at: i64,
        addresses: &[String],
        day: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for serial in serials {
            // The claim (if any) ends with the reminder recorded.
            sqlx::query(
                "UPDATE certificate_status
                    SET last_expiration_nag_sent = ?, claimed_by = NULL, claimed_until = NULL
                  WHERE serial = ?",
            )
            .bind(sent_at)
            .bind(serial)
            .execute(&mut *tx)
            .await?;
        }
        for address in addresses {
            let updated =
                sqlx::query("UPDATE mail_counts SET sent = sent + 1 WHERE address = ? AND day = ?")
                    .bind(address)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
            if updated.rows_affected() > 0 {
                continue;
            }
            let inserted =
                sqlx::query("INSERT INTO mail_counts (address, day, sent) VALUES (?, ?, 1)")
                    .bind(address)
                    .bind(day)
                    .execute(&mut *tx)
                    .await;
            if inserted.is_err() {
                // Another connection inserted the row between our UPDATE and INSERT
                // (MySQL with parallel sends): the row exists now, so count on it.
                sqlx::query("UPDATE mail_counts SET sent = sent + 1 WHERE address = ? AND day = ?")
                    .bind(address)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Messages counted for `address` on `day` (days since the Unix epoch, UTC).
    pub async fn sent_on_day(&self, address: &str, day: i64) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT sent FROM mail_counts WHERE address = ? AND day = ?")
            .bind(address)
            .bind(day)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(row.try_get("sent")?),
            None => Ok(0),
        }
    }

    /// When the last reminder for `serial` was recorded (`None`: never, or no such serial).
    pub async fn last_reminder(&self, serial: &str) -> Result<Option<i64>, StoreError> {
        let row =
            sqlx::query("SELECT last_expiration_nag_sent FROM certificate_status WHERE serial = ?")
                .bind(serial)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(row) => Ok(row.try_get("last_expiration_nag_sent")?),
            None => Ok(None),
        }
    }

    /// How many certificates the store holds (for the import summary and tests).
    pub async fn certificate_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM certificates")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}
