//! What the subchannels of one channel share: a generation bumped on every state change
//! (it wakes waiting picks and state watchers), the settings learned at run time that
//! apply to the whole channel (gRFC A8 doubles the keepalive time for the channel, not
//! for one connection; the server's MAX_CONCURRENT_STREAMS), and every subchannel's
//! load, so "the channel is unused" is known without a channel-wide counter on the call
//! path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::load::{InFlight, Load};

/// Shared by the subchannels of one channel.
#[derive(Debug)]
pub(crate) struct ChannelShared {
    /// Bumped on every state change of any subchannel.
    pub(crate) changed: watch::Sender<u64>,
    /// The keepalive time in force for new connections, in nanoseconds; 0 until a
    /// GOAWAY `too_many_pings` doubles the configured one.
    keepalive_time_ns: AtomicU64,
    /// The last SETTINGS_MAX_CONCURRENT_STREAMS a server sent; `u64::MAX` until one did.
    max_concurrent_streams: AtomicU64,
    /// Every subchannel's load (set once, when the subchannels exist).
    loads: OnceLock<Vec<Arc<Load>>>,
    /// Use that is not a call on a subchannel (`connect()`, calls waiting for a
    /// connection or failing fast), for the idle timeout.
    touched: Arc<Load>,
    /// Woken when a connection is lost or an attempt fails: names are resolved again.
    pub(crate) connection_lost: tokio::sync::Notify,
    /// When a subchannel last stopped being READY (`Load`'s millisecond clock); 0: never.
    ready_lost_ms: AtomicU64,
}

impl ChannelShared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            changed: watch::channel(0).0,
            keepalive_time_ns: AtomicU64::new(0),
            max_concurrent_streams: AtomicU64::new(u64::MAX),
            loads: OnceLock::new(),
            touched: Load::new(),
            connection_lost: tokio::sync::Notify::new(),
            ready_lost_ms: AtomicU64::new(0),
        })
    }

    /// A subchannel stopped being READY now.
    pub(crate) fn ready_lost(&self) {
        self.ready_lost_ms
            .store(self.touched.millis_since_epoch().max(1), Ordering::Relaxed);
    }

    /// Whether a subchannel stopped being READY less than `within` ago: the channel was
    /// working a moment ago (a rolling restart, a burst of GOAWAYs) rather than failing.
    pub(crate) fn ready_lately(&self, within: Duration) -> bool {
        match self.ready_lost_ms.load(Ordering::Relaxed) {
            0 => false,
            ms => self
                .touched
                .at_millis(ms)
                .checked_add(within)
                .is_some_and(|until| Instant::now() < until),
        }
    }

    /// Records the subchannels' loads (once).
    pub(crate) fn set_loads(&self, loads: Vec<Arc<Load>>) {
        let _ = self.loads.set(loads);
    }

    /// A state changed somewhere: wake whoever waits for one.
    pub(crate) fn bump(&self) {
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// The keepalive time for a new connection: the configured one, or the doubled one
    /// once a server asked for fewer pings.
    pub(crate) fn keepalive_time(&self, configured: Duration) -> Duration {
        match self.keepalive_time_ns.load(Ordering::Relaxed) {
            0 => configured,
            ns => Duration::from_nanos(ns).max(configured),
        }
    }

    /// Doubles the keepalive time for every new connection of the channel (gRFC A8);
    /// returns the new time.
    pub(crate) fn double_keepalive_time(&self, configured: Duration) -> Duration {
        let doubled = self.keepalive_time(configured).saturating_mul(2);
        let ns = u64::try_from(doubled.as_nanos()).unwrap_or(u64::MAX);
        self.keepalive_time_ns.fetch_max(ns, Ordering::Relaxed);
        self.keepalive_time(configured)
    }

    /// Whether a server has doubled the keepalive time.
    pub(crate) fn keepalive_doubled(&self) -> bool {
        self.keepalive_time_ns.load(Ordering::Relaxed) != 0
    }

    /// Records a server's SETTINGS_MAX_CONCURRENT_STREAMS.
    pub(crate) fn set_max_concurrent_streams(&self, value: u32) {
        self.max_concurrent_streams
            .store(u64::from(value), Ordering::Relaxed);
    }

    /// The last SETTINGS_MAX_CONCURRENT_STREAMS a server sent.
    pub(crate) fn max_concurrent_streams(&self) -> Option<u32> {
        u32::try_from(self.max_concurrent_streams.load(Ordering::Relaxed)).ok()
    }

    /// Counts `connect()` as use.
    pub(crate) fn touch(&self) {
        self.touched.touch();
    }

    /// A call that found no READY connection at once: in flight on the channel (not on a
    /// subchannel) until the guard drops, so it is use when it starts, while it waits
    /// and when it ends, however it ends.
    pub(crate) fn call_waiting(&self) -> InFlight {
        self.touched.begin()
    }

    /// Whether nothing has used the channel for `timeout`: no call in flight on any
    /// subchannel, and none started or ended for that long.
    pub(crate) fn unused_for(&self, timeout: Duration) -> bool {
        let loads = self.loads.get().map_or(&[][..], Vec::as_slice);
        if self.touched.in_flight() > 0 || loads.iter().any(|l| l.in_flight() > 0) {
            return false;
        }
        let last = loads
            .iter()
            .map(|l| l.last_used())
            .chain([self.touched.last_used()])
            .max();
        last.and_then(|at| at.checked_add(timeout))
            .is_some_and(|at| at <= Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_applies_to_the_channel_and_compounds() {
        let shared = ChannelShared::new();
        let base = Duration::from_secs(10);
        assert_eq!(shared.keepalive_time(base), base);
        assert!(!shared.keepalive_doubled());
        assert_eq!(shared.double_keepalive_time(base), Duration::from_secs(20));
        assert_eq!(shared.double_keepalive_time(base), Duration::from_secs(40));
        assert_eq!(shared.keepalive_time(base), Duration::from_secs(40));
        assert!(shared.keepalive_doubled());
    }
}
