//! [`ResponseBody`]: the body of a response received through a [`crate::Channel`]. It
//! enforces the receive-size limit on each message's length prefix, keeps the call's
//! deadline over the whole response, makes the trailers' status safe for tonic, and maps
//! transport errors to gRPC statuses. When it ends early (deadline, limit, or dropped),
//! the stream is reset (CANCEL), its request side included.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::{Code, Status};

use super::future::AttemptBodyOf;
use crate::error::status;
use crate::protocol::decode_watch;
use crate::protocol::message::MessageSizeCheck;
use crate::protocol::transport_failure;
use crate::retry::Committed;
use crate::telemetry::call::CallMeter;

pin_project! {
    /// The body of a response received through a [`crate::Channel`].
    pub struct ResponseBody {
        #[pin]
        inner: Option<Committed<AttemptBodyOf>>,
        check: MessageSizeCheck,
        // The call's meter (none for a Trailers-Only response: the facade finished it).
        meter: Option<CallMeter>,
        // This body's number for `decode_watch` (0 without a meter).
        id: u64,
        target: Arc<str>,
        // The call's deadline covers its whole response, not only the headers.
        #[pin]
        deadline: Option<Sleep>,
    }

    impl PinnedDrop for ResponseBody {
        // A body dropped because its message failed to decode: the application got
        // INTERNAL from tonic, and that is the call's status, not CANCELLED.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.id != 0
                && let Some(meter) = this.meter.as_mut()
                && decode_watch::failed(*this.id)
            {
                meter.finish(Code::Internal);
            }
        }
    }
}

impl ResponseBody {
    pub(crate) fn new(
        inner: Committed<AttemptBodyOf>,
        recv_limit: u32,
        target: Arc<str>,
        deadline: Option<Instant>,
        meter: Option<CallMeter>,
    ) -> Self {
        Self {
            id: if meter.is_some() {
                decode_watch::next_body()
            } else {
                0
            },
            inner: Some(inner),
            check: MessageSizeCheck::new(recv_limit),
            meter,
            target,
            deadline: deadline.map(tokio::time::sleep_until),
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
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        // The deadline is checked first: a stream that never pauses still ends on time.
        if this
            .deadline
            .as_mut()
            .as_pin_mut()
            .is_some_and(|d| d.poll(cx).is_ready())
        {
            this.inner.set(None);
            if let Some(meter) = this.meter.as_mut() {
                meter.finish(Code::DeadlineExceeded);
            }
            return Poll::Ready(Some(Err(status(
                Code::DeadlineExceeded,
                this.target,
                "deadline exceeded while receiving the response",
            ))));
        }
        let Poll::Ready(polled) = inner.poll_frame(cx) else {
            if *this.id != 0 {
                decode_watch::yielding(*this.id, false);
            }
            return Poll::Pending;
        };
        let result = match polled {
            None => None,
            Some(Err(error)) => Some(Err(this
                .inner
                .as_ref()
                .get_ref()
                .as_ref()
                .and_then(Committed::request_failure)
                .unwrap_or_else(|| transport_failure::classify(this.target, &error).status))),
            Some(Ok(mut frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Err(oversize) = this.check.feed(data) {
                        Some(Err(status(
                            Code::ResourceExhausted,
                            this.target,
                            format!(
                                "response message of {} bytes is larger than the receive limit of {} bytes",
                                oversize.length, oversize.limit
                            ),
                        )))
                    } else {
                        Some(Ok(frame))
                    }
                } else {
                    if let Some(trailers) = frame.trailers_mut() {
                        crate::protocol::status::sanitize(trailers);
                    }
                    Some(Ok(frame))
                }
            }
        };
        if *this.id != 0 {
            decode_watch::yielding(*this.id, matches!(&result, Some(Ok(f)) if f.is_data()));
        }
        if let Some(meter) = this.meter.as_mut() {
            match &result {
                // Ended without trailers: no status came.
                None => meter.finish(Code::Internal),
                Some(Err(status)) => meter.finish(status.code()),
                Some(Ok(frame)) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        meter.finish(
                            trailers
                                .get(&crate::protocol::names::GRPC_STATUS)
                                .map_or(Code::Unknown, crate::telemetry::labels::code_of),
                        );
                    }
                }
            }
        }
        if !matches!(result, Some(Ok(_))) {
            // Done or failed: drop the stream (resetting it if unfinished) and end the call.
            this.inner.set(None);
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
