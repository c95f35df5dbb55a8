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

use ephemos_config::model::{MessageSizeLimits, ServerAuthorization, TargetConfig};
use ephemos_config::value::Address;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use hyper::client::conn::http2::SendRequest;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::activity::Activity;
use crate::body::{OversizeFlag, RequestBody, RequestSource, ResponseBody};
use crate::error::{BoxError, ConnectError, status, status_of_transport_error};
use crate::identity::Identity;
use crate::method_policy::{MethodPolicies, format_grpc_timeout, parse_grpc_timeout};
use crate::state::ConnectivityState;
use crate::subchannel::Subchannel;
use crate::tls::TlsSettings;

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
///
/// A call the server never processed (refused by its GOAWAY or with REFUSED_STREAM, or
/// handed back unsent by a closing connection) is sent again on another connection, its
/// request replayed from a buffer of up to 256 KiB (gRFC A6 transparent retry).
///
/// tonic's generated clients also limit decoded messages, to 4 MiB by default: for a
/// larger receive limit, raise theirs too (`client.max_decoding_message_size(n)`).
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
    watcher: StateWatcher,
    /// Bumped on every state change of any subchannel.
    changed: tokio::sync::watch::Receiver<u64>,
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
    /// A builder for a SPIFFE mTLS channel to `address`: it presents `identity` and
    /// accepts only servers that `authorization` allows. Production preset settings.
    pub fn mtls(
        address: impl Into<Address>,
        identity: Identity,
        authorization: ServerAuthorization,
    ) -> ChannelBuilder {
        ChannelBuilder::new(
            vec![address.into()],
            Some(TlsSettings {
                identity,
                authorization,
            }),
        )
    }

    /// A builder for a channel without TLS (no encryption, no authentication): for local
    /// development and tests. Production preset settings.
    pub fn plaintext(address: impl Into<Address>) -> ChannelBuilder {
        ChannelBuilder::new(vec![address.into()], None)
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

    /// The verified SPIFFE IDs of the servers this channel is connected to now (empty
    /// without TLS or before a connection is READY).
    pub fn server_ids(&self) -> Vec<ephemos_config::value::SpiffeId> {
        self.inner
            .subchannels
            .iter()
            .filter_map(Subchannel::server_id)
            .collect()
    }

    /// A watcher of the state that does not keep the channel alive (it reports SHUTDOWN
    /// once the last clone of the channel is dropped).
    pub fn state_watcher(&self) -> StateWatcher {
        self.inner.watcher.clone()
    }

    /// Connects now and waits until a connection is READY; fails with the reason of the
    /// failed attempt (each attempt is bounded by `max(connect_timeout, backoff)`) once
    /// every endpoint is in TRANSIENT_FAILURE.
    pub async fn connect(&self) -> Result<(), ConnectError> {
        self.inner.wait_ready().await
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

/// One look at every subchannel.
enum Scan {
    /// A connection that takes new calls.
    Ready(SendRequest<RequestBody>),
    /// Connections are being made (or a READY one is closing): wait for a change.
    Waiting,
    /// Every subchannel is in TRANSIENT_FAILURE.
    AllFailed(Option<ConnectError>),
    /// The channel is shut down (or has no endpoint).
    Shutdown,
}

/// How many times a call that never left the client moves to another connection.
const MAX_TRANSPARENT_RETRIES: usize = 5;

impl Inner {
    async fn call(
        self: Arc<Self>,
        request: Request<tonic::body::Body>,
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
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let oversize: OversizeFlag = Arc::new(OnceLock::new());
        let (mut parts, body) = request.into_parts();
        self.set_origin(&mut parts)?;
        let source = RequestSource::new(body);
        let first = source.attempt(self.limits.send, oversize.clone());
        let first = first.ok_or_else(|| {
            status(
                Code::Internal,
                &self.target,
                "the request body is unavailable",
            )
        })?;
        let mut request = Request::from_parts(parts.clone(), first);

        let mut transparent_retries = 0;
        let response = loop {
            let mut sender = self.pick(policy.wait_for_ready, deadline).await?;
            if let Some(deadline) = deadline {
                // The server gets the time that is left, not the time the call started with.
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.deadline_exceeded("before the call was sent"));
                }
                if let Ok(value) = HeaderValue::from_str(&format_grpc_timeout(left)) {
                    request.headers_mut().insert("grpc-timeout", value);
                }
            }
            let sent = sender.try_send_request(request);
            let result = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, sent)
                    .await
                    .map_err(|_| self.deadline_exceeded("waiting for response headers"))?,
                None => sent.await,
            };
            match result {
                Ok(response) => break response,
                Err(mut error) => {
                    if transparent_retries == MAX_TRANSPARENT_RETRIES {
                        return Err(self.failure(&oversize, error.error()));
                    }
                    // A call the server never processed goes to another connection (gRFC
                    // A6 transparent retry): hyper handed it back unsent, or the server's
                    // GOAWAY or REFUSED_STREAM refused it; its body is replayed from the
                    // start while it fits the replay buffer.
                    request = match error.take_message() {
                        Some(unsent) => unsent,
                        None => match never_processed(error.error())
                            .then(|| source.attempt(self.limits.send, oversize.clone()))
                            .flatten()
                        {
                            Some(body) => Request::from_parts(parts.clone(), body),
                            None => return Err(self.failure(&oversize, error.error())),
                        },
                    };
                    transparent_retries += 1;
                }
            }
        };
        let (limit, target) = (self.limits.recv, self.target.clone());
        Ok(response.map(|body| ResponseBody::new(body, limit, target, guard, deadline, oversize)))
    }

    /// The status of a call that failed on its connection.
    fn failure(&self, oversize: &OversizeFlag, error: &hyper::Error) -> Status {
        match oversize.get() {
            Some(o) => status(Code::ResourceExhausted, &self.target, o.request_message()),
            None => status_of_transport_error(&self.target, error),
        }
    }

    fn deadline_exceeded(&self, while_: &str) -> Status {
        status(
            Code::DeadlineExceeded,
            &self.target,
            format!("deadline exceeded {while_}"),
        )
    }

    /// tonic gives a path only; hyper's HTTP/2 client needs scheme and authority.
    fn set_origin(&self, request: &mut http::request::Parts) -> Result<(), Status> {
        let path = request
            .uri
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
        request.uri = uri;
        Ok(())
    }

    /// Looks at every subchannel once, starting at the next in turn; asks IDLE ones to
    /// connect. A READY subchannel whose connection is closing counts as connecting.
    fn scan(&self) -> Scan {
        let count = self.subchannels.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let (mut all_failed, mut all_shutdown) = (count > 0, true);
        let mut last_error = None;
        for i in 0..count {
            let subchannel = &self.subchannels[(start + i) % count];
            let view = subchannel.view();
            match view.state {
                ConnectivityState::Ready => match view.connection {
                    Some(connection) if connection.usable() => {
                        return Scan::Ready(connection.sender);
                    }
                    _ => all_failed = false,
                },
                ConnectivityState::Idle => {
                    subchannel.request_connect();
                    all_failed = false;
                }
                ConnectivityState::Connecting => all_failed = false,
                ConnectivityState::TransientFailure => {
                    last_error = last_error.or(view.last_error);
                }
                ConnectivityState::Shutdown => {
                    all_failed = false;
                    continue;
                }
            }
            all_shutdown = false;
        }
        if all_shutdown {
            Scan::Shutdown
        } else if all_failed {
            Scan::AllFailed(last_error)
        } else {
            Scan::Waiting
        }
    }

    /// A connection that takes new calls, waiting while connections are being made.
    /// Fails fast with UNAVAILABLE when every subchannel is in TRANSIENT_FAILURE, unless
    /// `wait_for_ready`.
    async fn pick(
        &self,
        wait_for_ready: bool,
        deadline: Option<Instant>,
    ) -> Result<SendRequest<RequestBody>, Status> {
        if let Scan::Ready(sender) = self.scan() {
            return Ok(sender);
        }
        let mut changed = self.changed.clone();
        loop {
            // Marked seen before looking, so any change after the look wakes the wait.
            changed.borrow_and_update();
            match self.scan() {
                Scan::Ready(sender) => return Ok(sender),
                Scan::AllFailed(error) if !wait_for_ready => {
                    let reason =
                        error.map_or_else(|| "no connection".to_owned(), |e| e.to_string());
                    return Err(status(Code::Unavailable, &self.target, reason));
                }
                Scan::Shutdown => {
                    return Err(status(
                        Code::Unavailable,
                        &self.target,
                        ConnectError::Shutdown,
                    ));
                }
                Scan::AllFailed(_) | Scan::Waiting => {}
            }
            let change = changed.changed();
            let outcome = match deadline {
                Some(deadline) => {
                    tokio::time::timeout_at(deadline, change)
                        .await
                        .map_err(|_| {
                            let state = self.watcher.state();
                            self.deadline_exceeded(&format!(
                                "waiting for a connection (channel {state})"
                            ))
                        })?
                }
                None => change.await,
            };
            if outcome.is_err() {
                return Err(status(
                    Code::Unavailable,
                    &self.target,
                    ConnectError::Shutdown,
                ));
            }
        }
    }

    /// Connects every IDLE subchannel and waits until one is READY; fails with the last
    /// error once every subchannel is in TRANSIENT_FAILURE. Each attempt has its own
    /// deadline, so this ends.
    async fn wait_ready(&self) -> Result<(), ConnectError> {
        self.activity.touch();
        let mut changed = self.changed.clone();
        loop {
            changed.borrow_and_update();
            match self.scan() {
                Scan::Ready(_) => return Ok(()),
                Scan::AllFailed(error) => return Err(error.unwrap_or(ConnectError::Shutdown)),
                Scan::Shutdown => return Err(ConnectError::Shutdown),
                Scan::Waiting => {}
            }
            if changed.changed().await.is_err() {
                return Err(ConnectError::Shutdown);
            }
        }
    }
}

/// Whether the server refused a stream before processing it: a GOAWAY that excludes it,
/// or RST_STREAM REFUSED_STREAM (gRFC A6: such calls may be retried transparently).
fn never_processed(error: &hyper::Error) -> bool {
    crate::error::find::<h2::Error>(error)
        .is_some_and(|e| e.is_go_away() || e.reason() == Some(h2::Reason::REFUSED_STREAM))
}
