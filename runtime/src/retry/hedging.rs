//! A method's hedging policy (gRFC A6 `hedgingPolicy`): the first attempt at once, one
//! more every `hedging_delay` (up to `max_attempts`, all at once for a zero delay) until
//! one commits. A6's summary, as applied here:
//!
//! 1. OK (or response headers): that attempt wins; every other is cancelled on the wire.
//! 2. A non-fatal status: the next hedge goes at once; later ones resume at the delay.
//! 3. A fatal status: every other attempt is cancelled; the caller gets it.
//! 4. Pushback "don't retry" (negative or malformed): no more hedges; those in flight go
//!    on. Pushback of n ms: the next hedge goes after n ms, later ones at the delay.
//! 5. Throttling: a non-fatal failure (or a pushback saying stop) takes a token; a hedge
//!    is sent only while tokens > max / 2. The first attempt is always sent.
//!
//! The caller gets the last failure once every attempt has failed and no more can be
//! sent. A request past the replay buffer commits to the attempt furthest along.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ephemos_config::service_config::HedgingPolicy;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::{Request, Response};
use tokio::time::{Instant, sleep_until, timeout_at};
use tonic::{Code, Status};

use super::Shared;
use super::committed::{CallHandle, Committed};
use super::future::{Outcome, no_retry_fits, trailers_only_failure};
use super::policy::{Pushback, pushback_of};
use super::replay::{AttemptBody, ReplaySource};
use super::unsent::UnsentRetries;
use crate::call::{AttemptError, CallOptions};
use crate::error::status;
use crate::protocol::names;
use crate::telemetry::retries::CallRetries;

/// A hedging policy, ready for decisions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HedgingRule {
    max_attempts: u32,
    delay: Duration,
    /// Bit `n` set: code `n` is non-fatal.
    non_fatal: u32,
}

impl HedgingRule {
    pub(crate) fn new(policy: &HedgingPolicy) -> Self {
        Self {
            max_attempts: policy.max_attempts,
            delay: policy.hedging_delay,
            non_fatal: policy
                .non_fatal_status_codes
                .iter()
                .fold(0u32, |bits, code| bits | 1 << code.number()),
        }
    }

    fn is_fatal(&self, code: Code) -> bool {
        !((code as i32) < 32 && self.non_fatal & (1 << code as i32) != 0)
    }
}

/// Reads a Trailers-Only response's body to its end, which it is at (END_STREAM came
/// with the headers): its connection stops counting the attempt in flight now, not when
/// the hedged call ends, since the response is kept only in case it is the call's last.
fn release<B: http_body::Body + Unpin>(response: &mut Response<B>) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = std::pin::Pin::new(response.body_mut()).poll_frame(&mut cx);
}

/// An attempt's future, tagged with its number.
async fn tagged<F: Future>(id: u64, attempt: F) -> (u64, F::Output) {
    (id, attempt.await)
}

/// The hedged call: sends attempts and returns the first that commits.
// The call's parts, as `future::run` takes them, and the rule and counts of hedging.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run<S, B>(
    mut service: S,
    shared: Arc<Shared>,
    first: Request<AttemptBody>,
    options: CallOptions,
    source: Arc<ReplaySource>,
    call: CallHandle,
    rule: &HedgingRule,
    counts: &mut CallRetries,
) -> Result<Response<Committed<B>>, Status>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>,
    B: http_body::Body + Unpin,
{
    let hedged = hedge(
        &mut service,
        &shared,
        first,
        &source,
        (rule, options.deadline),
        counts,
    );
    let ending = match options.deadline {
        Some(deadline) => match timeout_at(deadline, hedged).await {
            Ok(ending) => ending,
            Err(_) => Err(source.failure().unwrap_or_else(|| {
                status(
                    Code::DeadlineExceeded,
                    &shared.target,
                    "deadline exceeded waiting for response headers of any hedged attempt",
                )
            })),
        },
        None => hedged.await,
    };
    // Whatever won, the others stop (cancelled on the wire) and the buffer is released.
    match &ending {
        Ok((id, _)) => source.commit_to(*id),
        Err(_) => source.commit(),
    }
    ending.map(|(_, response)| response.map(|body| Committed::new(body, call, shared)))
}

async fn hedge<S, B>(
    service: &mut S,
    shared: &Arc<Shared>,
    first: Request<AttemptBody>,
    source: &Arc<ReplaySource>,
    (rule, deadline): (&HedgingRule, Option<Instant>),
    counts: &mut CallRetries,
) -> Result<(u64, Response<B>), Status>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>,
    B: http_body::Body + Unpin,
{
    let mut in_flight = FuturesUnordered::new();
    let first_id = first.body().id();
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(AttemptError::into_status)?;
    in_flight.push(tagged(first_id, service.call(first)));
    let mut sent = 1u32;
    let mut next_at = Some(Instant::now() + rule.delay);
    let mut last: Option<Outcome<B>> = None;
    let mut refusals = 0;
    let mut unsent = UnsentRetries::default();
    loop {
        // Send every hedge that is due (all at once for a zero delay).
        while sent < rule.max_attempts && next_at.is_some_and(|at| at <= Instant::now()) {
            let throttled = shared.throttle.as_ref().is_some_and(|t| t.is_throttled());
            let body = if throttled { None } else { source.hedge() };
            let Some(body) = body else {
                // Throttled, or committed (the request outgrew its buffer): no more.
                if throttled {
                    shared.counts.throttled.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target = %shared.target, sent, "hedging throttled: the channel's retry tokens are at half or below");
                }
                next_at = None;
                break;
            };
            let id = body.id();
            let request = source.replay_request(body, None, sent);
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(AttemptError::into_status)?;
            in_flight.push(tagged(id, service.call(request)));
            shared.counts.hedges.fetch_add(1, Ordering::Relaxed);
            counts.hedges += 1;
            sent += 1;
            next_at = Some(Instant::now() + rule.delay);
        }
        let more = sent < rule.max_attempts && next_at.is_some();
        if in_flight.is_empty() && !more {
            return match last {
                Some(Outcome::TrailersOnly(response, _)) => Ok((0, response)),
                Some(Outcome::Failed(status)) => Err(status),
                None => Err(status(
                    Code::Unavailable,
                    &shared.target,
                    "no hedged attempt could be sent",
                )),
            };
        }
        let (id, outcome) = tokio::select! {
            Some(done) = in_flight.next() => done,
            () = sleep_until(next_at.unwrap_or_else(Instant::now)), if more => continue,
        };
        if let Some(failure) = source.failure() {
            // The request itself failed: whatever this attempt ended with, that is
            // the call's status, and no hedge follows (none can start).
            return Err(failure);
        }
        if !source.is_live(id) {
            // Stopped by a commit to another attempt (the request outgrew its buffer):
            // whatever it ended with says nothing about the call.
            continue;
        }
        if !matches!(outcome, Err(AttemptError::Unsent(_))) {
            unsent.sent();
        }
        let mut failed = match outcome {
            Ok(response) => match trailers_only_failure(&response) {
                Some(code) => Outcome::TrailersOnly(response, code),
                None => {
                    if let (Some(throttle), true) = (
                        &shared.throttle,
                        response.headers().contains_key(&names::GRPC_STATUS),
                    ) {
                        throttle.success();
                    }
                    return Ok((id, response));
                }
            },
            Err(AttemptError::Unsent(returned)) => {
                // Never left the client: the same attempt goes again (transparent),
                // paced and bounded.
                if let Err(times) = unsent.pause(None).await {
                    Outcome::Failed(super::unsent::gave_up(&shared.target, times))
                } else {
                    shared.count_transparent_retry(counts);
                    std::future::poll_fn(|cx| service.poll_ready(cx))
                        .await
                        .map_err(AttemptError::into_status)?;
                    in_flight.push(tagged(id, service.call(*returned)));
                    continue;
                }
            }
            Err(AttemptError::Refused { subchannel, .. }) if refusals == 0 => {
                // Refused unprocessed: sent again once, elsewhere, not counted (A6).
                refusals += 1;
                if let Some(body) = source.hedge() {
                    source.cancel_attempt(id);
                    let again = body.id();
                    let request = source.replay_request(body, Some(subchannel), sent - 1);
                    shared.count_transparent_retry(counts);
                    std::future::poll_fn(|cx| service.poll_ready(cx))
                        .await
                        .map_err(AttemptError::into_status)?;
                    in_flight.push(tagged(again, service.call(request)));
                    continue;
                }
                Outcome::Failed(Status::unavailable(
                    "refused by the server before processing; not sent again: the call committed",
                ))
            }
            // A failed pick is final (docs/design.md section 5): no more hedges go
            // to a failing channel, none takes a throttling token; the call ends with
            // it unless an attempt already sent may still answer.
            Err(AttemptError::NoConnection(status)) => {
                next_at = None;
                if in_flight.is_empty() {
                    return Err(status);
                }
                last = Some(Outcome::Failed(status));
                continue;
            }
            Err(AttemptError::Refused { status, .. } | AttemptError::Failed(status)) => {
                Outcome::Failed(status)
            }
        };
        let (code, headers) = match &failed {
            Outcome::Failed(status) => (status.code(), None),
            Outcome::TrailersOnly(response, code) => (*code, Some(response.headers())),
        };
        if rule.is_fatal(code) {
            return match failed {
                Outcome::TrailersOnly(response, _) => Ok((id, response)),
                Outcome::Failed(status) => Err(status),
            };
        }
        // Non-fatal: a failure for throttling, and the next hedge goes now, or after the
        // server's pushback, or never.
        if let Some(throttle) = &shared.throttle {
            throttle.failure();
        }
        next_at = match headers.map(pushback_of) {
            Some(Pushback::Stop) => None,
            Some(Pushback::After(delay)) => Some(Instant::now() + delay),
            Some(Pushback::None) | None => Some(Instant::now()),
        };
        if !source.is_keeping() {
            next_at = None;
        }
        source.cancel_attempt(id);
        if let (Some(at), Some(deadline)) = (next_at, deadline)
            && at >= deadline
            && in_flight.is_empty()
        {
            // The same rule as retries: nothing is in flight and the next hedge could
            // not go before the deadline, so the call ends now with this status.
            let now = Instant::now();
            let note = no_retry_fits(deadline, at.saturating_duration_since(now), sent);
            return failed
                .into_result_noting(&note)
                .map(|response| (id, response));
        }
        if let Outcome::TrailersOnly(response, _) = &mut failed {
            release(response);
        }
        last = Some(failed);
    }
}
