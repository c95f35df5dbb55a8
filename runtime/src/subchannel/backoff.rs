//! Connection backoff (grpc/grpc `doc/connection-backoff.md`): the first retry after
//! `base`, each next one `min(previous * multiplier, max)`, each randomised by +-jitter.

use std::time::Duration;

use ephemos_config::model::BackoffConfig;

/// The backoff state of one subchannel.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionBackoff {
    config: BackoffConfig,
    /// The un-jittered delay the next failure will wait.
    current: Duration,
}

impl ConnectionBackoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Self {
            current: config.base_delay,
            config,
        }
    }

    /// Back to `base`: called when a connection becomes READY.
    pub(crate) fn reset(&mut self) {
        self.current = self.config.base_delay;
    }

    /// The un-jittered delay of the coming wait (an attempt's deadline is at least this).
    pub(crate) fn current(&self) -> Duration {
        self.current
    }

    /// The jittered delay to wait after a failed attempt, measured from its start; then
    /// grows the delay for the next failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (fastrand::f64() * 2.0 - 1.0);
        let delay = scale(self.current, factor, Duration::MAX);
        let multiplier = self.config.multiplier.max(1.0);
        self.current = scale(self.current, multiplier, self.config.max_delay);
        delay
    }
}

/// `duration * factor`, saturating at `cap` (settings from code may hold any float).
fn scale(duration: Duration, factor: f64, cap: Duration) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
        .unwrap_or(cap)
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(jitter: f64) -> BackoffConfig {
        BackoffConfig {
            base_delay: Duration::from_secs(1),
            multiplier: 1.6,
            jitter,
            max_delay: Duration::from_secs(120),
        }
    }

    #[test]
    fn without_jitter_follows_the_schedule_and_caps() {
        let mut backoff = ConnectionBackoff::new(config(0.0));
        let delays: Vec<u128> = (0..12).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(&delays[..5], &[1000, 1600, 2560, 4096, 6553]);
        assert_eq!(*delays.last().unwrap(), 120_000);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn absurd_settings_saturate_instead_of_panicking() {
        let mut backoff = ConnectionBackoff::new(BackoffConfig {
            base_delay: Duration::from_secs(1),
            multiplier: 1e300,
            jitter: 0.0,
            max_delay: Duration::MAX,
        });
        for _ in 0..5 {
            backoff.next_delay();
        }
        assert_eq!(backoff.current(), Duration::MAX);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut backoff = ConnectionBackoff::new(config(0.2));
        let mut expected = 1.0f64;
        for _ in 0..20 {
            let delay = backoff.next_delay().as_secs_f64();
            assert!(
                delay >= expected * 0.8 - 1e-9 && delay <= expected * 1.2 + 1e-9,
                "{delay} vs {expected}"
            );
            expected = (expected * 1.6).min(120.0);
        }
    }
}
