//! gRFC A96: what the retry layer did for one call, recorded when its attempts are over
//! (each only when it is not zero, as A96 says; `retry_delay` for calls that were
//! retried or hedged).

use std::time::Duration;

use super::keys;
use super::labels::CallLabels;

/// One call's retries, transparent retries, hedges and time spent waiting to retry.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CallRetries {
    pub(crate) retries: u32,
    pub(crate) transparent_retries: u32,
    pub(crate) hedges: u32,
    pub(crate) retry_delay: Duration,
}

/// One call's counts, recorded once when dropped: when its attempts are over, or when
/// the caller drops the call while it retries (the counts so far are still the call's).
pub(crate) struct RetriesRecord {
    /// What the retry layer did so far.
    pub(crate) counts: CallRetries,
    labels: CallLabels,
}

impl RetriesRecord {
    /// Nothing done yet, for a call with these labels.
    pub(crate) fn new(labels: CallLabels) -> Self {
        Self {
            counts: CallRetries::default(),
            labels,
        }
    }
}

impl Drop for RetriesRecord {
    fn drop(&mut self) {
        self.counts.record(&self.labels);
    }
}

impl CallRetries {
    /// Records what is not zero.
    pub(crate) fn record(&self, labels: &CallLabels) {
        let keys = &labels.keys;
        for (key, count) in [
            (&keys.retries, self.retries),
            (&keys.transparent_retries, self.transparent_retries),
            (&keys.hedges, self.hedges),
        ] {
            if count > 0 {
                keys::record(key, f64::from(count));
            }
        }
        if self.retries > 0 || self.hedges > 0 {
            keys::record(&keys.retry_delay, self.retry_delay.as_secs_f64());
        }
    }
}
