//! [`Channel`]: the facade a tonic client sends its requests through, on top of the
//! layers (retry, then pool, then subchannels, then the connector).
//!
//! Per call it does only what must happen once: it looks up the method's policy,
//! computes the call's deadline (the smaller of the request's `grpc-timeout` and the
//! method's `timeout`) as an `Instant` in the request's extensions, where every layer
//! below reads it, fills in the URI's scheme and authority, and wraps the response body
//! ([`ResponseBody`]) with the receive limit and the deadline.
//!
//! - [`builder`]: [`ChannelBuilder`], from an address or a resolved target; settings
//!   given in code are checked with the file's rules.
//! - [`method_policy`]: per-method timeout and wait-for-ready.
//! - [`watcher`], [`stats`]: state, and a snapshot of the channel.

mod baked;
mod body;
mod builder;
mod future;
mod method_policy;
mod stats;
mod watcher;

pub use baked::{BakedTarget, PROFILE_VARIABLE};
pub use body::ResponseBody;
pub use builder::{BuildError, ChannelBuilder};
pub use future::ResponseFuture;
pub use stats::{ChannelStats, ConnectionStats, http2_setting_name};
pub use watcher::StateWatcher;

use std::sync::Arc;
use std::task::{Context, Poll};

use ephemos_config::model::ConnectionConfig;
use ephemos_config::model::{KeepaliveConfig, ServerAuthorization, TargetConfig};
use ephemos_config::service_config::ServiceConfig;
use ephemos_config::value::Address;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use tokio::time::Instant;
use tonic::Code;
use tower::{Layer, Service};

use crate::call::CallOptions;
use crate::connector::tls::TlsSettings;
use crate::error::{BoxError, ConnectError, status};
use crate::identity::Identity;
use crate::interceptor::Interceptors;
use crate::pool::{Pool, PoolSettings};
use crate::protocol::timeout;
use crate::retry::{Retry, RetryLayer};
use crate::state::ConnectivityState;
use crate::telemetry::Telemetry;
use crate::telemetry::attempt::AttemptMeter;
use crate::telemetry::call::CallMeter;
use crate::telemetry::labels::CallLabels;
use future::BodySettings;
use method_policy::MethodPolicies;

/// A gRPC channel: give it to any tonic-generated client (`EchoClient::new(channel)`).
///
/// It owns one HTTP/2 connection per endpoint (a subchannel), connects lazily, reconnects
/// with gRPC connection backoff, keeps connections alive with HTTP/2 pings, closes them
/// when idle, and reports its [`ConnectivityState`]. Cloning is cheap (two `Arc`s); when
/// the last clone is dropped, the background tasks stop and connections close.
///
/// Errors reach the caller as `tonic::Status`: UNAVAILABLE when no connection can be had
/// (with the last connect error), DEADLINE_EXCEEDED when the call's deadline passes,
/// RESOURCE_EXHAUSTED for a message over the size limit, and the HTTP status mapped by
/// gRPC's table when a proxy or a web server answers instead of a gRPC server.
///
/// A call that never left the client, or that the server refused before processing it
/// (its GOAWAY or RST_STREAM REFUSED_STREAM), is sent again (gRFC A6 transparent retry),
/// its request replayed from a buffer of up to 256 KiB a call and 16 MiB a channel. A
/// failed call is retried, or a slow one hedged, as its method's policy says (A6:
/// retryable or non-fatal codes, backoff or hedging delay, server pushback, the channel's
/// retry throttling), within the call's deadline.
///
/// tonic's generated clients also limit decoded messages, to 4 MiB by default: for a
/// larger receive limit, raise theirs too (`client.max_decoding_message_size(n)`).
#[derive(Clone)]
pub struct Channel {
    stack: Retry<AttemptMeter<Pool>>,
    facade: Arc<Facade>,
}

/// What the facade keeps for every call.
struct Facade {
    target: Arc<str>,
    authority: Authority,
    methods: MethodPolicies,
    recv_limit: u32,
    keepalive: Option<KeepaliveConfig>,
    pool: Pool,
    watcher: StateWatcher,
    telemetry: Arc<Telemetry>,
    interceptors: Interceptors,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.facade.target)
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
                propagate_identity: false,
            }),
        )
    }

    /// A builder for a channel without TLS (no encryption, no authentication): for local
    /// development and tests. Production preset settings.
    pub fn plaintext(address: impl Into<Address>) -> ChannelBuilder {
        ChannelBuilder::new(vec![address.into()], None)
    }

    /// A builder with everything a resolved target of `connections.toml` says.
    pub fn from_target(config: &TargetConfig) -> ChannelBuilder {
        ChannelBuilder::from_target(config)
    }

    // Called once, by the builder, with each of its settings.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        target: Arc<str>,
        authority: Authority,
        endpoints: &[Address],
        connection: ConnectionConfig,
        pool: PoolSettings,
        service_config: &ServiceConfig,
        tls: Option<Arc<TlsSettings>>,
        interceptors: Interceptors,
    ) -> Channel {
        let pool = Pool::new(target.clone(), endpoints, connection, pool, tls);
        let methods = MethodPolicies::new(service_config);
        let telemetry = Telemetry::new(&target);
        let stack = RetryLayer::new(
            target.clone(),
            connection.max_message_size.send,
            methods.call_policies(),
            service_config.retry_throttling.as_ref(),
        )
        .layer(AttemptMeter::new(pool.clone(), telemetry.clone()));
        let watcher = StateWatcher::new(
            pool.subchannels().iter().map(|s| s.watch()).collect(),
            pool.members().clone(),
            pool.channel().changed.subscribe(),
        );
        Channel {
            stack,
            facade: Arc::new(Facade {
                target,
                authority,
                methods,
                recv_limit: connection.max_message_size.recv,
                keepalive: connection.keepalive,
                pool,
                watcher,
                telemetry,
                interceptors,
            }),
        }
    }

    /// The target's name, as used in messages.
    pub fn target(&self) -> &str {
        &self.facade.target
    }

    /// The largest response message the channel accepts, in bytes (its
    /// `max_message_size.recv`); generated clients set tonic's decode limit to it.
    pub fn max_recv_message_size(&self) -> usize {
        self.facade.recv_limit as usize
    }

    /// The current connectivity state.
    pub fn state(&self) -> ConnectivityState {
        self.facade.watcher.state()
    }

    /// Whether the channel is READY.
    pub fn is_healthy(&self) -> bool {
        self.state() == ConnectivityState::Ready
    }

    /// Returns at once if the state is not `from`, else waits for the next change.
    pub async fn wait_for_state_change(&self, from: ConnectivityState) -> ConnectivityState {
        self.facade
            .watcher
            .clone()
            .wait_for_state_change(from)
            .await
    }

    /// The verified SPIFFE IDs of the servers this channel is connected to now (empty
    /// without TLS or before a connection is READY).
    pub fn server_ids(&self) -> Vec<ephemos_config::value::SpiffeId> {
        self.facade
            .pool
            .active()
            .filter_map(|s| s.server_id())
            .collect()
    }

    /// A watcher of the state that does not keep the channel alive (it reports SHUTDOWN
    /// once the last clone of the channel is dropped).
    pub fn state_watcher(&self) -> StateWatcher {
        self.facade.watcher.clone()
    }

    /// Connects now and waits until a connection is READY; fails with the reason of the
    /// failed attempt (each attempt is bounded by `max(connect_timeout, backoff)`) once
    /// every endpoint has failed one.
    pub async fn connect(&self) -> Result<(), ConnectError> {
        self.facade.pool.connect().await
    }

    /// A snapshot of the channel: each connection's state and load, and the settings in
    /// force, including those a server changed (a doubled keepalive time).
    pub fn stats(&self) -> ChannelStats {
        let shared = self.facade.pool.channel();
        // The active connections, and spares still draining.
        let members = self.facade.pool.members();
        let connections = self
            .facade
            .pool
            .subchannels()
            .iter()
            .enumerate()
            .filter(|(index, s)| {
                members.is_active(*index) || s.state() != crate::ConnectivityState::Idle
            })
            .map(|(_, s)| {
                let now = Instant::now();
                let (state, connection, last_error, health, connects, age) = s.with_view(|v| {
                    (
                        v.state,
                        v.connection.clone(),
                        v.last_error.as_ref().map(ToString::to_string),
                        v.health.as_ref().map(ToString::to_string),
                        v.connects,
                        v.connected_at.map(|at| now.saturating_duration_since(at)),
                    )
                });
                let connection = connection.as_ref();
                ConnectionStats {
                    endpoint: s.address().to_string(),
                    state,
                    health,
                    in_flight: s.load().in_flight(),
                    calls: s.load().calls(),
                    connects,
                    age,
                    idle_for: Instant::now().saturating_duration_since(s.load().last_used()),
                    max_concurrent_streams: connection.and_then(|c| c.max_concurrent_streams),
                    server_id: connection.and_then(|c| c.server_id.clone()),
                    server_certificate_expiry: connection.and_then(|c| c.server_certificate_expiry),
                    client_id: connection.and_then(|c| c.client_id.clone()),
                    server_settings: connection
                        .map_or_else(Vec::new, |c| c.server_settings.to_vec()),
                    last_error,
                }
            })
            .collect();
        let retry = self.stack.stats();
        let pool = self.facade.pool.stats();
        ChannelStats {
            target: self.facade.target.to_string(),
            state: self.state(),
            connections,
            keepalive_time: self.facade.keepalive.map(|k| shared.keepalive_time(k.time)),
            keepalive_doubled: shared.keepalive_doubled(),
            max_concurrent_streams: shared.max_concurrent_streams(),
            replay_buffer_bytes: self.stack.replay_buffer_bytes(),
            transparent_retries: retry.transparent_retries,
            retries: retry.retries,
            hedges: retry.hedges,
            throttled: retry.throttled,
            retry_delay: retry.retry_delay,
            throttle_tokens: retry.throttle_tokens,
            pool_size: pool.size,
            pool_max_size: pool.max_size,
            pool_hits: pool.hits,
            pool_misses: pool.misses,
            pool_grown: pool.grown,
            pool_evictions: pool.evictions,
        }
    }
}

impl Service<Request<tonic::body::Body>> for Channel {
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    /// Always ready: waiting for a connection happens in the call, where its deadline and
    /// wait-for-ready apply and its error reaches the caller with the right code.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<tonic::body::Body>) -> ResponseFuture {
        let facade = &*self.facade;
        let policy = facade.methods.lookup(request.uri().path());
        let labels = CallLabels::of(&request, &facade.telemetry);
        let mut meter = CallMeter::start(&facade.telemetry, &labels, request.uri().path());
        if let Err(message) = set_origin(request.uri_mut(), &facade.authority) {
            meter.finish(Code::Internal);
            return ResponseFuture::failed(status(Code::Internal, &facade.target, message));
        }
        if let Err(refused) = facade.interceptors.apply(&facade.target, &mut request) {
            meter.finish(refused.code());
            return ResponseFuture::failed(refused);
        }
        // After the interceptors: a `grpc-timeout` one of them wrote is the caller's too.
        let asked = match request.headers().get(&crate::protocol::names::GRPC_TIMEOUT) {
            None => None,
            Some(value) => match timeout::parse(value.as_bytes()) {
                Some(asked) => Some(asked),
                None => {
                    meter.finish(Code::Internal);
                    return ResponseFuture::failed(status(
                        Code::Internal,
                        &facade.target,
                        format!(
                            "the call's `grpc-timeout` ({value:?}) is not a gRPC timeout: at \
                             most 8 digits and a unit of H, M, S, m, u or n (e.g. 100m)"
                        ),
                    ));
                }
            },
        };
        let timeout = match (asked, policy.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        request.extensions_mut().insert(labels);
        request.extensions_mut().insert(CallOptions {
            deadline,
            wait_for_ready: policy.wait_for_ready,
            avoid: None,
            policy: policy.call_policy,
        });
        let call = {
            let _entered = meter.span().enter();
            self.stack.call(request)
        };
        ResponseFuture::new(
            call,
            meter,
            BodySettings {
                target: facade.target.clone(),
                recv_limit: facade.recv_limit,
                deadline,
            },
        )
    }
}

/// tonic gives a path only; hyper's HTTP/2 client needs scheme and authority. The path
/// is moved, not copied, and the authority is shared.
pub(crate) fn set_origin(uri: &mut Uri, authority: &Authority) -> Result<(), String> {
    let mut parts = std::mem::take(uri).into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority.clone());
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    *uri = Uri::from_parts(parts).map_err(|e| format!("invalid request URI: {e}"))?;
    Ok(())
}
