//! The response body of an attempt sent through the pool: hyper's body, counting the
//! call as in flight on its subchannel until the body ends (its trailers, or its end)
//! or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;

use crate::subchannel::InFlight;

pin_project! {
    /// hyper's response body, with the call's in-flight count on its subchannel.
    pub(crate) struct PooledBody {
        #[pin]
        inner: Incoming,
        in_flight: Option<InFlight>,
    }
}

impl PooledBody {
    pub(crate) fn new(inner: Incoming, in_flight: InFlight) -> Self {
        Self {
            inner,
            in_flight: Some(in_flight),
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        let over = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            // Trailers end the stream: tonic does not poll again after them.
            Poll::Ready(Some(Ok(frame))) => frame.is_trailers() || this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if over {
            // The stream is over: the call no longer loads the connection.
            this.in_flight.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
