//! The request body of one call, owned by the retry layer: it keeps the messages sent so
//! far (as `Bytes`, no copy) while the call is uncommitted, so another attempt can
//! replay them and then go on with the live stream. It enforces the send-size limit once,
//! as messages come from tonic, and remembers why the body failed, so the caller gets
//! that status and not the stream reset it caused.
//!
//! Every attempt reads through an [`AttemptBody`]. Only the newest attempt reads the live
//! stream; an older one, or any once the call is cancelled, fails with RST_STREAM
//! CANCEL, so the server stops and nothing more is sent on that stream.
//!
//! A request that failed (the caller's stream ended in an error, or a message over the
//! send limit) is final: no attempt starts after it, and every attempt still sending
//! resets its stream with INTERNAL_ERROR, not CANCEL. tonic's server reads a CANCEL on a
//! request stream as the stream's clean end (`tonic::codec::decode`, `Direction::Request`),
//! so a CANCEL would have it run the truncated request to completion; an error cannot be
//! mistaken for an end by any server.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use tonic::{Code, Status};

use super::budget::{CALL_LIMIT, PER_MESSAGE_OVERHEAD, ReplayBudget};
use crate::call::{CallOptions, SubchannelId};
use crate::error::{BoxError, status};
use crate::protocol::message::MessageSizeCheck;
use crate::telemetry::labels::CallLabels;

/// What a replay needs of the request besides its body.
pub(crate) struct ReplayHead {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    options: CallOptions,
    labels: Option<CallLabels>,
}

impl ReplayHead {
    pub(crate) fn keep(parts: &http::request::Parts, options: CallOptions) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            options,
            labels: parts.extensions.get::<CallLabels>().cloned(),
        }
    }
}

/// The body of one call, shared by its attempts.
pub(crate) struct ReplaySource {
    head: ReplayHead,
    state: Mutex<SourceState>,
    budget: Arc<ReplayBudget>,
    target: Arc<str>,
}

struct SourceState {
    /// What tonic has not produced yet (`None` once it ended).
    rest: Option<tonic::body::Body>,
    /// A frame read before the first attempt existed, for that attempt.
    prefetched: Option<Frame<Bytes>>,
    /// Messages read from tonic so far, while they may be replayed.
    kept: Vec<Bytes>,
    /// How many data frames were read from tonic so far (`kept.len()` while keeping).
    pulled: usize,
    /// What `kept` counts against the call's and the channel's limits.
    kept_cost: usize,
    /// Still keeping messages (until commit, overflow or cancel), so everything sent so
    /// far is in `kept` and another attempt can start.
    keeping: bool,
    check: MessageSizeCheck,
    /// Why the body failed: its own message over the send limit, or tonic's error.
    failure: Option<Status>,
    /// Messages at the front of `kept` already released (sent by every live attempt
    /// after the call committed).
    released: usize,
    /// The last attempt's number.
    newest: u64,
    /// The attempts that may still send, each with the index of the next message it
    /// sends: one for retries (the newest), several while hedging. Any other attempt's
    /// body fails with CANCEL.
    live: Vec<Live>,
    cancelled: bool,
    /// Attempts waiting for the next message from tonic, woken when it arrives or
    /// when they are cancelled.
    waiting: Vec<(u64, Waker)>,
}

/// An attempt that may still send, and where it is.
#[derive(Debug, Clone, Copy)]
struct Live {
    id: u64,
    next: usize,
}

impl SourceState {
    fn is_live(&self, id: u64) -> bool {
        self.live.iter().any(|l| l.id == id)
    }

    fn wake_all(&mut self) {
        for (_, waker) in self.waiting.drain(..) {
            waker.wake();
        }
    }
}

impl ReplaySource {
    pub(crate) fn new(
        body: tonic::body::Body,
        head: ReplayHead,
        send_limit: u32,
        budget: Arc<ReplayBudget>,
        target: Arc<str>,
    ) -> Arc<Self> {
        Arc::new(Self {
            head,
            state: Mutex::new(SourceState {
                rest: Some(body),
                prefetched: None,
                kept: Vec::new(),
                pulled: 0,
                released: 0,
                kept_cost: 0,
                keeping: true,
                check: MessageSizeCheck::new(send_limit),
                failure: None,
                newest: 0,
                live: Vec::new(),
                cancelled: false,
                waiting: Vec::new(),
            }),
            budget,
            target,
        })
    }

    fn lock(&self) -> MutexGuard<'_, SourceState> {
        // A panic while holding the lock cannot leave the state half-written in a way
        // that matters more than the panic itself: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the first frame if tonic has it ready now (a unary call's message always
    /// is), so a message over the send limit fails the call before any stream opens.
    pub(crate) fn prefetch(&self, cx: &mut Context<'_>) -> Result<(), Status> {
        let mut state = self.lock();
        let Some(rest) = state.rest.as_mut() else {
            return Ok(());
        };
        match Pin::new(rest).poll_frame(cx) {
            Poll::Pending => Ok(()),
            Poll::Ready(None) => {
                state.rest = None;
                Ok(())
            }
            Poll::Ready(Some(frame)) => {
                let frame = self.accept(&mut state, frame, None)?;
                state.prefetched = Some(frame);
                Ok(())
            }
        }
    }

    /// A body for the next attempt of a retried call, replaying what was sent; `None`
    /// when what was sent is no longer kept (more than the call's or the channel's
    /// buffer). The previous attempts' bodies stop.
    pub(crate) fn attempt(self: &Arc<Self>) -> Option<AttemptBody> {
        self.new_attempt(false)
    }

    /// A body for one more hedged attempt, beside those still sending.
    pub(crate) fn hedge(self: &Arc<Self>) -> Option<AttemptBody> {
        self.new_attempt(true)
    }

    fn new_attempt(self: &Arc<Self>, beside: bool) -> Option<AttemptBody> {
        let mut state = self.lock();
        // The first attempt always goes (a request too large to keep is sent once);
        // another only while everything sent so far is kept, and never once the
        // request has failed: it would replay what was kept and then read on past the
        // failure, sending a request its caller never finished.
        if state.cancelled || state.failure.is_some() || (!state.keeping && state.newest > 0) {
            return None;
        }
        state.newest += 1;
        let id = state.newest;
        if !beside {
            state.live.clear();
            // Earlier attempts may be waiting on the live stream: let them see they lost.
            state.wake_all();
        }
        state.live.push(Live { id, next: 0 });
        Some(AttemptBody {
            source: self.clone(),
            id,
        })
    }

    /// The request of another attempt: the call's head with `body`; `avoid` is the
    /// connection that refused the last attempt; `previous` the attempts before this
    /// one under the call's policy (sent as `grpc-previous-rpc-attempts` when not 0).
    pub(crate) fn replay_request(
        &self,
        body: AttemptBody,
        avoid: Option<SubchannelId>,
        previous: u32,
    ) -> Request<AttemptBody> {
        let head = &self.head;
        let mut request = Request::new(body);
        *request.method_mut() = head.method.clone();
        *request.uri_mut() = head.uri.clone();
        *request.version_mut() = head.version;
        *request.headers_mut() = head.headers.clone();
        if previous > 0 {
            request.headers_mut().insert(
                &crate::protocol::names::GRPC_PREVIOUS_RPC_ATTEMPTS,
                http::HeaderValue::from(previous),
            );
        }
        request.extensions_mut().insert(CallOptions {
            avoid,
            ..head.options
        });
        if let Some(labels) = &head.labels {
            request.extensions_mut().insert(labels.clone());
        }
        request
    }

    /// The call committed (response headers arrived): no attempt will follow, and the
    /// buffer is released as soon as the committed attempt has sent what it holds (its
    /// headers can come before its replay is done).
    pub(crate) fn commit(&self) {
        let mut state = self.lock();
        state.keeping = false;
        self.release_sent(&mut state);
    }

    /// The call committed to attempt `id`: every other attempt stops (its stream is
    /// reset), no attempt will follow, and the buffer is released as `id` sends it.
    pub(crate) fn commit_to(&self, id: u64) {
        let mut state = self.lock();
        state.live.retain(|a| a.id == id);
        state.keeping = false;
        self.release_sent(&mut state);
        state.wake_all();
    }

    /// Stops one attempt (a hedge that lost): its body fails with CANCEL.
    pub(crate) fn cancel_attempt(&self, id: u64) {
        let mut state = self.lock();
        state.live.retain(|a| a.id != id);
        state.wake_all();
    }

    /// The call is over from the caller's side: the live attempts stop and their
    /// streams are reset (CANCEL) if they are still sending.
    pub(crate) fn cancel(&self) {
        let mut state = self.lock();
        state.cancelled = true;
        state.live.clear();
        self.stop_keeping(&mut state);
        state.wake_all();
    }

    /// Whether attempt `id` may still send (not cancelled, not behind a commit).
    pub(crate) fn is_live(&self, id: u64) -> bool {
        self.lock().is_live(id)
    }

    /// Whether another attempt may still start (the call has not committed).
    pub(crate) fn is_keeping(&self) -> bool {
        self.lock().keeping
    }

    /// The bytes of the request messages read from the caller so far, without their
    /// prefixes: what every attempt of the call has sent, or is sending.
    pub(crate) fn message_bytes(&self) -> u64 {
        self.lock().check.message_bytes()
    }

    /// Why the request body failed, if it did: the status the call ends with.
    pub(crate) fn failure(&self) -> Option<Status> {
        self.lock().failure.clone()
    }

    /// Bytes this call holds for replays.
    #[cfg(test)]
    pub(crate) fn kept_cost(&self) -> usize {
        self.lock().kept_cost
    }

    fn stop_keeping(&self, state: &mut SourceState) {
        state.keeping = false;
        state.kept = Vec::new();
        self.budget.give_back(std::mem::take(&mut state.kept_cost));
    }

    /// After a commit: gives back the messages every live attempt has sent.
    fn release_sent(&self, state: &mut SourceState) {
        let needed = state
            .live
            .iter()
            .map(|l| l.next)
            .min()
            .unwrap_or(usize::MAX);
        let upto = needed.min(state.kept.len());
        let mut freed = 0;
        for message in state.kept.iter_mut().take(upto).skip(state.released) {
            freed += message.len() + PER_MESSAGE_OVERHEAD;
            *message = Bytes::new();
        }
        state.released = state.released.max(upto);
        state.kept_cost -= freed;
        self.budget.give_back(freed);
        if state.released == state.kept.len() {
            state.kept = Vec::new();
            state.released = 0;
            self.budget.give_back(std::mem::take(&mut state.kept_cost));
        }
    }

    /// Checks a frame from tonic and keeps its data for replays while it fits.
    /// `puller` is the attempt that read it (`None` before any attempt).
    fn accept(
        &self,
        state: &mut SourceState,
        frame: Result<Frame<Bytes>, Status>,
        puller: Option<u64>,
    ) -> Result<Frame<Bytes>, Status> {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                self.fail(state, error.clone());
                return Err(error);
            }
        };
        let Some(data) = frame.data_ref() else {
            // Request trailers (gRPC sends none): passed on, not kept.
            return Ok(frame);
        };
        if let Err(oversize) = state.check.feed(data) {
            let failure = status(
                Code::ResourceExhausted,
                &self.target,
                oversize.request_message(),
            );
            self.fail(state, failure.clone());
            return Err(failure);
        }
        state.pulled += 1;
        if state.keeping {
            let cost = data.len().saturating_add(PER_MESSAGE_OVERHEAD);
            let fits = state.kept_cost.saturating_add(cost) <= CALL_LIMIT;
            if fits && self.budget.try_take(cost) {
                state.kept_cost += cost;
                state.kept.push(data.clone());
            } else {
                // Past the call's or the channel's buffer: the call commits (A6: to the
                // attempt furthest along, the one that read this message); the others
                // stop.
                self.stop_keeping(state);
                if let Some(id) = puller {
                    state.live.retain(|a| a.id == id);
                }
            }
        }
        Ok(frame)
    }
}

impl ReplaySource {
    /// The request failed (its message over the send limit, tonic's error): that is the
    /// call's status, every attempt stops (its stream reset as failed) and none follows,
    /// so no server gets a truncated request.
    fn fail(&self, state: &mut SourceState, failure: Status) {
        state.failure.get_or_insert(failure);
        state.live.clear();
        self.stop_keeping(state);
        state.wake_all();
    }
}

impl Drop for ReplaySource {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        self.budget.give_back(std::mem::take(&mut state.kept_cost));
    }
}

/// The request body of one attempt: what was sent before (from the buffer), then the
/// live stream.
pub(crate) struct AttemptBody {
    source: Arc<ReplaySource>,
    id: u64,
}

impl Drop for AttemptBody {
    fn drop(&mut self) {
        // tonic's stream remembers one waker: if it was this body's, another attempt
        // must take over reading it.
        let mut state = self.source.lock();
        let id = self.id;
        state.waiting.retain(|(a, _)| *a != id);
        state.wake_all();
    }
}

impl AttemptBody {
    /// The attempt's number within its call.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The call's source, shared by all its attempts.
    pub(crate) fn source(&self) -> &Arc<ReplaySource> {
        &self.source
    }
}

impl std::fmt::Debug for AttemptBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptBody")
            .field("attempt", &self.id)
            .finish_non_exhaustive()
    }
}

/// The error that makes hyper reset an attempt's stream with CANCEL (hyper takes the
/// reason from the first `h2::Error` in the body error's chain).
fn cancel() -> BoxError {
    Box::new(h2::Error::from(h2::Reason::CANCEL))
}

/// The error that resets an attempt's stream when its request failed: INTERNAL_ERROR,
/// which every server reads as a failed request (tonic reads CANCEL as the end of it).
fn request_failed() -> BoxError {
    Box::new(h2::Error::from(h2::Reason::INTERNAL_ERROR))
}

impl Body for AttemptBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let source = &*this.source;
        let mut state = source.lock();
        let id = this.id;
        if state.failure.is_some() {
            // Whichever attempt met the failure, none may end its request normally.
            return Poll::Ready(Some(Err(request_failed())));
        }
        let Some(next) = state.live.iter().find(|l| l.id == id).map(|l| l.next) else {
            return Poll::Ready(Some(Err(cancel())));
        };
        if state.cancelled {
            return Poll::Ready(Some(Err(cancel())));
        }
        let advance = |state: &mut SourceState, to: usize| {
            if let Some(live) = state.live.iter_mut().find(|l| l.id == id) {
                live.next = to;
            }
        };
        if next == 0
            && let Some(frame) = state.prefetched.take()
        {
            // The first attempt sends the frame read before it existed.
            advance(&mut state, usize::from(frame.is_data()));
            if !state.keeping {
                source.release_sent(&mut state);
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        if next < state.pulled {
            // Sent before (by an earlier attempt, or a faster hedge): from the buffer.
            let Some(data) = state
                .kept
                .get(next)
                .filter(|_| next >= state.released)
                .cloned()
            else {
                // No longer kept: the call committed to another attempt.
                return Poll::Ready(Some(Err(cancel())));
            };
            advance(&mut state, next + 1);
            if !state.keeping {
                source.release_sent(&mut state);
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Some(rest) = state.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(rest).poll_frame(cx) {
            Poll::Pending => {
                match state.waiting.iter_mut().find(|(a, _)| *a == id) {
                    Some((_, waker)) if waker.will_wake(cx.waker()) => {}
                    Some((_, waker)) => *waker = cx.waker().clone(),
                    None => state.waiting.push((id, cx.waker().clone())),
                }
                Poll::Pending
            }
            Poll::Ready(None) => {
                state.rest = None;
                state.wake_all();
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => match source.accept(&mut state, frame, Some(id)) {
                Ok(frame) => {
                    if frame.is_data() {
                        advance(&mut state, next + 1);
                    }
                    // Hedges waiting for this message can send it now.
                    state.wake_all();
                    Poll::Ready(Some(Ok(frame)))
                }
                // The status is kept for the caller; the stream is reset as failed.
                Err(_) => Poll::Ready(Some(Err(request_failed()))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        let state = self.source.lock();
        // A stopped attempt is not at its end: its next poll resets the stream.
        let Some(next) = state.live.iter().find(|l| l.id == self.id).map(|l| l.next) else {
            return false;
        };
        state.prefetched.is_none() && next >= state.pulled && state.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
impl ReplayHead {
    /// The head of a bodiless test request.
    pub(crate) fn empty() -> Self {
        Self::keep(&Request::new(()).into_parts().0, CallOptions::default())
    }
}

impl AttemptBody {
    /// A body sending `body` once, keeping nothing for a replay: for calls the channel
    /// makes itself on one connection (the health check's Watch).
    pub(crate) fn once(body: tonic::body::Body, target: Arc<str>) -> AttemptBody {
        let head = ReplayHead::keep(&Request::new(()).into_parts().0, CallOptions::default());
        let source =
            ReplaySource::new(body, head, u32::MAX, Arc::new(ReplayBudget::new(0)), target);
        // A first attempt always exists, whatever the budget; committed at once, so
        // nothing is kept.
        let attempt = source.attempt();
        source.commit();
        attempt.unwrap_or_else(|| unreachable!("a new source has its first attempt"))
    }
}

#[cfg(test)]
impl AttemptBody {
    /// A body sending `data` as it is: for layers tested on their own.
    pub(crate) fn of_bytes(data: Bytes) -> AttemptBody {
        let body = tonic::body::Body::new(http_body_util::Full::new(data));
        let source = ReplaySource::new(
            body,
            ReplayHead::empty(),
            u32::MAX,
            Arc::new(ReplayBudget::new(usize::MAX)),
            "test".into(),
        );
        source.attempt().expect("a first attempt")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::budget::CHANNEL_LIMIT;
    use http_body_util::BodyExt;

    fn message(len: usize) -> Bytes {
        let mut m = vec![0u8];
        m.extend_from_slice(&(len as u32).to_be_bytes());
        m.resize(5 + len, 7);
        m.into()
    }

    /// A live request stream the test feeds frame by frame.
    fn live() -> (tokio::sync::mpsc::UnboundedSender<Bytes>, tonic::body::Body) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        let body = http_body_util::StreamBody::new(tokio_stream::StreamExt::map(stream, |b| {
            Ok::<_, Status>(Frame::data(b))
        }));
        (tx, tonic::body::Body::new(body))
    }

    /// A call whose body the test feeds, with a send limit and the channel's budget.
    fn source(
        body: tonic::body::Body,
        send_limit: u32,
        budget: &Arc<ReplayBudget>,
    ) -> Arc<ReplaySource> {
        ReplaySource::new(
            body,
            ReplayHead::empty(),
            send_limit,
            budget.clone(),
            "t".into(),
        )
    }

    /// The next data frame, or the reason of the reset the error asks hyper for.
    async fn next(body: &mut AttemptBody) -> Option<Result<Bytes, String>> {
        body.frame().await.map(|f| {
            f.map(|f| f.into_data().unwrap()).map_err(|e| {
                let reason = e.downcast_ref::<h2::Error>().and_then(h2::Error::reason);
                format!("{reason:?}")
            })
        })
    }

    #[tokio::test]
    async fn a_second_attempt_replays_then_continues_live() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let (tx, body) = live();
        let source = source(body, 1 << 20, &budget);
        let mut first = source.attempt().unwrap();
        tx.send(message(3)).unwrap();
        tx.send(message(4)).unwrap();
        assert_eq!(next(&mut first).await, Some(Ok(message(3))));
        assert_eq!(next(&mut first).await, Some(Ok(message(4))));
        assert_eq!(budget.held(), 8 + 9 + 2 * PER_MESSAGE_OVERHEAD);

        let mut second = source.attempt().unwrap();
        assert_eq!(
            next(&mut first).await,
            Some(Err("Some(CANCEL)".into())),
            "the old attempt is cancelled"
        );
        assert_eq!(next(&mut second).await, Some(Ok(message(3))));
        assert_eq!(next(&mut second).await, Some(Ok(message(4))));
        tx.send(message(5)).unwrap();
        drop(tx);
        assert_eq!(next(&mut second).await, Some(Ok(message(5))));
        assert_eq!(next(&mut second).await, None);

        source.commit();
        assert_eq!(budget.held(), 0, "commit releases the buffer");
        assert!(source.attempt().is_none(), "no attempt after a commit");
    }

    #[tokio::test]
    async fn past_the_call_limit_nothing_is_kept_and_no_replay_is_possible() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let (tx, body) = live();
        let source = source(body, 1 << 20, &budget);
        let mut first = source.attempt().unwrap();
        for _ in 0..3 {
            tx.send(message(100 << 10)).unwrap();
            assert!(next(&mut first).await.unwrap().is_ok());
        }
        assert_eq!(budget.held(), 0);
        assert_eq!(source.kept_cost(), 0);
        assert!(source.attempt().is_none());
    }

    #[tokio::test]
    async fn the_channel_budget_bounds_every_call_together() {
        let budget = Arc::new(ReplayBudget::new(1000));
        let mut calls = Vec::new();
        for _ in 0..4 {
            let (tx, body) = live();
            let source = source(body, 1 << 20, &budget);
            let mut attempt = source.attempt().unwrap();
            tx.send(message(300)).unwrap();
            assert!(next(&mut attempt).await.unwrap().is_ok());
            calls.push((tx, source, attempt));
        }
        assert!(budget.held() <= 1000, "{}", budget.held());
        let replayable = calls.iter().filter(|(_, s, _)| s.kept_cost() > 0).count();
        assert_eq!(replayable, 2, "two calls fit, the others committed");
        drop(calls);
        assert_eq!(budget.held(), 0, "dropped calls give everything back");
    }

    #[tokio::test]
    async fn an_oversize_message_is_the_failure_and_cancels_the_stream() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let (tx, body) = live();
        let source = source(body, 10, &budget);
        let mut first = source.attempt().unwrap();
        tx.send(message(11)).unwrap();
        let error = next(&mut first).await.unwrap().unwrap_err();
        assert_eq!(
            error, "Some(INTERNAL_ERROR)",
            "a failed request, not a cancel"
        );
        let failure = source.failure().unwrap();
        assert_eq!(failure.code(), Code::ResourceExhausted);
        assert!(
            failure.message().contains("send limit of 10 bytes"),
            "{failure:?}"
        );
    }

    #[tokio::test]
    async fn a_cancel_wakes_an_attempt_waiting_on_the_live_stream() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let (_tx, body) = live();
        let source = source(body, 1 << 20, &budget);
        let mut first = source.attempt().unwrap();
        let waiting = tokio::spawn(async move { next(&mut first).await });
        tokio::task::yield_now().await;
        source.cancel();
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(result, Some(Err("Some(CANCEL)".into())));
    }

    #[tokio::test]
    async fn hedges_share_the_live_stream_and_wake_each_other() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let (tx, body) = live();
        let source = source(body, 1 << 20, &budget);
        let mut a = source.attempt().unwrap();
        let mut b = source.hedge().unwrap();
        tx.send(message(1)).unwrap();
        assert_eq!(
            next(&mut a).await,
            Some(Ok(message(1))),
            "a reads it from tonic"
        );
        assert_eq!(
            next(&mut b).await,
            Some(Ok(message(1))),
            "b from the buffer"
        );
        // Both wait at the front; tonic's stream remembers one waker only, so whichever
        // reads the next message wakes the other.
        let a_waits = tokio::spawn(async move { (next(&mut a).await, a) });
        let b_waits = tokio::spawn(async move { (next(&mut b).await, b) });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tx.send(message(2)).unwrap();
        let within = std::time::Duration::from_secs(5);
        let (got_a, mut a) = tokio::time::timeout(within, a_waits)
            .await
            .expect("a woken")
            .unwrap();
        let (got_b, mut b) = tokio::time::timeout(within, b_waits)
            .await
            .expect("b woken")
            .unwrap();
        assert_eq!((got_a, got_b), (Some(Ok(message(2))), Some(Ok(message(2)))));
        drop(tx);
        assert_eq!(next(&mut a).await, None);
        assert_eq!(next(&mut b).await, None);

        // The winner's commit stops the other.
        let (_tx, body) = live();
        let other = self::source(body, 1 << 20, &budget);
        let mut a = other.attempt().unwrap();
        let b = other.hedge().unwrap();
        other.commit_to(b.id());
        assert_eq!(next(&mut a).await, Some(Err("Some(CANCEL)".into())));
        assert!(other.is_live(b.id()));
    }

    #[tokio::test]
    async fn past_the_buffer_a_hedged_call_commits_to_the_attempt_furthest_along() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let (tx, body) = live();
        let source = source(body, 1 << 20, &budget);
        let mut a = source.attempt().unwrap();
        let mut b = source.hedge().unwrap();
        for _ in 0..3 {
            tx.send(message(100 << 10)).unwrap();
            assert!(next(&mut a).await.unwrap().is_ok());
        }
        assert!(!source.is_keeping(), "300 KiB: over the call's buffer");
        assert!(source.is_live(a.id()) && !source.is_live(b.id()));
        assert_eq!(next(&mut b).await, Some(Err("Some(CANCEL)".into())));
        assert!(source.hedge().is_none(), "no hedge after the commit");
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn a_commit_during_a_replay_keeps_what_the_attempt_still_sends() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let (tx, body) = live();
        let source = source(body, 1 << 20, &budget);
        let mut first = source.attempt().unwrap();
        tx.send(message(3)).unwrap();
        tx.send(message(4)).unwrap();
        assert!(next(&mut first).await.unwrap().is_ok());
        assert!(next(&mut first).await.unwrap().is_ok());
        let mut second = source.attempt().unwrap();
        // Its response headers arrive before it replayed anything.
        source.commit();
        assert!(source.attempt().is_none(), "committed: no attempt follows");
        assert_eq!(next(&mut second).await, Some(Ok(message(3))));
        assert_eq!(
            budget.held(),
            9 + PER_MESSAGE_OVERHEAD,
            "the first is given back"
        );
        assert_eq!(next(&mut second).await, Some(Ok(message(4))));
        assert_eq!(budget.held(), 0, "everything sent: the buffer is released");
        tx.send(message(5)).unwrap();
        drop(tx);
        assert_eq!(next(&mut second).await, Some(Ok(message(5))), "then live");
        assert_eq!(next(&mut second).await, None);
    }

    #[tokio::test]
    async fn a_request_too_large_to_keep_is_still_sent_once() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let body = tonic::body::Body::new(http_body_util::Full::new(message(300 << 10)));
        let source = source(body, 1 << 20, &budget);
        std::future::poll_fn(|cx| Poll::Ready(source.prefetch(cx)))
            .await
            .unwrap();
        let mut first = source.attempt().expect("the first attempt always goes");
        assert_eq!(next(&mut first).await, Some(Ok(message(300 << 10))));
        assert!(source.attempt().is_none(), "but it cannot be replayed");
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn a_request_failure_stops_every_hedge() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let (tx, body) = live();
        let source = source(body, 10, &budget);
        let mut a = source.attempt().unwrap();
        let mut b = source.hedge().unwrap();
        tx.send(message(11)).unwrap();
        tx.send(message(1)).unwrap();
        assert_eq!(next(&mut a).await, Some(Err("Some(INTERNAL_ERROR)".into())));
        assert_eq!(
            next(&mut b).await,
            Some(Err("Some(INTERNAL_ERROR)".into())),
            "no hedge sends a request with a message left out, nor resets it as a \
             CANCEL a tonic server reads as the request's end"
        );
        assert!(source.hedge().is_none(), "no hedge after the failure");
        assert!(source.attempt().is_none(), "no retry after the failure");
        assert_eq!(budget.held(), 0, "nothing is kept for a replay");
    }

    #[tokio::test]
    async fn prefetch_takes_a_ready_first_message_for_the_first_attempt() {
        let budget = Arc::new(ReplayBudget::new(CHANNEL_LIMIT));
        let body = tonic::body::Body::new(http_body_util::Full::new(message(2)));
        let source = source(body, 1 << 20, &budget);
        std::future::poll_fn(|cx| Poll::Ready(source.prefetch(cx)))
            .await
            .unwrap();
        let mut first = source.attempt().unwrap();
        assert_eq!(next(&mut first).await, Some(Ok(message(2))));
        assert_eq!(next(&mut first).await, None);
        let mut second = source.attempt().unwrap();
        assert_eq!(next(&mut second).await, Some(Ok(message(2))), "kept");
    }
}
