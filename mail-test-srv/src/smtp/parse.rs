//! The SMTP command parser: one line in (without its CRLF), a [`Command`] or a [`ParseError`] out.
//!
//! No I/O and no allocation: the command borrows from the line, so the session can parse
//! every pipelined line straight out of its read buffer. A parse error becomes a 500/501/555
//! reply in the session, never a crash.

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
    },
    /// `RCPT TO:<path>`.
    Rcpt {
        to: &'a str,
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

/// Parses one command line; `line` excludes the line ending.
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
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
        b"MAIL" => parse_mail(rest),
        b"RCPT" => parse_rcpt(rest),
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

/// Splits `<path> params` (or a bare `path params`) into the address and the parameter text.
fn path(rest: &[u8]) -> Result<(&str, &[u8]), ParseError> {
    let (addr, params) = if let Some(inner) = rest.strip_prefix(b"<") {
        let end = memchr::memchr(b'>', inner).ok_or(ParseError::Syntax("missing '>'"))?;
        (&inner[..end], &inner[end + 1..])
    } else {
        match memchr::memchr(b' ', rest) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, &b""[..]),
        }
    };
    if !params.is_empty() && params[0] != b' ' {
        return Err(ParseError::Syntax("junk after the address"));
    }
    // RFC 5321 4.1.2: a source route `@a,@b:user@c` is accepted and ignored.
    let addr = match addr.first() {
        Some(b'@') => match memchr::memchr(b':', addr) {
            Some(i) => &addr[i + 1..],
            None => return Err(ParseError::Syntax("bad source route")),
        },
        _ => addr,
    };
    let addr =
        std::str::from_utf8(addr).map_err(|_| ParseError::Syntax("address is not valid UTF-8"))?;
    if addr
        .bytes()
        .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == 0x7f)
    {
        return Err(ParseError::Syntax("bad character in address"));
    }
    Ok((addr, trim(params)))
}

fn mailbox_ok(addr: &str) -> bool {
    match addr.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty(),
        None => false,
    }
}

fn parse_mail(rest: &[u8]) -> Result<Command<'_>, ParseError> {
    let rest =
        strip_keyword(rest, b"FROM:").ok_or(ParseError::Syntax("syntax: MAIL FROM:<address>"))?;
    let (from, params_text) = path(rest).map_err(|e| match e {
        ParseError::Syntax(why) => ParseError::BadSender(why),
        other => other,
    })?;
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
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(rest: &[u8]) -> Result<Command<'_>, ParseError> {
    let rest =
        strip_keyword(rest, b"TO:").ok_or(ParseError::Syntax("syntax: RCPT TO:<address>"))?;
    let (to, params) = path(rest).map_err(|e| match e {
        ParseError::Syntax(why) => ParseError::BadRecipient(why),
        other => other,
    })?;
    // RFC 5321 4.5.1: `<postmaster>` without a domain must be accepted.
    if !mailbox_ok(to) && !to.eq_ignore_ascii_case("postmaster") {
        return Err(ParseError::BadRecipient("bad recipient address syntax"));
    }
    if !params.is_empty() {
        return Err(ParseError::UnknownParam);
    }
    Ok(Command::Rcpt { to })
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
            parse(b"ehlo client.example"),
            Ok(Command::Ehlo("client.example"))
        );
        assert_eq!(parse(b"HeLo x"), Ok(Command::Helo("x")));
        assert_eq!(parse(b"quit"), Ok(Command::Quit));
        assert_eq!(parse(b"StartTLS"), Ok(Command::StartTls));
    }

    #[test]
    fn mail_accepts_null_sender_and_params() {
        assert_eq!(
            parse(b"MAIL FROM:<>"),
            Ok(Command::Mail {
                from: "",
                params: MailParams::default()
            })
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@b.example> BODY=8BITMIME SIZE=1234 SMTPUTF8"),
            Ok(Command::Mail {
                from: "a@b.example",
                params: MailParams {
                    size: Some(1234),
                    eight_bit: true,
                    smtputf8: true
                }
            })
        );
        assert_eq!(
            parse(b"mail from: <a@b>"),
            Ok(Command::Mail {
                from: "a@b",
                params: MailParams::default()
            })
        );
        assert!(matches!(
            parse(b"MAIL FROM:a@b"),
            Ok(Command::Mail { from: "a@b", .. })
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<@r.example:a@b>"),
            Ok(Command::Mail { from: "a@b", .. })
        ));
    }

    #[test]
    fn mail_refuses_bad_syntax() {
        assert!(matches!(parse(b"MAIL"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse(b"MAIL TO:<a@b>"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b"),
            Err(ParseError::BadSender(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<nodomain>"),
            Err(ParseError::BadSender(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b> SIZE=x"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b>junk"),
            Err(ParseError::BadSender(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a\xff@b>"),
            Err(ParseError::BadSender(_))
        ));
        assert_eq!(
            parse(b"MAIL FROM:<a@b> RET=FULL"),
            Err(ParseError::UnknownParam)
        );
    }

    #[test]
    fn rcpt() {
        assert_eq!(parse(b"RCPT TO:<x@y>"), Ok(Command::Rcpt { to: "x@y" }));
        assert_eq!(
            parse(b"RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt { to: "Postmaster" })
        );
        assert!(matches!(
            parse(b"RCPT TO:<>"),
            Err(ParseError::BadRecipient(_))
        ));
        assert!(matches!(
            parse(b"RCPT FROM:<x@y>"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(
            parse(b"RCPT TO:<x@y> NOTIFY=NEVER"),
            Err(ParseError::UnknownParam)
        );
    }

    #[test]
    fn auth() {
        assert_eq!(
            parse(b"AUTH PLAIN AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Mechanism::Plain,
                initial: Some(b"AGEAYg==")
            })
        );
        assert_eq!(
            parse(b"auth login"),
            Ok(Command::Auth {
                mechanism: Mechanism::Login,
                initial: None
            })
        );
        assert_eq!(
            parse(b"AUTH CRAM-MD5"),
            Ok(Command::Auth {
                mechanism: Mechanism::Other,
                initial: None
            })
        );
        assert!(matches!(parse(b"AUTH"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn arguments_where_none_belong() {
        assert!(matches!(parse(b"DATA now"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"EHLO"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"VRFY"), Err(ParseError::Syntax(_))));
        assert_eq!(parse(b"NOOP whatever"), Ok(Command::Noop));
        assert_eq!(parse(b"RSET "), Ok(Command::Rset));
    }

    #[test]
    fn unknown_and_garbage() {
        assert_eq!(parse(b""), Err(ParseError::UnknownVerb));
        assert_eq!(parse(b"FOO bar"), Err(ParseError::UnknownVerb));
        assert_eq!(parse(b"\xff\xfe\x00"), Err(ParseError::UnknownVerb));
        assert_eq!(parse(b"VERYLONGVERB"), Err(ParseError::UnknownVerb));
    }
}
