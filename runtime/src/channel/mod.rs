//! [`Channel`]: what a tonic client sends its requests through.

mod builder;
mod watcher;

pub use builder::{BuildError, ChannelBuilder};
pub use watcher::StateWatcher;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use ephemos_config::model::{MessageSizeLimits, TargetConfig};
use ephemos_config::value::Address;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use hyper::client::conn::http2::SendRequest;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::activity::Activity;
use crate::body::{RequestBody, ResponseBody};
use crate::error::{BoxError, ConnectError, status, status_of_transport_error};
use crate::method_policy::{MethodPolicies, format_grpc_timeout, parse_grpc_timeout};
use crate::state::ConnectivityState;
use crate::subchannel::Subchannel;

/// A gRPC channel: give it to any tonic-generated client (`EchoClient::new(channel)`).
///
/// It owns one HTTP/2 connection per endpoint (a subchannel), connects lazily, reconnects
/// with gRPC connection backoff, keeps connections alive with HTTP/2 pings, closes them
/// when idle, and reports its [`ConnectivityState`]. Cloning is cheap (an `Arc`); when the
/// last clone is dropped, the background tasks stop and connections close.
///
/// Errors reach the caller as `tonic::Status`: UNAVAILABLE when no connection can be had
/// (with the last connect error), DEADLINE_EXCEEDED when the call's deadline passes while
/// waiting for one, RESOURCE_EXHAUSTED for a message over the size limit.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    target: Arc<str>,
    authority: http::uri::Authority,
    subchannels: Vec<Subchannel>,
    next: AtomicUsize,
    activity: Arc<Activity>,
    methods: MethodPolicies,
    limits: MessageSizeLimits,
    connect_timeout: Duration,
    watcher: StateWatcher,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.inner.target)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A builder for a channel to one address, with the production preset's settings.
    pub fn builder(address: impl Into<Address>) -> ChannelBuilder {
        ChannelBuilder::new(vec![address.into()])
    }

    /// A builder for a channel to several endpoints (one connection each).
    pub fn builder_for_endpoints(endpoints: impl IntoIterator<Item = Address>) -> ChannelBuilder {
        ChannelBuilder::new(endpoints.into_iter().collect())
    }

    /// A builder with everything a resolved target of `connections.toml` says.
    pub fn from_target(config: &TargetConfig) -> Result<ChannelBuilder, BuildError> {
        ChannelBuilder::from_target(config)
    }

    /// The target's name, as used in messages.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The current connectivity state.
    pub fn state(&self) -> ConnectivityState {
        self.inner.watcher.state()
    }

    /// Whether the channel is READY.
    pub fn is_healthy(&self) -> bool {
        self.state() == ConnectivityState::Ready
    }

    /// Returns at once if the state is not `from`, else waits for the next change.
    pub async fn wait_for_state_change(&self, from: ConnectivityState) -> ConnectivityState {
        self.inner.watcher.clone().wait_for_state_change(from).await
    }

    /// A watcher of the state that does not keep the channel alive (it reports SHUTDOWN
    /// once the last clone of the channel is dropped).
    pub fn state_watcher(&self) -> StateWatcher {
        self.inner.watcher.clone()
    }

    /// Connects now (if IDLE) and waits until READY, at most the connect timeout.
    pub async fn connect(&self) -> Result<(), ConnectError> {
        let timeout = self.inner.connect_timeout;
        match tokio::time::timeout(timeout, builder::wait_ready(&self.inner)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout {
                address: self
                    .inner
                    .subchannels
                    .first()
                    .map_or_else(String::new, |s| s.address().to_string()),
                after: timeout,
                step: "waiting for READY",
            }),
        }
    }
}

/// The future of a call through a [`Channel`].
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, BoxError>> + Send>>;

impl tower::Service<Request<tonic::body::Body>> for Channel {
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    /// Always ready: waiting for a connection happens in the call, where its deadline and
    /// wait-for-ready apply and its error reaches the caller with the right code.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            inner
                .call(request)
                .await
                .map_err(|status| Box::new(status) as BoxError)
        })
    }
}

impl Inner {
    async fn call(
        self: Arc<Self>,
        mut request: Request<tonic::body::Body>,
    ) -> Result<Response<ResponseBody>, Status> {
        let guard = self.activity.begin();
        let policy = self.methods.lookup(request.uri().path());
        let header_timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let timeout = match (header_timeout, policy.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(timeout) = timeout
            && header_timeout != Some(timeout)
            && let Ok(value) = HeaderValue::from_str(&format_grpc_timeout(timeout))
        {
            request.headers_mut().insert("grpc-timeout", value);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        self.set_origin(&mut request)?;

        let sender = self.pick(policy.wait_for_ready, deadline).await?;
        let oversize = Arc::new(OnceLock::new());
        let request =
            request.map(|body| RequestBody::new(body, self.limits.send, oversize.clone()));
        let sent = sender_send(sender, request);
        let response = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, sent)
                .await
                .map_err(|_| self.deadline_exceeded("waiting for response headers"))?,
            None => sent.await,
        };
        let response = response.map_err(|e| match oversize.get() {
            Some(o) => status(
                Code::ResourceExhausted,
                &self.target,
                format!(
                    "request message of {} bytes is larger than the send limit of {} bytes",
                    o.length, o.limit
                ),
            ),
            None => status_of_transport_error(&self.target, &e),
        })?;
        let (limit, target) = (self.limits.recv, self.target.clone());
        Ok(response.map(|body| ResponseBody::new(body, limit, target, guard, deadline)))
    }

    fn deadline_exceeded(&self, while_: &str) -> Status {
        status(
            Code::DeadlineExceeded,
            &self.target,
            format!("deadline exceeded {while_}"),
        )
    }

    /// tonic gives a path only; hyper's HTTP/2 client needs scheme and authority.
    fn set_origin(&self, request: &mut Request<tonic::body::Body>) -> Result<(), Status> {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| {
                status(
                    Code::Internal,
                    &self.target,
                    format!("invalid request URI: {e}"),
                )
            })?;
        *request.uri_mut() = uri;
        Ok(())
    }

    /// A READY connection, waiting while connections are being made. Fails fast with
    /// UNAVAILABLE when every subchannel is in TRANSIENT_FAILURE, unless `wait_for_ready`.
    async fn pick(
        &self,
        wait_for_ready: bool,
        deadline: Option<Instant>,
    ) -> Result<SendRequest<RequestBody>, Status> {
        let mut watcher = self.watcher.clone();
        loop {
            let count = self.subchannels.len();
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let mut state = ConnectivityState::Shutdown;
            let mut last_error = None;
            for i in 0..count {
                let subchannel = &self.subchannels[(start + i) % count];
                let view = subchannel.view();
                match (&view.state, view.connection) {
                    (ConnectivityState::Ready, Some(sender)) if !sender.is_closed() => {
                        return Ok(sender);
                    }
                    (ConnectivityState::Idle, _) => subchannel.request_connect(),
                    _ => {}
                }
                state = ConnectivityState::aggregate([state, view.state]);
                last_error = last_error.or(view.last_error);
            }
            match state {
                ConnectivityState::TransientFailure if !wait_for_ready => {
                    let reason =
                        last_error.map_or_else(|| "no connection".to_owned(), |e| e.to_string());
                    return Err(status(Code::Unavailable, &self.target, reason));
                }
                ConnectivityState::Shutdown => {
                    return Err(status(
                        Code::Unavailable,
                        &self.target,
                        ConnectError::Shutdown,
                    ));
                }
                _ => {}
            }
            let changed = watcher.wait_for_state_change(state);
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, changed).await.is_err() {
                        return Err(self.deadline_exceeded(&format!(
                            "waiting for a connection (channel {state})"
                        )));
                    }
                }
                None => {
                    changed.await;
                }
            }
        }
    }
}

async fn sender_send(
    mut sender: SendRequest<RequestBody>,
    request: Request<RequestBody>,
) -> Result<Response<hyper::body::Incoming>, hyper::Error> {
    sender.send_request(request).await
}
