//! The human summary: per cell the median of the rounds for each client, the ratios
//! measured in the same run and paired by round (ephemos, with and without a retry
//! policy, / one tonic Channel; high_throughput / N round-robin Channels), and each goal
//! of issue 13 met or missed, by how much.

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

/// What one sample is compared on.
#[derive(Clone, Copy)]
enum Metric {
    Rate,
    P99,
    Cpu,
}

impl Metric {
    fn of(self, sample: &Sample) -> f64 {
        match self {
            Metric::Rate => sample.calls_per_sec,
            Metric::P99 => sample.p99_us,
            Metric::Cpu => sample.cpu_us_per_call,
        }
    }
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"))
}

impl Summary {
    /// Records a sample (one per client and round, in the order of the rounds).
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

    fn samples(&self, cell: &Cell, kind: Kind) -> &[Sample] {
        self.samples
            .get(&(cell.clone(), kind.name()))
            .map_or(&[], Vec::as_slice)
    }

    fn medians(&self, cell: &Cell, kind: Kind) -> Medians {
        let samples = self.samples(cell, kind);
        Medians {
            rate: median(samples.iter().map(|s| s.calls_per_sec).collect()),
            p50: median(samples.iter().map(|s| s.p50_us).collect()),
            p99: median(samples.iter().map(|s| s.p99_us).collect()),
            cpu: median(samples.iter().map(|s| s.cpu_us_per_call).collect()),
            allocations: samples
                .iter()
                .map(|s| s.allocations_per_call)
                .collect::<Option<Vec<f64>>>()
                .filter(|a| !a.is_empty())
                .map(median),
            errors: samples.iter().map(|s| s.errors).sum(),
        }
    }

    /// `a / b` on `metric`, paired by round: the median of the rounds' ratios, each
    /// taken between two measurements made seconds apart, so a slow minute of the
    /// machine moves both sides of a ratio instead of one. `None` when either client
    /// did not run (`--only`).
    fn ratio(&self, cell: &Cell, a: Kind, b: Kind, metric: Metric) -> Option<f64> {
        let ratios: Vec<f64> = self
            .samples(cell, a)
            .iter()
            .zip(self.samples(cell, b))
            .map(|(a, b)| (metric.of(a), metric.of(b)))
            .filter(|&(a, b)| a > 0.0 && b > 0.0)
            .map(|(a, b)| a / b)
            .collect();
        (!ratios.is_empty()).then(|| median(ratios))
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
            "\n# ephemos-bench ({mode}, {:.0} s): medians of the rounds; each ratio the median of the rounds' ratios (paired: both clients measured seconds apart in the same round)",
            took.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "# np = ephemos without a retry policy; rr = {} round-robin tonic Channels; ht = ephemos high_throughput",
            crate::clients::high_throughput_pool_size()
        );
        let _ = writeln!(
            out,
            "{:<10} {:<22} {:>4} | {:>8} {:>8} {:>6} | {:>8} {:>6} | {:>8} {:>8} {:>6} | p50 us tonic/eph | p99 us tonic/eph  ratio | cpu us/call tonic/eph ratio | errors",
            "security",
            "load",
            "c",
            "tonic/s",
            "eph/s",
            "ratio",
            "np/s",
            "ratio",
            "rr/s",
            "ht/s",
            "ratio"
        );
        let mut misses = Vec::new();
        for cell in &cells {
            let raw = self.medians(cell, Kind::RawOne);
            let eph = self.medians(cell, Kind::Ephemos);
            let np = self.medians(cell, Kind::EphemosNoPolicy);
            let rr = self.medians(cell, Kind::RawRoundRobin);
            let ht = self.medians(cell, Kind::EphemosHighThroughput);
            let pair = |a, b, metric| self.ratio(cell, a, b, metric);
            let rate = pair(Kind::Ephemos, Kind::RawOne, Metric::Rate);
            let bare = pair(Kind::EphemosNoPolicy, Kind::RawOne, Metric::Rate);
            let pool = pair(
                Kind::EphemosHighThroughput,
                Kind::RawRoundRobin,
                Metric::Rate,
            );
            let p99 = pair(Kind::Ephemos, Kind::RawOne, Metric::P99);
            let cpu = pair(Kind::Ephemos, Kind::RawOne, Metric::Cpu);
            let _ = writeln!(
                out,
                "{:<10} {:<22} {:>4} | {:>8.0} {:>8.0} {:>6} | {:>8.0} {:>6} | {:>8.0} {:>8.0} {:>6} | {:>7.0} / {:<7.0} | {:>7.0} / {:<7.0} {:>6} | {:>7.1} / {:<7.1} {:>6} | {}",
                cell.security,
                cell.load,
                cell.concurrency,
                raw.rate,
                eph.rate,
                ratio_text(rate),
                np.rate,
                ratio_text(bare),
                rr.rate,
                ht.rate,
                ratio_text(pool),
                raw.p50,
                eph.p50,
                raw.p99,
                eph.p99,
                ratio_text(p99),
                raw.cpu,
                eph.cpu,
                ratio_text(cpu),
                raw.errors + eph.errors + np.errors + rr.errors + ht.errors,
            );
            let name = format!("{} {} c={}", cell.security, cell.load, cell.concurrency);
            let short = |r: f64, goal: f64| (r / goal - 1.0) * 100.0;
            if let Some(r) = rate.filter(|r| cell.concurrency <= 16 && *r < 0.97) {
                misses.push(format!(
                    "{name}: calls/s ephemos/tonic {r:.3} < 0.97 ({:+.1}%)",
                    short(r, 0.97)
                ));
            }
            if let Some(r) = bare.filter(|r| cell.concurrency <= 16 && *r < 0.97) {
                misses.push(format!(
                    "{name}: calls/s ephemos without a policy/tonic {r:.3} < 0.97 ({:+.1}%)",
                    short(r, 0.97)
                ));
            }
            if let Some(r) = pool.filter(|r| cell.concurrency == 128 && *r < 1.0) {
                misses.push(format!(
                    "{name}: calls/s high_throughput/round-robin {r:.3} < 1.0 ({:+.1}%)",
                    short(r, 1.0)
                ));
            }
            if let Some(r) = p99.filter(|r| *r > 1.05) {
                misses.push(format!(
                    "{name}: p99 ephemos/tonic {r:.3} > 1.05 ({:.0} us against {:.0} us)",
                    eph.p99, raw.p99
                ));
            }
            if let Some(r) = cpu.filter(|r| *r > 1.0) {
                misses.push(format!(
                    "{name}: CPU/call ephemos/tonic {r:.3} > 1.0 ({:.1} us against {:.1} us)",
                    eph.cpu, raw.cpu
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
            "\n# client peak RSS (every client in this process): {peak_rss_mib:.1} MiB"
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
            "\n# heap allocations per call (client process): tonic / ephemos / no policy | round-robin / high_throughput"
        );
        for cell in cells {
            let _ = writeln!(
                out,
                "{:<10} {:<22} {:>4} | {:>6} / {:<6} / {:<6} | {:>6} / {:<6}",
                cell.security,
                cell.load,
                cell.concurrency,
                text(self.medians(cell, Kind::RawOne)),
                text(self.medians(cell, Kind::Ephemos)),
                text(self.medians(cell, Kind::EphemosNoPolicy)),
                text(self.medians(cell, Kind::RawRoundRobin)),
                text(self.medians(cell, Kind::EphemosHighThroughput)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(calls_per_sec: f64, cpu_us_per_call: f64) -> Sample {
        Sample {
            calls_per_sec,
            p50_us: 100.0,
            p99_us: 200.0,
            cpu_us_per_call,
            allocations_per_call: None,
            errors: 0,
        }
    }

    fn cell() -> Cell {
        Cell {
            security: "plaintext",
            load: "unary_64B".to_owned(),
            concurrency: 16,
        }
    }

    /// Each round's ratio is taken between the two clients of that round, and the
    /// median of those is the ratio: one round where only tonic was slowed (a noisy
    /// neighbour for one second) is outvoted. A ratio of the medians would give 90/80.
    #[test]
    fn a_ratio_is_the_median_of_the_rounds_ratios() {
        let mut summary = Summary::default();
        // Per round, ephemos/tonic: 0.9, 2.0 (tonic's slow round), 0.9.
        for (round, (tonic, ephemos)) in [(100.0, 90.0), (50.0, 100.0), (80.0, 72.0)]
            .into_iter()
            .enumerate()
        {
            summary.sample(&cell(), Kind::RawOne, sample(tonic, 10.0 + round as f64));
            summary.sample(&cell(), Kind::Ephemos, sample(ephemos, 11.0));
        }
        let rate = summary.ratio(&cell(), Kind::Ephemos, Kind::RawOne, Metric::Rate);
        assert!((rate.unwrap() - 0.9).abs() < 1e-9, "{rate:?}");
        let text = summary.text(10.0, Duration::from_secs(1), "full");
        assert!(
            text.contains("calls/s ephemos/tonic 0.900 < 0.97"),
            "{text}"
        );
        // CPU ratios by round: 11/10, 11/11, 11/12: their median is 1.0.
        let cpu = summary.ratio(&cell(), Kind::Ephemos, Kind::RawOne, Metric::Cpu);
        assert!((cpu.unwrap() - 1.0).abs() < 1e-9, "{cpu:?}");
    }

    #[test]
    fn no_ratio_and_no_goal_when_a_client_did_not_run() {
        let mut summary = Summary::default();
        summary.sample(&cell(), Kind::Ephemos, sample(90.0, 11.0));
        assert_eq!(
            summary.ratio(&cell(), Kind::Ephemos, Kind::RawOne, Metric::Rate),
            None
        );
        let text = summary.text(10.0, Duration::from_secs(1), "--quick");
        assert!(text.contains("# goals: 0 missed"), "{text}");
    }

    #[test]
    fn a_missed_goal_names_the_cell_and_by_how_much() {
        let mut summary = Summary::default();
        summary.sample(&cell(), Kind::RawOne, sample(100.0, 10.0));
        summary.sample(&cell(), Kind::Ephemos, sample(90.0, 10.0));
        let text = summary.text(10.0, Duration::from_secs(1), "full");
        assert!(
            text.contains(
                "MISS plaintext unary_64B c=16: calls/s ephemos/tonic 0.900 < 0.97 (-7.2%)"
            ),
            "{text}"
        );
        assert!(
            !text.contains("CPU/call"),
            "equal CPU is not a miss: {text}"
        );
    }
}
