//! The over-saturation detector: is the server falling behind for good?
//!
//! Requests in flight and TTFT are averaged per second of the benchmark; over the last
//! `window_seconds` a least-squares line is fitted to each, and the detector fires once both
//! slopes are positive with the given one-sided confidence (a t-test on the slope, with the
//! per-second means as samples, so a burst within one second counts once).

use std::collections::VecDeque;
use std::time::Instant;

use bench_core::config::OverSaturation;

/// Per-second sums of one series.
#[derive(Debug, Default)]
struct Series {
    /// (second, sum, count), oldest first.
    buckets: VecDeque<(u64, f64, u64)>,
}

impl Series {
    fn add(&mut self, second: u64, value: f64) {
        match self.buckets.back_mut() {
            Some((s, sum, n)) if *s == second => {
                *sum += value;
                *n += 1;
            }
            _ => self.buckets.push_back((second, value, 1)),
        }
    }

    fn trim(&mut self, oldest: u64) {
        while self.buckets.front().is_some_and(|(s, _, _)| *s < oldest) {
            self.buckets.pop_front();
        }
    }

    /// The least-squares slope of the per-second means, and its t statistic.
    fn trend(&self) -> Option<(f64, f64)> {
        let points: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .map(|(s, sum, n)| (*s as f64, sum / *n as f64))
            .collect();
        let n = points.len() as f64;
        if points.len() < 5 {
            return None;
        }
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        if sxx == 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let intercept = mean_y - slope * mean_x;
        let residual: f64 = points
            .iter()
            .map(|p| (p.1 - intercept - slope * p.0).powi(2))
            .sum::<f64>()
            / (n - 2.0);
        let se = (residual / sxx).sqrt();
        let t = if se == 0.0 {
            f64::INFINITY.copysign(slope)
        } else {
            slope / se
        };
        Some((slope, t))
    }
}

#[derive(Debug)]
pub(crate) struct Detector {
    min_seconds: f64,
    window_seconds: f64,
    confidence: f64,
    start: Instant,
    in_flight: Series,
    ttft: Series,
    fired: bool,
}

impl Detector {
    /// A detector for a benchmark limited to `max_seconds`, whose defaults scale with it.
    pub(crate) fn new(settings: OverSaturation, max_seconds: Option<f64>, start: Instant) -> Self {
        Self {
            min_seconds: settings.min_seconds_for(max_seconds),
            window_seconds: settings.window_seconds_for(max_seconds),
            confidence: settings.confidence,
            start,
            in_flight: Series::default(),
            ttft: Series::default(),
            fired: false,
        }
    }

    fn second(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_secs()
    }

    pub(crate) fn in_flight(&mut self, at: Instant, count: u64) {
        let second = self.second(at);
        self.in_flight.add(second, count as f64);
    }

    pub(crate) fn ttft(&mut self, at: Instant, ms: f64) {
        let second = self.second(at);
        self.ttft.add(second, ms);
    }

    /// Whether the server is over-saturated now; true at most once per benchmark.
    pub(crate) fn check(&mut self, now: Instant) -> Option<String> {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        if self.fired || elapsed < self.min_seconds {
            return None;
        }
        let oldest = (elapsed - self.window_seconds).max(0.0) as u64;
        self.in_flight.trim(oldest);
        self.ttft.trim(oldest);
        let (c_slope, c_t) = self.in_flight.trend()?;
        let (t_slope, t_t) = self.ttft.trend()?;
        let df = self.in_flight.buckets.len().min(self.ttft.buckets.len()) as f64 - 2.0;
        let critical = t_quantile(self.confidence, df);
        if c_slope > 0.0 && t_slope > 0.0 && c_t > critical && t_t > critical {
            self.fired = true;
            return Some(format!(
                "over-saturated after {elapsed:.1} s: requests in flight rising {c_slope:.2}/s (t = {c_t:.1}) and TTFT rising {t_slope:.1} ms/s (t = {t_t:.1}), critical t {critical:.2}"
            ));
        }
        None
    }
}

/// The `p` quantile of Student's t with `df` degrees of freedom: the normal quantile
/// (Abramowitz and Stegun 26.2.23) with the Cornish-Fisher correction.
fn t_quantile(p: f64, df: f64) -> f64 {
    let q = (-2.0 * (1.0 - p).ln()).sqrt();
    let z = q
        - (2.515517 + 0.802853 * q + 0.010328 * q * q)
            / (1.0 + 1.432788 * q + 0.189269 * q * q + 0.001308 * q * q * q);
    z + (z.powi(3) + z) / (4.0 * df)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * df * df)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn t_quantiles_match_the_tables() {
        // One-sided 95 %: 2.015 (5 df), 1.812 (10 df), 1.697 (30 df); 99 %, 10 df: 2.764.
        for (p, df, table) in [
            (0.95, 5.0, 2.015),
            (0.95, 10.0, 1.812),
            (0.95, 30.0, 1.697),
            (0.99, 10.0, 2.764),
        ] {
            assert!(
                (t_quantile(p, df) - table).abs() < 0.03,
                "t({p}, {df}) = {}",
                t_quantile(p, df)
            );
        }
    }

    fn detector() -> (Detector, Instant) {
        let start = Instant::now();
        let settings = OverSaturation {
            min_seconds: Some(5.0),
            window_seconds: Some(60.0),
            ..OverSaturation::monitor()
        };
        (Detector::new(settings, None, start), start)
    }

    #[test]
    fn rising_queues_fire_and_steady_ones_do_not() {
        let (mut rising, start) = detector();
        let (mut steady, _) = detector();
        for s in 0..10u64 {
            for k in 0..20u64 {
                let at = start + Duration::from_millis(s * 1000 + k * 50);
                rising.in_flight(at, 10 + s * 5 + k % 3);
                rising.ttft(at, 100.0 + s as f64 * 40.0 + (k % 5) as f64);
                steady.in_flight(at, 10 + k % 3);
                steady.ttft(at, 100.0 + (k % 5) as f64 * 3.0 + (s % 2) as f64);
            }
        }
        let now = start + Duration::from_secs(10);
        assert!(rising.check(now).is_some());
        assert!(rising.check(now).is_none(), "fires once");
        assert!(steady.check(now).is_none());
        let (mut early, start) = detector();
        early.in_flight(start, 1);
        assert!(
            early.check(start + Duration::from_secs(2)).is_none(),
            "not before min_seconds"
        );
    }
}
