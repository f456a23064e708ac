//! What a guest's store holds: its memory and table limits, and its one
//! import, logging, rate limited and tagged with the guest's name.

use std::time::Instant;

use wasmtime::ResourceLimiter;

use super::bindings::{log, types};

/// Longest log line a guest can write; longer ones are cut.
pub const MAX_LOG_LINE: usize = 4096;
/// Log lines a guest may write per second, on average.
pub const LOG_LINES_PER_SECOND: f64 = 50.0;
/// Log lines a guest may write in a burst.
pub const LOG_BURST: f64 = 200.0;
/// Table elements a guest may have.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Per-store state of a guest.
pub struct GuestState {
    guest: String,
    memory_limit: usize,
    memory_denied: bool,
    log: TokenBucket,
    suppressed: u64,
}

impl GuestState {
    /// State for guest `NN-name`, with linear memories capped at
    /// `memory_limit` bytes.
    pub fn new(guest: String, memory_limit: usize) -> Self {
        GuestState {
            guest,
            memory_limit,
            memory_denied: false,
            log: TokenBucket::new(LOG_LINES_PER_SECOND, LOG_BURST),
            suppressed: 0,
        }
    }

    /// Whether a memory growth was refused since the last call began.
    pub fn take_memory_denied(&mut self) -> bool {
        std::mem::take(&mut self.memory_denied)
    }
}

impl ResourceLimiter for GuestState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl types::Host for GuestState {}

impl log::Host for GuestState {
    fn log(&mut self, level: log::Level, message: String) {
        if !self.log.take(Instant::now()) {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!(guest = %self.guest, lines = self.suppressed, "guest log lines suppressed (rate limit)");
            self.suppressed = 0;
        }
        let message = truncate(&message, MAX_LOG_LINE);
        let guest = &self.guest;
        match level {
            log::Level::Debug => tracing::debug!(target: "guest", %guest, "{message}"),
            log::Level::Info => tracing::info!(target: "guest", %guest, "{message}"),
            log::Level::Warn => tracing::warn!(target: "guest", %guest, "{message}"),
            log::Level::Error => tracing::error!(target: "guest", %guest, "{message}"),
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3.0);
        bucket.last = start;
        let burst = (0..10).filter(|_| bucket.take(start)).count();
        assert_eq!(burst, 3);
        assert!(bucket.take(start + Duration::from_millis(100)));
        assert!(!bucket.take(start + Duration::from_millis(100)));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
    }

    #[test]
    fn memory_beyond_the_cap_is_refused_and_noted() {
        let mut state = GuestState::new("10-x".into(), 1 << 20);
        assert!(state.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!state.memory_growing(0, (1 << 20) + 1, None).unwrap());
        assert!(state.take_memory_denied());
        assert!(!state.take_memory_denied());
    }
}
