//! The request body: enforces the send-size limit on each encoded message before any of
//! its bytes leave, and records the overflow so the call reports RESOURCE_EXHAUSTED.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Status;

use crate::grpc_frames::{MessageSizeCheck, Oversize};

/// Set when a request message was over the limit.
pub(crate) type OversizeFlag = Arc<OnceLock<Oversize>>;

pin_project! {
    /// tonic's request body, checked against the send-size limit.
    pub(crate) struct RequestBody {
        #[pin]
        inner: tonic::body::Body,
        check: MessageSizeCheck,
        oversize: OversizeFlag,
    }
}

impl RequestBody {
    pub(crate) fn new(inner: tonic::body::Body, limit: u32, oversize: OversizeFlag) -> Self {
        Self {
            inner,
            check: MessageSizeCheck::new(limit),
            oversize,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(oversize) = this.check.feed(data)
        {
            let _ = this.oversize.set(oversize);
            return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                "request message of {} bytes is larger than the send limit of {} bytes",
                oversize.length, oversize.limit
            )))));
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
