//! The response body: receive-size limit, transport errors as gRPC statuses, and the
//! call's in-flight guard (a stream is in flight until its body is dropped).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::Status;

use crate::activity::CallGuard;
use crate::body::OversizeFlag;
use crate::error::status_of_transport_error;
use crate::grpc_frames::MessageSizeCheck;

pin_project! {
    /// The body of a response received through an [`crate::Channel`].
    pub struct ResponseBody {
        #[pin]
        inner: Option<Incoming>,
        check: MessageSizeCheck,
        target: Arc<str>,
        guard: Option<CallGuard>,
        // The call's deadline covers its whole response, not only the headers.
        deadline: Option<Pin<Box<Sleep>>>,
        // Set when the request body hit the send limit: the stream's reset is ours.
        request_oversize: OversizeFlag,
    }
}

impl ResponseBody {
    pub(crate) fn new(
        inner: Incoming,
        limit: u32,
        target: Arc<str>,
        guard: CallGuard,
        deadline: Option<Instant>,
        request_oversize: OversizeFlag,
    ) -> Self {
        Self {
            inner: Some(inner),
            check: MessageSizeCheck::new(limit),
            target,
            guard: Some(guard),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            request_oversize,
        }
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let mut this = self.project();
        if this.inner.is_none() {
            return Poll::Ready(None);
        }
        // The deadline is checked first: a stream that never pauses still ends on time.
        if this
            .deadline
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready())
        {
            this.inner.set(None);
            this.guard.take();
            return Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
                "target `{}`: deadline exceeded while receiving the response",
                this.target
            )))));
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let Poll::Ready(polled) = inner.poll_frame(cx) else {
            return Poll::Pending;
        };
        let result = match polled {
            None => None,
            Some(Err(e)) => Some(Err(match this.request_oversize.get() {
                Some(o) => Status::resource_exhausted(format!(
                    "target `{}`: {}",
                    this.target,
                    o.request_message()
                )),
                None => status_of_transport_error(this.target, &e),
            })),
            Some(Ok(frame)) => match frame.data_ref().map(|data| this.check.feed(data)) {
                Some(Err(oversize)) => Some(Err(Status::resource_exhausted(format!(
                    "target `{}`: response message of {} bytes is larger than the receive limit of {} bytes",
                    this.target, oversize.length, oversize.limit
                )))),
                _ => Some(Ok(frame)),
            },
        };
        if !matches!(result, Some(Ok(_))) {
            // Done or failed: drop the stream (resetting it if unfinished) and end the call.
            this.inner.set(None);
            this.guard.take();
        }
        Poll::Ready(result)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
