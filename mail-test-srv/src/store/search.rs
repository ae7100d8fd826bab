//! Case-insensitive substring search for the list filters (`subject=`, `q=`), without an
//! allocation per message.
//!
//! The needle is lower-cased once. An ASCII needle (nearly every search: an address, a word
//! of a subject) is compared byte by byte with ASCII case folding, straight on the stored
//! strings: UTF-8 never puts an ASCII byte inside a multi-byte character, so a match is a
//! real one. A needle with other characters falls back to lower-casing each haystack.
//! Measured with 100,000 messages in docs/BENCHMARKS.md ("The web page's list").

/// A lower-cased search text, ready to test many haystacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    lower: String,
    ascii: bool,
}

impl Needle {
    pub fn new(text: &str) -> Needle {
        let lower = text.to_lowercase();
        Needle {
            ascii: lower.is_ascii(),
            lower,
        }
    }

    /// Whether `haystack` contains the needle, ignoring case.
    pub fn found_in(&self, haystack: &str) -> bool {
        if self.lower.is_empty() {
            return true;
        }
        if self.ascii {
            contains_ascii_nocase(haystack.as_bytes(), self.lower.as_bytes())
        } else {
            haystack.to_lowercase().contains(&self.lower)
        }
    }
}

/// `needle` is lower-case ASCII and not empty.
fn contains_ascii_nocase(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    let upper = first.to_ascii_uppercase();
    let mut from = 0;
    // memchr finds each candidate start (either case of the first byte) at SIMD speed.
    while let Some(pos) = memchr::memchr2(first, upper, &haystack[from..=last_start]) {
        let start = from + pos;
        if haystack[start + 1..start + needle.len()].eq_ignore_ascii_case(rest) {
            return true;
        }
        from = start + 1;
        if from > last_start {
            break;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::Needle;

    #[test]
    fn ignores_case_ascii_and_not() {
        let n = Needle::new("RePort");
        assert!(n.found_in("Monthly REPORT 3"));
        assert!(n.found_in("report"));
        assert!(!n.found_in("repor"));
        assert!(!n.found_in("rep ort"));
        assert!(Needle::new("").found_in("anything"));
        assert!(Needle::new("café").found_in("Le CAFÉ du coin"));
        assert!(!Needle::new("café").found_in("cafe"));
        // An ASCII needle inside non-ASCII text.
        assert!(Needle::new("x@y").found_in("Grüße X@Y.example"));
        assert!(Needle::new("t").found_in("t"));
        assert!(!Needle::new("tt").found_in("t"));
        assert!(Needle::new("ab").found_in("aaab"));
    }
}
