//! One call through the retry layer: it owns the request body, sends attempts, and
//! decides what may be sent again.
//!
//! Today that is gRFC A6's transparent retry: an attempt that never left the client is
//! sent again, as it is, any number of times within the deadline; one the server refused
//! before processing it is replayed once, on another connection where there is one, and
//! after that its refusal is the call's status. The deadline (set once by the facade)
//! bounds every attempt and the wait for response headers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Waker};

use http::{Request, Response};
use tokio::time::timeout_at;
use tonic::{Code, Status};

use super::Shared;
use super::committed::{CallHandle, Committed};
use super::replay::{AttemptBody, ReplayHead, ReplaySource};
use crate::call::{AttemptError, CallOptions};
use crate::error::status;

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
    B: Send + 'static,
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
    Box::pin(run(service, shared, request, options, source, call))
}

async fn run<S, B>(
    mut service: S,
    shared: Arc<Shared>,
    mut request: Request<AttemptBody>,
    options: CallOptions,
    source: Arc<ReplaySource>,
    call: CallHandle,
) -> Result<Response<Committed<B>>, Status>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>,
{
    let mut refusals = 0;
    loop {
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
        match outcome {
            Ok(response) => {
                // Response headers commit the call (a Trailers-Only response ends it).
                source.commit();
                return Ok(response.map(|body| Committed::new(body, call)));
            }
            Err(AttemptError::Unsent(unsent)) => {
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
                shared.transparent_retries.fetch_add(1, Ordering::Relaxed);
                request = *unsent;
                // A connection that hands calls back is closing; let it.
                tokio::task::yield_now().await;
            }
            Err(AttemptError::Refused { status, subchannel }) if refusals == 0 => {
                refusals += 1;
                let Some(body) = source.attempt() else {
                    return Err(Status::new(
                        status.code(),
                        format!(
                            "{}; not sent again: it sent more than its replay buffer holds (256 KiB a call, 16 MiB a channel)",
                            status.message()
                        ),
                    ));
                };
                shared.transparent_retries.fetch_add(1, Ordering::Relaxed);
                request = source.replay_request(body, subchannel);
            }
            Err(AttemptError::Refused { status, .. } | AttemptError::Failed(status)) => {
                return Err(source.failure().unwrap_or(status));
            }
        }
    }
}
