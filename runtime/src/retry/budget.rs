//! The channel's replay budget: bytes held by every call's retry buffer together
//! (gRFC A6 caps them at 16 MiB a channel, as grpc-go's `retryBufferSize` and grpc-java
//! do). A buffered message counts its payload and a fixed overhead, so many tiny
//! messages cannot hold more memory than the count says.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The most a channel holds in retry buffers.
pub(crate) const CHANNEL_LIMIT: usize = 16 << 20;
/// The most one call holds (gRFC A6's per-RPC buffer).
pub(crate) const CALL_LIMIT: usize = 256 << 10;
/// What one buffered message costs beyond its payload: its `Bytes` handle and its slot
/// in the call's list, rounded up.
pub(crate) const PER_MESSAGE_OVERHEAD: usize = 64;

/// Bytes held in the retry buffers of a channel's calls.
#[derive(Debug)]
pub(crate) struct ReplayBudget {
    held: AtomicUsize,
    limit: usize,
}

impl ReplayBudget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    /// Takes `bytes` if they fit under the limit.
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        let mut held = self.held.load(Ordering::Relaxed);
        loop {
            let Some(next) = held.checked_add(bytes).filter(|n| *n <= self.limit) else {
                return false;
            };
            match self
                .held
                .compare_exchange_weak(held, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => held = now,
            }
        }
    }

    /// Gives back what [`ReplayBudget::try_take`] took.
    pub(crate) fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_no_more() {
        let budget = ReplayBudget::new(100);
        assert!(budget.try_take(60));
        assert!(!budget.try_take(41));
        assert!(budget.try_take(40));
        assert_eq!(budget.held(), 100);
        budget.give_back(60);
        assert_eq!(budget.held(), 40);
        assert!(!budget.try_take(usize::MAX));
    }
}
