//! The stores the tests run against: SQLite always, MySQL/MariaDB when
//! `MAILER_TEST_MYSQL_URL` is set (CI starts a MariaDB on 127.0.0.1 and sets it); each test
//! gets its own database.

use super::Scratch;

/// A single-threaded runtime for one store operation of a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A database of one backend for one test, dropped afterwards (MariaDB) or deleted with
/// its folder (SQLite).
pub struct TestDb {
    pub url: String,
    /// MariaDB: the server URL without a database and the database name, to drop it.
    mysql: Option<(String, String)>,
    _scratch: Option<Scratch>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.mysql.take() {
            runtime().block_on(async {
                if let Ok(pool) = sqlx::AnyPool::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name}"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        }
    }
}

/// SQLite, and MariaDB when configured.
pub fn databases(test: &str) -> Vec<TestDb> {
    let scratch = Scratch::new();
    let mut dbs = vec![TestDb {
        url: scratch.db_url(),
        mysql: None,
        _scratch: Some(scratch),
    }];
    match std::env::var("MAILER_TEST_MYSQL_URL") {
        Ok(url) if !url.is_empty() => dbs.push(mysql_database(&url, test)),
        // CI starts a MariaDB (.ci/start-mariadb); a run there without one would pass having
        // tested SQLite only, so under CI a missing URL is a failure, not a skip.
        _ if std::env::var_os("CI").is_some() => panic!(
            "{test}: MAILER_TEST_MYSQL_URL is not set, so the MariaDB part cannot run; \
             run `eval \"$(.ci/start-mariadb)\"` first (CI is set, so this is a failure)"
        ),
        _ => {
            eprintln!(
                "{test}: MariaDB part skipped: MAILER_TEST_MYSQL_URL is not set \
                 (eval \"$(.ci/start-mariadb)\"; with CI set this fails)"
            )
        }
    }
    dbs
}

fn mysql_database(url: &str, test: &str) -> TestDb {
    // The URL names a database the user may use; a fresh one beside it isolates this test.
    let (server, _) = url.rsplit_once('/').expect("mysql://USER:PASS@HOST/DB");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("mailer_{test}_{}_{nanos}", std::process::id());
    runtime().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url)
            .await
            .expect("connect to MAILER_TEST_MYSQL_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create a test database");
        pool.close().await;
    });
    TestDb {
        url: format!("{server}/{name}"),
        mysql: Some((format!("{server}/"), name)),
        _scratch: None,
    }
}
