//! [`AttemptMeter`]: the layer between retry and the pool that measures every attempt
//! (gRFC A66: `attempt.started`, `attempt.duration`, and the messages' bytes each way),
//! whichever way it ends: a response's trailers, a Trailers-Only response, an attempt
//! error, a body error, or the client dropping it (a hedge that lost, a deadline). Each
//! attempt runs in a `grpc.attempt` span, the call's child, where the pool writes the
//! connection it picked.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tonic::Code;

use super::Telemetry;
use super::keys;
use super::labels::{CallLabels, code_of, status_name};
use crate::call::{AttemptError, CallOptions};
use crate::protocol::message::MessageSizeCheck;
use crate::protocol::names as headers;
use crate::retry::{AttemptBody, ReplaySource};

/// Measures the attempts `inner` makes.
#[derive(Clone)]
pub(crate) struct AttemptMeter<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
}

impl<S> AttemptMeter<S> {
    pub(crate) fn new(inner: S, telemetry: Arc<Telemetry>) -> Self {
        Self { inner, telemetry }
    }
}

/// One attempt being measured, until it ends.
struct Record {
    labels: CallLabels,
    started: Instant,
    source: Arc<ReplaySource>,
    deadline: Option<Instant>,
    span: tracing::Span,
}

impl Record {
    fn finish(self, code: Code, received: u64) {
        let keys = self.labels.keys.status(code);
        keys::record(&keys.attempt_duration, self.started.elapsed().as_secs_f64());
        // The messages the call read from its caller so far: what this attempt sent or
        // was sending (exact for unary and server-streaming calls).
        keys::record(&keys.attempt_sent, self.source.message_bytes() as f64);
        keys::record(&keys.attempt_rcvd, received as f64);
        self.span.record("grpc.status", status_name(code));
    }

    /// The attempt stopped without a status of its own: the client gave up on it.
    fn abandoned(self, received: u64) {
        let code = if self.deadline.is_some_and(|d| d <= Instant::now()) {
            Code::DeadlineExceeded
        } else {
            Code::Cancelled
        };
        self.finish(code, received);
    }
}

impl<S, B> tower::Service<Request<AttemptBody>> for AttemptMeter<S>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>,
{
    type Response = Response<MeteredBody<B>>;
    type Error = AttemptError;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), AttemptError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<AttemptBody>) -> Self::Future {
        let labels = CallLabels::from_request(&request, &self.telemetry);
        let attempt = request
            .headers()
            .get(&headers::GRPC_PREVIOUS_RPC_ATTEMPTS)
            .and_then(|v| v.to_str().ok()?.parse::<u32>().ok())
            .unwrap_or(0);
        let span = tracing::debug_span!(
            "grpc.attempt",
            grpc.attempt = attempt,
            grpc.status = tracing::field::Empty,
            ephemos.connection = tracing::field::Empty,
            ephemos.peer = tracing::field::Empty,
        );
        keys::increment(&labels.keys.attempt_started, 1);
        let record = Record {
            labels,
            started: Instant::now(),
            source: request.body().source().clone(),
            deadline: CallOptions::of(&request).deadline,
            span: span.clone(),
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        MeteredFuture {
            inner,
            record: Some(record),
        }
    }
}

pin_project! {
    /// An attempt's response future, measured.
    pub(crate) struct MeteredFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }

    impl<F> PinnedDrop for MeteredFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(record) = this.project().record.take() {
                record.abandoned(0);
            }
        }
    }
}

impl<F, B> Future for MeteredFuture<F>
where
    F: Future<Output = Result<Response<B>, AttemptError>>,
{
    type Output = Result<Response<MeteredBody<B>>, AttemptError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.record.as_ref() {
            Some(record) => {
                let _entered = record.span.enter();
                this.inner.poll(cx)
            }
            None => this.inner.poll(cx),
        };
        let Poll::Ready(outcome) = polled else {
            return Poll::Pending;
        };
        let record = this.record.take();
        Poll::Ready(match outcome {
            Ok(response) => {
                // Trailers-Only: the attempt ends with its headers.
                let record = match (record, response.headers().get(&headers::GRPC_STATUS)) {
                    (Some(record), Some(value)) => {
                        record.finish(code_of(value), 0);
                        None
                    }
                    (record, _) => record,
                };
                Ok(response.map(|inner| MeteredBody {
                    inner,
                    record,
                    check: MessageSizeCheck::new(u32::MAX),
                }))
            }
            Err(error) => {
                if let Some(record) = record {
                    record.finish(error.code(), 0);
                }
                Err(error)
            }
        })
    }
}

pin_project! {
    /// An attempt's response body: the attempt ends with its trailers, an error, its
    /// end, or its drop.
    pub(crate) struct MeteredBody<B> {
        #[pin]
        inner: B,
        record: Option<Record>,
        check: MessageSizeCheck,
    }

    impl<B> PinnedDrop for MeteredBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(record) = this.record.take() {
                record.abandoned(this.check.message_bytes());
            }
        }
    }
}

impl<B: Body<Data = Bytes>> Body for MeteredBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if this.record.is_some() {
            let code = match &frame {
                Some(Ok(frame)) => match (frame.data_ref(), frame.trailers_ref()) {
                    (Some(data), _) => {
                        // Counting only: the facade enforces the receive limit.
                        let _ = this.check.feed(data);
                        None
                    }
                    (None, Some(trailers)) => Some(
                        trailers
                            .get(&headers::GRPC_STATUS)
                            .map_or(Code::Unknown, code_of),
                    ),
                    (None, None) => None,
                },
                Some(Err(_)) => Some(Code::Unavailable),
                // A stream that ends without trailers has no status: gRPC calls it INTERNAL.
                None => Some(Code::Internal),
            };
            if let Some(code) = code
                && let Some(record) = this.record.take()
            {
                record.finish(code, this.check.message_bytes());
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
