//! Session transcripts: every session's lines (what the client sent, what the server
//! replied, which fault fired), its summary and how it ended, kept per server instance and
//! bounded, so a user can see why a client failed.
//!
//! - `record.rs`: one session's [`Record`], its bounded lines and the text transcript.
//! - `reconnects.rs`: clients seen coming back after the server ended their session.
//! - `registry.rs`: [`Sessions`], the open and the last closed sessions of one server, and the
//!   [`Recorder`] a session writes through.
//!
//! The SMTP session records; this module knows nothing of SMTP.

mod reconnects;
mod record;
mod registry;

pub use record::{Dir, HEAD_LINES, Line, MAX_LINE, Outcome, Record, Refusal, TAIL_LINES, TlsInfo};
// One session's writer: the protocol's business, nameable outside only for the fuzz targets.
#[cfg(not(feature = "fuzzing"))]
pub(crate) use registry::Recorder;
#[cfg(feature = "fuzzing")]
pub use registry::Recorder;
pub use registry::{Changes, Query, Sessions};
