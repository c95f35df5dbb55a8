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
use std::task::Poll;

use http::{Extensions, HeaderMap, Method, Request, Response, Uri, Version};
use tokio::time::timeout_at;
use tonic::{Code, Status};

use super::Shared;
use super::committed::{CallHandle, Committed};
use super::replay::{AttemptBody, ReplaySource};
use crate::call::{AttemptError, CallOptions, SubchannelId};
use crate::error::status;

/// The future of a call through [`super::Retry`].
pub(crate) type ResponseFuture<B> =
    Pin<Box<dyn Future<Output = Result<Response<Committed<B>>, Status>> + Send>>;

/// What a replay needs of the request besides its body.
struct ReplayHead {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    options: CallOptions,
}

impl ReplayHead {
    fn keep(parts: &http::request::Parts, options: CallOptions) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            options,
        }
    }

    /// The request of a replay; `avoid` is the connection that refused the last attempt.
    fn request(&self, body: AttemptBody, avoid: SubchannelId) -> Request<AttemptBody> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        let mut extensions = Extensions::new();
        extensions.insert(CallOptions {
            avoid: Some(avoid),
            ..self.options
        });
        *request.extensions_mut() = extensions;
        request
    }
}

pub(super) async fn run<S, B>(
    mut service: S,
    shared: Arc<Shared>,
    request: Request<tonic::body::Body>,
) -> Result<Response<Committed<B>>, Status>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>,
{
    let options = CallOptions::of(&request);
    let (parts, body) = request.into_parts();
    let source = ReplaySource::new(
        body,
        shared.send_limit,
        shared.budget.clone(),
        shared.target.clone(),
    );
    // Whatever way this call ends before it commits, its request stream stops.
    let call = CallHandle::new(source.clone());
    std::future::poll_fn(|cx| Poll::Ready(source.prefetch(cx))).await?;
    let head = ReplayHead::keep(&parts, options);
    let Some(first) = source.attempt() else {
        return Err(status(
            Code::Internal,
            &shared.target,
            "the request body is unavailable",
        ));
    };
    let mut request = Request::from_parts(parts, first);
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
                request = head.request(body, subchannel);
            }
            Err(AttemptError::Refused { status, .. } | AttemptError::Failed(status)) => {
                return Err(source.failure().unwrap_or(status));
            }
        }
    }
}
