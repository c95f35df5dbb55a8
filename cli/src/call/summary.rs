//! What a run of calls came to: the count of each status, latency percentiles, and
//! what the channel did for them (retries, transparent retries, hedges).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

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

/// The summary of a run.
pub(crate) struct Summary {
    calls: usize,
    wall: Duration,
    statuses: BTreeMap<&'static str, usize>,
    first_error: Option<(String, String)>,
    latencies: Vec<Duration>,
    retries: u64,
    transparent_retries: u64,
    hedges: u64,
}

impl Summary {
    /// Summarises `finished`, which took `wall` in all, with the channel's counts.
    pub(crate) fn new(
        mut finished: Vec<Finished>,
        wall: Duration,
        stats: &ephemos::ChannelStats,
    ) -> Summary {
        let mut statuses = BTreeMap::new();
        for f in &finished {
            *statuses.entry(f.status).or_insert(0) += 1;
        }
        let first_error = finished
            .iter()
            .find_map(|f| f.message.as_ref().map(|m| (f.status.to_owned(), m.clone())));
        finished.sort_by_key(|f| f.took);
        Summary {
            calls: finished.len(),
            wall,
            statuses,
            first_error,
            latencies: finished.iter().map(|f| f.took).collect(),
            retries: stats.retries,
            transparent_retries: stats.transparent_retries,
            hedges: stats.hedges,
        }
    }

    /// Whether every call ended OK.
    pub(crate) fn all_ok(&self) -> bool {
        self.calls > 0 && self.statuses.get("OK") == Some(&self.calls)
    }

    /// The `q` quantile (nearest rank) of the latencies.
    fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank =
            ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1]
    }

    fn rate(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// For people.
    pub(crate) fn text(&self) -> String {
        let statuses = self
            .statuses
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = format!(
            "calls      {} in {:.2} s ({:.0} calls/s)\nstatuses   {statuses}\nretries    {} (transparent {}, hedges {})\nlatency    p50 {}  p90 {}  p99 {}  max {}\n",
            self.calls,
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
        if let Some((status, message)) = &self.first_error {
            out.push_str(&format!("first error {status}: {message}\n"));
        }
        out
    }

    /// For tools.
    pub(crate) fn json(&self) -> Value {
        json!({
            "calls": self.calls,
            "seconds": self.wall.as_secs_f64(),
            "calls_per_second": self.rate(),
            "statuses": self.statuses,
            "first_error": self.first_error.as_ref().map(|(s, m)| json!({"status": s, "message": m})),
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
