//! The SMTP state machine of one connection, without the socket.
//!
//! [`Session::step`] takes the read buffer, handles the next complete unit (a command line,
//! an AUTH continuation, or DATA bytes) and appends replies to [`Session::out`]; the
//! connection loop (`connection.rs`) decides when to read, flush and close. [`Phase`] says
//! who owns the next bytes. One handler per verb lives in `verbs.rs`, AUTH in `auth.rs`.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::sync::CancellationToken;

use super::data::DataReceiver;
use super::inflight::Held;
use super::parse::{self, ParseError};
use super::reply;
use super::settings::Settings;
use crate::State;
use crate::config::BareLf;
use crate::fault::{Action, ConnectionFaults, Decision, FaultContext, Stage};
use crate::stats::Stats;
use crate::store::NewMessage;
use crate::transcript::{Outcome, Recorder};

/// What the connection loop does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep handling input.
    Continue,
    /// Flush what is pending, then close (FIN).
    Close,
    /// Flush what is pending, then abort with RST.
    Reset,
    /// Flush what is pending, then never answer again.
    Hang,
    /// Flush the 220, drop buffered input, and start the TLS handshake (RFC 3207).
    StartTls,
    /// Flush the 220, read the client's ClientHello, then abort with RST (an `abort` fault).
    AbortTls,
}

/// Who owns the next bytes from the client.
#[derive(Debug)]
pub(super) enum Phase {
    /// Command lines.
    Command,
    /// Message content after 354, up to the final dot.
    Data(DataReceiver),
    /// `AUTH PLAIN` sent without an initial response; the next line is base64.
    AuthPlain,
    /// `AUTH LOGIN`: the next line is the base64 user name.
    AuthLoginUser,
    /// `AUTH LOGIN`: the next line is the base64 password for this user.
    AuthLoginPassword(String),
}

/// The envelope of the mail transaction in progress.
#[derive(Debug)]
pub(super) struct Transaction {
    pub from: String,
    pub recipients: Vec<String>,
    /// The `SIZE=` the client declared, if any.
    pub size: Option<u64>,
    /// MAIL / RCPT lines whose path only the lenient syntax accepted, as received.
    pub lenient_lines: Vec<String>,
}

/// The protocol state of one connection.
#[derive(Debug)]
pub struct Session {
    pub(super) settings: Arc<Settings>,
    pub(super) state: State,
    pub(super) connection: u64,
    pub(super) faults: ConnectionFaults,
    pub(super) shutdown: CancellationToken,
    pub(super) phase: Phase,
    /// EHLO or HELO was accepted.
    pub(super) greeted: bool,
    pub(super) tx: Option<Transaction>,
    pub(super) auth_user: Option<String>,
    pub(super) tls: bool,
    /// An over-long line is being discarded up to its end.
    skipping_long_line: bool,
    /// A fault replaced the greeting with a refusal: RFC 5321 3.1 then allows only QUIT.
    no_service: bool,
    /// Commands refused with a 5xx so far (see `Limits::max_errors`).
    errors: usize,
    /// What the DATA transfer in progress holds of the server's in-flight budget.
    pub(super) inflight: Option<Held>,
    /// This session's transcript (none when transcripts are off).
    pub(super) recorder: Option<Recorder>,
    /// The message the last end of DATA stored, if it stored one.
    last_stored: Option<u64>,
    /// A reply-shape fault fired in this step: how to reshape the reply (`shape.rs`).
    pub(super) shape: Option<Action>,
    /// Where in `out` a reply to trickle starts, and at how many bytes a second; taken by
    /// the connection, which writes it (`slow=BYTES/s`).
    pub(super) slow: Option<super::shape::Slow>,
    /// Replies not yet written to the socket.
    pub out: Vec<u8>,
}

impl Session {
    pub fn new(
        settings: Arc<Settings>,
        state: State,
        connection: u64,
        tls: bool,
        shutdown: CancellationToken,
    ) -> Self {
        let faults = state.faults().connection(connection);
        Session {
            settings,
            state,
            connection,
            faults,
            shutdown,
            phase: Phase::Command,
            greeted: false,
            tx: None,
            auth_user: None,
            tls,
            skipping_long_line: false,
            no_service: false,
            errors: 0,
            inflight: None,
            recorder: None,
            last_stored: None,
            shape: None,
            slow: None,
            out: Vec::with_capacity(1024),
        }
    }

    /// The `connect` stage: a fault may replace or delay the greeting.
    pub async fn greet(&mut self) -> Flow {
        let before = self.out.len();
        let flow = match self.fault(Stage::Connect, FaultContext::default()).await {
            Some(flow) => {
                self.no_service = flow == Flow::Continue;
                flow
            }
            None => {
                self.out.extend_from_slice(&self.settings.greeting);
                Flow::Continue
            }
        };
        let flow = self.reshape(before, flow);
        self.record_replies_since(before);
        flow
    }

    /// After a TLS handshake that followed STARTTLS: forget everything (RFC 3207 4.2).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.greeted = false;
        self.tx = None;
        self.auth_user = None;
        self.phase = Phase::Command;
        self.skipping_long_line = false;
    }

    /// The client's address, for greylisting and per-client rate triggers.
    pub fn with_peer(mut self, peer: std::net::IpAddr) -> Self {
        self.faults.set_peer(peer);
        self
    }

    /// The TLS handshake after STARTTLS failed; the session ends.
    pub fn tls_failed(&mut self) {
        self.record_note(|| "TLS handshake after STARTTLS failed".to_owned());
        self.record_outcome(Outcome::TlsFailed);
    }

    /// Appends a shutdown notice (the server is stopping).
    pub fn shutting_down(&mut self) {
        self.notice(Outcome::Shutdown, b"421 4.3.0 shutting down\r\n");
    }

    /// Appends the idle-timeout notice.
    pub fn idle_timeout(&mut self) {
        self.notice(
            Outcome::IdleTimeout,
            b"421 4.4.2 idle timeout, closing connection\r\n",
        );
    }

    /// A reply the server sends on its own before closing, and why the session ends.
    fn notice(&mut self, outcome: Outcome, reply: &'static [u8]) {
        let before = self.out.len();
        reply::push_static(&mut self.out, reply);
        self.record_replies_since(before);
        self.record_outcome(outcome);
    }

    /// Appends the notice that the session reached `max_session_time`.
    pub fn session_time_up(&mut self) {
        self.notice(
            Outcome::Limit("session time".into()),
            b"421 4.4.2 session time limit reached, closing connection\r\n",
        );
    }

    /// Handles the next complete unit in `buf`; `None` when more input is needed. What the
    /// unit was and what it got go to the transcript.
    pub async fn step(&mut self, buf: &mut BytesMut) -> Option<Flow> {
        let before = self.out.len();
        let flow = self.step_unit(buf).await;
        let flow = flow.map(|flow| self.reshape(before, flow));
        self.record_replies_since(before);
        flow
    }

    async fn step_unit(&mut self, buf: &mut BytesMut) -> Option<Flow> {
        if let Phase::Data(receiver) = &mut self.phase {
            if buf.is_empty() {
                return None;
            }
            let fed = receiver.feed(buf);
            buf.advance(fed.consumed);
            if let Some(held) = &mut self.inflight
                && !held.grow_to(receiver.allocated())
            {
                receiver.discard();
                self.inflight = None;
            }
            if receiver.saw_bare_lf() && self.settings.bare_lf == BareLf::Reject {
                let size = receiver.size();
                self.record_data(size, None);
                self.tx = None;
                return Some(self.refuse_bare_lf());
            }
            if !fed.done {
                return None;
            }
            let Phase::Data(receiver) = std::mem::replace(&mut self.phase, Phase::Command) else {
                return Some(Flow::Continue);
            };
            return Some(self.finish_data(receiver).await);
        }
        let max_line = self.settings.limits.max_line_length;
        let Some(newline) = memchr::memchr(b'\n', buf) else {
            if buf.len() >= max_line {
                // No CRLF within the limit: discard and keep discarding up to the next CRLF.
                buf.clear();
                self.skipping_long_line = true;
            }
            return None;
        };
        let line: Bytes = buf.split_to(newline + 1).freeze();
        if self.skipping_long_line || line.len() > max_line {
            self.record_note(|| format!("a command line over {max_line} bytes, discarded"));
            self.skipping_long_line = false;
            Stats::bump(&self.state.stats().commands);
            // RFC 5321 4.5.3.1.4: a line past the limit is a 500; 5.5.2 (syntax error) as Postfix sends.
            self.error(500, "5.5.2", "line too long");
            self.phase = Phase::Command;
            return Some(self.within_error_limit(Flow::Continue));
        }
        let mut text = &line[..newline];
        match text {
            [rest @ .., b'\r'] => text = rest,
            _ if self.settings.bare_lf == BareLf::Reject => {
                self.record_client(text);
                return Some(self.refuse_bare_lf());
            }
            _ => {}
        }
        self.record_client(text);
        let before = self.out.len();
        let stage = match self.phase {
            Phase::Command => super::recording::refusable_stage(text),
            _ => None,
        };
        let flow = self.handle_line(text).await;
        if let Some(stage) = stage {
            let ended = flow != Flow::Continue && flow != Flow::StartTls;
            self.record_refusal_if_any(stage, text, &self.out[before..], ended);
        }
        Some(self.within_error_limit(flow))
    }

    async fn handle_line(&mut self, line: &[u8]) -> Flow {
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Command | Phase::Data(_) => {}
            Phase::AuthPlain => return self.auth_plain_response(line),
            Phase::AuthLoginUser => return self.auth_login_user(line),
            Phase::AuthLoginPassword(user) => return self.auth_login_password(user, line),
        }
        Stats::bump(&self.state.stats().commands);
        match parse::parse(line, self.state.path_syntax()) {
            Ok(command) if self.no_service && command != parse::Command::Quit => {
                self.error(503, "5.5.1", "no SMTP service here, only QUIT");
                Flow::Continue
            }
            Ok(command) => self.dispatch(command, line).await,
            Err(ParseError::UnknownVerb) => {
                self.error(500, "5.5.1", "command not recognized");
                Flow::Continue
            }
            Err(ParseError::Syntax(why)) => {
                self.error(501, "5.5.4", why);
                Flow::Continue
            }
            Err(ParseError::BadSender(why)) => {
                self.error(501, "5.1.7", why);
                Flow::Continue
            }
            Err(ParseError::BadRecipient(why)) => {
                self.error(501, "5.1.3", why);
                Flow::Continue
            }
            Err(ParseError::UnknownParam) => {
                self.error(555, "5.5.4", "parameter not recognized");
                Flow::Continue
            }
        }
    }

    /// A line whose path only the lenient syntax accepted, as text to keep with the message
    /// (valid UTF-8 as it is, anything else escaped).
    pub(super) fn received_as(&self, line: &[u8]) -> String {
        let text = match std::str::from_utf8(line) {
            Ok(text) => text.to_owned(),
            Err(_) => line.escape_ascii().to_string(),
        };
        tracing::debug!(connection = self.connection, line = %text, "path read leniently");
        text
    }

    /// `--bare-lf reject`: the reply Postfix's `smtpd_forbid_bare_newline` gives, then close.
    fn refuse_bare_lf(&mut self) -> Flow {
        self.record_outcome(Outcome::Limit("bare LF".into()));
        self.error(
            521,
            "5.5.2",
            "bare LF received, lines must end with CRLF; closing",
        );
        Flow::Close
    }

    /// Appends a 5xx refusal of the client's command (syntax, sequence, policy, failed
    /// AUTH) and counts it, for the session's error limit and the stats.
    pub(super) fn error(&mut self, code: u16, enhanced: &str, text: &str) {
        Stats::bump(&self.state.stats().command_errors);
        self.errors += 1;
        reply::push(&mut self.out, code, enhanced, text);
    }

    /// Past `max_errors` refused commands the session ends with 421 (RFC 5321 4.2.2 allows
    /// it at any time): brute-forcing AUTH or flooding garbage gets nowhere.
    fn within_error_limit(&mut self, flow: Flow) -> Flow {
        if flow != Flow::Continue || self.errors <= self.settings.limits.max_errors {
            return flow;
        }
        Stats::bump(&self.state.stats().error_limit_closes);
        self.record_outcome(Outcome::Limit("errors".into()));
        reply::push_static(
            &mut self.out,
            b"421 4.7.0 too many errors, closing connection\r\n",
        );
        Flow::Close
    }

    /// Asks the fault plan about `stage` and carries out what does not end in storing:
    /// `None` means "carry on normally" (no fault, or a delay that has passed);
    /// `Some(flow)` means the command is not executed and the flow says what comes next.
    pub(super) async fn fault(&mut self, stage: Stage, ctx: FaultContext<'_>) -> Option<Flow> {
        let decision = self.state.faults().decide(&mut self.faults, stage, &ctx)?;
        self.apply(decision).await
    }

    /// Carries out a fault that fired (see [`Session::fault`]) and notes it in the transcript.
    pub(super) async fn apply(&mut self, decision: Decision) -> Option<Flow> {
        let action = decision.action.clone();
        tracing::debug!(connection = self.connection, ?action, "fault");
        self.record_fault(&decision);
        if matches!(
            action,
            Action::Close
                | Action::AcceptClose
                | Action::Reset
                | Action::Reply421
                | Action::Hang
                | Action::Abort
                | Action::Truncate
                | Action::Garbage
        ) {
            self.record_outcome(Outcome::ServerFault(decision.rule.action.clone()));
        }
        match action {
            Action::Close | Action::AcceptClose => Some(Flow::Close),
            Action::Reset => Some(Flow::Reset),
            Action::Reply421 => {
                reply::push_static(
                    &mut self.out,
                    b"421 4.3.0 service not available, closing connection\r\n",
                );
                Some(Flow::Close)
            }
            Action::Reply(code) => {
                reply::push_fault(&mut self.out, code);
                Some(Flow::Continue)
            }
            Action::Delay(duration) => {
                tokio::select! {
                    _ = tokio::time::sleep(duration) => {}
                    _ = self.shutdown.cancelled() => {}
                }
                None
            }
            Action::Hang => Some(Flow::Hang),
            // Only at STARTTLS (see `FaultRule::validate`): the client must believe the
            // handshake may start, so it sends its ClientHello.
            Action::Abort => {
                reply::push_static(&mut self.out, b"220 2.0.0 Ready to start TLS\r\n");
                Some(Flow::AbortTls)
            }
            // The command runs; `step` reshapes the reply it gets.
            Action::Truncate | Action::Garbage | Action::BareLf | Action::Slow(_) => {
                self.shape = Some(action);
                None
            }
            // RFC 6647 4.2: a greylisting refusal is a temporary 451.
            Action::Greylist(_) => {
                reply::push_static(
                    &mut self.out,
                    b"451 4.7.1 greylisted, please try again later\r\n",
                );
                Some(Flow::Continue)
            }
        }
    }

    /// The final dot was seen: refuse an oversized message, else ask the `data-end` stage,
    /// then store and answer 250 (or carry out the fault).
    async fn finish_data(&mut self, receiver: DataReceiver) -> Flow {
        let before = self.out.len();
        let size = receiver.size();
        let (from, recipients) = match &self.tx {
            Some(tx) if self.recorder.is_some() => (tx.from.clone(), tx.recipients.clone()),
            _ => Default::default(),
        };
        let flow = self.finish_data_unrecorded(receiver).await;
        let stored = self.last_stored.take().is_some();
        if !stored {
            self.record_data(size, None);
            self.record_data_refusal(&from, &recipients, size, &self.out[before..]);
        }
        flow
    }

    async fn finish_data_unrecorded(&mut self, receiver: DataReceiver) -> Flow {
        // The bytes are copied to the store below or dropped: either way no longer in flight.
        self.inflight = None;
        let Some(tx) = self.tx.take() else {
            return Flow::Continue;
        };
        if receiver.discarded() {
            Stats::bump(&self.state.stats().inflight_refusals);
            reply::push_static(
                &mut self.out,
                b"451 4.3.1 too many message bytes being received at once, try again later\r\n",
            );
            return Flow::Continue;
        }
        if receiver.too_big() {
            // RFC 1870 6.1 / RFC 5321 4.5.3.1.10: read it all, then refuse.
            reply::push_static(
                &mut self.out,
                b"552 5.3.4 message exceeds fixed maximum message size\r\n",
            );
            return Flow::Continue;
        }
        let decision = decide_for(&self.state, &mut self.faults, Stage::DataEnd, &tx);
        match decision {
            Some(decision) if decision.action == Action::AcceptClose => {
                self.record_fault(&decision);
                self.record_outcome(Outcome::ServerFault(decision.rule.action.clone()));
                self.store(tx, receiver);
                Flow::Close
            }
            Some(decision) => match self.apply(decision).await {
                Some(flow) => flow,
                None => {
                    let id = self.store(tx, receiver);
                    reply::queued(&mut self.out, id);
                    Flow::Continue
                }
            },
            None => {
                let id = self.store(tx, receiver);
                reply::queued(&mut self.out, id);
                Flow::Continue
            }
        }
    }

    fn store(&mut self, tx: Transaction, receiver: DataReceiver) -> u64 {
        let data = receiver.into_body();
        let stats = self.state.stats();
        Stats::bump(&stats.messages);
        stats
            .bytes
            .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let size = data.len();
        let (id, stored) = self.state.store().insert_stored(NewMessage {
            from: tx.from,
            recipients: tx.recipients,
            data,
            received: SystemTime::now(),
            tls: self.tls,
            auth_user: self.auth_user.clone(),
            connection: self.connection,
            lenient_lines: tx.lenient_lines,
        });
        self.last_stored = Some(id);
        if self.recorder.is_some() {
            let message_id = stored.as_ref().and_then(|m| m.message_id.as_deref());
            self.record_data(size, message_id);
            self.record_stored(id);
        }
        id
    }
}

/// Asks the fault plan about a stage that sees the whole envelope. One recipient (the
/// common case) needs no allocation for the context.
pub(super) fn decide_for(
    state: &State,
    faults: &mut ConnectionFaults,
    stage: Stage,
    tx: &Transaction,
) -> Option<crate::fault::Decision> {
    let one: [&str; 1];
    let many: Vec<&str>;
    let to: &[&str] = match tx.recipients.as_slice() {
        [only] => {
            one = [only.as_str()];
            &one
        }
        all => {
            many = all.iter().map(String::as_str).collect();
            &many
        }
    };
    let ctx = FaultContext {
        from: Some(&tx.from),
        to,
    };
    state.faults().decide(faults, stage, &ctx)
}
