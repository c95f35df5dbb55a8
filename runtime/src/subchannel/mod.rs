//! A subchannel: one HTTP/2 connection to one address, with its state machine (IDLE,
//! CONNECTING, READY, TRANSIENT_FAILURE, SHUTDOWN), connection backoff, keepalive, idle
//! timeout and GOAWAY handling.
//!
//! A background task (the [driver](driver)) owns the connection's life; callers see it
//! through a `watch` of [`View`](view::View). [`Subchannel`] is a `tower::Service` that
//! sends an attempt on the current connection ([`send`] is the same for the pool, which
//! has already picked the connection). The files:
//!
//! - [`driver`]: the state machine (sticky TRANSIENT_FAILURE, backoff, idle, GOAWAY).
//! - [`handshake`]: the HTTP/2 handshake and the wait for the server's SETTINGS.
//! - [`backoff`]: gRPC connection backoff.
//! - [`health`]: client-side health checking (gRFC A17), a Watch stream per connection.
//! - [`load`]: calls in flight and last use, per subchannel.
//! - [`shared`]: what the subchannels of one channel share (the A8 keepalive doubling,
//!   the server's MAX_CONCURRENT_STREAMS, a generation bumped on state changes).

mod backoff;
mod driver;
mod executor;
pub(crate) mod handshake;
pub(crate) mod health;
pub(crate) mod load;
pub(crate) mod shared;
mod view;

pub(crate) use driver::BoxConnector;
pub(crate) use load::{InFlight, Load};
pub(crate) use shared::ChannelShared;
pub(crate) use view::View;

use crate::telemetry::connection::ConnectionMeter;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll};

use ephemos_config::model::ConnectionConfig;
use ephemos_config::value::{Address, SpiffeId};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tonic::Code;

use crate::call::{AttemptError, CallOptions, SubchannelId};
use crate::connector::Connector;
use crate::connector::tls::TlsSettings;
use crate::error::status;
use crate::protocol::{response, timeout, transport_failure};
use crate::retry::AttemptBody;
use crate::state::ConnectivityState;

struct Shared {
    view: watch::Sender<View>,
    /// Set by callers that want a connection; the driver clears it when it starts an
    /// attempt, so a burst of calls does not leave a reconnect for later.
    connect_requested: AtomicBool,
    /// What the pool asks of a READY connection: nothing, retire or replace it.
    end_request: AtomicU8,
    wake: Notify,
    shutdown: watch::Sender<bool>,
    channel: Arc<ChannelShared>,
}

impl Shared {
    fn publish(&self, update: impl FnOnce(&mut View)) {
        let mut changed = false;
        let mut left_ready = false;
        self.view.send_modify(|view| {
            let before = view.state;
            update(view);
            changed = view.state != before;
            left_ready = before == ConnectivityState::Ready && changed;
        });
        if left_ready {
            self.channel.ready_lost();
        }
        if changed {
            self.channel.bump();
        }
    }
}

/// No request of the pool for the connection.
const END_NONE: u8 = 0;
/// The pool shrank: drain the connection and close it.
const END_RETIRE: u8 = 1;
/// Cleanup: drain the connection, close it and make a new one after the backoff.
const END_REPLACE: u8 = 2;

/// What a subchannel's connection is made with.
pub(crate) struct SubchannelConfig {
    pub(crate) target: Arc<str>,
    /// Its place in the pool (its metrics' `ephemos.connection`).
    pub(crate) index: usize,
    pub(crate) address: Address,
    pub(crate) connection: ConnectionConfig,
    pub(crate) tls: Option<Arc<TlsSettings>>,
    /// Client-side health checking, when `health_check` is set.
    pub(crate) health: Option<Arc<health::HealthCheck>>,
    /// The window a rotation's replacement is jittered over.
    pub(crate) rotation_spread: std::time::Duration,
}

/// The handle a pool keeps; dropping it shuts the subchannel down.
pub(crate) struct Subchannel {
    id: SubchannelId,
    target: Arc<str>,
    address: Arc<std::sync::Mutex<Address>>,
    shared: Arc<Shared>,
    view: watch::Receiver<View>,
    load: Arc<Load>,
}

/// A connection picked for one attempt.
pub(crate) struct Ready {
    sender: SendRequest<AttemptBody>,
    draining: Arc<AtomicBool>,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS for this connection.
    pub(crate) max_streams: Option<u32>,
    /// The caller-ID metadata to send, when the channel propagates its identity.
    caller_header: Option<http::HeaderValue>,
}

impl Subchannel {
    /// Creates the subchannel and its driver task; no I/O happens until a connection is
    /// requested.
    pub(crate) fn spawn(
        config: SubchannelConfig,
        channel: Arc<ChannelShared>,
        load: Arc<Load>,
    ) -> Self {
        let connector = BoxConnector::new(Connector::new(config.tls.clone()));
        Self::spawn_with(config, channel, load, connector)
    }

    /// [`Subchannel::spawn`] with a connector of the caller's.
    pub(crate) fn spawn_with(
        config: SubchannelConfig,
        channel: Arc<ChannelShared>,
        load: Arc<Load>,
        connector: BoxConnector,
    ) -> Self {
        let (view_tx, view) = watch::channel(View::idle());
        let meter = ConnectionMeter::new(
            &config.target,
            config.address.to_string(),
            config.index,
            config.tls.is_some(),
        );
        let address = Arc::new(std::sync::Mutex::new(config.address));
        let shared = Arc::new(Shared {
            view: view_tx,
            connect_requested: AtomicBool::new(false),
            end_request: AtomicU8::new(END_NONE),
            wake: Notify::new(),
            shutdown: watch::channel(false).0,
            channel,
        });
        // Subscribed here, not in the task: a drop before the task first runs is then
        // still seen as a change.
        let shutdown = shared.shutdown.subscribe();
        tokio::spawn(driver::run(
            shared.clone(),
            shutdown,
            driver::Settings {
                target: config.target.clone(),
                address: address.clone(),
                config: config.connection,
                identity: config.tls.as_ref().map(|tls| tls.identity.clone()),
                connector,
                load: load.clone(),
                health: config.health.clone(),
                rotation_spread: config.rotation_spread,
                meter,
            },
        ));
        Self {
            id: SubchannelId::next(),
            target: config.target,
            address,
            shared,
            view,
            load,
        }
    }

    pub(crate) fn id(&self) -> SubchannelId {
        self.id
    }

    /// The address it dials.
    pub(crate) fn address(&self) -> Address {
        driver::dial_address(&self.address)
    }

    /// Dials `address` from its next connection attempt on (a name resolved to it).
    pub(crate) fn set_address(&self, address: Address) {
        *self.address.lock().unwrap_or_else(|p| p.into_inner()) = address;
    }

    /// Whether it has no connection and is not making one (IDLE or SHUTDOWN).
    pub(crate) fn is_unused(&self) -> bool {
        matches!(
            self.state(),
            ConnectivityState::Idle | ConnectivityState::Shutdown
        )
    }

    pub(crate) fn load(&self) -> &Arc<Load> {
        &self.load
    }

    /// The current state.
    pub(crate) fn state(&self) -> ConnectivityState {
        self.view.borrow().state
    }

    /// Looks at the current view without cloning it.
    pub(crate) fn with_view<T>(&self, f: impl FnOnce(&View) -> T) -> T {
        f(&self.view.borrow())
    }

    /// The server's verified SPIFFE ID, while READY over TLS.
    pub(crate) fn server_id(&self) -> Option<SpiffeId> {
        self.view.borrow().connection.as_ref()?.server_id.clone()
    }

    /// A receiver of the view, for watchers that must not keep the channel alive.
    pub(crate) fn watch(&self) -> watch::Receiver<View> {
        self.view.clone()
    }

    /// Asks the driver to connect if it is IDLE (no effect otherwise).
    pub(crate) fn request_connect(&self) {
        // Wanted again: a retirement not yet carried out is called off.
        self.shared.end_request.store(END_NONE, Ordering::Release);
        self.shared.connect_requested.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }

    /// Asks the driver to drain its connection and close it, going IDLE (the pool no
    /// longer uses it). Calls in flight finish first.
    pub(crate) fn retire(&self) {
        self.shared.end_request.store(END_RETIRE, Ordering::Release);
        self.shared.wake.notify_one();
    }

    /// Asks the driver to drain its connection, close it and connect again after its
    /// backoff (cleanup, for a connection unhealthy for too long); `false` when that was
    /// asked already and not yet taken up (the driver was busy), so it counts once.
    pub(crate) fn replace(&self) -> bool {
        let asked = self.shared.end_request.swap(END_REPLACE, Ordering::AcqRel) != END_REPLACE;
        self.shared.wake.notify_one();
        asked
    }

    /// Since when the health check has kept the connection out of the picks.
    pub(crate) fn unhealthy_since(&self) -> Option<Instant> {
        self.view.borrow().unhealthy_since
    }

    /// The connection, if READY and taking new calls.
    pub(crate) fn ready(&self) -> Option<Ready> {
        self.state_and_ready().1
    }

    /// The state, and the connection if READY and taking new calls: one look at the view.
    pub(crate) fn state_and_ready(&self) -> (ConnectivityState, Option<Ready>) {
        let view = self.view.borrow();
        let ready = match &view.connection {
            Some(c) if view.state == ConnectivityState::Ready && c.usable() => Some(Ready {
                sender: c.sender.clone(),
                draining: c.draining.clone(),
                max_streams: c.max_concurrent_streams,
                caller_header: c.caller_header.clone(),
            }),
            _ => None,
        };
        (view.state, ready)
    }

    /// Sends one attempt on `ready`, a connection of this subchannel.
    pub(crate) fn send(
        &self,
        ready: Ready,
        request: Request<AttemptBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, AttemptError>> + Send + 'static {
        send(ready, request, self.target.clone(), self.id)
    }
}

impl Drop for Subchannel {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// [`crate::interceptor::CALLER_ID_HEADER`] as a header name.
const CALLER_ID: http::HeaderName =
    http::HeaderName::from_static(crate::interceptor::CALLER_ID_HEADER);

/// The future of an attempt through a [`Subchannel`].
pub(crate) type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Incoming>, AttemptError>> + Send>>;

impl tower::Service<Request<AttemptBody>> for Subchannel {
    type Response = Response<Incoming>;
    type Error = AttemptError;
    type Future = ResponseFuture;

    /// Always ready: an attempt made while the subchannel is not READY comes back unsent
    /// (the pool picks by state and does not do that).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AttemptError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<AttemptBody>) -> ResponseFuture {
        match self.ready() {
            Some(ready) => Box::pin(self.send(ready, request)),
            None => {
                self.request_connect();
                Box::pin(std::future::ready(Err(AttemptError::Unsent(Box::new(
                    request,
                )))))
            }
        }
    }
}

/// Sends one attempt: writes the time left in `grpc-timeout`, hands the request to the
/// connection at once, and reports how it ended in the terms the retry layer needs
/// (unsent, refused unprocessed, or failed). A small future around hyper's: calls are
/// not paying to move a large state machine around.
fn send(
    ready: Ready,
    mut request: Request<AttemptBody>,
    target: Arc<str>,
    id: SubchannelId,
) -> impl Future<Output = Result<Response<Incoming>, AttemptError>> + Send + 'static {
    let Ready {
        mut sender,
        draining,
        caller_header,
        ..
    } = ready;
    if let Some(id) = caller_header {
        // The connection's own ID, whatever the application wrote under the name.
        request.headers_mut().insert(CALLER_ID, id);
    }
    let mut early = None;
    if let Some(deadline) = CallOptions::of(&request).deadline {
        // The server gets the time that is left, not the time the call started with.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            early = Some(AttemptError::Failed(status(
                Code::DeadlineExceeded,
                &target,
                "deadline exceeded before the call was sent",
            )));
        } else {
            request
                .headers_mut()
                .insert(crate::protocol::names::GRPC_TIMEOUT, timeout::encode(left));
        }
    }
    let sent = match early {
        Some(_) => None,
        None => Some(sender.try_send_request(request)),
    };
    SendFuture {
        sent,
        early,
        target,
        id,
        draining,
    }
}

pin_project_lite::pin_project! {
    /// [`send`]'s future: hyper's, with what it takes to classify its outcome.
    struct SendFuture<F> {
        #[pin]
        sent: Option<F>,
        early: Option<AttemptError>,
        target: Arc<str>,
        id: SubchannelId,
        draining: Arc<AtomicBool>,
    }
}

impl<F> Future for SendFuture<F>
where
    F: Future<
        Output = Result<
            Response<Incoming>,
            hyper::client::conn::TrySendError<Request<AttemptBody>>,
        >,
    >,
{
    type Output = Result<Response<Incoming>, AttemptError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(sent) = this.sent.as_pin_mut() else {
            return Poll::Ready(Err(this.early.take().unwrap_or_else(|| {
                AttemptError::Failed(status(Code::Internal, this.target, "polled twice"))
            })));
        };
        let result = match sent.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        Poll::Ready(match result {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                // A non-gRPC response is a failed attempt; dropping its body resets the
                // stream.
                match response::check_head(this.target, parts.status, &mut parts.headers) {
                    Ok(()) => Ok(Response::from_parts(parts, body)),
                    Err(status) => Err(AttemptError::Failed(status)),
                }
            }
            Err(mut error) => match error.take_message() {
                Some(unsent) => {
                    // hyper handed it back: this connection takes no more calls.
                    this.draining.store(true, Ordering::Release);
                    Err(AttemptError::Unsent(Box::new(unsent)))
                }
                None => {
                    let failure = transport_failure::classify(this.target, error.error());
                    Err(if failure.unprocessed {
                        AttemptError::Refused {
                            status: failure.status,
                            subchannel: *this.id,
                        }
                    } else {
                        AttemptError::Failed(failure.status)
                    })
                }
            },
        })
    }
}

#[cfg(test)]
mod tests;
