//! How much a compared value could move by chance: a 95 % confidence interval per value, and
//! the rule that a difference is real only when two values' intervals do not overlap
//! (docs/report.md, "Comparing engines", has the rule in words).
//!
//! - A percentile pX of n values: the distribution-free interval between two order statistics,
//!   ranks `n·p ± z·sqrt(n·p·(1−p))`, read from the encoded HDR histogram. A rank below 1 or
//!   above n leaves that side unbounded (a p99 of six requests has no upper bound).
//! - A mean: `mean ± z·s/sqrt(n)`, s the sample standard deviation.
//! - A rate: Poisson noise on the completed-request count N, `rate·(1 ± z/sqrt(N))`.
//! - A share (the error rate): Wilson's score interval.
//!
//! Where no interval can be computed (no histogram, a histogram that does not reproduce the
//! reported value, a server-side figure) the rule falls back on the count: a difference counts
//! only when both values rest on at least [`MIN_COUNT`] requests, and a percentile pX on at
//! least [`MIN_TAIL`] values on either side of it.

use bench_core::schema::Distribution;
use bench_core::stats::Histogram;
use schemars::JsonSchema;
use serde::Serialize;

/// The normal quantile of a two-sided 95 % interval.
pub(crate) const Z: f64 = 1.96;

/// The confidence of the intervals, as written in the comparison.
pub(crate) const CONFIDENCE: f64 = 0.95;

/// [`CONFIDENCE`], as the schema's default.
pub(crate) fn confidence() -> f64 {
    CONFIDENCE
}

/// Without an interval, fewer requests than this never make a difference.
pub(crate) const MIN_COUNT: u64 = 30;

/// Without an interval, a percentile pX needs this many values on its rarer side
/// (`n·min(p, 1−p)`): 10 for a p50 is easy, a p99 needs 500 requests.
pub(crate) const MIN_TAIL: f64 = 5.0;

/// How far the histogram's own quantile may sit from the reported percentile (which is rounded
/// to 3 significant digits) before the histogram is taken to describe other data.
const AGREEMENT: f64 = 0.01;

/// A 95 % confidence interval of one value, in the metric's unit; a missing bound is
/// unbounded (too few values to bound that side).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
pub struct Interval {
    /// Lower bound; `null` when unbounded below.
    pub low: Option<f64>,
    /// Upper bound; `null` when unbounded above.
    pub high: Option<f64>,
}

impl Interval {
    /// Whether the two intervals share no value.
    pub(crate) fn disjoint(&self, other: &Interval) -> bool {
        let below =
            |a: &Interval, b: &Interval| matches!((a.high, b.low), (Some(h), Some(l)) if h < l);
        below(self, other) || below(other, self)
    }
}

/// The noise of one value: its interval where one can be computed, and otherwise what the
/// count rule needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Noise {
    /// `None`: unknown, the count rule decides.
    pub(crate) interval: Option<Interval>,
    /// Whether the count rule would let this value make a difference.
    pub(crate) enough: bool,
}

impl Noise {
    /// No interval; the count rule with `count` requests (and a percentile's share `p`).
    pub(crate) fn unknown(count: u64, p: Option<f64>) -> Self {
        let tail = p.map_or(f64::INFINITY, |p| count as f64 * p.min(1.0 - p));
        Self {
            interval: None,
            enough: count >= MIN_COUNT && tail >= MIN_TAIL,
        }
    }

    fn known(interval: Interval) -> Self {
        Self {
            interval: Some(interval),
            enough: true,
        }
    }

    /// Whether a difference between the two values is beyond the noise.
    pub(crate) fn separates(&self, other: &Noise) -> bool {
        match (self.interval, other.interval) {
            (Some(a), Some(b)) => a.disjoint(&b),
            _ => self.enough && other.enough,
        }
    }
}

/// The interval of the percentile `p` (in (0, 1)) of `d`, whose reported value is `value`.
/// `requests` is the number of independent draws behind it: the distribution's own count for a
/// per-request metric, the request count for inter-token latencies (a request's gaps share its
/// batch, so they are not independent draws; taking the request count keeps the interval wide).
pub(crate) fn percentile(d: &Distribution, p: f64, value: f64, requests: u64) -> Noise {
    let effective = requests.min(d.count).max(1);
    let histogram = match Histogram::from_distribution(d) {
        Ok(h) => h,
        Err(_) => return Noise::unknown(effective, Some(p)),
    };
    let n = d.count as f64;
    // The histogram must describe the reported value, or the report was edited or written by
    // a tool whose histogram holds something else.
    let agrees = histogram
        .quantile(p)
        .is_some_and(|own| (own - value).abs() <= AGREEMENT * value.abs().max(own.abs()) + 1e-9);
    if !agrees {
        return Noise::unknown(effective, Some(p));
    }
    let spread = Z * (p * (1.0 - p) / effective as f64).sqrt();
    let low_rank = (n * (p - spread)).floor();
    let high_rank = (n * (p + spread)).ceil();
    // Nearest rank r is the quantile (r − ½)/n, clear of rounding at r/n.
    let at_rank = |r: f64| histogram.quantile((r - 0.5) / n);
    Noise::known(Interval {
        low: if low_rank >= 1.0 {
            at_rank(low_rank).map(|v| v.min(value))
        } else {
            None
        },
        high: if high_rank <= n {
            at_rank(high_rank).map(|v| v.max(value))
        } else {
            None
        },
    })
}

/// The interval of the mean of `d`.
pub(crate) fn mean(d: &Distribution) -> Noise {
    if d.count < 2 {
        return Noise::unknown(d.count, None);
    }
    let n = d.count as f64;
    let sample_stdev = d.stdev * (n / (n - 1.0)).sqrt();
    let half = Z * sample_stdev / n.sqrt();
    Noise::known(Interval {
        low: Some(d.mean - half),
        high: Some(d.mean + half),
    })
}

/// The interval of a rate measured from `count` completed requests (Poisson counting noise).
pub(crate) fn rate(value: f64, count: u64) -> Noise {
    if count == 0 {
        return Noise::unknown(0, None);
    }
    let relative = Z / (count as f64).sqrt();
    Noise::known(Interval {
        low: Some((value * (1.0 - relative)).max(0.0)),
        high: Some(value * (1.0 + relative)),
    })
}

/// Wilson's score interval of a share of `count` trials.
pub(crate) fn share(value: f64, count: u64) -> Noise {
    if count == 0 {
        return Noise::unknown(0, None);
    }
    let n = count as f64;
    let z2 = Z * Z;
    let centre = (value + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z / (1.0 + z2 / n) * (value * (1.0 - value) / n + z2 / (4.0 * n * n)).sqrt();
    Noise::known(Interval {
        low: Some((centre - half).max(0.0)),
        high: Some((centre + half).min(1.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` values spread evenly over [10, 20) ms, times `scale`.
    fn spread(n: u64, scale: f64) -> Distribution {
        let mut h = Histogram::for_milliseconds();
        for i in 0..n {
            h.record(scale * (10.0 + 10.0 * i as f64 / n as f64))
                .unwrap();
        }
        h.summary().unwrap()
    }

    fn p99(d: &Distribution, requests: u64) -> Noise {
        percentile(d, 0.99, d.percentiles.p99, requests)
    }

    #[test]
    fn a_p99_of_six_requests_has_no_upper_bound() {
        let d = spread(6, 1.0);
        let noise = p99(&d, 6);
        let interval = noise.interval.expect("the histogram gives an interval");
        assert_eq!(interval.high, None);
        assert!(interval.low.unwrap() <= d.percentiles.p99);
        assert!(!noise.separates(&p99(&spread(6, 0.74), 6)));
    }

    #[test]
    fn it_takes_about_380_requests_to_bound_a_p99_from_above() {
        let bounded = |n| p99(&spread(n, 1.0), n).interval.unwrap().high.is_some();
        assert!(!bounded(370));
        assert!(bounded(390));
    }

    #[test]
    fn a_p99_of_five_thousand_requests_is_tight() {
        let (a, b) = (spread(5000, 1.0), spread(5000, 1.26));
        let interval = p99(&a, 5000).interval.unwrap();
        let (low, high) = (interval.low.unwrap(), interval.high.unwrap());
        assert!(low <= a.percentiles.p99 && a.percentiles.p99 <= high);
        assert!(
            (high - low) / a.percentiles.p99 < 0.02,
            "{low}..{high} around {}",
            a.percentiles.p99
        );
        assert!(p99(&a, 5000).separates(&p99(&b, 5000)));
        assert!(!p99(&a, 5000).separates(&p99(&a, 5000)));
    }

    #[test]
    fn inter_token_gaps_count_as_their_requests() {
        // 6 requests of 200 gaps each: 1,200 values, but only 6 independent draws.
        let (a, b) = (spread(1200, 1.0), spread(1200, 0.74));
        assert!(!p99(&a, 6).separates(&p99(&b, 6)));
        assert!(p99(&a, 1200).separates(&p99(&b, 1200)));
    }

    #[test]
    fn a_histogram_that_disagrees_with_its_value_leaves_the_count_rule() {
        let d = spread(100, 1.0);
        let edited = percentile(&d, 0.5, d.percentiles.p50 * 1.5, 100);
        assert_eq!(edited.interval, None);
        assert!(edited.enough, "100 requests pass the count rule for a p50");
        let mut bare = d.clone();
        bare.histogram = None;
        let p99 = percentile(&bare, 0.99, bare.percentiles.p99, 100);
        assert_eq!(p99.interval, None);
        assert!(!p99.enough, "a p99 needs 500 requests without a histogram");
    }

    #[test]
    fn means_rates_and_shares_have_intervals_that_shrink_with_the_count() {
        let m = mean(&spread(100, 1.0)).interval.unwrap();
        let wide = m.high.unwrap() - m.low.unwrap();
        let m = mean(&spread(10_000, 1.0)).interval.unwrap();
        assert!(m.high.unwrap() - m.low.unwrap() < wide / 5.0);
        assert!(!rate(10.0, 6).separates(&rate(7.4, 6)));
        assert!(rate(10.0, 5000).separates(&rate(7.4, 5000)));
        let s = share(0.0, 1000).interval.unwrap();
        assert_eq!(s.low, Some(0.0));
        assert!(s.high.unwrap() > 0.0 && s.high.unwrap() < 0.01);
    }

    #[test]
    fn the_count_rule_needs_enough_requests_and_tail() {
        assert!(!Noise::unknown(29, None).enough);
        assert!(Noise::unknown(30, None).enough);
        assert!(!Noise::unknown(499, Some(0.99)).enough);
        assert!(Noise::unknown(500, Some(0.99)).enough);
    }
}
