//! SMTP protocol (RFC 5321): parsing without I/O, and the per-connection session.
//!
//! OWNER: helper "smtp".
