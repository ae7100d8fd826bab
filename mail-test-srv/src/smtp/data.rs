//! The DATA receiver (RFC 5321 4.1.1.4, 4.5.2): finds the end marker, undoes dot-stuffing,
//! and enforces the size limit. No I/O: the session feeds it whatever bytes arrived.
//!
//! A line ends with CRLF, and only `CRLF.CRLF` ends the message: a bare LF or a bare CR is
//! data. Taking `LF.LF` (or `CRLF.LF`, `LF.CRLF`) as the end, as many servers once did, is
//! what SMTP smuggling exploits: the bytes after such a marker would run as a second
//! transaction with a forged sender, where the receiving MTA saw one message. The receiver
//! notes whether it saw a bare LF, so the session can refuse it (`--bare-lf reject`).
//!
//! The message starts "after a CRLF", so a body of just `.\r\n` ends at once and a first
//! line `..x` is unstuffed. Past the size limit the bytes are counted and dropped, and the
//! session answers 552 after the end marker (RFC 1870 6.1).

use memchr::memchr;

/// First allocation for a message of unknown size: most test mail fits, few reallocations.
const DEFAULT_CAPACITY: usize = 8 * 1024;

/// The most a client's `SIZE=` may make us allocate before its bytes arrive: a declared size
/// is a promise, not data, and must not reserve memory on its own.
const MAX_INITIAL_CAPACITY: usize = 64 * 1024;

/// The state of one DATA transfer.
#[derive(Debug)]
pub struct DataReceiver {
    /// The next byte starts a line (the only place a dot matters): the input so far ends
    /// with CRLF, or nothing came yet.
    at_line_start: bool,
    /// The last byte fed was a CR (a CRLF may be split across reads).
    after_cr: bool,
    /// A LF without a CR before it was seen.
    bare_lf: bool,
    body: Vec<u8>,
    /// The content is no longer kept (the server-wide budget ran out); read to the end only.
    discarding: bool,
    /// Bytes of the unstuffed message seen so far, kept or not.
    size: usize,
    limit: usize,
}

/// What one [`DataReceiver::feed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input used; the rest (pipelined commands, or a partial `.` line) is the caller's.
    pub consumed: usize,
    /// The end marker was seen.
    pub done: bool,
}

impl DataReceiver {
    /// A receiver that keeps at most `limit` bytes; `expected` is the client's `SIZE=`
    /// estimate, used only to size the first allocation (at most 64 KiB).
    pub fn new(limit: usize, expected: Option<u64>) -> Self {
        let capacity = expected.map_or(DEFAULT_CAPACITY, |size| {
            usize::try_from(size).unwrap_or(MAX_INITIAL_CAPACITY)
        });
        DataReceiver {
            at_line_start: true,
            after_cr: false,
            bare_lf: false,
            discarding: false,
            body: Vec::with_capacity(capacity.min(MAX_INITIAL_CAPACITY).min(limit)),
            size: 0,
            limit,
        }
    }

    /// Consumes as much of `input` as can be decided now.
    pub fn feed(&mut self, input: &[u8]) -> Fed {
        let mut i = 0;
        while i < input.len() {
            if self.at_line_start {
                let rest = &input[i..];
                if rest[0] == b'.' {
                    match rest.get(1..3) {
                        Some([b'\r', b'\n']) => {
                            return Fed {
                                consumed: i + 3,
                                done: true,
                            };
                        }
                        // `.` or `.\r` so far: cannot tell the end marker from a stuffed line yet.
                        None if rest.len() == 1 || rest[1] == b'\r' => {
                            return Fed {
                                consumed: i,
                                done: false,
                            };
                        }
                        // A stuffed line (`..x`, and also `.\n` or `.\rx`): drop the leading dot.
                        _ => i += 1,
                    }
                }
                self.at_line_start = false;
            }
            match memchr(b'\n', &input[i..]) {
                Some(p) => {
                    let crlf = if p == 0 {
                        self.after_cr
                    } else {
                        input[i + p - 1] == b'\r'
                    };
                    self.push(&input[i..=i + p]);
                    i += p + 1;
                    self.at_line_start = crlf;
                    self.bare_lf |= !crlf;
                    self.after_cr = false;
                }
                None => {
                    self.push(&input[i..]);
                    self.after_cr = input.last() == Some(&b'\r');
                    i = input.len();
                }
            }
        }
        Fed {
            consumed: i,
            done: false,
        }
    }

    /// Bytes of the message received so far (kept or not), unstuffed.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A LF without a CR before it was part of the message.
    pub fn saw_bare_lf(&self) -> bool {
        self.bare_lf
    }

    /// Bytes allocated for the message so far (what it holds of the in-flight budget).
    pub fn allocated(&self) -> usize {
        self.body.capacity()
    }

    /// Stops keeping the content and frees it; the transfer is read to its end marker and
    /// refused.
    pub fn discard(&mut self) {
        self.discarding = true;
        self.body = Vec::new();
    }

    /// The content was discarded by [`DataReceiver::discard`].
    pub fn discarded(&self) -> bool {
        self.discarding
    }

    fn push(&mut self, bytes: &[u8]) {
        self.size += bytes.len();
        if self.discarding {
            return;
        }
        if self.size <= self.limit {
            self.body.extend_from_slice(bytes);
        } else if !self.body.is_empty() {
            // Over the limit: free what we kept, it will not be stored.
            self.body = Vec::new();
        }
    }

    /// The message exceeded the limit and will be refused with 552.
    pub fn too_big(&self) -> bool {
        self.size > self.limit
    }

    /// The unstuffed message, without the end marker, copied into an allocation of its
    /// exact size. It lives in the store for the life of the server, so the slack of the
    /// receive buffer (8 KiB for a typical 1 KiB message) must not come along. Copying
    /// beats `shrink_to_fit`: shrinking in place leaves a 7 KiB hole per message that the
    /// next 8 KiB buffer cannot reuse (measured: 98 MiB RSS for 20 MiB stored), while the
    /// freed buffer here is taken again by the next message's receiver.
    pub fn into_body(self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], limit: usize) -> (Vec<u8>, bool, Vec<u8>) {
        let mut r = DataReceiver::new(limit, None);
        let mut pending = Vec::new();
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            let fed = r.feed(&pending);
            pending.drain(..fed.consumed);
            if fed.done {
                let big = r.too_big();
                return (r.into_body().to_vec(), big, pending);
            }
        }
        panic!("no end marker");
    }

    #[test]
    fn ends_and_keeps_pipelined_rest() {
        let (body, big, rest) = run(&[b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"], 100);
        assert_eq!(body, b"Subject: x\r\n\r\nhello\r\n");
        assert!(!big);
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn empty_body_and_first_line_stuffed() {
        assert_eq!(run(&[b".\r\n"], 10).0, b"");
        assert_eq!(run(&[b"..x\r\n.\r\n"], 10).0, b".x\r\n");
    }

    #[test]
    fn unstuffs_every_line() {
        let (body, ..) = run(&[b"a\r\n..\r\n...b\r\n.c\r\n.\r\n"], 100);
        assert_eq!(body, b"a\r\n.\r\n..b\r\nc\r\n");
    }

    #[test]
    fn marker_split_across_reads() {
        let (body, ..) = run(&[b"hi\r\n", b".", b"\r", b"\nRSET\r\n"], 100);
        assert_eq!(body, b"hi\r\n");
        let (body, ..) = run(&[b"hi\r\n.", b"x\r\n.\r\n"], 100);
        assert_eq!(body, b"hi\r\nx\r\n");
        let (body, ..) = run(&[b"one", b" line\r", b"\n.\r\n"], 100);
        assert_eq!(body, b"one line\r\n");
    }

    #[test]
    fn dot_inside_a_line_is_data() {
        let (body, ..) = run(&[b"a.\r\nb\r\n.\r\n"], 100);
        assert_eq!(body, b"a.\r\nb\r\n");
        let (body, ..) = run(&[b"x\r\n.\ry\r\n.\r\n"], 100);
        assert_eq!(body, b"x\r\n\ry\r\n");
    }

    /// Each way a server has been fooled into ending DATA early (SMTP smuggling): the bytes
    /// after it are data of the same message, and only CRLF.CRLF ends it.
    #[test]
    fn only_crlf_dot_crlf_ends_the_message() {
        for marker in [
            &b"\n.\n"[..],
            b"\r\n.\n",
            b"\n.\r\n",
            b"\r.\r",
            b"\r.\r\n",
            b"\r\n.\r",
        ] {
            let mut input = b"Subject: x\r\n\r\nbody".to_vec();
            input.extend_from_slice(marker);
            input.extend_from_slice(b"MAIL FROM:<forged@example.com>\r\n.\r\nQUIT\r\n");
            let (body, _, rest) = run(&[&input], 1000);
            let shown = marker.escape_ascii();
            assert!(
                body.ends_with(b"MAIL FROM:<forged@example.com>\r\n"),
                "{shown}: {:?}",
                body.escape_ascii().to_string()
            );
            assert_eq!(rest, b"QUIT\r\n", "{shown}");
        }
    }

    #[test]
    fn bare_lf_is_data_and_noted() {
        let mut r = DataReceiver::new(100, None);
        assert!(!r.feed(b"a\n.\n").done);
        assert!(r.saw_bare_lf());
        let mut r = DataReceiver::new(100, None);
        assert!(r.feed(b"a\r").consumed == 2 && !r.saw_bare_lf());
        // A CRLF split across reads is a CRLF, and the dot after it starts a line.
        assert_eq!(r.feed(b"\n.\r\n").consumed, 4);
        assert!(!r.saw_bare_lf());
        assert_eq!(run(&[b"a\r", b"\n..b\r\n.\r\n"], 100).0, b"a\r\n.b\r\n");
    }

    #[test]
    fn declared_size_reserves_little() {
        let r = DataReceiver::new(usize::MAX, Some(u64::MAX));
        assert!(r.body.capacity() <= MAX_INITIAL_CAPACITY);
        let r = DataReceiver::new(10 << 20, Some(10 << 20));
        assert!(r.body.capacity() <= MAX_INITIAL_CAPACITY);
    }

    #[test]
    fn over_limit_is_read_to_the_end() {
        let (body, big, rest) = run(&[b"0123456789\r\n", b"0123456789\r\n.\r\nNOOP\r\n"], 15);
        assert!(big);
        assert!(body.is_empty());
        assert_eq!(rest, b"NOOP\r\n");
        let (_, big, _) = run(&[b"0123456789\r\n.\r\n"], 12);
        assert!(!big, "exactly the limit is accepted");
    }
}
