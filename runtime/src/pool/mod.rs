//! The pool: owns a channel's subchannels (`pool.size` per endpoint, up to `max_size`
//! when it grows), picks one for each attempt ([`pick`]: power of two choices on the
//! calls in flight among the active [`members`]), grows when every connection of an
//! endpoint is full (gRFC A105), and runs the [`cleanup`] task that shrinks it back and
//! replaces connections unhealthy for too long. Calls in flight are counted per
//! subchannel, released when the response body ends or is dropped ([`body`]).
//!
//! [`Pool`] is a `tower::Service` of attempts: it answers with the response, or with an
//! [`AttemptError`] that says whether the server can have processed the attempt.

mod body;
mod cleanup;
pub(crate) mod dns;
pub(crate) mod members;
mod pick;

pub(crate) use body::PooledBody;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use ephemos_config::model::{ConnectionConfig, PoolConfig};
use ephemos_config::value::Address;
use http::{Request, Response};
use tokio::sync::watch;

use crate::call::{AttemptError, CallOptions};
use crate::connector::tls::TlsSettings;
use crate::error::ConnectError;
use crate::retry::AttemptBody;
use crate::subchannel::health::HealthCheck;
use crate::subchannel::{ChannelShared, Load, Subchannel, SubchannelConfig};
use crate::telemetry::pool::PoolMeter;
use members::Members;
use pick::Growth;

/// The subchannels of one channel, and the pick.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    target: Arc<str>,
    /// Every endpoint's `max_size` subchannels, endpoint after endpoint.
    subchannels: Vec<Subchannel>,
    /// Which of them take calls.
    members: Arc<Members>,
    next: AtomicUsize,
    channel: Arc<ChannelShared>,
    changed: watch::Receiver<u64>,
    /// Connections per endpoint, and the most it may grow to.
    size: u32,
    max_size: u32,
    /// How picks treat full connections, when the pool grows.
    growth: Option<Growth>,
    cleanup_interval: Duration,
    /// A connection attempt's time: a fail-fast failure within it of the last READY
    /// connection may be retried by the policy.
    connect_timeout: Duration,
    /// Attempts that found a READY connection at once.
    hits: AtomicU64,
    /// Attempts that waited for one.
    misses: AtomicU64,
    /// Connections the pool opened because every one of an endpoint was full.
    grown: AtomicU64,
    /// Connections cleanup closed: the pool shrank, or one was unhealthy too long.
    evictions: AtomicU64,
    /// The `dns:///` names among the endpoints, and how they are resolved.
    dns: Option<dns::Dns>,
    /// Whether connections open as soon as they are in the pool.
    warm: bool,
    /// Its metrics.
    meter: PoolMeter,
    /// Dropped with the pool: stops the cleanup and resolver tasks at once.
    _stop: watch::Sender<()>,
}

/// The window an identity rotation's replacements are spread over, per connection.
const ROTATION_SPREAD_PER_CONNECTION: Duration = Duration::from_millis(500);

/// How a pool is made: its size and the health checking of its connections.
pub(crate) struct PoolSettings {
    pub(crate) config: PoolConfig,
    pub(crate) health: Option<Arc<HealthCheck>>,
    /// Where `dns:///` names are resolved.
    pub(crate) name_servers: dns::NameServers,
}

/// What the pool did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PoolStats {
    pub(crate) size: u32,
    pub(crate) max_size: u32,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) grown: u64,
    pub(crate) evictions: u64,
}

impl Pool {
    /// `pool.max_size` subchannels per endpoint, `pool.size` of them active; nothing
    /// connects until the first call or `connect()`, unless `pool.warm` asks for every
    /// active connection now. Starts the cleanup task when there is something to clean
    /// (a pool that grows, or health checking).
    pub(crate) fn new(
        target: Arc<str>,
        endpoints: &[Address],
        connection: ConnectionConfig,
        settings: PoolSettings,
        tls: Option<Arc<TlsSettings>>,
    ) -> Pool {
        let PoolSettings {
            config: pool,
            health,
            name_servers,
        } = settings;
        let channel = ChannelShared::new();
        let size = pool.size.max(1);
        let max_size = pool.max_size.max(size);
        // A group of `max_size` subchannels per address; a name has `dns::SLOTS` groups,
        // inactive until it resolves.
        let mut groups: Vec<(&Address, usize)> = Vec::new();
        let mut names = Vec::new();
        for address in endpoints {
            match address {
                Address::Dns { host, port } => {
                    let first = groups.len();
                    groups.extend(std::iter::repeat_n((address, 0), dns::SLOTS));
                    names.push(dns::DnsEndpoint::new(
                        host.to_string(),
                        *port,
                        (first..groups.len()).collect(),
                    ));
                }
                _ => groups.push((address, size as usize)),
            }
        }
        let addresses: Vec<&Address> = groups
            .iter()
            .flat_map(|(address, _)| std::iter::repeat_n(*address, max_size as usize))
            .collect();
        let loads: Vec<Arc<Load>> = addresses.iter().map(|_| Load::new()).collect();
        // Half a second per connection, at most five: a rotation replaces a pool of ten
        // connections about one every half second, a single one within half a second.
        let connections = (endpoints.len() * size as usize).clamp(1, 10) as u32;
        let rotation_spread = ROTATION_SPREAD_PER_CONNECTION * connections;
        channel.set_loads(loads.clone());
        let subchannels: Vec<Subchannel> = addresses
            .into_iter()
            .zip(loads)
            .enumerate()
            .map(|(index, (address, load))| {
                Subchannel::spawn(
                    SubchannelConfig {
                        target: target.clone(),
                        index,
                        address: address.clone(),
                        connection,
                        tls: tls.clone(),
                        health: health.clone(),
                        rotation_spread,
                    },
                    channel.clone(),
                    load,
                )
            })
            .collect();
        let actives: Vec<usize> = groups.iter().map(|(_, active)| *active).collect();
        let members = Members::new(&actives, size as usize, max_size as usize);
        let dns = (!names.is_empty()).then(|| {
            members.set_resolution(members::RESOLVING);
            dns::Dns {
                endpoints: names,
                servers: name_servers,
            }
        });
        if pool.warm {
            for index in members.active() {
                subchannels[index].request_connect();
            }
        }
        let cleans = max_size > size || health.is_some();
        let pool = Self::build(
            target,
            subchannels,
            members,
            channel,
            (
                PoolConfig {
                    size,
                    max_size,
                    ..pool
                },
                connection.connect_timeout,
            ),
            dns,
        );
        if cleans {
            cleanup::spawn(&pool);
        }
        dns::spawn(&pool.inner);
        pool
    }

    /// A pool over subchannels made elsewhere (that share `channel`), every one active.
    #[cfg(test)]
    pub(crate) fn of(
        target: Arc<str>,
        subchannels: Vec<Subchannel>,
        channel: Arc<ChannelShared>,
        size: u32,
    ) -> Pool {
        let members = Members::all(subchannels.len());
        let config = PoolConfig {
            size,
            max_size: size,
            ..ephemos_config::Preset::Production.pool_config()
        };
        Self::build(
            target,
            subchannels,
            members,
            channel,
            (config, Duration::ZERO),
            None,
        )
    }

    fn build(
        target: Arc<str>,
        subchannels: Vec<Subchannel>,
        members: Members,
        channel: Arc<ChannelShared>,
        (config, connect_timeout): (PoolConfig, Duration),
        dns: Option<dns::Dns>,
    ) -> Pool {
        let changed = channel.changed.subscribe();
        let meter = PoolMeter::new(&target);
        meter.size(members.active_count());
        Pool {
            inner: Arc::new(Inner {
                meter,
                target,
                subchannels,
                members: Arc::new(members),
                next: AtomicUsize::new(0),
                channel,
                changed,
                size: config.size,
                max_size: config.max_size,
                growth: (config.max_size > config.size).then_some(Growth {
                    max_streams: config.max_streams_per_connection,
                }),
                cleanup_interval: config.cleanup_interval,
                connect_timeout,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                grown: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
                dns,
                warm: config.warm,
                _stop: watch::channel(()).0,
            }),
        }
    }

    /// What the pool did so far.
    pub(crate) fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        PoolStats {
            size: inner.size,
            max_size: inner.max_size,
            hits: inner.hits.load(Ordering::Relaxed),
            misses: inner.misses.load(Ordering::Relaxed),
            grown: inner.grown.load(Ordering::Relaxed),
            evictions: inner.evictions.load(Ordering::Relaxed),
        }
    }

    /// Every subchannel, active or spare.
    pub(crate) fn subchannels(&self) -> &[Subchannel] {
        &self.inner.subchannels
    }

    /// Which subchannels take calls.
    pub(crate) fn members(&self) -> &Arc<Members> {
        &self.inner.members
    }

    /// The subchannels that take calls.
    pub(crate) fn active(&self) -> impl Iterator<Item = &Subchannel> + '_ {
        self.inner
            .members
            .active()
            .filter_map(|index| self.inner.subchannels.get(index))
    }

    pub(crate) fn channel(&self) -> &Arc<ChannelShared> {
        &self.inner.channel
    }

    /// Connects every IDLE active subchannel and waits until one is READY; fails with
    /// the last error once every one is in TRANSIENT_FAILURE. Each attempt has its own
    /// deadline, so this ends.
    pub(crate) async fn connect(&self) -> Result<(), ConnectError> {
        self.inner.channel.touch();
        self.inner.wait_for_members(None, true).await.map_err(|_| {
            self.inner
                .resolution_error()
                .unwrap_or(ConnectError::Shutdown)
        })?;
        pick::wait_ready(
            &self.inner.subchannels,
            &self.inner.members,
            &self.inner.next,
            &self.inner.changed,
        )
        .await
    }
}

impl Inner {
    /// While a name's first resolution is under way and no subchannel is active, waits
    /// for one (bounded by `deadline`); fails at once when resolution failed, unless the
    /// call waits for ready.
    async fn wait_for_members(
        &self,
        deadline: Option<tokio::time::Instant>,
        wait_for_ready: bool,
    ) -> Result<(), tonic::Status> {
        if self.dns.is_none() {
            return Ok(());
        }
        let mut changed = self.changed.clone();
        loop {
            changed.borrow_and_update();
            if self.members.active_count() > 0 {
                return Ok(());
            }
            if !wait_for_ready
                && !self.resolving()
                && let Some(error) = self.resolution_error()
            {
                return Err(crate::error::status(
                    tonic::Code::Unavailable,
                    &self.target,
                    error,
                ));
            }
            let change = changed.changed();
            let outcome = match deadline {
                Some(at) => tokio::time::timeout_at(at, change).await.map_err(|_| {
                    crate::error::status(
                        tonic::Code::DeadlineExceeded,
                        &self.target,
                        "deadline exceeded waiting for the name to resolve",
                    )
                })?,
                None => change.await,
            };
            if outcome.is_err() {
                return Err(crate::error::status(
                    tonic::Code::Unavailable,
                    &self.target,
                    ConnectError::Shutdown,
                ));
            }
        }
    }

    /// gRFC A105: `index` was just given a call; if it and every other active
    /// connection of its endpoint carry `limit` calls, make one more active and connect
    /// it.
    fn grow_if_full(&self, index: usize, limit: usize) {
        let siblings = self.members.siblings(index);
        let seen = siblings.len();
        let full = siblings
            .filter_map(|i| self.subchannels.get(i))
            .all(|s| s.load().in_flight() >= limit);
        if full && let Some(added) = self.members.grow(index, seen) {
            self.grown.fetch_add(1, Ordering::Relaxed);
            self.meter.size(self.members.active_count());
            tracing::debug!(target = %self.target, connections = seen + 1, "every connection of the endpoint is full: opening another (gRFC A105)");
            if let Some(subchannel) = self.subchannels.get(added) {
                subchannel.request_connect();
            }
        }
    }
}

/// The future of an attempt through the [`Pool`].
pub(crate) type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<PooledBody>, AttemptError>> + Send>>;

impl tower::Service<Request<AttemptBody>> for Pool {
    type Response = Response<PooledBody>;
    type Error = AttemptError;
    type Future = ResponseFuture;

    /// Always ready: waiting for a connection happens in the call, where its deadline and
    /// wait-for-ready apply.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AttemptError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<AttemptBody>) -> ResponseFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            let options = CallOptions::of(&request);
            inner
                .wait_for_members(options.deadline, options.wait_for_ready)
                .await
                .map_err(AttemptError::NoConnection)?;
            let (index, ready, waited) = pick::pick(
                &inner.target,
                &inner.subchannels,
                &inner.members,
                &inner.next,
                &inner.channel,
                &options,
                (inner.growth, inner.connect_timeout),
            )
            .await
            .map_err(|failure| {
                if failure.lately_ready {
                    AttemptError::Failed(failure.status)
                } else {
                    AttemptError::NoConnection(failure.status)
                }
            })?;
            let counter = if waited { &inner.misses } else { &inner.hits };
            counter.fetch_add(1, Ordering::Relaxed);
            inner.meter.picked(waited);
            let subchannel = &inner.subchannels[index];
            // The attempt's span (when one is recorded) names the connection and its peer.
            let span = tracing::Span::current();
            if !span.is_disabled() {
                span.record("ephemos.connection", index);
                if let Some(peer) = subchannel.server_id() {
                    span.record("ephemos.peer", tracing::field::display(&peer));
                }
            }
            let in_flight = subchannel.load().begin();
            if let Some(growth) = inner.growth
                && let Some(limit) = growth.limit(ready.max_streams)
                && subchannel.load().in_flight() >= limit
            {
                inner.grow_if_full(index, limit);
            }
            let response = subchannel.send(ready, request).await?;
            Ok(response.map(|body| PooledBody::new(body, in_flight)))
        })
    }
}

#[cfg(test)]
mod tests;
