//! The pool's metrics: `ephemos.pool.hits`, `misses`, `evictions` and `size`.

use std::sync::Arc;

use metrics::{Key, SharedString};

use super::keys;
use super::names::{self, label};

/// What a pool records its picks and its size with.
#[derive(Debug, Clone)]
pub(crate) struct PoolMeter {
    target: SharedString,
    /// Counted on every attempt: built once (see [`keys`]).
    hits: Arc<Key>,
    misses: Arc<Key>,
}

impl PoolMeter {
    pub(crate) fn new(target: &Arc<str>) -> Self {
        names::describe();
        let target = SharedString::from(target.clone());
        let key = |name: &'static str| {
            Arc::new(Key::from_parts(
                name,
                [(label::TARGET, target.clone())].as_slice(),
            ))
        };
        Self {
            hits: key(names::POOL_HITS),
            misses: key(names::POOL_MISSES),
            target,
        }
    }

    /// An attempt found a READY connection at once (a hit), or waited for one.
    pub(crate) fn picked(&self, waited: bool) {
        keys::increment(if waited { &self.misses } else { &self.hits }, 1);
    }

    /// Cleanup closed a connection.
    pub(crate) fn evicted(&self) {
        metrics::counter!(names::POOL_EVICTIONS, label::TARGET => self.target.clone()).increment(1);
    }

    /// The pool keeps `active` connections now.
    pub(crate) fn size(&self, active: usize) {
        metrics::gauge!(names::POOL_SIZE, label::TARGET => self.target.clone()).set(active as f64);
    }
}
