//! The gRPC service config (grpc/grpc `doc/service_config.md`, gRFC A6): typed, rendered
//! to the canonical JSON grpc-go accepts, and parsed back with grpc-go's rules.
//!
//! Every type here can be built in a `const`, so the attribute macro can bake a client's
//! policy into the binary and the runtime never parses JSON.

mod parse;
mod render;
mod rules;

pub use parse::JsonProblem;

use std::borrow::Cow;
use std::time::Duration;

use crate::value::Code;

/// The highest `maxAttempts` gRPC honours; we reject larger values instead of capping.
pub const MAX_ATTEMPTS_LIMIT: u32 = 5;
/// The highest `maxTokens` of `retryThrottling` (gRFC A6).
pub const MAX_TOKENS_LIMIT: u32 = 1000;

/// A whole service config: per-method policies and the channel's retry throttling.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceConfig {
    /// `methodConfig`: the first entry whose names match a call applies to it.
    pub method_configs: Cow<'static, [MethodConfig]>,
    /// `retryThrottling`: a token bucket shared by every call of the channel.
    pub retry_throttling: Option<RetryThrottling>,
    /// `connectionScaling` (gRFC A105): how far the pool grows.
    pub connection_scaling: Option<ConnectionScaling>,
}

/// `connectionScaling` (gRFC A105, the key grpc-core 1.84 reads): the pool opens up to
/// this many connections per endpoint when every one is full; the same as
/// `pool.max_size`, which it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionScaling {
    /// `maxConnectionsPerSubchannel`, 1..=64.
    pub max_connections_per_subchannel: u32,
}

/// One `methodConfig` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodConfig {
    /// The methods (or whole services) this entry applies to.
    pub names: Cow<'static, [MethodName]>,
    /// `timeout`: the deadline of a call, across all its attempts.
    pub timeout: Option<Duration>,
    /// `waitForReady`: wait for a connection instead of failing fast.
    pub wait_for_ready: Option<bool>,
    /// `retryPolicy` or `hedgingPolicy`, never both.
    pub policy: Option<CallPolicy>,
}

/// A `name` entry: a service, or one method of it; `service = ""` is the default for all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MethodName {
    /// Fully qualified service name (`payments.v1.Payments`), or empty for every service.
    pub service: Cow<'static, str>,
    /// A method of that service, or `None` for all its methods.
    pub method: Option<Cow<'static, str>>,
}

impl MethodName {
    /// The entry that matches every method of every service.
    pub const ALL: MethodName = MethodName {
        service: Cow::Borrowed(""),
        method: None,
    };

    /// `service/method`, `service/*` or `*`, for messages.
    pub fn path(&self) -> String {
        match (&*self.service, &self.method) {
            ("", _) => "*".to_owned(),
            (service, Some(method)) => format!("{service}/{method}"),
            (service, None) => format!("{service}/*"),
        }
    }
}

/// How failed calls of a method are retried.
#[derive(Debug, Clone, PartialEq)]
pub enum CallPolicy {
    /// `retryPolicy`: try again after a failure, with exponential backoff.
    Retry(RetryPolicy),
    /// `hedgingPolicy`: send more attempts without waiting for the first to fail.
    Hedging(HedgingPolicy),
}

/// `retryPolicy` (gRFC A6).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included: 2..=5.
    pub max_attempts: u32,
    /// Backoff before the first retry (randomised, see the runtime).
    pub initial_backoff: Duration,
    /// Upper bound of the backoff.
    pub max_backoff: Duration,
    /// Growth of the backoff per retry.
    pub backoff_multiplier: f64,
    /// Statuses that may be retried; never empty, never `OK`.
    pub retryable_status_codes: Cow<'static, [Code]>,
}

/// `hedgingPolicy` (gRFC A6).
#[derive(Debug, Clone, PartialEq)]
pub struct HedgingPolicy {
    /// Attempts in all, the first one included: 2..=5.
    pub max_attempts: u32,
    /// Delay between sending two attempts.
    pub hedging_delay: Duration,
    /// Statuses that do not stop the other attempts.
    pub non_fatal_status_codes: Cow<'static, [Code]>,
}

/// `retryThrottling` (gRFC A6): retries stop while tokens <= max_tokens / 2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryThrottling {
    /// Bucket size, 1..=1000.
    pub max_tokens: u32,
    /// Tokens a success gives back, > 0, three decimals kept.
    pub token_ratio: f64,
}

/// Keeps three decimals of a token ratio, as gRFC A6 asks (more precision is ignored).
pub fn truncate_token_ratio(ratio: f64) -> f64 {
    let thousandths = ratio * 1000.0;
    // 1.005 * 1000 is 1004.999...: a whole number of thousandths up to float error
    // keeps its value instead of losing one.
    let nearest = thousandths.round();
    let kept = if (thousandths - nearest).abs() < 1e-6 {
        nearest
    } else {
        thousandths.trunc()
    };
    kept / 1000.0
}
