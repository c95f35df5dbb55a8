//! gRFC A96: what the retry layer did for one call, recorded when its attempts are over
//! (each only when it is not zero, as A96 says; `retry_delay` for calls that were
//! retried or hedged).

use std::time::Duration;

use super::Telemetry;
use super::labels::CallLabels;
use super::names::{self, label};

/// One call's retries, transparent retries, hedges and time spent waiting to retry.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CallRetries {
    pub(crate) retries: u32,
    pub(crate) transparent_retries: u32,
    pub(crate) hedges: u32,
    pub(crate) retry_delay: Duration,
}

impl CallRetries {
    /// Records what is not zero.
    pub(crate) fn record(&self, telemetry: &Telemetry, labels: &CallLabels) {
        if self.retries == 0 && self.transparent_retries == 0 && self.hedges == 0 {
            return;
        }
        let labels = [
            (label::METHOD, labels.method.clone()),
            (label::TARGET, telemetry.target.clone()),
        ];
        for (name, count) in [
            (names::CALL_RETRIES, self.retries),
            (names::CALL_TRANSPARENT_RETRIES, self.transparent_retries),
            (names::CALL_HEDGES, self.hedges),
        ] {
            if count > 0 {
                metrics::histogram!(name, &labels).record(f64::from(count));
            }
        }
        if self.retries > 0 || self.hedges > 0 {
            metrics::histogram!(names::CALL_RETRY_DELAY, &labels)
                .record(self.retry_delay.as_secs_f64());
        }
    }
}
