//! The certificate store of expiration-mailer (and the registration lookup of notify-mailer),
//! behind one database URL: an SQLite file (`sqlite://PATH`, created when missing) or
//! MySQL/MariaDB (`mysql://USER:PASS@HOST/DB`).
//!
//! Both go through the sqlx `Any` driver with the same SQL: `?` placeholders, plain column
//! types, times as i64 seconds since the Unix epoch (the `Any` driver carries no date types).
//! The schema lives in `mailer/migrations/` and is embedded, so the binaries run from any folder.
//!
//! - `import`: registrations and certificates going in.
//! - `reminders`: the expiring-certificate query, renewals, recording reminders, per-day counts.
//! - `claims`: claiming a reminder before sending it, so overlapping runs never both send it.

mod claims;
mod import;
mod reminders;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, Row, SqlSafeStr};

pub use import::{Imported, NewCertificate, fqdn_set_hash};
pub use reminders::ExpiringCertificate;

/// The schema, embedded so that the binary needs no files beside it.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "reminder claims",
        include_str!("../migrations/0002_reminder_claims.sql"),
    ),
];

/// Why the store could not be used. [`StoreError::BadUrl`] is the user's mistake (exit 2);
/// the rest mean the store is unreachable or broken (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bad --db URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot open the store {url}: {source}")]
    Unreachable { url: String, source: sqlx::Error },
    #[error("cannot bring the store's schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("registration {id} has a malformed contact list: {reason}")]
    BadContact { id: i64, reason: String },
}

impl StoreError {
    /// True when the error is in what the user typed, not in the store itself.
    pub fn is_usage(&self) -> bool {
        matches!(self, StoreError::BadUrl { .. })
    }
}

/// The store: a connection pool with the schema applied. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Opens (and for SQLite creates) the store at `url`, then applies the migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, true).await
    }

    /// Opens an existing store: an SQLite file that is not there is an error instead of a
    /// new empty store (for readers such as notify-mailer's `id` lookup).
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, false).await
    }

    async fn open_with(url: &str, create: bool) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (effective, sqlite) = normalise_url(url, create)?;
        let options = AnyConnectOptions::from_str(&effective).map_err(|e| StoreError::BadUrl {
            url: redact(url),
            reason: e.to_string(),
        })?;
        // SQLite allows one writer at a time; a single connection turns lock contention
        // into orderly waiting instead of SQLITE_BUSY errors in the middle of a run.
        let max_connections = if sqlite { 1 } else { 8 };
        // One direct attempt first: the pool would keep retrying a refused connection
        // until its acquire timeout, and an unreachable store should be reported at once.
        let probe = AnyConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::Unreachable {
                url: redact(url),
                source,
            })?;
        let _ = probe.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Unreachable {
                url: redact(url),
                source,
            })?;
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// The contact URLs of a registration, or `None` when there is no such registration.
    pub async fn registration_contacts(&self, id: i64) -> Result<Option<Vec<String>>, StoreError> {
        let row = sqlx::query("SELECT contact FROM registrations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("contact")?;
        let contacts = serde_json::from_str(&text).map_err(|e| StoreError::BadContact {
            id,
            reason: e.to_string(),
        })?;
        Ok(Some(contacts))
    }

    /// Closes every connection of the pool (waits for SQLite to finish its writes).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Checks the scheme and, for SQLite, asks for the file to be created when missing.
/// Returns the URL to connect to and whether it is SQLite.
fn normalise_url(url: &str, create: bool) -> Result<(String, bool), StoreError> {
    let mode = if create { "mode=rwc" } else { "mode=rw" };
    let bad = |reason: &str| StoreError::BadUrl {
        url: redact(url),
        reason: reason.to_owned(),
    };
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(bad("expected sqlite://PATH or mysql://USER:PASS@HOST/DB"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            let path = rest.trim_start_matches("//");
            if path.is_empty() || path.starts_with('?') {
                return Err(bad("no file path after sqlite://"));
            }
            if path.contains("mode=") {
                Ok((url.to_owned(), true))
            } else if path.contains('?') {
                Ok((format!("{url}&{mode}"), true))
            } else {
                Ok((format!("{url}?{mode}"), true))
            }
        }
        "mysql" | "mariadb" => {
            if !rest.starts_with("//") || rest.len() <= 2 {
                return Err(bad("expected mysql://USER:PASS@HOST/DB"));
            }
            Ok((url.to_owned(), false))
        }
        other => Err(bad(&format!(
            "unsupported scheme {other:?} (use sqlite:// or mysql://)"
        ))),
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    if let Some((head, tail)) = url.split_once("://")
        && let Some((userinfo, host)) = tail.rsplit_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{head}://{user}:***@{host}");
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(
            normalise_url("sqlite://x.db", true).unwrap(),
            ("sqlite://x.db?mode=rwc".to_owned(), true)
        );
        assert_eq!(
            normalise_url("sqlite:///tmp/x.db?cache=shared", true)
                .unwrap()
                .0,
            "sqlite:///tmp/x.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            normalise_url("sqlite://x.db?mode=ro", true).unwrap().0,
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(
            normalise_url("sqlite://x.db", false).unwrap().0,
            "sqlite://x.db?mode=rw"
        );
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        for url in ["postgres://a/b", "nothing", "sqlite://", "mysql:"] {
            let err = normalise_url(url, true).unwrap_err();
            assert!(err.is_usage(), "{url}: {err}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("mysql://u:secret@127.0.0.1/db"),
            "mysql://u:***@127.0.0.1/db"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
