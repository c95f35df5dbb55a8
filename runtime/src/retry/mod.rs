//! The retry layer: it owns each call's request body and its replay buffer, sends the
//! call's attempts through the layer below (the pool), and decides from each attempt's
//! outcome whether to send it again (docs/design.md section 5, "Retry").
//!
//! It does gRFC A6's transparent retry and the methods' retry policies (see [`future`])
//! and hedging policies (see [`hedging`]).
//!
//! - [`Retry`] is the `tower::Service`, [`RetryLayer`] its `Layer`.
//! - [`policy`]: a retry policy and the decision after a failed attempt.
//! - [`hedging`]: a hedging policy and the hedged call.
//! - [`throttle`]: the channel's retry throttling.
//! - [`replay`]: the call's body, kept (as `Bytes`) while uncommitted, and each
//!   attempt's [`AttemptBody`].
//! - [`budget`]: the channel's 16 MiB of replay buffers.
//! - [`committed`]: the response body that cancels the request stream when dropped.

mod budget;
mod committed;
mod future;
mod hedging;
mod layer;
mod policy;
mod replay;
mod throttle;
mod unsent;

pub(crate) use committed::Committed;
pub(crate) use future::ResponseFuture;
pub(crate) use layer::RetryLayer;
pub(crate) use replay::{AttemptBody, ReplaySource};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use ephemos_config::service_config::{CallPolicy, RetryThrottling};
use http::{Request, Response};
use tonic::Status;

use crate::call::AttemptError;
use budget::{CHANNEL_LIMIT, ReplayBudget};
use hedging::HedgingRule;
use policy::RetryRule;
use throttle::Throttle;

/// What the calls of one channel share in the retry layer.
pub(crate) struct Shared {
    target: Arc<str>,
    send_limit: u32,
    budget: Arc<ReplayBudget>,
    /// By `CallOptions::policy`.
    rules: Vec<CallRule>,
    throttle: Option<Throttle>,
    counts: Counts,
    telemetry: Arc<crate::telemetry::Telemetry>,
}

/// A method's call policy, ready for decisions.
enum CallRule {
    Retry(RetryRule),
    Hedging(HedgingRule),
}

/// What the retry layer did, for the channel's stats.
#[derive(Default)]
struct Counts {
    transparent_retries: AtomicU64,
    retries: AtomicU64,
    hedges: AtomicU64,
    throttled: AtomicU64,
    retry_delay_ns: AtomicU64,
}

impl Shared {
    fn new(
        target: Arc<str>,
        send_limit: u32,
        policies: &[CallPolicy],
        throttling: Option<&RetryThrottling>,
    ) -> Self {
        Self {
            telemetry: crate::telemetry::Telemetry::new(&target),
            target,
            send_limit,
            budget: Arc::new(ReplayBudget::new(CHANNEL_LIMIT)),
            rules: policies
                .iter()
                .map(|p| match p {
                    CallPolicy::Retry(retry) => CallRule::Retry(RetryRule::new(retry)),
                    CallPolicy::Hedging(hedging) => CallRule::Hedging(HedgingRule::new(hedging)),
                })
                .collect(),
            throttle: throttling.map(Throttle::new),
            counts: Counts::default(),
        }
    }

    fn rule(&self, index: Option<u16>) -> Option<&CallRule> {
        self.rules.get(usize::from(index?))
    }

    /// One more transparent retry, for the channel's stats and the call's A96 count.
    fn count_transparent_retry(&self, call: &mut crate::telemetry::retries::CallRetries) {
        self.counts
            .transparent_retries
            .fetch_add(1, Ordering::Relaxed);
        call.transparent_retries += 1;
    }
}

/// A snapshot of the retry layer's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RetryStats {
    pub(crate) transparent_retries: u64,
    pub(crate) retries: u64,
    pub(crate) hedges: u64,
    pub(crate) throttled: u64,
    pub(crate) retry_delay: std::time::Duration,
    /// Tokens of the retry throttling bucket, when it is on.
    pub(crate) throttle_tokens: Option<f64>,
}

/// The retry layer over an attempt-making service `S`.
#[derive(Clone)]
pub(crate) struct Retry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Retry<S> {
    /// Bytes held now in the replay buffers of this channel's calls.
    pub(crate) fn replay_buffer_bytes(&self) -> usize {
        self.shared.budget.held()
    }

    /// What the layer did so far.
    pub(crate) fn stats(&self) -> RetryStats {
        let counts = &self.shared.counts;
        RetryStats {
            transparent_retries: counts.transparent_retries.load(Ordering::Relaxed),
            retries: counts.retries.load(Ordering::Relaxed),
            hedges: counts.hedges.load(Ordering::Relaxed),
            throttled: counts.throttled.load(Ordering::Relaxed),
            retry_delay: std::time::Duration::from_nanos(
                counts.retry_delay_ns.load(Ordering::Relaxed),
            ),
            throttle_tokens: self.shared.throttle.as_ref().map(Throttle::tokens),
        }
    }
}

impl<S, B> tower::Service<Request<tonic::body::Body>> for Retry<S>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: http_body::Body + Unpin + Send + 'static,
{
    type Response = Response<Committed<B>>;
    type Error = Status;
    type Future = ResponseFuture<B>;

    /// Always ready: the layer below is asked per attempt.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        future::start(self.inner.clone(), self.shared.clone(), request)
    }
}

#[cfg(test)]
mod tests;
