//! `mail-test-srv`: flags → [`mail_test_srv::Config`], bind, print the READY line, serve.
//!
//! OWNER: helper "smtp".

fn main() {}
