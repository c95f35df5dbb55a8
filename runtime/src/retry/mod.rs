//! The retry layer: it owns each call's request body and its replay buffer, sends the
//! call's attempts through the layer below (the pool), and decides from each attempt's
//! outcome whether to send it again (docs/design.md section 5, "Retry").
//!
//! Today it does gRFC A6's transparent retry (see [`future`]); the retry issue adds the
//! baked retry and hedging policies on the same seams.
//!
//! - [`Retry`] is the `tower::Service`, [`RetryLayer`] its `Layer`.
//! - [`replay`]: the call's body, kept (as `Bytes`) while uncommitted, and each
//!   attempt's [`AttemptBody`].
//! - [`budget`]: the channel's 16 MiB of replay buffers.
//! - [`committed`]: the response body that cancels the request stream when dropped.

mod budget;
mod committed;
mod future;
mod layer;
mod replay;

pub(crate) use committed::Committed;
pub(crate) use future::ResponseFuture;
pub(crate) use layer::RetryLayer;
pub(crate) use replay::AttemptBody;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::Status;

use crate::call::AttemptError;
use budget::{CHANNEL_LIMIT, ReplayBudget};

/// What the calls of one channel share in the retry layer.
pub(crate) struct Shared {
    target: Arc<str>,
    send_limit: u32,
    budget: Arc<ReplayBudget>,
    transparent_retries: AtomicU64,
}

impl Shared {
    fn new(target: Arc<str>, send_limit: u32) -> Self {
        Self {
            target,
            send_limit,
            budget: Arc::new(ReplayBudget::new(CHANNEL_LIMIT)),
            transparent_retries: AtomicU64::new(0),
        }
    }
}

/// The retry layer over an attempt-making service `S`.
#[derive(Clone)]
pub(crate) struct Retry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Retry<S> {
    /// Bytes held now in the replay buffers of this channel's calls.
    pub(crate) fn replay_buffer_bytes(&self) -> usize {
        self.shared.budget.held()
    }

    /// Attempts sent again without counting as attempts (unsent, or refused unprocessed).
    pub(crate) fn transparent_retries(&self) -> u64 {
        self.shared.transparent_retries.load(Ordering::Relaxed)
    }
}

impl<S, B> tower::Service<Request<tonic::body::Body>> for Retry<S>
where
    S: tower::Service<Request<AttemptBody>, Response = Response<B>, Error = AttemptError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<Committed<B>>;
    type Error = Status;
    type Future = ResponseFuture<B>;

    /// Always ready: the layer below is asked per attempt.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        future::start(self.inner.clone(), self.shared.clone(), request)
    }
}

#[cfg(test)]
mod tests;
