//! Name resolution for `dns:///host:port` endpoints: every address the name resolves to
//! is an endpoint of the pool, with `pool.size` connections of its own. The name is
//! resolved again when its answer's TTL runs out (at least every second, at most every
//! five minutes) and as soon as one of its connections is lost; a new address gets a
//! group of subchannels, a vanished one's are taken out of the picks and drained.
//!
//! The resolver is hickory's, reading the system's configuration (`/etc/resolv.conf`,
//! the hosts file) unless the channel is given name servers of its own
//! ([`crate::ChannelBuilder::dns_servers`]). Each name has [`SLOTS`] groups of
//! subchannels made with the pool, so resolution changes which are active and where
//! they dial, and the call path still takes no lock.
//!
//! The task holds the pool weakly, also while a lookup is under way, and stops as soon
//! as the pool is dropped.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ephemos_config::value::Address;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveError, TokioResolver};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Inner;
use super::members::{RESOLVE_FAILED, RESOLVED, RESOLVING};
use crate::error::ConnectError;

/// Addresses of one name the pool follows; more are logged and left out.
pub(crate) const SLOTS: usize = 8;

/// The soonest and the latest a name is resolved again.
const REFRESH_MIN: Duration = Duration::from_secs(1);
const REFRESH_MAX: Duration = Duration::from_secs(300);
/// After a failed resolution: the first retry, and the longest wait between retries.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Where `dns:///` names are resolved.
#[derive(Debug, Clone, Default)]
pub(crate) enum NameServers {
    /// The system's configuration.
    #[default]
    System,
    /// These servers, over UDP and TCP.
    These(Vec<SocketAddr>),
}

impl NameServers {
    fn resolver(&self) -> Result<TokioResolver, ResolveError> {
        match self {
            NameServers::System => Ok(TokioResolver::builder_tokio()?.build()),
            NameServers::These(servers) => {
                let mut group = NameServerConfigGroup::new();
                for server in servers {
                    group.merge(NameServerConfigGroup::from_ips_clear(
                        &[server.ip()],
                        server.port(),
                        true,
                    ));
                }
                let config = ResolverConfig::from_parts(None, Vec::new(), group);
                Ok(
                    TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                        .build(),
                )
            }
        }
    }
}

/// One `dns:///` endpoint and the groups its addresses use.
pub(crate) struct DnsEndpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The pool's groups for this name, in order.
    pub(crate) groups: Vec<usize>,
    /// The address each group serves now (`None`: free).
    slots: Mutex<Vec<Option<IpAddr>>>,
    /// Why the last resolution failed, if it did.
    pub(crate) error: Mutex<Option<ConnectError>>,
}

impl DnsEndpoint {
    pub(crate) fn new(host: String, port: u16, groups: Vec<usize>) -> Self {
        let slots = Mutex::new(vec![None; groups.len()]);
        Self {
            host,
            port,
            groups,
            slots,
            error: Mutex::new(None),
        }
    }
}

/// What the pool keeps for its names.
pub(crate) struct Dns {
    pub(crate) endpoints: Vec<DnsEndpoint>,
    pub(crate) servers: NameServers,
}

/// Starts resolving each of the pool's names.
pub(super) fn spawn(inner: &Arc<Inner>) {
    let Some(dns) = &inner.dns else {
        return;
    };
    for index in 0..dns.endpoints.len() {
        let weak = Arc::downgrade(inner);
        let stop = inner._stop.subscribe();
        tokio::spawn(follow(weak, stop, index));
    }
}

/// Resolves endpoint `index` of the pool until the pool is dropped.
async fn follow(pool: Weak<Inner>, mut stop: watch::Receiver<()>, index: usize) {
    let resolver = {
        let Some(inner) = pool.upgrade() else { return };
        let Some(dns) = &inner.dns else { return };
        match dns.servers.resolver() {
            Ok(resolver) => resolver,
            Err(error) => {
                let endpoint = &dns.endpoints[index];
                tracing::error!(target = %inner.target, host = %endpoint.host, %error, "no DNS resolver");
                inner.record_resolution(endpoint, Err(error.to_string()));
                return;
            }
        }
    };
    let mut retry = RETRY_FIRST;
    loop {
        let resolved_at = Instant::now();
        let host = {
            let Some(inner) = pool.upgrade() else { return };
            let Some(dns) = &inner.dns else { return };
            dns.endpoints[index].host.clone()
        };
        // Only the name is held while the resolver works: a channel dropped meanwhile
        // stops its subchannels and this task now, not when the resolver gives up.
        let lookup = tokio::select! {
            lookup = resolver.lookup_ip(host.as_str()) => lookup,
            _ = stop.changed() => return,
        };
        let next = {
            let Some(inner) = pool.upgrade() else { return };
            let Some(dns) = &inner.dns else { return };
            let endpoint = &dns.endpoints[index];
            match lookup {
                Ok(lookup) => {
                    retry = RETRY_FIRST;
                    let addresses: Vec<IpAddr> = lookup.iter().collect();
                    let ttl = lookup
                        .valid_until()
                        .saturating_duration_since(std::time::Instant::now());
                    inner.apply(endpoint, &addresses);
                    inner.record_resolution(endpoint, Ok(()));
                    ttl.clamp(REFRESH_MIN, REFRESH_MAX)
                }
                Err(error) => {
                    tracing::warn!(target = %inner.target, host = %endpoint.host, %error, "cannot resolve");
                    inner.record_resolution(endpoint, Err(error.to_string()));
                    let wait = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    wait
                }
            }
        };
        let Some(inner) = pool.upgrade() else { return };
        let channel = inner.channel.clone();
        drop(inner);
        tokio::select! {
            _ = tokio::time::sleep_until(resolved_at + next) => {}
            () = channel.connection_lost.notified() => {
                // Not more often than every REFRESH_MIN, however many connections fail;
                // asking the servers, not the cache.
                tokio::select! {
                    _ = tokio::time::sleep_until(resolved_at + REFRESH_MIN) => {}
                    _ = stop.changed() => return,
                }
                resolver.clear_cache();
            }
            _ = stop.changed() => return,
        }
    }
}

impl Inner {
    /// Makes the pool follow `addresses` for `endpoint`: a group for each new one, the
    /// groups of vanished ones out of the picks and drained.
    fn apply(&self, endpoint: &DnsEndpoint, addresses: &[IpAddr]) {
        let mut slots = endpoint.slots.lock().unwrap_or_else(|p| p.into_inner());
        for (slot, group) in slots.iter_mut().zip(&endpoint.groups) {
            if let Some(address) = *slot
                && !addresses.contains(&address)
            {
                tracing::info!(target = %self.target, host = %endpoint.host, %address, "the name no longer resolves to this address: draining its connections");
                self.members.set_active(*group, 0);
                self.meter.size(self.members.active_count());
                for index in self.members.group(*group) {
                    if let Some(subchannel) = self.subchannels.get(index) {
                        subchannel.retire();
                    }
                }
                *slot = None;
            }
        }
        for address in addresses {
            if slots.contains(&Some(*address)) {
                continue;
            }
            // A free group whose subchannels have stopped (a vanished address's drain
            // has finished).
            let free = slots
                .iter()
                .zip(&endpoint.groups)
                .position(|(slot, group)| {
                    slot.is_none()
                        && self
                            .members
                            .group(*group)
                            .filter_map(|i| self.subchannels.get(i))
                            .all(|s| s.is_unused())
                });
            let Some(free) = free else {
                tracing::warn!(target = %self.target, host = %endpoint.host, %address, "the name resolves to more addresses than the pool follows ({SLOTS}): this one is left out for now");
                continue;
            };
            let group = endpoint.groups[free];
            let dial = Address::Tcp {
                host: address.to_string().into(),
                port: endpoint.port,
            };
            for index in self.members.group(group) {
                if let Some(subchannel) = self.subchannels.get(index) {
                    subchannel.set_address(dial.clone());
                }
            }
            slots[free] = Some(*address);
            self.members.set_active(group, self.members.size());
            self.meter.size(self.members.active_count());
            if self.warm {
                for index in self.members.group(group).take(self.members.size()) {
                    if let Some(subchannel) = self.subchannels.get(index) {
                        subchannel.request_connect();
                    }
                }
            }
            tracing::debug!(target = %self.target, host = %endpoint.host, %address, "the name resolves to a new address: an endpoint");
        }
    }

    /// Records how the last resolution of `endpoint` went, and wakes waiting picks.
    fn record_resolution(&self, endpoint: &DnsEndpoint, outcome: Result<(), String>) {
        let error = outcome.err().map(|message| ConnectError::Resolve {
            address: format!("dns:///{}:{}", endpoint.host, endpoint.port),
            message,
        });
        let failed = error.is_some();
        *endpoint.error.lock().unwrap_or_else(|p| p.into_inner()) = error;
        self.members
            .set_resolution(if failed { RESOLVE_FAILED } else { RESOLVED });
        self.channel.bump();
    }

    /// The last resolution error of any name, while no subchannel is active.
    pub(super) fn resolution_error(&self) -> Option<ConnectError> {
        let dns = self.dns.as_ref()?;
        dns.endpoints
            .iter()
            .find_map(|e| e.error.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Whether a first resolution is still under way.
    pub(super) fn resolving(&self) -> bool {
        self.dns.is_some() && self.members.resolution() == RESOLVING
    }
}
