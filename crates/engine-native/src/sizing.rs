//! Sizing the throughput benchmark to the server. Without an explicit `max_concurrency`, a
//! throughput benchmark does not open 512 streams against a server with four slots (whose
//! queue it could not cancel, so the next benchmark would measure its backlog): it starts
//! with one stream and doubles them while completed requests per second still rise by
//! [`GAIN`], then holds the smallest level that reached the best rate. Its throughput rate is
//! measured over that plateau, from completions.

use std::time::Duration;

/// A level counts as an improvement when its completion rate is at least this factor above
/// the best so far: less is noise, and more streams would only queue in the server.
pub(crate) const GAIN: f64 = 1.1;

/// The shortest measurement of one level.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The longest measurement of one level: a quarter of the benchmark's time (at least
/// [`MIN_INTERVAL`]), or this without a time limit.
const MAX_INTERVAL_UNLIMITED: Duration = Duration::from_secs(5);

/// How long one level is measured at most.
pub(crate) fn max_interval(max_seconds: Option<f64>) -> Duration {
    max_seconds.map_or(MAX_INTERVAL_UNLIMITED, |s| {
        bench_core::config::limits::duration_from_secs(s / 4.0).max(MIN_INTERVAL)
    })
}

/// What to do after measuring a level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Open this many streams and measure again.
    Grow(u32),
    /// Hold this many streams for the rest of the benchmark.
    Hold(u32),
}

/// The levels measured so far, as (streams, completed requests per second), in order.
#[derive(Debug, Default)]
pub(crate) struct Levels(pub(crate) Vec<(u32, f64)>);

impl Levels {
    /// The decision after the last level, with `cap` the most streams allowed.
    pub(crate) fn decide(&self, cap: u32) -> Decision {
        let Some(&(streams, rate)) = self.0.last() else {
            return Decision::Grow(1);
        };
        let best_before = self.0[..self.0.len() - 1]
            .iter()
            .map(|(_, r)| *r)
            .fold(0.0, f64::max);
        let improved = rate >= GAIN * best_before && rate > 0.0;
        if improved && streams < cap {
            Decision::Grow(streams.saturating_mul(2).min(cap))
        } else {
            Decision::Hold(self.best())
        }
    }

    /// The smallest level within [`GAIN`] of the best rate: more streams than that only queue.
    pub(crate) fn best(&self) -> u32 {
        let top = self.0.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        self.0
            .iter()
            .find(|(_, r)| *r * GAIN >= top && *r > 0.0)
            .or(self.0.last())
            .map_or(1, |(s, _)| *s)
    }

    /// The levels as people read them: `1: 5.2/s, 2: 9.8/s, 4: 10.1/s`.
    pub(crate) fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(s, r)| format!("{s}: {r:.2}/s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_double_while_the_rate_rises_and_hold_at_the_smallest_best_level() {
        let mut levels = Levels::default();
        assert_eq!(levels.decide(512), Decision::Grow(1));
        // A four-slot server: the rate doubles up to 4 streams, then flattens.
        for (streams, rate, next) in [
            (1, 5.0, Decision::Grow(2)),
            (2, 9.8, Decision::Grow(4)),
            (4, 19.0, Decision::Grow(8)),
            (8, 19.5, Decision::Hold(4)),
        ] {
            levels.0.push((streams, rate));
            assert_eq!(levels.decide(512), next, "{}", levels.describe());
        }
        // The cap ends growth.
        let capped = Levels(vec![(1, 1.0), (2, 2.0)]);
        assert_eq!(capped.decide(2), Decision::Hold(2));
        // Nothing completed: hold what there is.
        let stuck = Levels(vec![(1, 0.0)]);
        assert_eq!(stuck.decide(512), Decision::Hold(1));
        assert_eq!(max_interval(Some(8.0)), Duration::from_secs(2));
        assert_eq!(max_interval(Some(2.0)), MIN_INTERVAL);
        assert_eq!(max_interval(None), MAX_INTERVAL_UNLIMITED);
    }
}
