//! Envelope paths of `MAIL FROM:` and `RCPT TO:` (RFC 5321 4.1.2), read strictly or leniently.
//!
//! Strict ([`PathSyntax::Strict`], `--strict`): `<` [source route `:`] mailbox `>`, then
//! optional ESMTP parameters. Only the space after the colon is tolerated, as Postfix always
//! does, since common clients send it.
//!
//! Lenient (the default), the way long-lived MTAs accept what real clients send:
//! - a path that holds a whole mailbox, `<<a@b>>`, `<"Name" <a@b>>` or `<Name <a@b>>`, which is
//!   what Go's `net/smtp` writes when given `mail.Address.String()`: the inner address counts;
//! - a mailbox without the outer brackets, `"Name" <a@b>` or `Name <a@b>`, or with only the
//!   opening one, `<"Name" <a@b>`, which is what curl sends for `--mail-from '"Name" <a@b>'`;
//! - a bare address without brackets, `a@b`;
//! - spaces just inside the brackets, `< a@b >`.
//!
//! A line is read strictly first; [`Path::lenient`] says when only the lenient reading took
//! it, so the session can keep the line as received. In both modes a quoted local part may
//! hold spaces (`"john doe"@example.com`), and no address ever holds a control character or
//! an angle bracket: addresses are written into the `/mail/N` text records.

/// How `MAIL FROM` and `RCPT TO` paths are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathSyntax {
    /// Accept what real clients send (see the module docs).
    #[default]
    Lenient,
    /// RFC 5321 path syntax only.
    Strict,
}

/// A path and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Path<'a> {
    /// The address; empty for the null path `<>`.
    pub addr: &'a str,
    /// The ESMTP parameter text after the path, trimmed.
    pub params: &'a [u8],
    /// Only the lenient reading accepted this path.
    pub lenient: bool,
}

/// Reads the path at the start of `arg` (the text after `FROM:` / `TO:`). The error says
/// what is wrong, for a 501 reply.
pub(crate) fn read(arg: &[u8], syntax: PathSyntax) -> Result<Path<'_>, &'static str> {
    match strict(arg) {
        Ok((addr, params)) => Ok(Path {
            addr,
            params,
            lenient: false,
        }),
        Err(why) if syntax == PathSyntax::Strict => Err(why),
        Err(_) => lenient(arg).map(|(addr, params)| Path {
            addr,
            params,
            lenient: true,
        }),
    }
}

/// `<path> params`: the path ends at the first `>` outside a quoted string.
fn strict(arg: &[u8]) -> Result<(&str, &[u8]), &'static str> {
    let inner = arg
        .strip_prefix(b"<")
        .ok_or("the address must be in angle brackets")?;
    let end = scan(inner, Until::FirstClose).ok_or("missing '>'")?;
    let params = params_after(&inner[end + 1..])?;
    Ok((address(&inner[..end])?, params))
}

fn lenient(arg: &[u8]) -> Result<(&str, &[u8]), &'static str> {
    let (mut path, rest) = match scan(arg, Until::Open) {
        // `<...>`, or a phrase before `<...>` (but not a `<` inside a parameter value).
        Some(open) if !arg[..open].contains(&b'=') => {
            let inner = &arg[open + 1..];
            match scan(inner, Until::Matching) {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                // curl strips one `>` of `<"Name" <a@b>>` and sends `<"Name" <a@b>`: when
                // the outer bracket never closes, the mailbox inside ends the path.
                None => {
                    let nested = scan(inner, Until::Open).ok_or("missing '>'")?;
                    let close = nested
                        + 1
                        + scan(&inner[nested + 1..], Until::Matching).ok_or("missing '>'")?;
                    (&inner[..=close], &inner[close + 1..])
                }
            }
        }
        // A bare address: the first word.
        _ => match memchr::memchr(b' ', arg) {
            Some(i) => (&arg[..i], &arg[i..]),
            None => (arg, &b""[..]),
        },
    };
    // `<"Name" <a@b>>`, `<<a@b>>`: the mailbox inside the path is the address.
    while let Some(open) = scan(path, Until::Open) {
        let inner = &path[open + 1..];
        let end = scan(inner, Until::Matching).ok_or("missing '>'")?;
        path = &inner[..end];
    }
    let params = params_after(rest)?;
    Ok((address(path.trim_ascii())?, params))
}

/// What [`scan`] looks for, outside quoted strings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// The first `<`.
    Open,
    /// The first `>`.
    FirstClose,
    /// The `>` that closes a `<` just before the text (nested pairs counted).
    Matching,
}

/// Tracks quoted strings (`"..."`, with `\` escapes inside) one byte at a time.
#[derive(Default)]
struct Quotes {
    quoted: bool,
    escaped: bool,
}

impl Quotes {
    /// Feeds one byte; true when it stands outside every quoted string and is not itself a
    /// quote mark.
    fn outside(&mut self, b: u8) -> bool {
        if self.escaped {
            self.escaped = false;
            return false;
        }
        match b {
            b'\\' if self.quoted => {
                self.escaped = true;
                false
            }
            b'"' => {
                self.quoted = !self.quoted;
                false
            }
            _ => !self.quoted,
        }
    }
}

/// The index of what `until` names, skipping quoted strings, or `None`.
fn scan(text: &[u8], until: Until) -> Option<usize> {
    let mut depth = 1usize;
    let mut quotes = Quotes::default();
    for (i, &b) in text.iter().enumerate() {
        if !quotes.outside(b) {
            continue;
        }
        match b {
            b'<' if until == Until::Open => return Some(i),
            b'<' => depth += 1,
            b'>' if until == Until::FirstClose => return Some(i),
            b'>' if until == Until::Matching => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The parameter text after a path: empty, or separated from it by a space.
fn params_after(rest: &[u8]) -> Result<&[u8], &'static str> {
    match rest.first() {
        None | Some(b' ') => Ok(rest.trim_ascii()),
        Some(_) => Err("junk after the address"),
    }
}

/// The longest path, angle brackets included (RFC 5321 4.5.3.1.3).
pub(crate) const MAX_PATH: usize = 256;

/// Drops a source route (`@a,@b:user@c`, RFC 5321 4.1.2: accepted and ignored) and checks
/// the length and the characters: UTF-8, no control character, no angle bracket, spaces only
/// when quoted.
fn address(path: &[u8]) -> Result<&str, &'static str> {
    if path.len() + 2 > MAX_PATH {
        return Err("path too long (at most 256 octets, RFC 5321 4.5.3.1.3)");
    }
    let addr = match path.first() {
        Some(b'@') => match memchr::memchr(b':', path) {
            Some(i) => &path[i + 1..],
            None => return Err("bad source route"),
        },
        _ => path,
    };
    let text = std::str::from_utf8(addr).map_err(|_| "address is not valid UTF-8")?;
    let mut quotes = Quotes::default();
    for &b in addr {
        let forbidden = b < b' ' || b == 0x7f || b == b'<' || b == b'>';
        if forbidden || (quotes.outside(b) && b == b' ') {
            return Err("bad character in address");
        }
    }
    if quotes.quoted {
        return Err("unterminated quoted string in address");
    }
    Ok(text)
}
