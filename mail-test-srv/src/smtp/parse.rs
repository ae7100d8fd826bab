//! The SMTP command parser: one line in (without its CRLF), a [`Command`] or a [`ParseError`] out.
//!
//! No I/O and no allocation: the command borrows from the line, so the session can parse
//! every pipelined line straight out of its read buffer. A parse error becomes a 500/501/555
//! reply in the session, never a crash. Envelope paths are read by `path.rs`, strictly or
//! leniently ([`PathSyntax`]).

use super::path;
pub use super::path::PathSyntax;

/// A parsed command line. Arguments borrow from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO domain`.
    Ehlo(&'a str),
    /// `HELO domain`.
    Helo(&'a str),
    /// `MAIL FROM:<path> [params]`; `from` is empty for the null sender `<>`.
    Mail {
        from: &'a str,
        params: MailParams,
        /// Only the lenient path syntax accepted the line (see `path.rs`).
        lenient: bool,
    },
    /// `RCPT TO:<path>`.
    Rcpt {
        to: &'a str,
        /// Only the lenient path syntax accepted the line.
        lenient: bool,
    },
    Data,
    Rset,
    Noop,
    Quit,
    /// `VRFY string`: answered 252 whatever the argument.
    Vrfy,
    Help,
    StartTls,
    /// `AUTH mechanism [initial-response]`.
    Auth {
        mechanism: Mechanism,
        initial: Option<&'a [u8]>,
    },
}

/// The MAIL parameters we understand (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailParams {
    /// `SIZE=n`: the client's estimate of the message size.
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (true) or `BODY=7BIT` (false / absent).
    pub eight_bit: bool,
    pub smtputf8: bool,
}

/// SASL mechanisms offered with `AUTH PLAIN LOGIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    /// Any other name; answered 504.
    Other,
}

/// Why a line is not a command we can execute. Each maps to one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The verb is not one we know: 500 5.5.1.
    #[error("command not recognized")]
    UnknownVerb,
    /// Known verb, bad arguments: 501 5.5.4 (or 5.1.7 / 5.1.3 for addresses).
    #[error("{0}")]
    Syntax(&'static str),
    /// A malformed sender address: 501 5.1.7 (RFC 3463 "bad sender's mailbox address syntax").
    #[error("{0}")]
    BadSender(&'static str),
    /// A malformed recipient address: 501 5.1.3 (RFC 3463 "bad destination mailbox address syntax").
    #[error("{0}")]
    BadRecipient(&'static str),
    /// A MAIL/RCPT parameter we do not implement: 555 5.5.4 (RFC 5321 4.1.1.11).
    #[error("parameter not recognized")]
    UnknownParam,
}

/// Parses one command line; `line` excludes the line ending. `syntax` says how MAIL and
/// RCPT paths are read.
pub fn parse(line: &[u8], syntax: PathSyntax) -> Result<Command<'_>, ParseError> {
    let (verb, rest) = match memchr::memchr(b' ', line) {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b""[..]),
    };
    if verb.len() > 8 {
        return Err(ParseError::UnknownVerb);
    }
    let mut upper = [0u8; 8];
    upper[..verb.len()].copy_from_slice(verb);
    upper.make_ascii_uppercase();
    let rest = trim(rest);
    match &upper[..verb.len()] {
        b"EHLO" => Ok(Command::Ehlo(domain(rest)?)),
        b"HELO" => Ok(Command::Helo(domain(rest)?)),
        b"MAIL" => parse_mail(rest, syntax),
        b"RCPT" => parse_rcpt(rest, syntax),
        b"DATA" => no_args(rest, Command::Data),
        b"RSET" => no_args(rest, Command::Rset),
        // RFC 5321 4.1.1.9: NOOP may carry a string, which is ignored.
        b"NOOP" => Ok(Command::Noop),
        b"QUIT" => no_args(rest, Command::Quit),
        b"VRFY" if rest.is_empty() => Err(ParseError::Syntax("VRFY needs an argument")),
        b"VRFY" => Ok(Command::Vrfy),
        b"HELP" => Ok(Command::Help),
        b"STARTTLS" => no_args(rest, Command::StartTls),
        b"AUTH" => parse_auth(rest),
        _ => Err(ParseError::UnknownVerb),
    }
}

fn no_args(rest: &[u8], command: Command<'static>) -> Result<Command<'static>, ParseError> {
    if rest.is_empty() {
        Ok(command)
    } else {
        Err(ParseError::Syntax("no arguments allowed"))
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn domain(rest: &[u8]) -> Result<&str, ParseError> {
    if rest.is_empty() {
        return Err(ParseError::Syntax(
            "a domain or address literal is required",
        ));
    }
    // Only the first word counts; some clients append extra text.
    let word = match memchr::memchr(b' ', rest) {
        Some(i) => &rest[..i],
        None => rest,
    };
    std::str::from_utf8(word).map_err(|_| ParseError::Syntax("domain is not valid UTF-8"))
}

/// Strips a case-insensitive `prefix` such as `FROM:`; tolerates a space after the colon,
/// which many clients send although RFC 5321 does not allow it.
fn strip_keyword<'a>(rest: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if rest.len() < prefix.len() || !rest[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    Some(rest[prefix.len()..].trim_ascii_start())
}

fn mailbox_ok(addr: &str) -> bool {
    match addr.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty(),
        None => false,
    }
}

fn parse_mail(rest: &[u8], syntax: PathSyntax) -> Result<Command<'_>, ParseError> {
    let rest =
        strip_keyword(rest, b"FROM:").ok_or(ParseError::Syntax("syntax: MAIL FROM:<address>"))?;
    let path = path::read(rest, syntax).map_err(ParseError::BadSender)?;
    let (from, params_text) = (path.addr, path.params);
    if !from.is_empty() && !mailbox_ok(from) {
        return Err(ParseError::BadSender("bad sender address syntax"));
    }
    let mut params = MailParams::default();
    for param in params_text.split(|&b| b == b' ').filter(|p| !p.is_empty()) {
        let (key, value) = match memchr::memchr(b'=', param) {
            Some(i) => (&param[..i], Some(&param[i + 1..])),
            None => (param, None),
        };
        if key.eq_ignore_ascii_case(b"SIZE") {
            let value = value.ok_or(ParseError::Syntax("SIZE needs a value"))?;
            let text =
                std::str::from_utf8(value).map_err(|_| ParseError::Syntax("bad SIZE value"))?;
            params.size = Some(
                text.parse()
                    .map_err(|_| ParseError::Syntax("bad SIZE value"))?,
            );
        } else if key.eq_ignore_ascii_case(b"BODY") {
            match value {
                Some(v) if v.eq_ignore_ascii_case(b"8BITMIME") => params.eight_bit = true,
                Some(v) if v.eq_ignore_ascii_case(b"7BIT") => params.eight_bit = false,
                _ => return Err(ParseError::Syntax("BODY must be 7BIT or 8BITMIME")),
            }
        } else if key.eq_ignore_ascii_case(b"SMTPUTF8") && value.is_none() {
            params.smtputf8 = true;
        } else if key.eq_ignore_ascii_case(b"AUTH") && value.is_some() {
            // RFC 4954 5: the AUTH= parameter may be ignored by a server that does not relay.
        } else {
            return Err(ParseError::UnknownParam);
        }
    }
    Ok(Command::Mail {
        from,
        params,
        lenient: path.lenient,
    })
}

fn parse_rcpt(rest: &[u8], syntax: PathSyntax) -> Result<Command<'_>, ParseError> {
    let rest =
        strip_keyword(rest, b"TO:").ok_or(ParseError::Syntax("syntax: RCPT TO:<address>"))?;
    let path = path::read(rest, syntax).map_err(ParseError::BadRecipient)?;
    let to = path.addr;
    // RFC 5321 4.5.1: `<postmaster>` without a domain must be accepted.
    if !mailbox_ok(to) && !to.eq_ignore_ascii_case("postmaster") {
        return Err(ParseError::BadRecipient("bad recipient address syntax"));
    }
    if !path.params.is_empty() {
        return Err(ParseError::UnknownParam);
    }
    Ok(Command::Rcpt {
        to,
        lenient: path.lenient,
    })
}

fn parse_auth(rest: &[u8]) -> Result<Command<'_>, ParseError> {
    if rest.is_empty() {
        return Err(ParseError::Syntax("AUTH needs a mechanism"));
    }
    let (name, initial) = match memchr::memchr(b' ', rest) {
        Some(i) => (&rest[..i], Some(trim(&rest[i + 1..]))),
        None => (rest, None),
    };
    let mechanism = if name.eq_ignore_ascii_case(b"PLAIN") {
        Mechanism::Plain
    } else if name.eq_ignore_ascii_case(b"LOGIN") {
        Mechanism::Login
    } else {
        Mechanism::Other
    };
    Ok(Command::Auth { mechanism, initial })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            parse(b"ehlo client.example", PathSyntax::Lenient),
            Ok(Command::Ehlo("client.example"))
        );
        assert_eq!(
            parse(b"HeLo x", PathSyntax::Lenient),
            Ok(Command::Helo("x"))
        );
        assert_eq!(parse(b"quit", PathSyntax::Lenient), Ok(Command::Quit));
        assert_eq!(
            parse(b"StartTLS", PathSyntax::Lenient),
            Ok(Command::StartTls)
        );
    }

    /// What a client would see for `line`: the accepted address (prefixed `~` when only the
    /// lenient syntax took it), or the reply code and enhanced code of the refusal.
    fn outcome(line: &[u8], syntax: PathSyntax) -> String {
        match parse(line, syntax) {
            Ok(Command::Mail { from, lenient, .. }) => format!("{}{from}", mark(lenient)),
            Ok(Command::Rcpt { to, lenient }) => format!("{}{to}", mark(lenient)),
            Ok(other) => panic!("not MAIL or RCPT: {other:?}"),
            Err(ParseError::BadSender(_)) => "501 5.1.7".to_owned(),
            Err(ParseError::BadRecipient(_)) => "501 5.1.3".to_owned(),
            Err(ParseError::Syntax(_)) => "501 5.5.4".to_owned(),
            Err(ParseError::UnknownParam) => "555 5.5.4".to_owned(),
            Err(ParseError::UnknownVerb) => "500 5.5.1".to_owned(),
        }
    }

    fn mark(lenient: bool) -> &'static str {
        if lenient { "~" } else { "" }
    }

    /// Real-world MAIL and RCPT spellings: (line, default lenient outcome, `--strict` outcome).
    const SPELLINGS: &[(&str, &str, &str)] = &[
        (
            "MAIL FROM:<a@example.com>",
            "a@example.com",
            "a@example.com",
        ),
        (
            "mail from:<a@example.com>",
            "a@example.com",
            "a@example.com",
        ),
        // Space after the colon: not RFC 5321, but sent by common clients; Postfix takes it.
        (
            "MAIL FROM: <a@example.com>",
            "a@example.com",
            "a@example.com",
        ),
        ("MAIL FROM:<>", "", ""),
        ("MAIL FROM:<> SIZE=100", "", ""),
        (
            "MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8",
            "a@example.com",
            "a@example.com",
        ),
        (
            "MAIL FROM:<a@example.com> SIZE=1234 BODY=7BIT",
            "a@example.com",
            "a@example.com",
        ),
        (
            "MAIL FROM:<a@example.com> AUTH=<>",
            "a@example.com",
            "a@example.com",
        ),
        (
            "MAIL FROM:<@r1.example,@r2.example:a@example.com>",
            "a@example.com",
            "a@example.com",
        ),
        (
            "MAIL FROM:<\"john doe\"@example.com>",
            "\"john doe\"@example.com",
            "\"john doe\"@example.com",
        ),
        (
            "MAIL FROM:<\"a\\\"b\"@example.com>",
            "\"a\\\"b\"@example.com",
            "\"a\\\"b\"@example.com",
        ),
        // A `>` in a quoted local part does not end the path, but no address holds one.
        ("MAIL FROM:<\"a>b\"@example.com>", "501 5.1.7", "501 5.1.7"),
        (
            "MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8",
            "δοκιμή@παράδειγμα.δοκιμή",
            "δοκιμή@παράδειγμα.δοκιμή",
        ),
        // Go's net/smtp `Client.Mail(addr.String())`, as the original mailer calls it.
        (
            "MAIL FROM:<<bot@example.com>> BODY=8BITMIME SMTPUTF8",
            "~bot@example.com",
            "501 5.1.7",
        ),
        (
            "MAIL FROM:<\"Expiry bot\" <test@example.com>> BODY=8BITMIME SMTPUTF8",
            "~test@example.com",
            "501 5.1.7",
        ),
        (
            "MAIL FROM:<Expiry bot <test@example.com>>",
            "~test@example.com",
            "501 5.1.7",
        ),
        ("MAIL FROM:a@example.com", "~a@example.com", "501 5.1.7"),
        (
            "MAIL FROM:\"Bot\" <bot@example.com> SIZE=10",
            "~bot@example.com",
            "501 5.1.7",
        ),
        ("MAIL FROM:< a@example.com >", "~a@example.com", "501 5.1.7"),
        ("MAIL FROM:<a@example.com", "501 5.1.7", "501 5.1.7"),
        ("MAIL FROM:<a@example.com>junk", "501 5.1.7", "501 5.1.7"),
        // curl's `--mail-from '"Curl Bot" <curl@example.com>'` (one `>` stripped).
        (
            "MAIL FROM:<\"Curl Bot\" <curl@example.com> SIZE=77",
            "~curl@example.com",
            "501 5.1.7",
        ),
        ("MAIL FROM:<<a@example.com>", "~a@example.com", "501 5.1.7"),
        (
            "MAIL FROM:<\"Name\" <a@example.com",
            "501 5.1.7",
            "501 5.1.7",
        ),
        ("MAIL FROM:<nodomain>", "501 5.1.7", "501 5.1.7"),
        (
            "MAIL FROM:<a@example.com> RET=FULL",
            "555 5.5.4",
            "555 5.5.4",
        ),
        ("MAIL FROM:<a@example.com> SIZE=x", "501 5.5.4", "501 5.5.4"),
        ("MAIL TO:<a@example.com>", "501 5.5.4", "501 5.5.4"),
        ("MAIL", "501 5.5.4", "501 5.5.4"),
        ("RCPT TO:<x@example.com>", "x@example.com", "x@example.com"),
        ("rcpt to: <x@example.com>", "x@example.com", "x@example.com"),
        ("RCPT TO:<Postmaster>", "Postmaster", "Postmaster"),
        ("RCPT TO:<<x@example.com>>", "~x@example.com", "501 5.1.3"),
        (
            "RCPT TO:<\"X Y\" <x@example.com>>",
            "~x@example.com",
            "501 5.1.3",
        ),
        ("RCPT TO:x@example.com", "~x@example.com", "501 5.1.3"),
        ("RCPT TO:<>", "501 5.1.3", "501 5.1.3"),
        (
            "RCPT TO:<x@example.com> NOTIFY=NEVER",
            "555 5.5.4",
            "555 5.5.4",
        ),
        ("RCPT TO:<x\x01@example.com>", "501 5.1.3", "501 5.1.3"),
        (
            "RCPT TO:<\"unterminated@example.com>",
            "501 5.1.3",
            "501 5.1.3",
        ),
        ("RCPT FROM:<x@example.com>", "501 5.5.4", "501 5.5.4"),
    ];

    #[test]
    fn real_world_mail_and_rcpt_spellings() {
        assert!(SPELLINGS.len() >= 20);
        for &(line, lenient, strict) in SPELLINGS {
            let line = line.as_bytes();
            let shown = String::from_utf8_lossy(line);
            assert_eq!(
                outcome(line, PathSyntax::Lenient),
                lenient,
                "lenient: {shown}"
            );
            assert_eq!(outcome(line, PathSyntax::Strict), strict, "strict: {shown}");
        }
    }

    #[test]
    fn paths_longer_than_256_octets_are_refused() {
        let local = |n: usize| "l".repeat(n - "<@example.com>".len());
        for syntax in [PathSyntax::Lenient, PathSyntax::Strict] {
            let fits = format!("MAIL FROM:<{}@example.com>", local(256));
            assert!(matches!(
                parse(fits.as_bytes(), syntax),
                Ok(Command::Mail { .. })
            ));
            let long = format!("MAIL FROM:<{}@example.com>", local(257));
            assert!(matches!(
                parse(long.as_bytes(), syntax),
                Err(ParseError::BadSender(why)) if why.contains("too long")
            ));
            let long = format!("RCPT TO:<\"x\" <{}@example.com>>", local(257));
            assert!(matches!(
                parse(long.as_bytes(), syntax),
                Err(ParseError::BadRecipient(_))
            ));
        }
    }

    #[test]
    fn mail_params_are_read_after_a_nested_path() {
        assert_eq!(
            parse(
                b"MAIL FROM:<\"Expiry bot\" <test@example.com>> BODY=8BITMIME SIZE=99 SMTPUTF8",
                PathSyntax::Lenient
            ),
            Ok(Command::Mail {
                from: "test@example.com",
                params: MailParams {
                    size: Some(99),
                    eight_bit: true,
                    smtputf8: true
                },
                lenient: true,
            })
        );
    }

    #[test]
    fn non_utf8_addresses_are_refused() {
        for syntax in [PathSyntax::Lenient, PathSyntax::Strict] {
            assert!(matches!(
                parse(b"MAIL FROM:<a\xff@b>", syntax),
                Err(ParseError::BadSender(_))
            ));
        }
    }
    #[test]
    fn auth() {
        assert_eq!(
            parse(b"AUTH PLAIN AGEAYg==", PathSyntax::Lenient),
            Ok(Command::Auth {
                mechanism: Mechanism::Plain,
                initial: Some(b"AGEAYg==")
            })
        );
        assert_eq!(
            parse(b"auth login", PathSyntax::Lenient),
            Ok(Command::Auth {
                mechanism: Mechanism::Login,
                initial: None
            })
        );
        assert_eq!(
            parse(b"AUTH CRAM-MD5", PathSyntax::Lenient),
            Ok(Command::Auth {
                mechanism: Mechanism::Other,
                initial: None
            })
        );
        assert!(matches!(
            parse(b"AUTH", PathSyntax::Lenient),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn arguments_where_none_belong() {
        assert!(matches!(
            parse(b"DATA now", PathSyntax::Lenient),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"EHLO", PathSyntax::Lenient),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"VRFY", PathSyntax::Lenient),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(
            parse(b"NOOP whatever", PathSyntax::Lenient),
            Ok(Command::Noop)
        );
        assert_eq!(parse(b"RSET ", PathSyntax::Lenient), Ok(Command::Rset));
    }

    #[test]
    fn unknown_and_garbage() {
        assert_eq!(
            parse(b"", PathSyntax::Lenient),
            Err(ParseError::UnknownVerb)
        );
        assert_eq!(
            parse(b"FOO bar", PathSyntax::Lenient),
            Err(ParseError::UnknownVerb)
        );
        assert_eq!(
            parse(b"\xff\xfe\x00", PathSyntax::Lenient),
            Err(ParseError::UnknownVerb)
        );
        assert_eq!(
            parse(b"VERYLONGVERB", PathSyntax::Lenient),
            Err(ParseError::UnknownVerb)
        );
    }
}
