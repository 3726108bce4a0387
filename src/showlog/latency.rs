//! Confirmation latencies, kept as a fixed histogram: a few dozen counts
//! whatever the number of commands, mergeable across scenes and days, and
//! close enough for a median and a 95th percentile (each bucket is at most
//! a quarter wider than the one below it).

use serde::{Deserialize, Serialize};

/// Upper bounds of the buckets, in milliseconds; one more bucket holds what
/// is above the last. A board that answers later than its timeout (1 s by
/// default) is a timeout, so 2 s covers every confirmation.
const BOUNDS_MS: [f64; 32] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0,
    100.0, 120.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 600.0, 800.0, 1000.0, 1200.0, 1500.0,
    2000.0, 3000.0,
];

/// How many confirmations took how long.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Confirmations counted.
    pub n: u64,
    /// Their latencies added up, in milliseconds (for the mean).
    pub sum_ms: f64,
    /// The slowest, in milliseconds.
    pub max_ms: f64,
    /// Counts per bucket ([`BOUNDS_MS`] and one above); trailing empty
    /// buckets are left out.
    pub buckets: Vec<u64>,
}

impl Latency {
    /// Counts one confirmation that took `ms` milliseconds (anything that
    /// is not a finite, non-negative number counts as 0).
    pub fn add(&mut self, ms: f64) {
        let ms = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
        let i = BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(BOUNDS_MS.len());
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, 0);
        }
        self.buckets[i] += 1;
        self.n += 1;
        self.sum_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }

    /// Adds what `other` counted. A histogram read from a damaged or
    /// foreign file has at most one bucket more than [`BOUNDS_MS`]; the
    /// rest is folded into the last.
    pub fn merge(&mut self, other: &Latency) {
        for (i, c) in other.buckets.iter().enumerate() {
            let i = i.min(BOUNDS_MS.len());
            if self.buckets.len() <= i {
                self.buckets.resize(i + 1, 0);
            }
            self.buckets[i] = self.buckets[i].saturating_add(*c);
        }
        self.n = self.n.saturating_add(other.n);
        self.sum_ms += other.sum_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    /// The latency below which a fraction `q` (0..=1) of the confirmations
    /// fall, in milliseconds: interpolated inside its bucket, never above
    /// the slowest seen. None when nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(0.5);
        let mut below = 0u64;
        for (i, c) in self.buckets.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            if (below + c) as f64 >= rank {
                let lo = if i == 0 { 0.0 } else { BOUNDS_MS[i - 1] };
                let hi = BOUNDS_MS.get(i).copied().unwrap_or(self.max_ms.max(lo));
                let within = (rank - below as f64) / *c as f64;
                let v = lo + (hi - lo) * within;
                return Some(round_ms(v.min(self.max_ms.max(lo))));
            }
            below += c;
        }
        Some(round_ms(self.max_ms))
    }

    /// The mean, in milliseconds.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| round_ms(self.sum_ms / self.n as f64))
    }
}

fn round_ms(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95_are_within_a_bucket_of_the_truth() {
        let mut l = Latency::default();
        // 1..=200 ms, evenly: the median is 100, the p95 190.
        for ms in 1..=200 {
            l.add(ms as f64);
        }
        let median = l.quantile(0.5).unwrap();
        let p95 = l.quantile(0.95).unwrap();
        assert!((80.0..=120.0).contains(&median), "median {median}");
        assert!((150.0..=200.0).contains(&p95), "p95 {p95}");
        assert_eq!(l.max_ms, 200.0);
        assert_eq!(l.mean(), Some(100.5));
        // All the same: every quantile is at most that.
        let mut same = Latency::default();
        for _ in 0..50 {
            same.add(12.0);
        }
        assert!(same.quantile(0.5).unwrap() <= 12.0);
        assert_eq!(same.quantile(1.0), Some(12.0));
        assert_eq!(Latency::default().quantile(0.5), None);
    }

    #[test]
    fn merged_histograms_equal_one_of_everything() {
        let (mut a, mut b, mut all) = (Latency::default(), Latency::default(), Latency::default());
        for ms in [3.0, 40.0, 41.0, 700.0] {
            a.add(ms);
            all.add(ms);
        }
        for ms in [5.0, 9000.0, f64::NAN, -1.0] {
            b.add(ms);
            all.add(ms);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.n, 8);
        assert_eq!(a.max_ms, 9000.0);
        assert_eq!(a.quantile(1.0), Some(9000.0));
        // A foreign histogram with too many buckets is folded, not grown.
        let wide = Latency {
            n: 1,
            sum_ms: 1.0,
            max_ms: 1.0,
            buckets: vec![1; 100],
        };
        a.merge(&wide);
        assert_eq!(a.buckets.len(), BOUNDS_MS.len() + 1);
    }
}
