//! Whether a channel is in use: calls in flight and when the last one ended, for the
//! idle timeout. Two atomics, no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Calls in flight on a channel and the time of the last activity.
#[derive(Debug)]
pub(crate) struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` of the last call start or end.
    last_active_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
        })
    }

    /// Records use now (a call starting or ending, a connection becoming READY).
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// A call starts; it ends when the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        CallGuard {
            activity: self.clone(),
        }
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// When the channel becomes idle for `timeout` if nothing happens meanwhile: `None`
    /// while calls are in flight, `Some(None)` when that is too far away to represent.
    pub(crate) fn idle_at(&self, timeout: Duration) -> Option<Option<Instant>> {
        if self.in_flight() > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        Some(
            last.checked_add(timeout)
                .and_then(|d| self.epoch.checked_add(d)),
        )
    }
}

/// Counts a call as in flight until dropped (with its response body, for streams).
#[derive(Debug)]
pub(crate) struct CallGuard {
    activity: Arc<Activity>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.activity.touch();
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
