//! rustls server configuration: PEM files, or a CA + `localhost` certificate generated at start.
//!
//! OWNER: helper "smtp".
