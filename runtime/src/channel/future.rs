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
use crate::telemetry::attempt::MeteredBody;
use crate::telemetry::call::CallMeter;

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
    Calling(
        crate::retry::ResponseFuture<AttemptBodyOf>,
        Option<CallMeter>,
        BodySettings,
    ),
    Failed(Option<Status>),
}

/// The response body an attempt hands the retry layer.
pub(crate) type AttemptBodyOf = MeteredBody<PooledBody>;

impl ResponseFuture {
    pub(super) fn new(
        call: crate::retry::ResponseFuture<AttemptBodyOf>,
        meter: CallMeter,
        body: BodySettings,
    ) -> Self {
        Self {
            state: State::Calling(call, Some(meter), body),
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
        let this = self.get_mut();
        match &mut this.state {
            State::Failed(status) => {
                // A call that fails without waiting (a pick that fails fast, a refused
                // interceptor) takes from the task's cooperative budget, as tokio's own
                // resources do: a caller looping over failing calls yields now and then
                // instead of holding its worker thread (and starving the tasks that
                // would repair the channel) for ever.
                let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
                coop.made_progress();
                Poll::Ready(Err(Box::new(
                    status
                        .take()
                        .unwrap_or_else(|| Status::internal("polled after completion")),
                )))
            }
            State::Calling(call, meter, body) => {
                let polled = match meter {
                    Some(meter) => {
                        let _entered = meter.span().enter();
                        call.as_mut().poll(cx)
                    }
                    None => call.as_mut().poll(cx),
                };
                match polled {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(status)) => {
                        if let Some(meter) = meter.as_mut() {
                            meter.finish(status.code());
                        }
                        this.state = State::Failed(Some(status));
                        Pin::new(this).poll(cx)
                    }
                    Poll::Ready(Ok(response)) => {
                        let mut meter = meter.take();
                        // A Trailers-Only response carries the call's status in its
                        // headers, and the call is over: finished now with that status.
                        // (For a failure tonic drops the body unread and returns the
                        // status; a meter left in the body would say CANCELLED.)
                        if let Some(code) = response
                            .headers()
                            .get(&crate::protocol::names::GRPC_STATUS)
                            .map(crate::telemetry::labels::code_of)
                            && let Some(mut finished) = meter.take()
                        {
                            finished.finish(code);
                        }
                        Poll::Ready(Ok(response.map(|committed| {
                            ResponseBody::new(
                                committed,
                                body.recv_limit,
                                body.target.clone(),
                                body.deadline,
                                meter,
                            )
                        })))
                    }
                }
            }
        }
    }
}
