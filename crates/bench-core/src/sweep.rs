//! A sweep's rate steps: rates between the synchronous and the throughput rates its first two
//! benchmarks measured, resolved the same way by every engine that runs sweeps point by point.

use crate::config::{PlannedStrategy, RateStrategy, Spacing, Strategy, StrategyKind};
use crate::schema::Warning;

/// The request rates a workload's synchronous and throughput benchmarks measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SweepEnds {
    synchronous: Option<f64>,
    throughput: Option<f64>,
}

impl SweepEnds {
    /// Notes the successful request rate a benchmark of `kind` measured (for throughput, the
    /// rate from its first to its last completion where the engine knows it, so the ramp and
    /// the tail do not drag it down).
    pub fn observe(&mut self, kind: StrategyKind, rate: Option<f64>) {
        match kind {
            StrategyKind::Synchronous => self.synchronous = rate,
            StrategyKind::Throughput => self.throughput = rate,
            _ => {}
        }
    }

    /// The strategy of a planned benchmark: a fixed one as it is, a sweep's rate step from the
    /// measured ends, or the `sweep_incomplete` warning saying why the step is skipped.
    pub fn strategy(&self, planned: &PlannedStrategy) -> Result<Strategy, Warning> {
        match planned {
            PlannedStrategy::Fixed(s) => Ok(s.clone()),
            PlannedStrategy::SweepRate {
                step,
                steps,
                strategy,
                burstiness,
                spacing,
                max_concurrency,
            } => {
                let rate =
                    sweep_target((self.synchronous, self.throughput), *step, *steps, *spacing)
                        .map_err(|message| Warning {
                            code: "sweep_incomplete".to_owned(),
                            message,
                        })?;
                Ok(Strategy {
                    kind: match strategy {
                        RateStrategy::Constant => StrategyKind::Constant,
                        RateStrategy::Poisson => StrategyKind::Poisson,
                        RateStrategy::Gamma => StrategyKind::Gamma,
                    },
                    streams: None,
                    target_rate_per_s: Some(rate),
                    max_concurrency: Some(*max_concurrency),
                    burstiness: *burstiness,
                    speedup: None,
                })
            }
            // Only an engine that runs the search itself (`crate::search`) knows these rates.
            PlannedStrategy::SearchRates { .. } => Err(Warning {
                code: "search_not_run".to_owned(),
                message:
                    "the SLO search's rate steps are skipped: this engine does not run searches"
                        .to_owned(),
            }),
        }
    }

    /// The `sweep_inverted` warning when the throughput rate is no more than the synchronous
    /// one: the server gained nothing from concurrency (or was still busy).
    pub fn inverted(&self) -> Option<Warning> {
        let (low, high) = (self.synchronous?, self.throughput?);
        (high <= low && low > 0.0).then(|| Warning {
            code: "sweep_inverted".to_owned(),
            message: format!(
                "the throughput benchmark completed {high:.3} req/s, no more than the synchronous {low:.3} req/s: the server gained nothing from concurrency (or was still busy); the rate steps span {low:.3} to {:.3} req/s instead (the shortfall mirrored above the synchronous rate, at least 10 %)",
                inverted_high(low, high)
            ),
        })
    }
}

/// A sweep's rate step `k` of `steps` between the synchronous and throughput rates:
/// `linspace(low, high, steps + 1)[k]` (GuideLLM's) or the geometric equivalent.
fn sweep_rate(low: f64, high: f64, k: u32, steps: u32, spacing: Spacing) -> f64 {
    let f = f64::from(k) / f64::from(steps);
    match spacing {
        Spacing::Linear => low + (high - low) * f,
        Spacing::Geometric if low > 0.0 && high > 0.0 => low * (high / low).powf(f),
        Spacing::Geometric => low + (high - low) * f,
    }
}

/// The rate of a sweep's step `k` of `steps` from the synchronous and throughput rates its
/// first two benchmarks measured, or why it is skipped: an end that was not measured, or
/// measured as 0 or not finite (no request completed), gives no rate to build on.
fn sweep_target(
    (low, high): (Option<f64>, Option<f64>),
    k: u32,
    steps: u32,
    spacing: Spacing,
) -> Result<f64, String> {
    let usable = |rate: Option<f64>| rate.filter(|r| r.is_finite() && *r > 0.0);
    let missing = match (usable(low), usable(high)) {
        (Some(low), Some(high)) => {
            // Never below the synchronous rate (`sweep_inverted`).
            let high = if high <= low {
                inverted_high(low, high)
            } else {
                high
            };
            let rate = sweep_rate(low, high, k, steps, spacing);
            if rate.is_finite() && rate > 0.0 {
                return Ok(rate);
            }
            return Err(format!(
                "sweep rate step {k}/{steps} skipped: its rate between {low} and {high} req/s is {rate}"
            ));
        }
        (None, Some(_)) => "the synchronous benchmark measured no request rate",
        (Some(_), None) => "the throughput benchmark measured no request rate",
        (None, None) => {
            "neither the synchronous nor the throughput benchmark measured a request rate"
        }
    };
    let rate = |r: Option<f64>| r.map_or("none".to_owned(), |r| format!("{r:.3} req/s"));
    Err(format!(
        "sweep rate step {k}/{steps} skipped: {missing} to build on (synchronous {}, throughput {}); give the benchmarks time to complete requests (constraints.max_seconds)",
        rate(low),
        rate(high)
    ))
}

/// The top of the rate steps when the throughput rate `high` is no more than the synchronous
/// rate `low`: the shortfall mirrored above `low`, at least 10 % above it, so the steps probe
/// just past the rate where the server stopped gaining.
fn inverted_high(low: f64, high: f64) -> f64 {
    low + (low - high).max(0.1 * low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_rates_follow_guidellm_linspace_and_the_geometric_option() {
        // GuideLLM: sync 4.75, throughput 161.5, sweep_size 5 -> 57.00, 109.25, 161.50.
        let rates: Vec<f64> = (1..=3)
            .map(|k| sweep_rate(4.75, 161.5, k, 3, Spacing::Linear))
            .collect();
        assert_eq!(rates, [57.0, 109.25, 161.5]);
        let geometric: Vec<f64> = (1..=2)
            .map(|k| sweep_rate(1.0, 100.0, k, 2, Spacing::Geometric))
            .collect();
        assert!((geometric[0] - 10.0).abs() < 1e-9 && (geometric[1] - 100.0).abs() < 1e-9);
    }

    #[test]
    fn an_inverted_sweep_steps_up_from_the_synchronous_rate() {
        // Throughput 8 below synchronous 10: the shortfall (2) mirrored above 10.
        let rates: Vec<f64> = (1..=2)
            .map(|k| sweep_target((Some(10.0), Some(8.0)), k, 2, Spacing::Linear).unwrap_or(0.0))
            .collect();
        assert_eq!(rates, [11.0, 12.0]);
        // Equal ends: at least 10 % above.
        let top = sweep_target((Some(10.0), Some(10.0)), 1, 1, Spacing::Geometric).unwrap_or(0.0);
        assert!((top - 11.0).abs() < 1e-9, "{top}");
    }

    #[test]
    fn a_sweep_step_without_measured_ends_is_skipped_with_the_reason() {
        assert_eq!(
            sweep_target((Some(2.0), Some(10.0)), 1, 2, Spacing::Linear),
            Ok(6.0)
        );
        // A throughput step that completed nothing measures 0, not a rate.
        for ends in [
            (Some(2.0), Some(0.0)),
            (Some(2.0), None),
            (Some(2.0), Some(f64::NAN)),
            (Some(2.0), Some(f64::INFINITY)),
        ] {
            let message = sweep_target(ends, 1, 3, Spacing::Linear).unwrap_err();
            assert!(
                message.starts_with("sweep rate step 1/3 skipped: the throughput benchmark measured no request rate"),
                "{message}"
            );
        }
        let message = sweep_target((Some(0.0), Some(0.0)), 2, 3, Spacing::Geometric).unwrap_err();
        assert!(
            message.contains("neither the synchronous nor the throughput benchmark")
                && message.contains("synchronous 0.000 req/s, throughput 0.000 req/s"),
            "{message}"
        );
        assert!(sweep_target((None, Some(3.0)), 1, 3, Spacing::Linear)
            .unwrap_err()
            .contains("the synchronous benchmark measured no request rate"));
        // Ends too far apart for a finite geometric step.
        assert!(sweep_target((Some(1e-300), Some(f64::MAX)), 1, 2, Spacing::Linear).is_ok());
        let message =
            sweep_target((Some(1e-300), Some(f64::MAX)), 1, 2, Spacing::Geometric).unwrap_err();
        assert!(message.ends_with("req/s is inf"), "{message}");
    }
}
