//! The pool: owns a channel's subchannels (`pool.size` per endpoint; growth, health
//! checking and cleanup are still to come), picks one for each attempt ([`pick`]: power
//! of two choices on the calls in flight), and counts calls in flight per subchannel,
//! released when the response body ends or is dropped ([`body`]).
//!
//! [`Pool`] is a `tower::Service` of attempts: it answers with the response, or with an
//! [`AttemptError`] that says whether the server can have processed the attempt.

mod body;
mod pick;

pub(crate) use body::PooledBody;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

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

/// The subchannels of one channel, and the pick.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    target: Arc<str>,
    subchannels: Vec<Subchannel>,
    next: AtomicUsize,
    channel: Arc<ChannelShared>,
    changed: watch::Receiver<u64>,
    /// Connections per endpoint.
    size: u32,
    /// Attempts that found a READY connection at once.
    hits: AtomicU64,
    /// Attempts that waited for one.
    misses: AtomicU64,
}

/// How a pool is made: its size and the health checking of its connections.
pub(crate) struct PoolSettings {
    pub(crate) config: PoolConfig,
    pub(crate) health: Option<Arc<HealthCheck>>,
}

/// What the pool did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PoolStats {
    pub(crate) size: u32,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

impl Pool {
    /// `pool.size` subchannels per endpoint; nothing connects until the first call or
    /// `connect()`, unless `pool.warm` asks for every connection now.
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
        } = settings;
        let channel = ChannelShared::new();
        let size = pool.size.max(1) as usize;
        let addresses: Vec<&Address> = endpoints
            .iter()
            .flat_map(|address| std::iter::repeat_n(address, size))
            .collect();
        let loads: Vec<Arc<Load>> = addresses.iter().map(|_| Load::new()).collect();
        channel.set_loads(loads.clone());
        let subchannels: Vec<Subchannel> = addresses
            .into_iter()
            .zip(loads)
            .map(|(address, load)| {
                Subchannel::spawn(
                    SubchannelConfig {
                        target: target.clone(),
                        address: address.clone(),
                        connection,
                        tls: tls.clone(),
                        health: health.clone(),
                    },
                    channel.clone(),
                    load,
                )
            })
            .collect();
        if pool.warm {
            for subchannel in &subchannels {
                subchannel.request_connect();
            }
        }
        Self::of(target, subchannels, channel, pool.size.max(1))
    }

    /// A pool over subchannels made elsewhere (that share `channel`), `size` per
    /// endpoint.
    pub(crate) fn of(
        target: Arc<str>,
        subchannels: Vec<Subchannel>,
        channel: Arc<ChannelShared>,
        size: u32,
    ) -> Pool {
        let changed = channel.changed.subscribe();
        Pool {
            inner: Arc::new(Inner {
                target,
                subchannels,
                next: AtomicUsize::new(0),
                channel,
                changed,
                size,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// Hits, misses and the size per endpoint.
    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            size: self.inner.size,
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn subchannels(&self) -> &[Subchannel] {
        &self.inner.subchannels
    }

    pub(crate) fn channel(&self) -> &Arc<ChannelShared> {
        &self.inner.channel
    }

    /// Connects every IDLE subchannel and waits until one is READY; fails with the last
    /// error once every subchannel is in TRANSIENT_FAILURE. Each attempt has its own
    /// deadline, so this ends.
    pub(crate) async fn connect(&self) -> Result<(), ConnectError> {
        self.inner.channel.touch();
        pick::wait_ready(
            &self.inner.subchannels,
            &self.inner.next,
            &self.inner.changed,
        )
        .await
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
            let (index, ready, waited) = pick::pick(
                &inner.target,
                &inner.subchannels,
                &inner.next,
                &inner.changed,
                &options,
            )
            .await
            .map_err(AttemptError::Failed)?;
            let counter = if waited { &inner.misses } else { &inner.hits };
            counter.fetch_add(1, Ordering::Relaxed);
            let subchannel = &inner.subchannels[index];
            let in_flight = subchannel.load().begin();
            let response = subchannel.send(ready, request).await?;
            Ok(response.map(|body| PooledBody::new(body, in_flight)))
        })
    }
}

#[cfg(test)]
mod tests;
