//! A subchannel's load: calls in flight on it and when it was last used. Counted at
//! pick, released when the response body ends or is dropped; the pool's pick, the idle
//! timer, cleanup and stats read it. Two atomics of this subchannel's own, no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Calls in flight on one subchannel, and the time of its last use.
#[derive(Debug)]
pub(crate) struct Load {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Calls started on it so far.
    calls: AtomicU64,
    /// Milliseconds since `epoch` of the last call start or end.
    last_used_ms: AtomicU64,
}

impl Load {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            last_used_ms: AtomicU64::new(0),
        })
    }

    /// Records use now (a call starting or ending, the connection becoming READY).
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Most calls land in the same millisecond as the last: read before writing, so
        // they do not all write the shared line.
        if self.last_used_ms.load(Ordering::Relaxed) < ms {
            self.last_used_ms.fetch_max(ms, Ordering::Relaxed);
        }
    }

    /// A call starts on this subchannel; it ends when the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight { load: self.clone() }
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Calls started on it so far.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Milliseconds from this load's epoch to now: a cheap clock for atomics.
    pub(crate) fn millis_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant `ms` milliseconds after this load's epoch.
    pub(crate) fn at_millis(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// When it was last used.
    pub(crate) fn last_used(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed))
    }

    /// When it becomes idle for `timeout` if nothing happens meanwhile: `None` while calls
    /// are in flight or when that is too far away to represent.
    pub(crate) fn idle_at(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight() > 0 {
            return None;
        }
        self.last_used().checked_add(timeout)
    }
}

/// Counts a call as in flight on a subchannel until dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    load: Arc<Load>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.load.touch();
        self.load.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_only_without_calls_and_after_the_timeout() {
        let load = Load::new();
        let timeout = Duration::from_secs(5);
        let call = load.begin();
        assert_eq!(load.in_flight(), 1);
        assert_eq!(load.idle_at(timeout), None, "a call in flight is not idle");
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(call);
        assert_eq!(load.in_flight(), 0);
        let at = load.idle_at(timeout).unwrap();
        assert!(
            at >= Instant::now() + Duration::from_millis(4990),
            "counted from the call's end"
        );
    }
}
