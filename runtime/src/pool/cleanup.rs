//! The pool's background cleanup, every `cleanup_interval`: an endpoint grown past
//! `size` gives back its last connection once the others can carry the calls at half
//! their limit (drained first: a connection with calls in flight is never closed under
//! them), and a connection the health check has kept out of the picks for a whole
//! interval is replaced, after its backoff (which only SERVING resets), so a sick
//! server does not see a reconnect storm. Idle connections close themselves on their
//! own idle timer (the subchannel's driver), to the millisecond instead of at the next
//! sweep.
//!
//! The task holds the pool weakly and stops as soon as the pool is dropped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Inner, Pool};

/// The shortest interval the task runs at, whatever a configuration given in code says.
const SHORTEST: Duration = Duration::from_millis(10);

/// Starts the cleanup task of `pool`.
pub(super) fn spawn(pool: &Pool) {
    let weak = Arc::downgrade(&pool.inner);
    let stop = pool.inner._stop.subscribe();
    let every = pool.inner.cleanup_interval.max(SHORTEST);
    tokio::spawn(run(weak, stop, every));
}

async fn run(pool: Weak<Inner>, mut stop: watch::Receiver<()>, every: Duration) {
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            // Nothing is ever sent: this is the pool being dropped.
            _ = stop.changed() => return,
        }
        let Some(inner) = pool.upgrade() else {
            return;
        };
        inner.clean(every);
    }
}

impl Inner {
    fn clean(&self, every: Duration) {
        let grown: Vec<(usize, usize)> = self.members.grown().collect();
        for (last, active) in grown {
            let limit = self
                .growth
                .and_then(|g| g.limit(self.channel.max_concurrent_streams()))
                .unwrap_or(usize::MAX);
            let load: usize = self
                .members
                .siblings(last)
                .filter_map(|i| self.subchannels.get(i))
                .map(|s| s.load().in_flight())
                .sum();
            if load.saturating_mul(2) <= (active - 1).saturating_mul(limit)
                && let Some(retired) = self.members.shrink(last, active)
                && let Some(subchannel) = self.subchannels.get(retired)
            {
                tracing::debug!(target = %self.target, connections = active - 1, "cleanup: the endpoint's calls fit in fewer connections: draining one");
                subchannel.retire();
                self.evictions.fetch_add(1, Ordering::Relaxed);
                self.meter.evicted();
                self.meter.size(self.members.active_count());
                tracing::info!(target = %self.target, connection = retired, "evicted: the pool shrank back");
            }
        }
        for index in self.members.active() {
            let Some(subchannel) = self.subchannels.get(index) else {
                continue;
            };
            if subchannel
                .unhealthy_since()
                .is_some_and(|since| since.elapsed() >= every)
                && subchannel.replace()
            {
                self.evictions.fetch_add(1, Ordering::Relaxed);
                self.meter.evicted();
                tracing::info!(target = %self.target, connection = index, "evicted: unhealthy for a whole cleanup interval, replaced");
            }
        }
    }
}
