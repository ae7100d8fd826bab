//! One handler per SMTP verb. Each checks syntax-independent sequence rules first (503),
//! then policy (530, 552, 452), then asks the fault plan, then executes and replies.
//!
//! Faults come after the protocol checks so a broken client still gets the careful answer,
//! and an injected fault always hits a command the server would otherwise have accepted.

use super::data::DataReceiver;
use super::parse::{Command, MailParams, Mechanism};
use super::reply::{push, push_static};
use super::session::{Flow, Phase, Session, Transaction, decide_for};
use crate::config::{AuthMode, TlsMode};
use crate::fault::{FaultContext, Stage};
use crate::stats::Stats;
use crate::transcript::Outcome;

impl Session {
    /// Runs `command`; `line` is the line it was parsed from, kept when a path was read
    /// leniently.
    pub(super) async fn dispatch(&mut self, command: Command<'_>, line: &[u8]) -> Flow {
        match command {
            Command::Ehlo(name) => self.handle_ehlo(name, true).await,
            Command::Helo(name) => self.handle_ehlo(name, false).await,
            Command::Mail {
                from,
                params,
                lenient,
            } => {
                self.handle_mail(from, params, lenient.then_some(line))
                    .await
            }
            Command::Rcpt { to, lenient } => self.handle_rcpt(to, lenient.then_some(line)).await,
            Command::Data => self.handle_data().await,
            Command::Rset => {
                self.tx = None;
                push_static(&mut self.out, b"250 2.0.0 Ok\r\n");
                Flow::Continue
            }
            Command::Noop => {
                push_static(&mut self.out, b"250 2.0.0 Ok\r\n");
                Flow::Continue
            }
            Command::Quit => self.handle_quit().await,
            // RFC 5321 3.5.3: 252 when the server will not verify but will accept mail.
            Command::Vrfy => {
                push_static(
                    &mut self.out,
                    b"252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n",
                );
                Flow::Continue
            }
            Command::Help => {
                push_static(
                    &mut self.out,
                    b"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH\r\n",
                );
                Flow::Continue
            }
            Command::StartTls => self.handle_starttls().await,
            Command::Auth { mechanism, initial } => self.handle_auth(mechanism, initial).await,
        }
    }

    async fn handle_ehlo(&mut self, name: &str, extended: bool) -> Flow {
        if let Some(flow) = self.fault(Stage::Ehlo, FaultContext::default()).await {
            return flow;
        }
        // RFC 5321 4.1.4: EHLO/HELO in a session resets any transaction.
        self.tx = None;
        self.greeted = true;
        self.record_helo(name);
        if extended {
            let lines = if self.tls {
                &self.settings.ehlo_tls
            } else {
                &self.settings.ehlo_plain
            };
            self.out.extend_from_slice(lines);
        } else {
            push(&mut self.out, 250, "2.0.0", &self.settings.hostname.clone());
        }
        Flow::Continue
    }

    /// Answers `530` when the session must be under TLS first (`--require-tls`, STARTTLS
    /// mode) and says whether it did.
    fn refused_before_tls(&mut self) -> bool {
        let refused =
            self.settings.require_tls && !self.tls && self.settings.tls_mode != TlsMode::None;
        if refused {
            push(
                &mut self.out,
                530,
                "5.7.0",
                "must issue a STARTTLS command first",
            );
        }
        refused
    }

    /// `lenient_line`: the line as received, when only the lenient path syntax accepted it.
    async fn handle_mail(
        &mut self,
        from: &str,
        params: MailParams,
        lenient_line: Option<&[u8]>,
    ) -> Flow {
        if !self.greeted {
            self.error(503, "5.5.1", "send EHLO or HELO first");
            return Flow::Continue;
        }
        if self.refused_before_tls() {
            return Flow::Continue;
        }
        if matches!(self.settings.auth, AuthMode::Required { .. }) && self.auth_user.is_none() {
            self.error(530, "5.7.0", "authentication required");
            return Flow::Continue;
        }
        if self.tx.is_some() {
            self.error(503, "5.5.1", "nested MAIL command");
            return Flow::Continue;
        }
        if params
            .size
            .is_some_and(|size| size > self.settings.limits.max_message_size as u64)
        {
            // RFC 1870 6.1: a declared size over the fixed maximum is a 552.
            push(
                &mut self.out,
                552,
                "5.3.4",
                "message size exceeds fixed maximum message size",
            );
            return Flow::Continue;
        }
        let ctx = FaultContext {
            from: Some(from),
            to: &[],
        };
        if let Some(flow) = self.fault(Stage::Mail, ctx).await {
            return flow;
        }
        self.tx = Some(Transaction {
            from: from.to_owned(),
            recipients: Vec::new(),
            size: params.size,
            lenient_lines: lenient_line
                .map(|line| self.received_as(line))
                .into_iter()
                .collect(),
        });
        push_static(&mut self.out, b"250 2.1.0 Ok\r\n");
        Flow::Continue
    }

    async fn handle_rcpt(&mut self, to: &str, lenient_line: Option<&[u8]>) -> Flow {
        let Some(tx) = &self.tx else {
            self.error(503, "5.5.1", "need MAIL before RCPT");
            return Flow::Continue;
        };
        if tx.recipients.len() >= self.settings.limits.max_recipients {
            // RFC 5321 4.5.3.1.10: 452 for too many recipients; the client may retry the rest.
            push(&mut self.out, 452, "4.5.3", "too many recipients");
            return Flow::Continue;
        }
        let decision = {
            let from = self.tx.as_ref().map(|t| t.from.as_str());
            let ctx = FaultContext { from, to: &[to] };
            self.state
                .faults()
                .decide(&mut self.faults, Stage::Rcpt, &ctx)
        };
        if let Some(decision) = decision
            && let Some(flow) = self.apply(decision).await
        {
            return flow;
        }
        let kept = lenient_line.map(|line| self.received_as(line));
        if let Some(tx) = &mut self.tx {
            tx.recipients.push(to.to_owned());
            tx.lenient_lines.extend(kept);
        }
        push_static(&mut self.out, b"250 2.1.5 Ok\r\n");
        Flow::Continue
    }

    async fn handle_data(&mut self) -> Flow {
        let Some(tx) = &self.tx else {
            self.error(503, "5.5.1", "need MAIL command");
            return Flow::Continue;
        };
        if tx.recipients.is_empty() {
            self.error(503, "5.5.1", "need RCPT command");
            return Flow::Continue;
        }
        let expected = tx.size;
        let decision = decide_for(&self.state, &mut self.faults, Stage::Data, tx);
        if let Some(decision) = decision
            && let Some(flow) = self.apply(decision).await
        {
            return flow;
        }
        let receiver = DataReceiver::new(self.settings.limits.max_message_size, expected);
        let Some(held) = self.state.inflight().start(receiver.allocated()) else {
            // RFC 5321 4.5.3.1.10: insufficient system storage, a transient refusal.
            Stats::bump(&self.state.stats().inflight_refusals);
            push(
                &mut self.out,
                452,
                "4.3.1",
                "too many message bytes being received at once, try again later",
            );
            return Flow::Continue;
        };
        self.inflight = Some(held);
        self.phase = Phase::Data(receiver);
        push_static(&mut self.out, b"354 End data with <CR><LF>.<CR><LF>\r\n");
        Flow::Continue
    }

    async fn handle_quit(&mut self) -> Flow {
        let decision = {
            let from = self.tx.as_ref().map(|t| t.from.as_str());
            let ctx = FaultContext { from, to: &[] };
            self.state
                .faults()
                .decide(&mut self.faults, Stage::Quit, &ctx)
        };
        if let Some(decision) = decision
            && let Some(flow) = self.apply(decision).await
        {
            return flow;
        }
        push_static(&mut self.out, b"221 2.0.0 Bye\r\n");
        self.record_outcome(Outcome::ClientQuit);
        Flow::Close
    }

    async fn handle_starttls(&mut self) -> Flow {
        if self.settings.tls_mode != TlsMode::StartTls || self.settings.acceptor.is_none() {
            self.error(502, "5.5.1", "STARTTLS not available");
            return Flow::Continue;
        }
        if self.tls {
            self.error(503, "5.5.1", "already under TLS");
            return Flow::Continue;
        }
        if let Some(flow) = self.fault(Stage::StartTls, FaultContext::default()).await {
            return flow;
        }
        push_static(&mut self.out, b"220 2.0.0 Ready to start TLS\r\n");
        Flow::StartTls
    }

    async fn handle_auth(&mut self, mechanism: Mechanism, initial: Option<&[u8]>) -> Flow {
        if self.settings.auth == AuthMode::Off {
            self.error(502, "5.5.1", "AUTH not available");
            return Flow::Continue;
        }
        if !self.greeted {
            self.error(503, "5.5.1", "send EHLO first");
            return Flow::Continue;
        }
        if self.refused_before_tls() {
            return Flow::Continue;
        }
        if self.auth_user.is_some() {
            self.error(503, "5.5.1", "already authenticated");
            return Flow::Continue;
        }
        if self.tx.is_some() {
            // RFC 4954 4: AUTH is not permitted during a mail transaction.
            self.error(503, "5.5.1", "AUTH not allowed during a mail transaction");
            return Flow::Continue;
        }
        if let Some(flow) = self.fault(Stage::Auth, FaultContext::default()).await {
            return flow;
        }
        match mechanism {
            Mechanism::Other => {
                push(
                    &mut self.out,
                    504,
                    "5.5.4",
                    "unrecognized authentication type",
                );
                Flow::Continue
            }
            Mechanism::Plain => match initial {
                Some(response) => self.auth_plain_response(response),
                None => {
                    self.phase = Phase::AuthPlain;
                    push_static(&mut self.out, b"334 \r\n");
                    Flow::Continue
                }
            },
            Mechanism::Login => match initial {
                Some(user) => self.auth_login_user(user),
                None => {
                    self.phase = Phase::AuthLoginUser;
                    // base64 of "Username:"
                    push_static(&mut self.out, b"334 VXNlcm5hbWU6\r\n");
                    Flow::Continue
                }
            },
        }
    }
}
