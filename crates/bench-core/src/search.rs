//! The SLO search without its IO: which rate to try next from the verdicts so far, each step's
//! verdict with its confidence interval, and the answer ([`crate::schema::Search`]). An engine
//! runs the benchmarks (engine-native's `search` module) and feeds their counts in.
//!
//! The search brackets, then bisects. A synchronous probe (unless `start_rate` is given) shows
//! that one request at a time meets the objectives and gives the first rate step, twice its
//! measured rate; each passing step doubles the rate until one fails, a failing step before
//! any pass halves it; then each step tries the middle of the bracket, until the lowest
//! failing rate is within `precision` of the highest passing one, or `max_steps` ran.
//!
//! A step passes when the share of its judged requests that met every objective reaches the
//! target (`attainment`). The verdict uses the measured share; its Wilson score interval says
//! how sure it is (`conclusive` when the interval lies wholly on the verdict's side). Wilson
//! rather than a bootstrap: the share is a binomial proportion, for which the Wilson interval
//! is exact in form, keeps its coverage near 0 and 1 and with few requests (where a search's
//! steps near a 0.95 target are), and is deterministic; a bootstrap would only approximate it,
//! with resampling noise. Requests of one step are not independent (a queue correlates them),
//! so the interval is, if anything, too narrow; `docs/metrics.md` says so.

use crate::config::limits::{MAX_RATE_PER_S, MIN_RATE_PER_S};
use crate::config::{RateStrategy, SearchSettings, Slo, StrategyKind};
use crate::schema::{Interval, ObjectiveResult, Search, SearchAnswer, SearchEnd, SearchStep};

/// What one step measured: requests judged against `[slo]`, those that met every objective,
/// and the misses of each objective in the order of [`objectives`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// Successful and errored requests in the window.
    pub judged: u64,
    /// Of those, the ones that met every objective.
    pub met: u64,
    /// Of those judged, the ones that missed `ttft_ms`, `itl_ms`, `tpot_ms`, `e2e_ms`.
    pub missed: [u64; 4],
}

/// The objectives of `slo` with their index in [`StepCounts::missed`].
pub fn objectives(slo: &Slo) -> Vec<(usize, &'static str, f64)> {
    [
        ("ttft_ms", slo.ttft_ms),
        ("itl_ms", slo.itl_ms),
        ("tpot_ms", slo.tpot_ms),
        ("e2e_ms", slo.e2e_ms),
    ]
    .into_iter()
    .enumerate()
    .filter_map(|(i, (name, limit))| limit.map(|l| (i, name, l)))
    .collect()
}

/// An SLO search in progress.
#[derive(Debug, Clone)]
pub struct RateSearch {
    settings: SearchSettings,
    strategy: StrategyKind,
    slo: Slo,
    /// The highest rate step that passed, and the lowest that failed.
    passed: Option<f64>,
    failed: Option<f64>,
    /// The probe's measured rate: a lower end to bisect from before any rate step passed.
    floor: Option<f64>,
    rate_steps: u32,
    steps: Vec<SearchStep>,
    ended: Option<SearchEnd>,
}

impl RateSearch {
    /// A search with `settings`, rate steps of `strategy`, judged against `slo`.
    pub fn new(settings: SearchSettings, strategy: RateStrategy, slo: Slo) -> Self {
        Self {
            settings,
            strategy: match strategy {
                RateStrategy::Constant => StrategyKind::Constant,
                RateStrategy::Poisson => StrategyKind::Poisson,
                RateStrategy::Gamma => StrategyKind::Gamma,
            },
            slo,
            passed: None,
            failed: None,
            floor: None,
            rate_steps: 0,
            steps: Vec::new(),
            ended: None,
        }
    }

    /// The arrival process of the rate steps.
    pub fn strategy(&self) -> StrategyKind {
        self.strategy
    }

    /// Notes the synchronous probe (benchmark `benchmark`), which measured `rate` successful
    /// requests per second: a failed probe ends the search.
    pub fn probe(&mut self, benchmark: usize, rate: Option<f64>, counts: StepCounts) {
        let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
        let step = self.step(
            benchmark,
            StrategyKind::Synchronous,
            rate.unwrap_or(0.0),
            counts,
        );
        let passed = step.passed;
        self.steps.push(step);
        match rate {
            _ if !passed => self.ended = Some(SearchEnd::SynchronousFailed),
            None => self.ended = Some(SearchEnd::NoMeasurement),
            Some(rate) => self.floor = Some(rate),
        }
    }

    /// The rate of the next rate step, or `None` when the search is over.
    pub fn next_rate(&mut self) -> Option<f64> {
        if self.ended.is_some() {
            return None;
        }
        let next = match (self.passed, self.failed, self.floor) {
            (None, None, None) => self.settings.start_rate,
            (None, None, Some(floor)) => Some(2.0 * floor),
            (Some(passed), None, _) => Some(2.0 * passed),
            (None, Some(failed), None) => Some(failed / 2.0),
            (low, Some(failed), floor) => {
                let low = low.or(floor).unwrap_or(0.0);
                if failed - low <= self.settings.precision * low {
                    self.ended = Some(SearchEnd::Converged);
                    return None;
                }
                Some((low + failed) / 2.0)
            }
        };
        let Some(rate) = next else {
            self.ended = Some(SearchEnd::NoMeasurement);
            return None;
        };
        if !(MIN_RATE_PER_S..=MAX_RATE_PER_S).contains(&rate) {
            self.ended = Some(SearchEnd::RateLimit);
            return None;
        }
        if self.rate_steps >= self.settings.max_steps {
            self.ended = Some(SearchEnd::MaxSteps);
            return None;
        }
        Some(rate)
    }

    /// Notes a rate step at `rate` (benchmark `benchmark`) and what it measured.
    pub fn record(&mut self, benchmark: usize, rate: f64, counts: StepCounts) {
        let step = self.step(benchmark, self.strategy, rate, counts);
        self.rate_steps += 1;
        if step.passed {
            self.passed = Some(self.passed.map_or(rate, |p| p.max(rate)));
        } else {
            self.failed = Some(self.failed.map_or(rate, |f| f.min(rate)));
        }
        self.steps.push(step);
    }

    /// Ends the search early: the run was interrupted (whatever else it had come to).
    pub fn interrupt(&mut self) {
        self.ended = Some(SearchEnd::Interrupted);
    }

    /// The report's `search` block.
    pub fn finish(self) -> Search {
        let ended = self.ended.unwrap_or(SearchEnd::Interrupted);
        let statement = self.statement(ended);
        Search {
            answer: SearchAnswer {
                rate_per_s: self.passed,
                lowest_failing_rate_per_s: self.failed,
                ended,
                statement,
            },
            strategy: self.strategy,
            attainment_target: self.settings.attainment,
            confidence: self.settings.confidence,
            precision: self.settings.precision,
            max_steps: self.settings.max_steps,
            steps: self.steps,
        }
    }

    fn step(
        &self,
        benchmark: usize,
        kind: StrategyKind,
        rate: f64,
        counts: StepCounts,
    ) -> SearchStep {
        let target = self.settings.attainment;
        let share = |met: u64| {
            if counts.judged == 0 {
                0.0
            } else {
                met as f64 / counts.judged as f64
            }
        };
        let attainment = share(counts.met);
        let interval = wilson(counts.met, counts.judged, self.settings.confidence);
        // Nothing judged is no evidence of meeting anything.
        let passed = counts.judged > 0 && attainment >= target;
        SearchStep {
            benchmark,
            kind,
            rate_per_s: rate,
            judged: counts.judged,
            met: counts.met,
            attainment,
            interval,
            passed,
            conclusive: if passed {
                interval.low >= target
            } else {
                interval.high < target
            },
            objectives: objectives(&self.slo)
                .into_iter()
                .map(|(i, name, limit)| {
                    let attainment = share(counts.judged.saturating_sub(counts.missed[i]));
                    ObjectiveResult {
                        objective: name.to_owned(),
                        limit_ms: limit,
                        attainment,
                        passed: counts.judged > 0 && attainment >= target,
                    }
                })
                .collect(),
        }
    }

    /// The answer in words, with the confidence on the steps around it.
    fn statement(&self, ended: SearchEnd) -> String {
        let percent = |x: f64| format!("{:.1} %", 100.0 * x);
        let confidence = percent(self.settings.confidence);
        let target = percent(self.settings.attainment);
        let at = |rate: f64| {
            self.steps
                .iter()
                .rev()
                .find(|s| s.kind != StrategyKind::Synchronous && s.rate_per_s == rate)
        };
        let describe = |s: &SearchStep| {
            format!(
                "at {:.3} req/s {} of {} requests met the SLOs ({confidence} Wilson interval {} to {}{})",
                s.rate_per_s,
                percent(s.attainment),
                s.judged,
                percent(s.interval.low),
                percent(s.interval.high),
                if s.conclusive {
                    ""
                } else {
                    ", which holds the target: not conclusive"
                }
            )
        };
        let mut parts = vec![match self.passed {
            Some(rate) => format!(
                "the highest rate meeting the SLOs ({target} of requests within every objective) is {rate:.3} req/s"
            ),
            None => format!("no rate step met the SLOs ({target} of requests within every objective)"),
        }];
        parts.extend(self.passed.and_then(at).map(describe));
        parts.extend(self.failed.and_then(at).map(describe));
        if self.passed.is_none() {
            if let Some(probe) = self
                .steps
                .iter()
                .find(|s| s.kind == StrategyKind::Synchronous)
            {
                parts.push(format!(
                    "one request at a time ({:.3} req/s) {} them with {} of {} requests",
                    probe.rate_per_s,
                    if probe.passed { "met" } else { "missed" },
                    percent(probe.attainment),
                    probe.judged
                ));
            }
        }
        parts.push(
            match ended {
                SearchEnd::Converged => format!(
                    "the bracket closed to within {} after {} rate steps",
                    percent(self.settings.precision),
                    self.rate_steps
                ),
                SearchEnd::MaxSteps => format!(
                    "the search stopped after max_steps = {} rate steps before the bracket closed to within {}",
                    self.settings.max_steps,
                    percent(self.settings.precision)
                ),
                SearchEnd::SynchronousFailed => {
                    "even one request at a time missed the SLOs, so no rate was tried".to_owned()
                }
                SearchEnd::RateLimit => format!(
                    "the next rate would leave [{MIN_RATE_PER_S}, {MAX_RATE_PER_S}] req/s"
                ),
                SearchEnd::Interrupted => "the run was interrupted".to_owned(),
                SearchEnd::NoMeasurement => {
                    "a step measured no request rate to build on".to_owned()
                }
            },
        );
        parts.join("; ")
    }
}

/// The Wilson score interval on `met / judged` at two-sided `confidence`; [0, 1] when nothing
/// was judged.
pub fn wilson(met: u64, judged: u64, confidence: f64) -> Interval {
    if judged == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let n = judged as f64;
    let p = met as f64 / n;
    let z = normal_quantile(0.5 + confidence / 2.0);
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // Exact at the ends, where rounding would leave the bound a hair inside.
    Interval {
        low: if met == 0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        high: if met == judged {
            1.0
        } else {
            (center + half).min(1.0)
        },
    }
}

/// The standard normal's `p` quantile for `p` in [0.5, 1) (Abramowitz and Stegun 26.2.23,
/// error below 4.5e-4).
fn normal_quantile(p: f64) -> f64 {
    let q = (-2.0 * (1.0 - p).ln()).sqrt();
    q - (2.515517 + 0.802853 * q + 0.010328 * q * q)
        / (1.0 + 1.432788 * q + 0.189269 * q * q + 0.001308 * q * q * q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(judged: u64, met: u64) -> StepCounts {
        StepCounts {
            judged,
            met,
            missed: [judged - met, 0, 0, 0],
        }
    }

    fn slo() -> Slo {
        Slo {
            ttft_ms: Some(100.0),
            ..Slo::default()
        }
    }

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 95 of 100 at 95 %: 0.8882 to 0.9785 (Wilson 1927; e.g. Newcombe 1998, table I).
        let i = wilson(95, 100, 0.95);
        assert!(
            (i.low - 0.8882).abs() < 1e-3 && (i.high - 0.9785).abs() < 1e-3,
            "{i:?}"
        );
        // All met: the upper bound is 1, the lower n / (n + z^2).
        let i = wilson(50, 50, 0.95);
        assert!(
            (i.high - 1.0).abs() < 1e-12 && (i.low - 50.0 / (50.0 + 1.96f64.powi(2))).abs() < 1e-3,
            "{i:?}"
        );
        assert_eq!(
            wilson(0, 0, 0.95),
            Interval {
                low: 0.0,
                high: 1.0
            }
        );
        assert!((normal_quantile(0.975) - 1.96).abs() < 1e-3);
    }

    /// A server that meets the objectives up to `boundary` req/s.
    fn search_against(boundary: f64, settings: SearchSettings, probe: Option<f64>) -> Search {
        let mut search = RateSearch::new(settings, RateStrategy::Constant, slo());
        let mut index = 0;
        if let Some(rate) = probe {
            search.probe(index, Some(rate), counts(20, 20));
            index += 1;
        }
        while let Some(rate) = search.next_rate() {
            let met = if rate <= boundary { 100 } else { 50 };
            search.record(index, rate, counts(100, met));
            index += 1;
        }
        search.finish()
    }

    #[test]
    fn the_search_doubles_from_the_probe_then_bisects_to_the_precision() {
        let found = search_against(45.0, SearchSettings::default(), Some(10.0));
        let rates: Vec<f64> = found.steps.iter().map(|s| s.rate_per_s).collect();
        assert_eq!(&rates[..5], [10.0, 20.0, 40.0, 80.0, 60.0], "{rates:?}");
        let answer = &found.answer;
        assert_eq!(answer.ended, SearchEnd::Converged);
        let (pass, fail) = (
            answer.rate_per_s.unwrap(),
            answer.lowest_failing_rate_per_s.unwrap(),
        );
        assert!(
            pass <= 45.0 && 45.0 < fail && fail - pass <= 0.05 * pass,
            "{pass} {fail}"
        );
        assert!(found.steps.len() <= 10, "{rates:?}");
        assert!(
            answer.statement.starts_with(
                "the highest rate meeting the SLOs (95.0 % of requests within every objective) is"
            ),
            "{}",
            answer.statement
        );
        // Per objective: the one objective missed by the failing steps.
        let failing = found.steps.iter().find(|s| !s.passed).unwrap();
        assert_eq!(failing.objectives[0].objective, "ttft_ms");
        assert!(!failing.objectives[0].passed && failing.conclusive);
    }

    #[test]
    fn a_start_rate_above_the_boundary_halves_first_and_max_steps_stops_it() {
        let settings = SearchSettings {
            start_rate: Some(100.0),
            max_steps: 4,
            ..SearchSettings::default()
        };
        let found = search_against(30.0, settings, None);
        let rates: Vec<f64> = found.steps.iter().map(|s| s.rate_per_s).collect();
        assert_eq!(rates, [100.0, 50.0, 25.0, 37.5]);
        assert_eq!(found.answer.ended, SearchEnd::MaxSteps);
        assert_eq!(found.answer.rate_per_s, Some(25.0));
        assert_eq!(found.answer.lowest_failing_rate_per_s, Some(37.5));
    }

    #[test]
    fn a_failed_probe_ends_the_search_without_an_answer() {
        let mut search = RateSearch::new(SearchSettings::default(), RateStrategy::Poisson, slo());
        search.probe(0, Some(3.0), counts(20, 10));
        assert_eq!(search.next_rate(), None);
        let found = search.finish();
        assert_eq!(found.answer.ended, SearchEnd::SynchronousFailed);
        assert_eq!(found.answer.rate_per_s, None);
        assert!(
            found
                .answer
                .statement
                .contains("one request at a time (3.000 req/s) missed them"),
            "{}",
            found.answer.statement
        );
        // Nothing judged never passes.
        let mut search = RateSearch::new(SearchSettings::default(), RateStrategy::Constant, slo());
        search.probe(0, None, counts(0, 0));
        assert_eq!(search.finish().answer.ended, SearchEnd::SynchronousFailed);
    }

    #[test]
    fn no_passing_rate_step_bisects_down_to_the_probe() {
        // The probe passes at 10 but every open-loop rate fails.
        let found = search_against(5.0, SearchSettings::default(), Some(10.0));
        assert_eq!(found.answer.ended, SearchEnd::Converged);
        assert_eq!(found.answer.rate_per_s, None);
        assert!(found.answer.lowest_failing_rate_per_s.unwrap() <= 10.5);
    }
}
