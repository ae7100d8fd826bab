//! The certificate store (SQLite or MySQL/MariaDB by URL).
//!
//! OWNER: helper "mailer programs".
