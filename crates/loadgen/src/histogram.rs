//! A latency histogram that many tasks record into at once without locks: log-linear
//! buckets (64 per power of two, so any value is within 1.6 % of its bucket) over
//! microseconds, as atomic counters. Fixed size (about 18 KiB) whatever the run length,
//! so a long benchmark cannot grow memory by recording.

use std::sync::atomic::{AtomicU64, Ordering};

const SUB_BUCKETS: u64 = 64;
const SUB_BITS: u32 = 6;
/// Values up to 2^40 µs (12 days) are told apart; larger ones land in the last bucket.
const MAX_EXPONENT: u32 = 40;
const BUCKETS: usize = ((MAX_EXPONENT - SUB_BITS + 2) as u64 * SUB_BUCKETS) as usize;

/// Counts of values (µs) by bucket, plus the exact maximum.
#[derive(Debug)]
pub struct Histogram {
    counts: Vec<AtomicU64>,
    max: AtomicU64,
    total: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

fn index(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let exponent = (63 - value.leading_zeros()).min(MAX_EXPONENT);
    let shift = exponent - SUB_BITS;
    let mantissa = (value >> shift).min(2 * SUB_BUCKETS - 1);
    ((u64::from(shift) + 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS)) as usize
}

/// The middle of the values bucket `index` holds.
fn value_at(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    let shift = index / SUB_BUCKETS - 1;
    let mantissa = index % SUB_BUCKETS + SUB_BUCKETS;
    let low = mantissa << shift;
    low + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// Records one value in µs.
    pub fn record(&self, micros: u64) {
        let i = index(micros).min(BUCKETS - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The exact largest value, µs.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0..=1), µs; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count.load(Ordering::Relaxed);
            if seen >= rank {
                return value_at(i).min(self.max());
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_two_percent() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            12_345,
            999_999,
            1 << 30,
        ] {
            let got = value_at(index(v));
            let error = got.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(error <= 0.016, "{v} → {got}");
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.max(), 1_000_000);
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.02, "{p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.02, "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
