//! Latencies in a fixed number of buckets, so a load of any length keeps the same
//! memory: log-linear buckets of nanoseconds, exact below 256 ns and 128 to each power of
//! two above, so a quantile is within 1/128 (0.8%) of the true value.

use std::time::Duration;

/// The buckets per power of two, as bits.
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Exact buckets for 0..256 ns, then 128 for each of the 56 powers of two above.
const BUCKETS: usize = (63 - SUB_BITS as usize) * SUB + 2 * SUB;

/// A histogram of durations.
pub(crate) struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Histogram {
    /// An empty histogram.
    pub(crate) fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }

    /// Counts one duration.
    pub(crate) fn record(&mut self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.counts[index(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    /// The `q` quantile (nearest rank): the highest duration of the bucket that holds
    /// it, never more than the longest recorded.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_nanos(highest(bucket).min(self.max));
            }
        }
        Duration::from_nanos(self.max)
    }
}

/// The bucket of a value.
fn index(nanos: u64) -> usize {
    if nanos < 2 * SUB as u64 {
        return nanos as usize;
    }
    let shift = 63 - nanos.leading_zeros() - SUB_BITS;
    // The value's top eight bits, 128..256, after `shift` buckets of 128 below.
    shift as usize * SUB + (nanos >> shift) as usize
}

/// The highest value a bucket holds.
fn highest(bucket: usize) -> u64 {
    if bucket < 2 * SUB {
        return bucket as u64;
    }
    let shift = bucket / SUB - 1;
    let top = (bucket - shift * SUB) as u128;
    u64::try_from(((top + 1) << shift) - 1).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_each_other_and_hold_their_values() {
        let mut previous_highest = None;
        for bucket in 0..BUCKETS {
            let high = highest(bucket);
            assert_eq!(index(high), bucket, "{bucket}");
            if let Some(previous) = previous_highest {
                assert_eq!(index(previous + 1), bucket, "{bucket}");
            }
            previous_highest = Some(high);
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(highest(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn quantiles_are_within_a_128th() {
        let mut histogram = Histogram::new();
        for micros in 1..=1000u64 {
            histogram.record(Duration::from_micros(micros));
        }
        for (q, exact) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = histogram.quantile(q).as_nanos() as f64 / 1000.0;
            assert!(
                got >= exact && got <= exact * (1.0 + 1.0 / 128.0),
                "{q}: {got}"
            );
        }
        assert_eq!(histogram.quantile(1.0), Duration::from_micros(1000));
        assert_eq!(Histogram::new().quantile(0.5), Duration::ZERO);
    }
}
