//! Reply formatting: `CODE ENHANCED text\r\n`, written into the session's output buffer.
//!
//! Replies are appended, not sent: the session flushes once per batch of pipelined
//! commands (RFC 2920), which is what keeps a pipelining client fast.

use std::io::Write as _;

/// Appends one single-line reply with an enhanced status code (RFC 3463).
pub fn push(out: &mut Vec<u8>, code: u16, enhanced: &str, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{code} {enhanced} {text}\r\n");
}

/// Appends a reply given as a complete static line (the fast path for common replies).
pub fn push_static(out: &mut Vec<u8>, line: &'static [u8]) {
    out.extend_from_slice(line);
}

/// Appends the 250 after the final dot, naming the stored message's id.
pub fn queued(out: &mut Vec<u8>, id: u64) {
    let _ = write!(out, "250 2.0.0 Ok: queued as {id}\r\n");
}

/// The enhanced code that goes with a bare reply code chosen by a fault rule (`reply=550`).
pub fn enhanced_for(code: u16) -> &'static str {
    match code {
        421 | 451 => "4.3.0",
        450 => "4.2.0",
        452 => "4.3.1",
        454 => "4.7.0",
        530 => "5.7.0",
        535 => "5.7.8",
        550 => "5.1.1",
        551 | 553 => "5.1.3",
        552 => "5.3.4",
        554 => "5.3.0",
        400..=499 => "4.0.0",
        _ => "5.0.0",
    }
}

/// Appends the reply a `reply=CODE` fault asks for.
pub fn push_fault(out: &mut Vec<u8>, code: u16) {
    push(out, code, enhanced_for(code), "injected fault");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut out = Vec::new();
        push(&mut out, 250, "2.1.0", "Ok");
        push_fault(&mut out, 550);
        push_fault(&mut out, 451);
        assert_eq!(
            out,
            b"250 2.1.0 Ok\r\n550 5.1.1 injected fault\r\n451 4.3.0 injected fault\r\n"
        );
    }
}
