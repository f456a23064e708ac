//! Text that comes from guests: log lines, error messages, a validator's
//! reasons, the keys and values of refused answers, trap messages (whose
//! function names a guest chooses). Wherever it goes (the log, a reply to
//! the runtime, `nri-wasm test` output) it goes as [`GuestText`]: capped in
//! length and with every control character escaped, so that a guest can
//! neither flood a line nor forge one. How often the host writes lines
//! about one guest is bounded by a [`TokenBucket`].

use std::{fmt, time::Instant};

/// Longest log line a guest can write.
pub const MAX_LOG_LINE: usize = 4096;
/// Longest error message or rejection reason of a guest that is kept.
pub const MAX_MESSAGE: usize = 1024;
/// Longest value (a key, a path, an id) quoted in a refusal or conflict.
pub const MAX_VALUE: usize = 256;

/// Guest-provided text made safe to show: at most its cap in bytes (plus
/// a note of how much was cut), control characters and invisible
/// direction marks escaped as `\u{..}`, backslashes and quotes escaped
/// (so that quoted, it stays one field of a log line).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestText(String);

impl GuestText {
    /// `raw`, escaped and cut to `max` bytes.
    pub fn new(raw: &str, max: usize) -> Self {
        let mut out = String::with_capacity(raw.len().min(max) + 16);
        for (at, c) in raw.char_indices() {
            let start = out.len();
            push_escaped(&mut out, c);
            if out.len() > max {
                out.truncate(start);
                let left = raw.len() - at;
                out.push_str(&format!("…[{left} more bytes]"));
                return GuestText(out);
            }
        }
        GuestText(out)
    }

    /// The text, ready to show.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuestText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `c` would change how a line reads beyond what it shows:
/// control characters (newlines, escape sequences) and the invisible
/// marks that reorder or hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn push_escaped(out: &mut String, c: char) {
    if c == '\\' {
        out.push_str("\\\\");
    } else if c == '"' {
        out.push_str("\\\"");
    } else if needs_escape(c) {
        out.push_str(&format!("\\u{{{:x}}}", c as u32));
    } else {
        out.push(c);
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
            suppressed: 0,
        }
    }

    /// Takes a token at `now`, if there is one; a refusal is counted.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// How many takes were refused since the last call.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn text_is_escaped_and_capped() {
        let cases = [
            ("plain", "plain", 100),
            ("two\nlines", "two\\u{a}lines", 100),
            ("\u{1b}[31mred", "\\u{1b}[31mred", 100),
            ("back\\slash", "back\\\\slash", 100),
            ("say \"x\" guest=10-a", "say \\\"x\\\" guest=10-a", 100),
            ("rtl\u{202E}txt", "rtl\\u{202e}txt", 100),
            ("héllo", "héllo", 100),
            ("abcdef", "abc…[3 more bytes]", 3),
            ("ab\ncd", "ab…[3 more bytes]", 4),
            ("héllo", "h…[5 more bytes]", 2),
        ];
        for (raw, want, max) in cases {
            assert_eq!(GuestText::new(raw, max).as_str(), want, "{raw:?}");
        }
        let huge = "x".repeat(4 << 20);
        assert!(GuestText::new(&huge, MAX_MESSAGE).as_str().len() < MAX_MESSAGE + 32);
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate_and_counts_the_rest() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3.0);
        bucket.last = start;
        let burst = (0..10).filter(|_| bucket.take(start)).count();
        assert_eq!(burst, 3);
        assert_eq!(bucket.take_suppressed(), 7);
        assert!(bucket.take(start + Duration::from_millis(100)));
        assert!(!bucket.take(start + Duration::from_millis(100)));
        assert_eq!(bucket.take_suppressed(), 1);
    }
}
