//! SASL PLAIN (RFC 4616) and LOGIN for `AUTH` (RFC 4954), checked against the AUTH mode.
//!
//! Continuation lines are raw base64, not commands; `*` cancels the exchange (501).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::reply::push_static;
use super::session::{Flow, Phase, Session};
use crate::config::AuthMode;

/// A decoded client response, or the reply that refuses it.
enum Response {
    Cancelled,
    Invalid,
    Decoded(Vec<u8>),
}

fn decode(line: &[u8]) -> Response {
    let line = line.trim_ascii();
    if line == b"*" {
        return Response::Cancelled;
    }
    // RFC 4954 4: "=" stands for an empty initial response.
    if line == b"=" {
        return Response::Decoded(Vec::new());
    }
    match STANDARD.decode(line) {
        Ok(bytes) => Response::Decoded(bytes),
        Err(_) => Response::Invalid,
    }
}

impl Session {
    /// Replies for a cancelled or undecodable response; `None` when it decoded.
    fn decoded(&mut self, line: &[u8]) -> Option<Vec<u8>> {
        match decode(line) {
            Response::Decoded(bytes) => Some(bytes),
            Response::Cancelled => {
                self.error(501, "5.7.0", "authentication cancelled");
                None
            }
            Response::Invalid => {
                self.error(501, "5.5.2", "cannot decode the response (base64)");
                None
            }
        }
    }

    /// `AUTH PLAIN` response: `authzid NUL authcid NUL password`.
    pub(super) fn auth_plain_response(&mut self, line: &[u8]) -> Flow {
        let Some(bytes) = self.decoded(line) else {
            return Flow::Continue;
        };
        let mut parts = bytes.split(|&b| b == 0);
        let (Some(_authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            self.error(501, "5.5.2", "malformed PLAIN response");
            return Flow::Continue;
        };
        self.check_credentials(user, password);
        Flow::Continue
    }

    pub(super) fn auth_login_user(&mut self, line: &[u8]) -> Flow {
        let Some(user) = self.decoded(line) else {
            return Flow::Continue;
        };
        let Ok(user) = String::from_utf8(user) else {
            self.error(501, "5.5.2", "user name is not UTF-8");
            return Flow::Continue;
        };
        self.phase = Phase::AuthLoginPassword(user);
        // base64 of "Password:"
        push_static(&mut self.out, b"334 UGFzc3dvcmQ6\r\n");
        Flow::Continue
    }

    pub(super) fn auth_login_password(&mut self, user: String, line: &[u8]) -> Flow {
        let Some(password) = self.decoded(line) else {
            return Flow::Continue;
        };
        self.check_credentials(user.as_bytes(), &password);
        Flow::Continue
    }

    fn check_credentials(&mut self, user: &[u8], password: &[u8]) {
        let accepted = match &self.settings.auth {
            AuthMode::Off => false,
            AuthMode::AcceptAny => true,
            AuthMode::Required {
                user: want_user,
                password: want_password,
            } => user == want_user.as_bytes() && password == want_password.as_bytes(),
        };
        if accepted {
            let user = String::from_utf8_lossy(user).into_owned();
            self.record_auth_user(&user);
            self.auth_user = Some(user);
            push_static(&mut self.out, b"235 2.7.0 authentication successful\r\n");
        } else {
            self.error(535, "5.7.8", "authentication credentials invalid");
        }
    }
}
