//! [`ResponseFuture`]: a call through a [`crate::Channel`], until its response headers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use tokio::time::Instant;
use tonic::Status;

use super::body::ResponseBody;
use crate::error::BoxError;
use crate::pool::PooledBody;

/// What the response body of a call needs from the facade.
pub(super) struct BodySettings {
    pub(super) target: Arc<str>,
    pub(super) recv_limit: u32,
    pub(super) deadline: Option<Instant>,
}

/// The future of a call through a [`crate::Channel`]: its response, or the `Status` it
/// failed with (boxed, as tonic expects of a transport).
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture {
    state: State,
}

enum State {
    Calling(crate::retry::ResponseFuture<PooledBody>, BodySettings),
    Failed(Option<Status>),
}

impl ResponseFuture {
    pub(super) fn new(call: crate::retry::ResponseFuture<PooledBody>, body: BodySettings) -> Self {
        Self {
            state: State::Calling(call, body),
        }
    }

    pub(super) fn failed(status: Status) -> Self {
        Self {
            state: State::Failed(Some(status)),
        }
    }
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Failed(status) => Poll::Ready(Err(Box::new(
                status
                    .take()
                    .unwrap_or_else(|| Status::internal("polled after completion")),
            ))),
            State::Calling(call, body) => match call.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(status)) => Poll::Ready(Err(Box::new(status))),
                Poll::Ready(Ok(response)) => Poll::Ready(Ok(response.map(|committed| {
                    ResponseBody::new(
                        committed,
                        body.recv_limit,
                        body.target.clone(),
                        body.deadline,
                    )
                }))),
            },
        }
    }
}
