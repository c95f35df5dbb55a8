//! A method's retry policy (gRFC A6 `retryPolicy`) as the retry layer applies it, and the
//! decision after a failed attempt: grpc-go's `shouldRetry`, in its order.
//!
//! 1. A committed call is never retried (the caller already has response headers).
//! 2. `grpc-retry-pushback-ms` in a Trailers-Only response: one non-negative integer
//!    means "retry after exactly this long" (and the backoff starts again from
//!    `initial_backoff`); anything else (negative, malformed, repeated) means stop, and
//!    counts as a failure for throttling.
//! 3. The status must be one of the policy's retryable codes (else stop, not counted).
//! 4. Throttling: the failure takes a token; no retry while tokens <= max / 2.
//! 5. At most `max_attempts` attempts in all.
//! 6. Retry n waits `random(0, min(initial * multiplier^(n-1), max))`: A6's full jitter.
//!    (grpc-go now multiplies by 0.8..1.2 instead; A6 still says full jitter, which
//!    spreads a burst of failures best.)

use std::time::Duration;

use ephemos_config::service_config::RetryPolicy;
use http::HeaderMap;
use tonic::Code;

use super::throttle::Throttle;
use crate::protocol::names;

/// A retry policy, ready for decisions.
#[derive(Debug, Clone)]
pub(crate) struct RetryRule {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    /// Bit `n` set: code `n` is retryable.
    retryable: u32,
}

/// What the last attempt ended with, as the decision needs it.
pub(crate) struct Failure<'a> {
    pub(crate) code: Code,
    /// The Trailers-Only response's headers, where the server's pushback is.
    pub(crate) headers: Option<&'a HeaderMap>,
}

/// The decision after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send attempt `attempts + 1` after this delay.
    RetryAfter { delay: Duration, pushback: bool },
    /// The failure is the call's outcome.
    Stop(StopReason),
}

/// Why a call is not retried: for counts and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    NotRetryable,
    Pushback,
    Throttled,
    Attempts,
}

/// What the next attempt's backoff starts from.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RetryState {
    /// Attempts sent so far under the policy (transparent retries are not counted).
    pub(crate) attempts: u32,
    /// Retries since the server last gave a pushback (the backoff's exponent).
    pub(crate) since_pushback: u32,
}

impl RetryRule {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        let retryable = policy
            .retryable_status_codes
            .iter()
            .fold(0u32, |bits, code| bits | 1 << code.number());
        Self {
            max_attempts: policy.max_attempts,
            initial_backoff: policy.initial_backoff,
            max_backoff: policy.max_backoff,
            multiplier: policy.backoff_multiplier,
            retryable,
        }
    }

    fn retries(&self, code: Code) -> bool {
        (code as i32) < 32 && self.retryable & (1 << code as i32) != 0
    }

    /// The upper bound of the wait before the next retry: `min(initial *
    /// multiplier^since_pushback, max)`.
    pub(crate) fn backoff_bound(&self, since_pushback: u32) -> Duration {
        let exponent = i32::try_from(since_pushback).unwrap_or(i32::MAX);
        let scaled = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        if !scaled.is_finite() || scaled >= self.max_backoff.as_secs_f64() {
            self.max_backoff
        } else {
            Duration::from_secs_f64(scaled)
        }
    }

    /// Decides after a failed attempt; `state` is updated for a retry.
    pub(crate) fn decide(
        &self,
        failure: &Failure<'_>,
        state: &mut RetryState,
        throttle: Option<&Throttle>,
    ) -> Decision {
        let pushback = match failure.headers.map(pushback_of) {
            Some(Pushback::After(delay)) => Some(delay),
            Some(Pushback::Stop) => {
                // Counted as a failure for throttling (grpc-go), whatever the code.
                if let Some(t) = throttle {
                    t.failure();
                }
                return Decision::Stop(StopReason::Pushback);
            }
            Some(Pushback::None) | None => None,
        };
        if !self.retries(failure.code) {
            return Decision::Stop(StopReason::NotRetryable);
        }
        // Counted as a failure only when the code is retryable (grpc-go's order).
        if throttle.is_some_and(Throttle::failure) {
            return Decision::Stop(StopReason::Throttled);
        }
        if state.attempts >= self.max_attempts {
            return Decision::Stop(StopReason::Attempts);
        }
        let delay = match pushback {
            Some(delay) => {
                state.since_pushback = 0;
                delay
            }
            None => {
                let bound = self.backoff_bound(state.since_pushback);
                state.since_pushback += 1;
                bound.mul_f64(fastrand::f64())
            }
        };
        Decision::RetryAfter {
            delay,
            pushback: pushback.is_some(),
        }
    }
}

/// What the server's `grpc-retry-pushback-ms` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushback {
    /// No pushback.
    None,
    /// Retry (or hedge) after exactly this long.
    After(Duration),
    /// Do not retry (negative, malformed, or more than one value).
    Stop,
}

/// The pushback of a Trailers-Only response's headers.
pub(crate) fn pushback_of(headers: &HeaderMap) -> Pushback {
    let mut values = headers.get_all(&names::GRPC_RETRY_PUSHBACK_MS).iter();
    match (values.next(), values.next()) {
        (None, _) => Pushback::None,
        (Some(value), None) => {
            parse_pushback(value.as_bytes()).map_or(Pushback::Stop, Pushback::After)
        }
        (Some(_), Some(_)) => Pushback::Stop,
    }
}

/// `grpc-retry-pushback-ms`: a non-negative decimal integer of milliseconds.
fn parse_pushback(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephemos_config::value::Code as ConfigCode;
    use http::HeaderValue;

    fn rule(max_attempts: u32) -> RetryRule {
        RetryRule::new(&RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            backoff_multiplier: 2.0,
            retryable_status_codes: vec![ConfigCode::Unavailable].into(),
        })
    }

    fn unavailable() -> Failure<'static> {
        Failure {
            code: Code::Unavailable,
            headers: None,
        }
    }

    #[test]
    fn the_backoff_bound_grows_by_the_multiplier_up_to_the_max() {
        let r = rule(5);
        let ms = |n| r.backoff_bound(n).as_millis();
        assert_eq!(
            [ms(0), ms(1), ms(2), ms(3), ms(60)],
            [100, 200, 350, 350, 350]
        );
    }

    #[test]
    fn delays_are_full_jitter_below_the_bound() {
        let r = rule(5);
        let mut below_half = 0;
        for _ in 0..2000 {
            let mut state = RetryState {
                attempts: 1,
                since_pushback: 0,
            };
            let Decision::RetryAfter { delay, pushback } =
                r.decide(&unavailable(), &mut state, None)
            else {
                panic!("retried");
            };
            assert!(!pushback);
            assert!(delay < Duration::from_millis(100), "{delay:?}");
            below_half += usize::from(delay < Duration::from_millis(50));
            assert_eq!(state.since_pushback, 1);
        }
        // Uniform on [0, 100ms): about half below 50ms (not +-20% around 100ms).
        assert!((800..1200).contains(&below_half), "{below_half}");
    }

    #[test]
    fn attempts_stop_at_max_attempts_and_only_retryable_codes_retry() {
        let r = rule(3);
        let mut state = RetryState {
            attempts: 3,
            since_pushback: 0,
        };
        assert_eq!(
            r.decide(&unavailable(), &mut state, None),
            Decision::Stop(StopReason::Attempts)
        );
        state.attempts = 1;
        let internal = Failure {
            code: Code::Internal,
            headers: None,
        };
        assert_eq!(
            r.decide(&internal, &mut state, None),
            Decision::Stop(StopReason::NotRetryable)
        );
    }

    #[test]
    fn pushback_sets_the_delay_and_resets_the_backoff_or_stops() {
        let r = rule(5);
        let mut headers = HeaderMap::new();
        headers.insert(
            &names::GRPC_RETRY_PUSHBACK_MS,
            HeaderValue::from_static("300"),
        );
        let failure = Failure {
            code: Code::Unavailable,
            headers: Some(&headers),
        };
        let mut state = RetryState {
            attempts: 2,
            since_pushback: 3,
        };
        assert_eq!(
            r.decide(&failure, &mut state, None),
            Decision::RetryAfter {
                delay: Duration::from_millis(300),
                pushback: true
            }
        );
        assert_eq!(state.since_pushback, 0);
        for stop in ["-1", "soon", "1.5", ""] {
            headers.insert(
                &names::GRPC_RETRY_PUSHBACK_MS,
                HeaderValue::from_static(stop),
            );
            let failure = Failure {
                code: Code::Unavailable,
                headers: Some(&headers),
            };
            assert_eq!(
                r.decide(&failure, &mut state, None),
                Decision::Stop(StopReason::Pushback),
                "{stop:?}"
            );
        }
        headers.insert(
            &names::GRPC_RETRY_PUSHBACK_MS,
            HeaderValue::from_static("1"),
        );
        headers.append(
            &names::GRPC_RETRY_PUSHBACK_MS,
            HeaderValue::from_static("2"),
        );
        let failure = Failure {
            code: Code::Unavailable,
            headers: Some(&headers),
        };
        assert_eq!(
            r.decide(&failure, &mut state, None),
            Decision::Stop(StopReason::Pushback)
        );
    }
}
