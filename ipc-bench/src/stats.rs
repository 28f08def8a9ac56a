//! Figures: a latency histogram or a byte count over a time, merged across rounds, and the
//! numbers the report prints from them.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::results::Outcome;

/// What one side (Rust or C) of one row measured, over all rounds.
#[derive(Clone, Debug)]
pub enum Figure {
    /// Not measured (yet, or not on this machine): why.
    NotRun(String),
    /// Round-trip times in nanoseconds.
    Latency(Histogram<u64>),
    /// Bytes moved in a time.
    Throughput {
        /// Bytes moved.
        bytes: u64,
        /// Nanoseconds it took.
        ns: u64,
    },
    /// Refused by the kernel or failed: why.
    Failed(String),
}

/// A histogram from 1 ns to 100 s with 3 significant digits (0.1 % resolution).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("the bounds are valid")
}

impl Figure {
    /// The figure of one run.
    pub fn from_outcome(outcome: Outcome) -> Figure {
        match outcome {
            Outcome::Latency(samples) => {
                let mut h = new_histogram();
                for ns in samples {
                    // Clamped into range: a value above 100 s is a hang, not a sample.
                    h.saturating_record(ns.max(1));
                }
                Figure::Latency(h)
            }
            Outcome::Throughput { bytes, ns } => Figure::Throughput { bytes, ns },
            Outcome::Refused(why) => Figure::Failed(why),
        }
    }

    /// Fold another round into this figure: histograms add up, throughput keeps the best
    /// round, and a failure in any round makes the row a failure (it is not hidden).
    pub fn merge(&mut self, other: Figure) {
        let merged = match (
            std::mem::replace(self, Figure::NotRun(String::new())),
            other,
        ) {
            (Figure::NotRun(_), x) => x,
            (x, Figure::NotRun(_)) => x,
            (Figure::Failed(why), _) | (_, Figure::Failed(why)) => Figure::Failed(why),
            (Figure::Latency(mut a), Figure::Latency(b)) => {
                a.add(&b).expect("histograms with the same bounds add up");
                Figure::Latency(a)
            }
            // Throughput keeps its best round: on a shared machine a slow round measures
            // the other tenants, and the best one is the closest to what the mechanism can
            // do (the usual best-of-N of bandwidth benchmarks, pipe-demo's among them).
            (a @ Figure::Throughput { .. }, b @ Figure::Throughput { .. }) => {
                if b.mib_per_s() > a.mib_per_s() { b } else { a }
            }
            _ => Figure::Failed("rounds of different kinds cannot merge".into()),
        };
        *self = merged;
    }

    /// The value at `q` (0.5 = median) in nanoseconds, for a latency figure.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        match self {
            Figure::Latency(h) if !h.is_empty() => Some(h.value_at_quantile(q)),
            _ => None,
        }
    }

    /// MiB per second, for a throughput figure.
    pub fn mib_per_s(&self) -> Option<f64> {
        match self {
            Figure::Throughput { bytes, ns } if *ns > 0 => {
                Some(*bytes as f64 / (1024.0 * 1024.0) / (*ns as f64 / 1e9))
            }
            _ => None,
        }
    }

    /// The numbers, for CSV and JSON.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            status: "ok",
            samples: None,
            p50_ns: self.quantile(0.5),
            p99_ns: self.quantile(0.99),
            p999_ns: self.quantile(0.999),
            mib_per_s: self.mib_per_s().map(|v| (v * 10.0).round() / 10.0),
            error: None,
        };
        match self {
            Figure::Latency(h) => s.samples = Some(h.len()),
            Figure::Throughput { .. } => {}
            Figure::NotRun(why) => {
                s.status = "not-run";
                s.error = Some(why.clone());
            }
            Figure::Failed(why) => {
                s.status = "refused";
                s.error = Some(why.clone());
            }
        }
        s
    }
}

/// One side of one row, as CSV and JSON carry it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// `ok`, `refused` or `not-run`.
    pub status: &'static str,
    /// Round trips recorded.
    pub samples: Option<u64>,
    /// Median round trip.
    pub p50_ns: Option<u64>,
    /// 99th percentile.
    pub p99_ns: Option<u64>,
    /// 99.9th percentile.
    pub p999_ns: Option<u64>,
    /// Throughput.
    pub mib_per_s: Option<f64>,
    /// Why it was not measured.
    pub error: Option<String>,
}

/// `a / b`, if both exist and b is not zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lat(samples: &[u64]) -> Figure {
        Figure::from_outcome(Outcome::Latency(samples.to_vec()))
    }

    #[test]
    fn histograms_merge_across_rounds() {
        let mut f = Figure::NotRun("pending".into());
        f.merge(lat(&[1000; 90]));
        f.merge(lat(&[5000; 10]));
        let Figure::Latency(h) = &f else {
            panic!("{f:?}")
        };
        assert_eq!(h.len(), 100);
        assert_eq!(f.quantile(0.5), Some(1000));
        // 90 % of the samples are 1000 ns, so the 99th percentile is in the second round.
        assert!((4995..=5005).contains(&f.quantile(0.99).unwrap()));
    }

    #[test]
    fn throughput_keeps_the_best_round() {
        let mib = |m: u64| Figure::Throughput {
            bytes: m << 20,
            ns: 1_000_000_000,
        };
        let mut f = Figure::NotRun("pending".into());
        for m in [3, 7, 5] {
            f.merge(mib(m));
        }
        assert_eq!(f.mib_per_s(), Some(7.0));
    }

    #[test]
    fn a_failed_round_fails_the_row() {
        let mut f = lat(&[1000]);
        f.merge(Figure::Failed("msgsnd: Invalid argument".into()));
        f.merge(lat(&[1000]));
        let s = f.summary();
        assert_eq!(s.status, "refused");
        assert_eq!(s.error.as_deref(), Some("msgsnd: Invalid argument"));
    }

    #[test]
    fn samples_out_of_range_are_clamped_not_lost() {
        let f = lat(&[0, u64::MAX]);
        assert_eq!(f.summary().samples, Some(2));
    }

    #[test]
    fn ratios_need_both_sides() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(Some(3.0), None), None);
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
    }
}
