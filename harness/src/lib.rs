//! harness: the integration stage. `startservers` (in `test/startservers.rs`) owns the child
//! processes; the scenarios drive the mailers against a flaky mail-test-srv.
//!
//! OWNER: helper "harness".

#[path = "../../test/startservers.rs"]
pub mod startservers;
