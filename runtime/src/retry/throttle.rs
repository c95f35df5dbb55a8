//! Retry throttling per channel (gRFC A6 `retryThrottling`): a bucket of tokens that
//! starts full; each failure with a retryable status (or a pushback saying stop) takes
//! one, each call that ends OK gives back `token_ratio`; no retry (and no hedge) while
//! tokens <= max_tokens / 2. Kept in thousandths of a token, as A6 keeps three decimals
//! of the ratio, in one atomic: no lock on the call path.

use std::sync::atomic::{AtomicU64, Ordering};

use ephemos_config::service_config::RetryThrottling;

/// The bucket of one channel.
#[derive(Debug)]
pub(crate) struct Throttle {
    /// Tokens now, in thousandths.
    tokens: AtomicU64,
    max: u64,
    ratio: u64,
}

impl Throttle {
    pub(crate) fn new(config: &RetryThrottling) -> Self {
        let max = u64::from(config.max_tokens) * 1000;
        Self {
            tokens: AtomicU64::new(max),
            max,
            ratio: (config.token_ratio * 1000.0).round() as u64,
        }
    }

    /// A failure: takes a token; `true` when retries are now throttled.
    pub(crate) fn failure(&self) -> bool {
        let before = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_sub(1000))
            })
            .unwrap_or(0);
        before.saturating_sub(1000) <= self.max / 2
    }

    /// A call ended OK: gives back `token_ratio`, up to the maximum.
    pub(crate) fn success(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some((t + self.ratio).min(self.max))
            });
    }

    /// Whether retries and hedges are throttled now (without taking a token).
    pub(crate) fn is_throttled(&self) -> bool {
        self.tokens.load(Ordering::Acquire) <= self.max / 2
    }

    /// Tokens now (for stats).
    pub(crate) fn tokens(&self) -> f64 {
        self.tokens.load(Ordering::Acquire) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_half_the_bucket_and_recovers_with_successes() {
        let t = Throttle::new(&RetryThrottling {
            max_tokens: 10,
            token_ratio: 0.5,
        });
        // 10 -> 9, 8, 7, 6: not throttled; 5 <= 10/2: throttled.
        for _ in 0..4 {
            assert!(!t.failure());
        }
        assert!(t.failure());
        assert!(t.is_throttled());
        assert_eq!(t.tokens(), 5.0);
        t.success();
        assert_eq!(t.tokens(), 5.5);
        assert!(!t.is_throttled());
        for _ in 0..100 {
            t.success();
        }
        assert_eq!(t.tokens(), 10.0, "capped at max_tokens");
        for _ in 0..20 {
            t.failure();
        }
        assert_eq!(t.tokens(), 0.0, "never below zero");
    }
}
