//! What a run of calls came to: the count of each status, latency percentiles, and
//! what the channel did for them (retries, transparent retries, hedges). A run keeps a
//! [`Tally`], whose memory does not grow with the number of calls.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::histogram::Histogram;
use crate::duration_text::{millis, ms};

/// One finished call.
pub(crate) struct Finished {
    /// Its status code's name (`OK`, `UNAVAILABLE`, ...).
    pub(crate) status: &'static str,
    /// The message of a failed call.
    pub(crate) message: Option<String>,
    /// How long it took, from the caller's side.
    pub(crate) took: Duration,
}

/// What the calls of a run came to so far, in bounded memory: a count per status (there
/// are 17), the first error, and the latencies in a histogram.
pub(crate) struct Tally {
    calls: u64,
    statuses: BTreeMap<&'static str, u64>,
    first_error: Option<(String, String)>,
    latencies: Histogram,
}

impl Tally {
    /// No calls yet.
    pub(crate) fn new() -> Tally {
        Tally {
            calls: 0,
            statuses: BTreeMap::new(),
            first_error: None,
            latencies: Histogram::new(),
        }
    }

    /// Counts one finished call.
    pub(crate) fn add(&mut self, finished: Finished) {
        self.calls += 1;
        *self.statuses.entry(finished.status).or_insert(0) += 1;
        if let (None, Some(message)) = (&self.first_error, finished.message) {
            self.first_error = Some((finished.status.to_owned(), message));
        }
        self.latencies.record(finished.took);
    }
}

/// The summary of a run.
pub(crate) struct Summary {
    tally: Tally,
    wall: Duration,
    retries: u64,
    transparent_retries: u64,
    hedges: u64,
}

impl Summary {
    /// Summarises `tally`, which took `wall` in all, with the channel's counts.
    pub(crate) fn new(tally: Tally, wall: Duration, stats: &ephemos::ChannelStats) -> Summary {
        Summary {
            tally,
            wall,
            retries: stats.retries,
            transparent_retries: stats.transparent_retries,
            hedges: stats.hedges,
        }
    }

    /// Whether every call ended OK.
    pub(crate) fn all_ok(&self) -> bool {
        self.tally.calls > 0 && self.tally.statuses.get("OK") == Some(&self.tally.calls)
    }

    /// The `q` quantile of the latencies.
    fn quantile(&self, q: f64) -> Duration {
        self.tally.latencies.quantile(q)
    }

    fn rate(&self) -> f64 {
        self.tally.calls as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// For people.
    pub(crate) fn text(&self) -> String {
        let statuses = self
            .tally
            .statuses
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = format!(
            "calls      {} in {:.2} s ({:.0} calls/s)\nstatuses   {statuses}\nretries    {} (transparent {}, hedges {})\nlatency    p50 {}  p90 {}  p99 {}  max {}\n",
            self.tally.calls,
            self.wall.as_secs_f64(),
            self.rate(),
            self.retries,
            self.transparent_retries,
            self.hedges,
            ms(self.quantile(0.5)),
            ms(self.quantile(0.9)),
            ms(self.quantile(0.99)),
            ms(self.quantile(1.0)),
        );
        if let Some((status, message)) = &self.tally.first_error {
            out.push_str(&format!("first error {status}: {message}\n"));
        }
        out
    }

    /// For tools.
    pub(crate) fn json(&self) -> Value {
        json!({
            "calls": self.tally.calls,
            "seconds": self.wall.as_secs_f64(),
            "calls_per_second": self.rate(),
            "statuses": self.tally.statuses,
            "first_error": self.tally.first_error.as_ref().map(|(s, m)| json!({"status": s, "message": m})),
            "retries": self.retries,
            "transparent_retries": self.transparent_retries,
            "hedges": self.hedges,
            "latency_millis": {
                "p50": millis(self.quantile(0.5)),
                "p90": millis(self.quantile(0.9)),
                "p99": millis(self.quantile(0.99)),
                "max": millis(self.quantile(1.0)),
            },
            "ok": self.all_ok(),
        })
    }
}
