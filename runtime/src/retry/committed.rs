//! The response body of a committed call: the inner layer's body, holding the call so
//! that dropping the response (or reaching its end) stops the request stream too.
//!
//! hyper keeps pulling a request stream until it ends, even after the response is
//! dropped; so when the caller is done with the response, the call is cancelled and the
//! attempt's request body fails with CANCEL, which hyper sends as RST_STREAM CANCEL.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Status;

use super::Shared;
use super::replay::ReplaySource;

/// Cancels the call's request stream when dropped.
pub(crate) struct CallHandle {
    source: Arc<ReplaySource>,
}

impl CallHandle {
    pub(crate) fn new(source: Arc<ReplaySource>) -> Self {
        Self { source }
    }
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        self.source.cancel();
    }
}

pin_project! {
    /// The body of a committed call's response; trailers with status OK count as a
    /// success for the channel's retry throttling.
    pub(crate) struct Committed<B> {
        #[pin]
        inner: B,
        call: CallHandle,
        shared: Arc<Shared>,
    }
}

impl<B> Committed<B> {
    pub(crate) fn new(inner: B, call: CallHandle, shared: Arc<Shared>) -> Self {
        Self {
            inner,
            call,
            shared,
        }
    }

    /// Why the request body failed, if it did (its message over the send limit, say):
    /// that, not the stream reset it caused, is the call's status.
    pub(crate) fn request_failure(&self) -> Option<Status> {
        self.call.source.failure()
    }
}

impl<B: Body<Data = Bytes>> Body for Committed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let (Some(throttle), Poll::Ready(Some(Ok(frame)))) = (&this.shared.throttle, &frame)
            && let Some(trailers) = frame.trailers_ref()
            && trailers
                .get(&crate::protocol::names::GRPC_STATUS)
                .is_some_and(|s| s.as_bytes() == b"0")
        {
            throttle.success();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
