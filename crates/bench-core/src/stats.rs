//! The one statistics implementation every engine shares, so that a percentile means the same
//! thing whichever engine measured it.
//!
//! A [`Histogram`] keeps an HdrHistogram (3 significant digits) for quantiles and the mode, and
//! exact running moments (count, sum, min, max, mean, variance by Welford's method) beside it.
//! Its summary is a [`Distribution`], which carries the histogram encoded (V2 + deflate, base64)
//! so that distributions from shards or repeated runs merge exactly ([`merge_distributions`]).

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::schema::{Distribution, EncodedHistogram, Percentiles, StatusSplit};

/// Significant decimal digits kept by the histogram.
const SIGNIFICANT_DIGITS: u8 = 3;

/// The quantiles reported in [`Percentiles`], in field order.
const QUANTILES: [f64; 11] = [
    0.001, 0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999,
];

/// Why a value cannot be recorded or two distributions cannot be merged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// NaN or infinite values have no place in a distribution.
    #[error("cannot record the non-finite value {0}")]
    NotFinite(f64),
    /// Histograms with different resolutions cannot be added bucket by bucket.
    #[error("cannot merge histograms with resolutions {0} and {1}")]
    ResolutionMismatch(f64, f64),
    /// A distribution without its encoded histogram cannot be merged exactly.
    #[error("the distribution carries no encoded histogram, so it cannot be merged exactly")]
    NoHistogram,
    /// The encoded histogram is not valid.
    #[error("invalid encoded histogram: {0}")]
    Decode(String),
}

/// Records values of one metric in one unit (milliseconds, tokens, ...).
#[derive(Debug, Clone)]
pub struct Histogram {
    hdr: hdrhistogram::Histogram<u64>,
    resolution: f64,
    moments: Moments,
}

/// Exact running moments; `m2` is the sum of squared deviations from the mean.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Moments {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    const EMPTY: Moments = Moments {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        mean: 0.0,
        m2: 0.0,
    };

    fn record(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }

    /// Chan et al.'s pairwise combination of two sets of moments.
    fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

impl Histogram {
    /// A histogram whose smallest distinguishable step is `resolution` (in the metric's unit):
    /// `0.001` for milliseconds kept to the microsecond, `1.0` for token counts.
    ///
    /// # Panics
    /// If `resolution` is not a positive finite number (a programming error).
    pub fn new(resolution: f64) -> Self {
        assert!(
            resolution.is_finite() && resolution > 0.0,
            "histogram resolution must be positive, got {resolution}"
        );
        let mut hdr = hdrhistogram::Histogram::new(SIGNIFICANT_DIGITS)
            .expect("3 significant digits is a valid histogram precision");
        hdr.auto(true);
        Self {
            hdr,
            resolution,
            moments: Moments::EMPTY,
        }
    }

    /// A histogram for durations in milliseconds, kept to the microsecond.
    pub fn for_milliseconds() -> Self {
        Self::new(0.001)
    }

    /// A histogram for counts (tokens), kept exactly.
    pub fn for_counts() -> Self {
        Self::new(1.0)
    }

    /// Records one value. Negative values keep their exact effect on the moments but enter the
    /// histogram as zero (HdrHistogram has no negative buckets).
    pub fn record(&mut self, value: f64) -> Result<(), StatsError> {
        if !value.is_finite() {
            return Err(StatsError::NotFinite(value));
        }
        self.moments.record(value);
        let scaled = (value / self.resolution).round().max(0.0) as u64;
        self.hdr
            .record(scaled)
            .expect("an auto-resizing histogram accepts every u64");
        Ok(())
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) -> Result<(), StatsError> {
        if self.resolution != other.resolution {
            return Err(StatsError::ResolutionMismatch(
                self.resolution,
                other.resolution,
            ));
        }
        self.hdr
            .add(&other.hdr)
            .expect("an auto-resizing histogram accepts any other histogram");
        self.moments.merge(&other.moments);
        Ok(())
    }

    /// The nearest-rank quantile `q` in [0, 1] so far (see [`Distribution`]), or `None` when
    /// nothing was recorded. Cheap enough for live progress.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        (self.moments.count > 0).then(|| self.quantile_of(q))
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.moments.count
    }

    /// The summary, or `None` when nothing was recorded.
    pub fn summary(&self) -> Option<Distribution> {
        let m = &self.moments;
        if m.count == 0 {
            return None;
        }
        let variance = m.m2 / m.count as f64;
        let [p0_1, p1, p5, p10, p25, p50, p75, p90, p95, p99, p99_9] =
            QUANTILES.map(|q| self.quantile_of(q));
        Some(Distribution {
            count: m.count,
            sum: m.sum,
            mean: m.mean,
            median: p50,
            mode: self.mode(),
            stdev: variance.sqrt(),
            variance,
            min: m.min,
            max: m.max,
            percentiles: Percentiles {
                p0_1,
                p1,
                p5,
                p10,
                p25,
                p50,
                p75,
                p90,
                p95,
                p99,
                p99_9,
            },
            histogram: Some(self.encode()),
        })
    }

    /// Nearest-rank quantile (the smallest recorded value with at least `q` of the values at or
    /// below it), as the middle of its histogram bucket, clamped to the exact min and max.
    fn quantile_of(&self, q: f64) -> f64 {
        let bucket = self.hdr.value_at_quantile(q);
        let value = self.hdr.median_equivalent(bucket) as f64 * self.resolution;
        value.clamp(self.moments.min, self.moments.max)
    }

    /// The middle of the most populated bucket (the lowest such bucket on a tie).
    fn mode(&self) -> f64 {
        let mut best = (0u64, 0u64);
        for bucket in self.hdr.iter_recorded() {
            if bucket.count_at_value() > best.1 {
                best = (bucket.value_iterated_to(), bucket.count_at_value());
            }
        }
        let value = self.hdr.median_equivalent(best.0) as f64 * self.resolution;
        value.clamp(self.moments.min, self.moments.max)
    }

    fn encode(&self) -> EncodedHistogram {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hdr, &mut bytes)
            .expect("serializing into a Vec cannot fail");
        EncodedHistogram {
            resolution: self.resolution,
            encoding: EncodedHistogram::ENCODING.to_owned(),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// Rebuilds the histogram of a distribution, with its exact moments.
    pub fn from_distribution(distribution: &Distribution) -> Result<Self, StatsError> {
        let encoded = distribution
            .histogram
            .as_ref()
            .ok_or(StatsError::NoHistogram)?;
        if encoded.encoding != EncodedHistogram::ENCODING {
            return Err(StatsError::Decode(format!(
                "unknown encoding `{}`, expected `{}`",
                encoded.encoding,
                EncodedHistogram::ENCODING
            )));
        }
        if !(encoded.resolution.is_finite() && encoded.resolution > 0.0) {
            return Err(StatsError::Decode(format!(
                "resolution {} is not a positive number",
                encoded.resolution
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&encoded.data)
            .map_err(|e| StatsError::Decode(e.to_string()))?;
        let mut hdr: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| StatsError::Decode(format!("{e:?}")))?;
        hdr.auto(true);
        if hdr.len() != distribution.count {
            return Err(StatsError::Decode(format!(
                "the histogram holds {} values but the distribution says count = {}",
                hdr.len(),
                distribution.count
            )));
        }
        let d = distribution;
        Ok(Self {
            hdr,
            resolution: encoded.resolution,
            moments: Moments {
                count: d.count,
                sum: d.sum,
                min: d.min,
                max: d.max,
                mean: d.mean,
                m2: d.variance * d.count as f64,
            },
        })
    }
}

/// How a request ended; selects the part of a [`SplitHistogram`] a value goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Completed with a full response.
    Successful,
    /// Cancelled before completion.
    Incomplete,
    /// Failed.
    Errored,
}

/// One metric recorded separately per [`Outcome`]; summarized as a [`StatusSplit`] whose
/// `total` is the exact merge of the three parts.
#[derive(Debug, Clone)]
pub struct SplitHistogram {
    successful: Histogram,
    incomplete: Histogram,
    errored: Histogram,
}

impl SplitHistogram {
    /// Three empty histograms of the given resolution (see [`Histogram::new`]).
    pub fn new(resolution: f64) -> Self {
        Self {
            successful: Histogram::new(resolution),
            incomplete: Histogram::new(resolution),
            errored: Histogram::new(resolution),
        }
    }

    /// Records `value` for a request that ended with `outcome`.
    pub fn record(&mut self, outcome: Outcome, value: f64) -> Result<(), StatsError> {
        match outcome {
            Outcome::Successful => self.successful.record(value),
            Outcome::Incomplete => self.incomplete.record(value),
            Outcome::Errored => self.errored.record(value),
        }
    }

    /// The split summary, or `None` when nothing was recorded at all.
    pub fn summary(&self) -> Option<StatusSplit<Distribution>> {
        let mut total = self.successful.clone();
        total
            .merge(&self.incomplete)
            .and_then(|()| total.merge(&self.errored))
            .expect("the three parts share one resolution");
        total.count().gt(&0).then(|| StatusSplit {
            successful: self.successful.summary(),
            incomplete: self.incomplete.summary(),
            errored: self.errored.summary(),
            total: total.summary(),
        })
    }
}

/// Merges two distributions exactly: histograms bucket by bucket, moments pairwise.
pub fn merge_distributions(a: &Distribution, b: &Distribution) -> Result<Distribution, StatsError> {
    let mut merged = Histogram::from_distribution(a)?;
    merged.merge(&Histogram::from_distribution(b)?)?;
    Ok(merged
        .summary()
        .expect("a merge of two non-empty distributions is not empty"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Nearest-rank quantile on sorted data, with the same rank formula as the histogram.
    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    fn sample(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        // Log-uniform over 0.01 ms .. 100 s: latencies span many orders of magnitude.
        (0..n)
            .map(|_| 10f64.powf(rng.random_range(-2.0..5.0)))
            .collect()
    }

    fn assert_close(actual: f64, expected: f64, resolution: f64, what: &str) {
        // 3 significant digits: within 0.1 % of the value, plus half a step of resolution.
        let tolerance = expected.abs() * 1e-3 + resolution;
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: histogram {actual} vs exact {expected} (tolerance {tolerance})"
        );
    }

    #[test]
    fn percentiles_match_exact_sorted_computation_within_precision() {
        for (seed, n) in [(1, 1), (2, 7), (3, 100), (4, 10_000), (5, 54_321)] {
            let values = sample(seed, n);
            let mut h = Histogram::for_milliseconds();
            for &v in &values {
                h.record(v).unwrap();
            }
            let d = h.summary().unwrap();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let p = &d.percentiles;
            let reported = [
                p.p0_1, p.p1, p.p5, p.p10, p.p25, p.p50, p.p75, p.p90, p.p95, p.p99, p.p99_9,
            ];
            for (q, got) in QUANTILES.iter().zip(reported) {
                assert_close(
                    got,
                    exact_quantile(&sorted, *q),
                    0.001,
                    &format!("n={n} q={q}"),
                );
            }
            assert_eq!(d.median, p.p50);
            assert_eq!(d.count, n as u64);
            assert_eq!(d.min, sorted[0]);
            assert_eq!(d.max, sorted[n - 1]);
            let mean = values.iter().sum::<f64>() / n as f64;
            let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            assert!((d.mean - mean).abs() <= mean * 1e-12);
            assert!((d.variance - variance).abs() <= variance * 1e-9 + 1e-12);
            assert!((d.stdev - variance.sqrt()).abs() <= variance.sqrt() * 1e-9 + 1e-12);
        }
    }

    #[test]
    fn merging_two_halves_equals_the_whole() {
        let values = sample(9, 20_000);
        let (left, right) = values.split_at(7_777);
        let mut whole = Histogram::for_milliseconds();
        let mut a = Histogram::for_milliseconds();
        let mut b = Histogram::for_milliseconds();
        values.iter().for_each(|&v| whole.record(v).unwrap());
        left.iter().for_each(|&v| a.record(v).unwrap());
        right.iter().for_each(|&v| b.record(v).unwrap());

        let whole = whole.summary().unwrap();
        // Merge through the serialized form, as shards written to disk would.
        let merged = merge_distributions(&a.summary().unwrap(), &b.summary().unwrap()).unwrap();

        assert_eq!(merged.percentiles, whole.percentiles);
        assert_eq!(
            (merged.count, merged.min, merged.max),
            (whole.count, whole.min, whole.max)
        );
        assert_eq!(merged.mode, whole.mode);
        assert_eq!(merged.histogram, whole.histogram);
        assert!((merged.sum - whole.sum).abs() <= whole.sum * 1e-12);
        assert!((merged.mean - whole.mean).abs() <= whole.mean * 1e-12);
        assert!((merged.variance - whole.variance).abs() <= whole.variance * 1e-9);
    }

    #[test]
    fn counts_are_exact_and_mode_is_the_most_frequent_value() {
        let mut h = Histogram::for_counts();
        for v in [16.0, 16.0, 16.0, 3.0, 200.0, 200.0] {
            h.record(v).unwrap();
        }
        let d = h.summary().unwrap();
        assert_eq!(d.mode, 16.0);
        assert_eq!(d.percentiles.p50, 16.0);
        assert_eq!(d.percentiles.p99, 200.0);
        assert_eq!(d.sum, 451.0);
    }

    #[test]
    fn empty_histograms_have_no_summary_and_bad_input_is_refused() {
        let mut h = Histogram::for_milliseconds();
        assert!(h.summary().is_none());
        assert!(matches!(h.record(f64::NAN), Err(StatsError::NotFinite(_))));
        assert!(h.summary().is_none());
        let ms = Histogram::for_milliseconds();
        assert!(matches!(
            Histogram::for_counts().merge(&ms),
            Err(StatsError::ResolutionMismatch(..))
        ));
    }

    #[test]
    fn negative_values_keep_exact_moments() {
        let mut h = Histogram::for_milliseconds();
        h.record(-0.5).unwrap();
        h.record(1.5).unwrap();
        let d = h.summary().unwrap();
        assert_eq!((d.min, d.max, d.mean), (-0.5, 1.5, 0.5));
        assert_eq!(
            d.percentiles.p0_1, 0.0,
            "negatives enter the histogram as zero"
        );
    }

    #[test]
    fn split_totals_merge_the_parts() {
        let mut split = SplitHistogram::new(1.0);
        assert!(split.summary().is_none());
        split.record(Outcome::Successful, 10.0).unwrap();
        split.record(Outcome::Successful, 20.0).unwrap();
        split.record(Outcome::Errored, 3.0).unwrap();
        let s = split.summary().unwrap();
        assert_eq!(s.successful.as_ref().unwrap().count, 2);
        assert!(s.incomplete.is_none());
        assert_eq!(s.errored.as_ref().unwrap().max, 3.0);
        let total = s.total.unwrap();
        assert_eq!(
            (total.count, total.min, total.max, total.sum),
            (3, 3.0, 20.0, 33.0)
        );
    }

    #[test]
    fn a_tampered_histogram_is_rejected() {
        let mut h = Histogram::for_counts();
        h.record(1.0).unwrap();
        let mut d = h.summary().unwrap();
        d.count = 2;
        assert!(matches!(
            Histogram::from_distribution(&d),
            Err(StatsError::Decode(_))
        ));
        d.histogram = None;
        assert!(matches!(
            Histogram::from_distribution(&d),
            Err(StatsError::NoHistogram)
        ));
    }
}
