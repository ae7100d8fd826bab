//! Registrations and certificates going into the store (`expiration-mailer import`).

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Store, StoreError};

/// A parsed certificate ready to be stored.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// Serial number as lower-case hex, no separators.
    pub serial: String,
    /// The certificate as issued.
    pub der: Vec<u8>,
    /// DNS names (subjectAltName, else the common name).
    pub names: Vec<String>,
    /// notBefore, seconds since the Unix epoch.
    pub issued: i64,
    /// notAfter, seconds since the Unix epoch.
    pub expires: i64,
}

/// What [`Store::import_certificate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Added,
    /// A certificate with this serial was already there; nothing changed.
    AlreadyPresent,
}

/// SHA-256 (lower-case hex) of the sorted, de-duplicated, lower-case names joined by commas:
/// two certificates for the same names in any order and case share it, which is how a
/// renewal is recognised.
pub fn fqdn_set_hash(names: &[String]) -> String {
    let mut names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let digest = Sha256::digest(names.join(",").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// The id of the registration whose contact list is exactly `contact`, creating it when
    /// there is none.
    pub async fn registration_for_contact(&self, contact: &[String]) -> Result<i64, StoreError> {
        let text = serde_json::to_string(contact).map_err(|e| StoreError::BadContact {
            id: 0,
            reason: e.to_string(),
        })?;
        let mut tx = self.pool.begin().await?;
        let existing =
            sqlx::query("SELECT id FROM registrations WHERE contact = ? ORDER BY id LIMIT 1")
                .bind(&text)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = existing {
            let id: i64 = row.try_get("id")?;
            tx.commit().await?;
            return Ok(id);
        }
        // Ids are chosen here because SQLite and MySQL spell auto-increment differently;
        // the primary key turns a concurrent importer's collision into an error, not a mix-up.
        let max: Option<i64> = sqlx::query("SELECT MAX(id) AS max_id FROM registrations")
            .fetch_one(&mut *tx)
            .await?
            .try_get("max_id")?;
        let id = max.unwrap_or(0) + 1;
        sqlx::query("INSERT INTO registrations (id, contact) VALUES (?, ?)")
            .bind(id)
            .bind(&text)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Stores a certificate for `registration` with its status and FQDN set, in one
    /// transaction. A serial already present is left exactly as it was.
    pub async fn import_certificate(
        &self,
        registration: i64,
        cert: &NewCertificate,
    ) -> Result<Imported, StoreError> {
        let mut tx = self.pool.begin().await?;
        let present = sqlx::query("SELECT serial FROM certificates WHERE serial = ?")
            .bind(&cert.serial)
            .fetch_optional(&mut *tx)
            .await?;
        if present.is_some() {
            tx.rollback().await?;
            return Ok(Imported::AlreadyPresent);
        }
        sqlx::query(
            "INSERT INTO certificates (serial, registration_id, der, issued, expires) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&cert.serial)
        .bind(registration)
        .bind(cert.der.clone())
        .bind(cert.issued)
        .bind(cert.expires)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO certificate_status (serial, status, not_after, last_expiration_nag_sent) VALUES (?, 'good', ?, NULL)",
        )
        .bind(&cert.serial)
        .bind(cert.expires)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO fqdn_sets (serial, set_hash, issued, expires) VALUES (?, ?, ?, ?)",
        )
        .bind(&cert.serial)
        .bind(fqdn_set_hash(&cert.names))
        .bind(cert.issued)
        .bind(cert.expires)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Imported::Added)
    }

    /// Marks a certificate revoked (revoked certificates get no reminders).
    pub async fn revoke(&self, serial: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE certificate_status SET status = 'revoked' WHERE serial = ?")
            .bind(serial)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_hash_ignores_order_case_and_duplicates() {
        let a = fqdn_set_hash(&["b.example".into(), "A.example".into()]);
        let b = fqdn_set_hash(&["a.example".into(), "b.example".into(), "b.example".into()]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(a, fqdn_set_hash(&["a.example".into()]));
    }
}
