//! The request body: enforces the send-size limit on each encoded message before any of
//! its bytes leave, and keeps what it sent (up to the retry buffer of gRFC A6) so a call
//! the server never processed (GOAWAY, REFUSED_STREAM) can be sent again, from its first
//! byte, on another connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

use crate::grpc_frames::{MessageSizeCheck, Oversize};

/// Set when a request message was over the limit.
pub(crate) type OversizeFlag = Arc<OnceLock<Oversize>>;

/// Bytes of a call's request kept for a replay (gRFC A6's per-call retry buffer); a call
/// that sent more cannot be replayed.
pub(crate) const REPLAY_LIMIT: usize = 256 * 1024;

/// The body of one call, shared by every attempt to send it.
pub(crate) struct RequestSource {
    state: Mutex<SourceState>,
}

struct SourceState {
    /// What tonic has not produced yet.
    rest: Option<tonic::body::Body>,
    /// Data produced so far, for a replay.
    sent: Vec<Bytes>,
    sent_bytes: usize,
    /// More than [`REPLAY_LIMIT`] was sent: no replay.
    overflowed: bool,
    /// An attempt is reading the body (at most one at a time).
    attempt: u64,
}

impl RequestSource {
    pub(crate) fn new(body: tonic::body::Body) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(SourceState {
                rest: Some(body),
                sent: Vec::new(),
                sent_bytes: 0,
                overflowed: false,
                attempt: 0,
            }),
        })
    }

    /// A body for a new attempt that starts again from the first byte; `None` when what
    /// was sent no longer fits the replay buffer.
    pub(crate) fn attempt(
        self: &Arc<Self>,
        limit: u32,
        oversize: OversizeFlag,
    ) -> Option<RequestBody> {
        let mut state = self.state.lock().ok()?;
        if state.overflowed {
            return None;
        }
        state.attempt += 1;
        Some(RequestBody {
            source: self.clone(),
            attempt: state.attempt,
            replay: state.sent.iter().cloned().collect(),
            check: MessageSizeCheck::new(limit),
            oversize,
        })
    }
}

/// tonic's request body, as one attempt sends it, checked against the send-size limit.
pub(crate) struct RequestBody {
    source: Arc<RequestSource>,
    attempt: u64,
    /// Data already produced by tonic, sent again first.
    replay: VecDeque<Bytes>,
    check: MessageSizeCheck,
    oversize: OversizeFlag,
}

impl RequestBody {
    fn next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(data) = self.replay.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Ok(mut state) = self.source.state.lock() else {
            return Poll::Ready(Some(Err(Status::internal("request body lock poisoned"))));
        };
        if state.attempt != self.attempt {
            // A newer attempt owns the body; this one was abandoned.
            return Poll::Ready(None);
        }
        let Some(rest) = state.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(rest).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref()
                    && !state.overflowed
                {
                    state.sent_bytes += data.len();
                    if state.sent_bytes > REPLAY_LIMIT {
                        state.overflowed = true;
                        state.sent = Vec::new();
                    } else {
                        state.sent.push(data.clone());
                    }
                }
            }
            None => state.rest = None,
            Some(Err(_)) => {}
        }
        Poll::Ready(frame)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = match this.next_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(oversize) = this.check.feed(data)
        {
            let _ = this.oversize.set(oversize);
            return Poll::Ready(Some(Err(Status::resource_exhausted(
                oversize.request_message(),
            ))));
        }
        Poll::Ready(frame)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
