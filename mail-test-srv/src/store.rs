//! The mailbox of one server instance: every message acknowledged with 250, indexed for
//! the report API, bounded by count and bytes (oldest evicted first, counted).
//!
//! OWNER: helper "faults/store/http". Signatures below are the agreed interface.

use std::time::SystemTime;

use bytes::Bytes;

/// A message as the SMTP session hands it over, after the final dot.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Envelope sender without angle brackets; empty for the null sender `<>`.
    pub from: String,
    /// Envelope recipients without angle brackets, in RCPT order.
    pub recipients: Vec<String>,
    /// The message as received: CRLF line ends, dot-unstuffed, without the final `.\r\n`.
    pub data: Bytes,
    pub received: SystemTime,
    /// The session was under TLS (implicit or after STARTTLS).
    pub tls: bool,
    /// The user that authenticated, if any.
    pub auth_user: Option<String>,
    /// Id of the SMTP connection it arrived on.
    pub connection: u64,
}

/// The mailbox. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Store {
    _private: (),
}

#[allow(unused_variables, clippy::todo)]
impl Store {
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        todo!()
    }
    /// Stores a message and returns its id (ids start at 1 and only grow).
    /// Never fails: past the caps the oldest messages make room.
    pub fn insert(&self, message: NewMessage) -> u64 {
        todo!()
    }
}
