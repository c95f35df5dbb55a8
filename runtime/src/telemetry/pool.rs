//! The pool's metrics: `ephemos.pool.hits`, `misses`, `evictions` and `size`.

use metrics::SharedString;

use super::names::{self, label};

/// What a pool records its picks and its size with.
#[derive(Debug, Clone)]
pub(crate) struct PoolMeter {
    target: SharedString,
}

impl PoolMeter {
    pub(crate) fn new(target: &std::sync::Arc<str>) -> Self {
        names::describe();
        Self {
            target: SharedString::from(target.clone()),
        }
    }

    /// An attempt found a READY connection at once (a hit), or waited for one.
    pub(crate) fn picked(&self, waited: bool) {
        let name = if waited {
            names::POOL_MISSES
        } else {
            names::POOL_HITS
        };
        metrics::counter!(name, label::TARGET => self.target.clone()).increment(1);
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
