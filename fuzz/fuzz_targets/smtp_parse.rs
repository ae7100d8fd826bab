//! Fuzzes the SMTP command parser (`smtp::parse::parse`) with arbitrary lines.
//!
//! Beyond "never panics", it checks what the rest of the server relies on, with both the
//! lenient and the strict path syntax: an accepted address never holds a control character
//! or angle brackets (it is later written into the `/mail/N` text records and matched by
//! fault triggers), a space only inside a quoted local part, and a mailbox is `local@domain`
//! with both parts present (or the null sender, or `postmaster`). A line the strict syntax
//! accepts is accepted the same way by the lenient one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_test_srv::smtp::parse::{Command, PathSyntax, parse};

fn clean(addr: &str) -> bool {
    let forbidden = addr
        .bytes()
        .any(|b| b < b' ' || b == b'<' || b == b'>' || b == 0x7f);
    !forbidden && (!addr.contains(' ') || addr.contains('"'))
}

fn mailbox(addr: &str) -> bool {
    addr.rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

fuzz_target!(|line: &[u8]| {
    let strict = parse(line, PathSyntax::Strict);
    let lenient = parse(line, PathSyntax::Lenient);
    if let Ok(command) = &strict {
        assert_eq!(lenient.as_ref(), Ok(command), "strict and lenient disagree");
    }
    for parsed in [strict, lenient] {
        check(parsed);
    }
});

fn check(parsed: Result<Command<'_>, mail_test_srv::smtp::parse::ParseError>) {
    match parsed {
        Ok(Command::Mail { from, .. }) => {
            assert!(clean(from), "MAIL address with a forbidden byte: {from:?}");
            assert!(from.is_empty() || mailbox(from), "MAIL address {from:?}");
        }
        Ok(Command::Rcpt { to, .. }) => {
            assert!(clean(to), "RCPT address with a forbidden byte: {to:?}");
            assert!(
                mailbox(to) || to.eq_ignore_ascii_case("postmaster"),
                "RCPT address {to:?}"
            );
        }
        Ok(Command::Ehlo(domain) | Command::Helo(domain)) => {
            assert!(
                !domain.is_empty() && !domain.contains(' '),
                "domain {domain:?}"
            );
        }
        Ok(_) | Err(_) => {}
    }
}
