//! One call through the retry layer: it owns the request body, sends attempts, and
//! decides what may be sent again.
//!
//! gRFC A6:
//! - **Transparent retry**: an attempt that never left the client is sent again, as it
//!   is, within the deadline, paced and at most 16 times in a row ([`super::unsent`]);
//!   one the server refused before
//!   processing it is replayed once, on another connection where there is one. Neither
//!   counts as an attempt.
//! - **The method's retry policy**: after a failed attempt that did not commit (a
//!   failure before any response, or a Trailers-Only response), [`super::policy`]
//!   decides; a retry waits its backoff, replays the request from the buffer and carries
//!   `grpc-previous-rpc-attempts`. Response headers that are not Trailers-Only commit
//!   the call; so does a request larger than the replay buffer.
//! - **The deadline** (set once by the facade) bounds every attempt, the wait for
//!   response headers and every backoff. A retry whose backoff would end past it is
//!   not made: the call ends at once with the last attempt's own status, its message
//!   saying that no retry fits in the time left (docs/design.md section 5, "Retry":
//!   DEADLINE_EXCEEDED would say the time ran out, which it had not).
//! - **A failed pick is final** ([`AttemptError::NoConnection`]) once the channel has
//!   not been READY for a connection attempt's time: nothing was sent, and a retry would
//!   pick against the same failing channel after its backoff.
//! - **A failed request is final**: once the caller's request stream failed (its error,
//!   a message over the send limit), that is the call's status whatever the attempt
//!   ended with, and no attempt follows ([`ReplaySource`] refuses one).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Waker};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::{Instant, timeout_at};
use tonic::{Code, Status};

use super::committed::{CallHandle, Committed};
use super::policy::{Decision, Failure, RetryState, StopReason};
use super::replay::{AttemptBody, ReplayHead, ReplaySource};
use super::unsent::UnsentRetries;
use super::{CallRule, Shared};
use crate::call::{AttemptError, CallOptions};
use crate::error::status;
use crate::protocol::names;
use crate::telemetry::labels::CallLabels;
use crate::telemetry::retries::{CallRetries, RetriesRecord};

/// The future of a call through [`super::Retry`].
pub(crate) type ResponseFuture<B> =
    Pin<Box<dyn Future<Output = Result<Response<Committed<B>>, Status>> + Send>>;

/// Prepares a call without waiting: splits the request, keeps what a replay needs, and
/// reads the first message if it is ready (so a message over the send limit fails before
/// any stream opens). The rest is [`run`].
pub(super) fn start<S, B>(
    service: S,
    shared: Arc<Shared>,
    request: Request<tonic::body::Body>,
) -> ResponseFuture<B>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>
        + Send
        + 'static,
    S::Future: Send,
    B: http_body::Body + Unpin + Send + 'static,
{
    let options = CallOptions::of(&request);
    let (parts, body) = request.into_parts();
    let source = ReplaySource::new(
        body,
        ReplayHead::keep(&parts, options),
        shared.send_limit,
        shared.budget.clone(),
        shared.target.clone(),
    );
    // Whatever way this call ends before it commits, its request stream stops.
    let call = CallHandle::new(source.clone());
    // A waker that does nothing is enough: whoever reads the body next polls it again.
    let mut cx = Context::from_waker(Waker::noop());
    if let Err(status) = source.prefetch(&mut cx) {
        return Box::pin(std::future::ready(Err(status)));
    }
    let Some(first) = source.attempt() else {
        return Box::pin(std::future::ready(Err(status(
            Code::Internal,
            &shared.target,
            "the request body is unavailable",
        ))));
    };
    let request = Request::from_parts(parts, first);
    // A96's counts are recorded when the attempts are over, or when the caller drops
    // the call while they go on.
    let record = RetriesRecord::new(CallLabels::from_request(&request, &shared.telemetry));
    if let Some(CallRule::Hedging(rule)) = shared.rule(options.policy) {
        let rule = *rule;
        return Box::pin(async move {
            // The whole record moves in (not only its counts), so it drops here.
            let mut record = record;
            super::hedging::run(
                service,
                shared.clone(),
                request,
                options,
                source,
                call,
                &rule,
                &mut record.counts,
            )
            .await
        });
    }
    Box::pin(async move {
        let mut record = record;
        run(
            service,
            shared.clone(),
            request,
            options,
            source,
            call,
            &mut record.counts,
        )
        .await
    })
}

/// What an attempt that did not commit ended with.
pub(super) enum Outcome<B> {
    /// A Trailers-Only response with a failure status: not a commit (A6), and the
    /// caller gets it as it is (its metadata included) when it is not retried.
    TrailersOnly(Response<B>, Code),
    /// A failure before any response (a connection that failed, a reset, a refusal
    /// after its one transparent retry, a proxy's HTTP error).
    Failed(Status),
}

impl<B> Outcome<B> {
    /// What the caller gets when the attempt is the call's last.
    fn into_result(self) -> Result<Response<B>, Status> {
        match self {
            Outcome::TrailersOnly(response, _) => Ok(response),
            Outcome::Failed(status) => Err(status),
        }
    }

    /// What the caller gets when the attempt is the call's last for a reason the
    /// attempt's status does not say: that status, its message followed by `note`.
    /// A Trailers-Only response keeps its metadata; the note goes at the end of its
    /// `grpc-message` (`note` is printable ASCII without `%`, so it needs no
    /// percent-encoding).
    pub(super) fn into_result_noting(self, note: &str) -> Result<Response<B>, Status> {
        match self {
            Outcome::TrailersOnly(mut response, _) => {
                let headers = response.headers_mut();
                let mut message = headers
                    .get(&names::GRPC_MESSAGE)
                    .map(|v| v.as_bytes().to_vec())
                    .filter(|m| !m.is_empty())
                    .map(|mut m| {
                        m.extend_from_slice(b"; ");
                        m
                    })
                    .unwrap_or_default();
                message.extend(
                    note.bytes()
                        .filter(|b| (0x20..0x7f).contains(b) && *b != b'%'),
                );
                if let Ok(value) = http::HeaderValue::from_bytes(&message) {
                    headers.insert(&names::GRPC_MESSAGE, value);
                }
                Ok(response)
            }
            Outcome::Failed(status) => Err(Status::with_details_and_metadata(
                status.code(),
                format!("{}; {note}", status.message()),
                status.details().to_vec().into(),
                status.metadata().clone(),
            )),
        }
    }
}

/// Why an attempt is the call's last though the deadline has not passed: the next one
/// could not go before it (after `delay`, following attempt `attempts`). Whole
/// milliseconds, in printable ASCII, as a `grpc-message` may carry unencoded.
pub(super) fn no_retry_fits(deadline: Instant, delay: Duration, attempts: u32) -> String {
    let left = deadline.saturating_duration_since(Instant::now());
    format!(
        "not retried: no retry fits in the time left ({} ms; the next attempt after attempt \
         {attempts} would wait {} ms)",
        left.as_millis(),
        delay.as_millis()
    )
}

/// The status of a Trailers-Only response: `Some` for a failure, `None` for OK or a
/// response with headers (which commits).
pub(super) fn trailers_only_failure<B>(response: &Response<B>) -> Option<Code> {
    let value = response.headers().get(&names::GRPC_STATUS)?;
    let code = std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32);
    (code != Code::Ok).then_some(code)
}

async fn run<S, B>(
    mut service: S,
    shared: Arc<Shared>,
    mut request: Request<AttemptBody>,
    options: CallOptions,
    source: Arc<ReplaySource>,
    call: CallHandle,
    counts: &mut CallRetries,
) -> Result<Response<Committed<B>>, Status>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>,
{
    let rule = match shared.rule(options.policy) {
        Some(CallRule::Retry(rule)) => Some(rule.clone()),
        _ => None,
    };
    let rule = rule.as_ref();
    let mut refusals = 0;
    let mut unsent = UnsentRetries::default();
    let mut retry = RetryState {
        attempts: 1,
        since_pushback: 0,
    };
    let ending = loop {
        let outcome = match std::future::poll_fn(|cx| service.poll_ready(cx)).await {
            Err(error) => Err(error),
            Ok(()) => {
                let attempt = service.call(request);
                match options.deadline {
                    Some(deadline) => match timeout_at(deadline, attempt).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            return Err(source.failure().unwrap_or_else(|| {
                                status(
                                    Code::DeadlineExceeded,
                                    &shared.target,
                                    "deadline exceeded waiting for response headers",
                                )
                            }));
                        }
                    },
                    None => attempt.await,
                }
            }
        };
        if let Some(failure) = source.failure()
            && !matches!(&outcome, Ok(r) if !r.headers().contains_key(&names::GRPC_STATUS))
        {
            // The request itself failed (a race: the attempt ended its own way before
            // it noticed): that is the call's status, and no attempt follows.
            return Err(failure);
        }
        if !matches!(outcome, Err(AttemptError::Unsent(_))) {
            unsent.sent();
        }
        let failed = match outcome {
            Ok(response) => {
                // Without a policy or throttling, nothing here looks at the headers.
                let failure = if rule.is_some() || shared.throttle.is_some() {
                    trailers_only_failure(&response)
                } else {
                    None
                };
                match failure {
                    Some(code) if rule.is_some() => Outcome::TrailersOnly(response, code),
                    _ => {
                        // A Trailers-Only OK is a success for throttling; other responses
                        // report their status in their trailers (see `Committed`).
                        if let Some(throttle) = &shared.throttle
                            && failure.is_none()
                            && response.headers().contains_key(&names::GRPC_STATUS)
                        {
                            throttle.success();
                        }
                        break Ok(response);
                    }
                }
            }
            Err(AttemptError::Unsent(returned)) => {
                if options
                    .deadline
                    .is_some_and(|deadline| deadline <= tokio::time::Instant::now())
                {
                    return Err(status(
                        Code::DeadlineExceeded,
                        &shared.target,
                        "deadline exceeded before the call was sent",
                    ));
                }
                if let Err(times) = unsent.pause(options.deadline).await {
                    return Err(super::unsent::gave_up(&shared.target, times));
                }
                shared.count_transparent_retry(counts);
                request = *returned;
                continue;
            }
            // Nothing was sent and a retry would pick against the same failing channel.
            Err(AttemptError::NoConnection(status)) => return Err(status),
            Err(AttemptError::Refused { status, subchannel }) if refusals == 0 => {
                refusals += 1;
                let Some(body) = source.attempt() else {
                    if let Some(failure) = source.failure() {
                        return Err(failure);
                    }
                    return Err(Status::new(
                        status.code(),
                        format!(
                            "{}; not sent again: it sent more than its replay buffer holds (256 KiB a call, 16 MiB a channel)",
                            status.message()
                        ),
                    ));
                };
                shared.count_transparent_retry(counts);
                request = source.replay_request(body, Some(subchannel), retry.attempts - 1);
                continue;
            }
            Err(AttemptError::Refused { status, .. } | AttemptError::Failed(status)) => {
                Outcome::Failed(status)
            }
        };
        let Some(rule) = rule else {
            break failed.into_result();
        };
        let (code, headers) = match &failed {
            Outcome::Failed(status) => (status.code(), None),
            Outcome::TrailersOnly(response, code) => (*code, Some(response.headers())),
        };
        let decision = rule.decide(
            &Failure { code, headers },
            &mut retry,
            shared.throttle.as_ref(),
        );
        let delay = match decision {
            Decision::Stop(reason) => {
                if reason == StopReason::Throttled {
                    shared.counts.throttled.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target = %shared.target, attempts = retry.attempts, "retry throttled: the channel's retry tokens are at half or below");
                }
                break failed.into_result();
            }
            Decision::RetryAfter { delay, .. } => delay,
        };
        let wake_at = Instant::now() + delay;
        if let Some(deadline) = options.deadline
            && wake_at >= deadline
        {
            // No backoff outlives the call, and the time has not run out: the caller
            // gets what the last attempt ended with, now, and why it is the last.
            break failed.into_result_noting(&no_retry_fits(deadline, delay, retry.attempts));
        }
        // The next attempt's body replays what was sent; `None` once the call sent more
        // than its buffer holds, which commits it: the failure is final.
        let Some(body) = source.attempt() else {
            break failed.into_result();
        };
        drop(failed);
        tokio::time::sleep_until(wake_at).await;
        shared.counts.retries.fetch_add(1, Ordering::Relaxed);
        counts.retries += 1;
        counts.retry_delay += delay;
        shared.counts.retry_delay_ns.fetch_add(
            u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        request = source.replay_request(body, None, retry.attempts);
        retry.attempts += 1;
    };
    // The response commits the call: no attempt follows, the buffer is released.
    source.commit();
    ending.map(|response| response.map(|body| Committed::new(body, call, shared)))
}
