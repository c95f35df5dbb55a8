//! The human summary: per cell the median of the rounds for each client, the ratios
//! measured in the same run (ephemos / one tonic Channel; high_throughput / N
//! round-robin Channels), and each goal of issue 13 met or missed, by how much.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::clients::Kind;
use crate::measure::Sample;

/// A cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cell {
    pub(crate) security: &'static str,
    pub(crate) load: String,
    pub(crate) concurrency: usize,
}

/// Everything measured.
#[derive(Default)]
pub(crate) struct Summary {
    samples: BTreeMap<(Cell, &'static str), Vec<Sample>>,
    connects: Vec<(&'static str, &'static str, Duration)>,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The medians of one client in one cell.
#[derive(Clone, Copy, Default)]
struct Medians {
    rate: f64,
    p50: f64,
    p99: f64,
    cpu: f64,
    /// Heap allocations per call, when counted.
    allocations: Option<f64>,
    errors: usize,
}

/// `a / b`, when both were measured in this run (`--only` leaves some out).
fn ratio(a: f64, b: f64) -> Option<f64> {
    (a > 0.0 && b > 0.0).then(|| a / b)
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"))
}

impl Summary {
    /// Records a sample.
    pub(crate) fn sample(&mut self, cell: &Cell, kind: Kind, sample: Sample) {
        self.samples
            .entry((cell.clone(), kind.name()))
            .or_default()
            .push(sample);
    }

    /// Records a connect-to-first-call time.
    pub(crate) fn connect(&mut self, security: &'static str, kind: Kind, time: Duration) {
        self.connects.push((security, kind.name(), time));
    }

    fn medians(&self, cell: &Cell, kind: Kind) -> Medians {
        let Some(samples) = self.samples.get(&(cell.clone(), kind.name())) else {
            return Medians::default();
        };
        Medians {
            rate: median(samples.iter().map(|s| s.calls_per_sec).collect()),
            p50: median(samples.iter().map(|s| s.p50_us).collect()),
            p99: median(samples.iter().map(|s| s.p99_us).collect()),
            cpu: median(samples.iter().map(|s| s.cpu_us_per_call).collect()),
            allocations: samples
                .iter()
                .map(|s| s.allocations_per_call)
                .collect::<Option<Vec<f64>>>()
                .map(median),
            errors: samples.iter().map(|s| s.errors).sum(),
        }
    }

    /// The summary, with the goals.
    pub(crate) fn text(&self, peak_rss_mib: f64, took: Duration, mode: &str) -> String {
        let mut out = String::new();
        let cells: Vec<Cell> = {
            let mut cells: Vec<Cell> = self.samples.keys().map(|(c, _)| c.clone()).collect();
            cells.dedup();
            cells
        };
        let _ = writeln!(
            out,
            "\n# ephemos-bench ({mode}, {:.0} s): medians of the rounds; ratios measured in the same run",
            took.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "{:<10} {:<22} {:>4} | {:>9} {:>9} {:>6} | {:>9} {:>9} {:>6} | p50 us tonic/ephemos | p99 us tonic/ephemos | cpu us/call tonic/ephemos | errors",
            "security", "load", "c", "tonic/s", "ephemos/s", "ratio", "rr/s", "ht/s", "ratio"
        );
        let mut misses = Vec::new();
        for cell in &cells {
            let raw = self.medians(cell, Kind::RawOne);
            let eph = self.medians(cell, Kind::Ephemos);
            let rr = self.medians(cell, Kind::RawRoundRobin);
            let ht = self.medians(cell, Kind::EphemosHighThroughput);
            let (ratio, pool_ratio) = (ratio(eph.rate, raw.rate), ratio(ht.rate, rr.rate));
            let _ = writeln!(
                out,
                "{:<10} {:<22} {:>4} | {:>9.0} {:>9.0} {:>6} | {:>9.0} {:>9.0} {:>6} | {:>8.0} / {:<8.0} | {:>8.0} / {:<8.0} | {:>7.1} / {:<7.1} | {}",
                cell.security,
                cell.load,
                cell.concurrency,
                raw.rate,
                eph.rate,
                ratio_text(ratio),
                rr.rate,
                ht.rate,
                ratio_text(pool_ratio),
                raw.p50,
                eph.p50,
                raw.p99,
                eph.p99,
                raw.cpu,
                eph.cpu,
                raw.errors + eph.errors + rr.errors + ht.errors,
            );
            let name = format!("{} {} c={}", cell.security, cell.load, cell.concurrency);
            if let Some(ratio) = ratio.filter(|r| cell.concurrency <= 16 && *r < 0.97) {
                misses.push(format!("{name}: calls/s ephemos/tonic {ratio:.3} < 0.97"));
            }
            if let Some(ratio) = pool_ratio.filter(|r| cell.concurrency == 128 && *r < 1.0) {
                misses.push(format!(
                    "{name}: calls/s high_throughput/round-robin {ratio:.3} < 1.0"
                ));
            }
            if ratio.is_none() {
                continue;
            }
            if eph.p99 > raw.p99 * 1.05 {
                misses.push(format!(
                    "{name}: p99 {:.0} us > tonic's {:.0} us + 5%",
                    eph.p99, raw.p99
                ));
            }
            if eph.cpu > raw.cpu {
                misses.push(format!(
                    "{name}: CPU/call {:.1} us > tonic's {:.1} us ({:+.0}%)",
                    eph.cpu,
                    raw.cpu,
                    (eph.cpu / raw.cpu.max(f64::EPSILON) - 1.0) * 100.0
                ));
            }
        }
        self.allocations(&cells, &mut out);
        let _ = writeln!(
            out,
            "\n# connect to first call (median of 5, new client each)"
        );
        for (security, client, time) in &self.connects {
            let _ = writeln!(
                out,
                "{security:<10} {client:<24} {:>8.2} ms",
                time.as_secs_f64() * 1000.0
            );
        }
        let _ = writeln!(
            out,
            "\n# client peak RSS (all four clients in this process): {peak_rss_mib:.1} MiB"
        );
        let _ = writeln!(out, "\n# goals: {} missed", misses.len());
        for miss in &misses {
            let _ = writeln!(out, "MISS {miss}");
        }
        out
    }

    /// Heap allocations per call, when counted (`--features count-allocations`).
    fn allocations(&self, cells: &[Cell], out: &mut String) {
        let text = |m: Medians| {
            m.allocations
                .map_or_else(|| "-".to_owned(), |a| format!("{a:.0}"))
        };
        let counted = cells.iter().any(|cell| {
            Kind::ALL
                .iter()
                .any(|&kind| self.medians(cell, kind).allocations.is_some())
        });
        if !counted {
            return;
        }
        let _ = writeln!(
            out,
            "\n# heap allocations per call (client process): tonic / ephemos | round-robin / high_throughput"
        );
        for cell in cells {
            let _ = writeln!(
                out,
                "{:<10} {:<22} {:>4} | {:>6} / {:<6} | {:>6} / {:<6}",
                cell.security,
                cell.load,
                cell.concurrency,
                text(self.medians(cell, Kind::RawOne)),
                text(self.medians(cell, Kind::Ephemos)),
                text(self.medians(cell, Kind::RawRoundRobin)),
                text(self.medians(cell, Kind::EphemosHighThroughput)),
            );
        }
    }
}
