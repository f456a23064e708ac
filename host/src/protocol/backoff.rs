//! Delays between attempts to reach the runtime: exponential, bounded, and
//! jittered so that many nodes restarting together do not dial in step.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with a ceiling and ±20 % jitter.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempts: u32,
}

const JITTER: f64 = 0.2;

impl Default for Backoff {
    /// 100 ms doubling up to 5 s: a restarted runtime is found again within
    /// a few hundred milliseconds of listening, and a missing one costs
    /// one dial every few seconds.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    /// Starts at `initial`, doubles per attempt, never exceeds `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            attempts: 0,
        }
    }

    /// Attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over, after a connection that worked.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let exponent = self.attempts.min(16);
        self.attempts = self.attempts.saturating_add(1);
        let base = self.initial.saturating_mul(1 << exponent).min(self.max);
        let factor = rand::rng().random_range(1.0 - JITTER..=1.0 + JITTER);
        base.mul_f64(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_jitter_and_stays_bounded() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let bases = [100, 200, 400, 800, 1000, 1000, 1000];
        for base in bases {
            let delay = backoff.next_delay().as_secs_f64() * 1000.0;
            let (low, high) = (base as f64 * 0.8, (base as f64 * 1.2).min(1000.0));
            assert!(
                (low..=high + 1e-6).contains(&delay),
                "{delay} not near {base}"
            );
        }
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(1));
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(120));
    }
}
