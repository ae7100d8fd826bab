//! Flags and set-up shared by expiration-mailer and notify-mailer.
//!
//! OWNER: helper "mailer programs".
