//! The list of benchmarks a config asks for, each with the load [`Strategy`] it runs.
//!
//! `Strategy` is defined here, below the report, because the plan produces it; the report
//! records it (`Benchmark::strategy`), so it is part of the report schema too.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Config, DataKind, ProfileKind, RateStrategy, Scenario, Spacing};

/// The throughput level used by `throughput` and `sweep` when `max_concurrency` is not given.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 512;

/// The default number of benchmarks in a sweep.
pub const DEFAULT_SWEEP_SIZE: u32 = 10;

/// How a benchmark generated load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// The load pattern.
    pub kind: StrategyKind,
    /// Concurrent streams held open (`synchronous` = 1, `concurrent`).
    pub streams: Option<u32>,
    /// Target arrival rate (`constant`, `poisson`, `gamma`).
    pub target_rate_per_s: Option<f64>,
    /// Cap on requests in flight, when one applies.
    pub max_concurrency: Option<u32>,
    /// `gamma`: the shape of the gaps between arrivals (their CV is `1 / sqrt(burstiness)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burstiness: Option<f64>,
    /// `replay`: how many times faster than recorded the trace was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
}

/// The load pattern of one benchmark. A sweep is a sequence of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// One request at a time, back to back.
    Synchronous,
    /// A fixed number of streams, each sending its next request when the last one ends.
    Concurrent,
    /// As many requests as the concurrency cap allows.
    Throughput,
    /// Open loop, evenly spaced arrivals.
    Constant,
    /// Open loop, exponentially distributed gaps.
    Poisson,
    /// Open loop, gamma-distributed gaps of shape `burstiness`.
    Gamma,
    /// Open loop, each request of a trace at its recorded time (divided by `speedup`).
    Replay,
}

impl StrategyKind {
    /// The name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Synchronous => "synchronous",
            Self::Concurrent => "concurrent",
            Self::Throughput => "throughput",
            Self::Constant => "constant",
            Self::Poisson => "poisson",
            Self::Gamma => "gamma",
            Self::Replay => "replay",
        }
    }
}

/// One benchmark to run: a workload and a load strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedBenchmark {
    /// The workload label (scenario, synthetic spec or file path).
    pub workload: String,
    /// How load is generated.
    pub strategy: PlannedStrategy,
}

/// A load strategy, known now or derived from earlier measurements.
#[derive(Debug, Clone, PartialEq)]
pub enum PlannedStrategy {
    /// Fully known before the run.
    Fixed(Strategy),
    /// A sweep's rate step `step` of `steps`; its rate comes from the sweep's synchronous and
    /// throughput results.
    SweepRate {
        /// 1-based position among the rate steps.
        step: u32,
        /// Number of rate steps (`sweep_size - 2`).
        steps: u32,
        /// Arrival process.
        strategy: RateStrategy,
        /// `gamma`: the gaps' shape.
        burstiness: Option<f64>,
        /// Spacing between the synchronous and throughput rates.
        spacing: Spacing,
        /// Cap on requests in flight.
        max_concurrency: u32,
    },
    /// An SLO search's rate steps, up to `max_steps` of them; each rate comes from the
    /// verdicts of the steps before it (`bench_core::search`).
    SearchRates {
        /// At most this many rate steps.
        max_steps: u32,
        /// Arrival process.
        strategy: RateStrategy,
        /// Cap on requests in flight.
        max_concurrency: u32,
    },
}

impl fmt::Display for PlannedStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlannedStrategy::Fixed(s) => {
                write!(f, "{}", s.kind.name())?;
                if let Some(streams) = s.streams {
                    write!(f, " streams={streams}")?;
                }
                if let Some(rate) = s.target_rate_per_s {
                    write!(f, " rate={rate}/s")?;
                }
                if let Some(c) = s.max_concurrency {
                    write!(f, " max_concurrency={c}")?;
                }
                if let Some(b) = s.burstiness {
                    write!(f, " burstiness={b}")?;
                }
                if let Some(x) = s.speedup {
                    write!(f, " speedup={x}")?;
                }
                Ok(())
            }
            PlannedStrategy::SweepRate {
                step,
                steps,
                strategy,
                burstiness,
                spacing,
                max_concurrency,
            } => {
                write!(
                    f,
                    "{} rate step {step}/{steps} ({} spacing between the synchronous and \
                     throughput rates) max_concurrency={max_concurrency}",
                    match strategy {
                        RateStrategy::Constant => "constant",
                        RateStrategy::Poisson => "poisson",
                        RateStrategy::Gamma => "gamma",
                    },
                    match spacing {
                        Spacing::Linear => "linear",
                        Spacing::Geometric => "geometric",
                    }
                )?;
                if let Some(b) = burstiness {
                    write!(f, " burstiness={b}")?;
                }
                Ok(())
            }
            PlannedStrategy::SearchRates {
                max_steps,
                strategy,
                max_concurrency,
            } => write!(
                f,
                "{} rate steps of the SLO search (up to {max_steps}, bracketing then bisecting) \
                 max_concurrency={max_concurrency}",
                match strategy {
                    RateStrategy::Constant => "constant",
                    RateStrategy::Poisson => "poisson",
                    RateStrategy::Gamma => "gamma",
                },
            ),
        }
    }
}

fn fixed(
    kind: StrategyKind,
    streams: Option<u32>,
    rate: Option<f64>,
    max_concurrency: Option<u32>,
) -> PlannedStrategy {
    PlannedStrategy::Fixed(Strategy {
        kind,
        streams,
        target_rate_per_s: rate,
        max_concurrency,
        burstiness: None,
        speedup: None,
    })
}

impl Config {
    /// The benchmarks this config asks for, in run order. Sweep rate steps are placeholders,
    /// since their rates come from the sweep's first two measurements.
    pub fn plan(&self) -> Vec<PlannedBenchmark> {
        plan(self)
    }
}

fn plan(config: &Config) -> Vec<PlannedBenchmark> {
    let profile = &config.profile;
    let strategies: Vec<PlannedStrategy> = match profile.kind {
        ProfileKind::Synchronous => vec![fixed(StrategyKind::Synchronous, Some(1), None, None)],
        ProfileKind::Concurrent => profile
            .streams
            .iter()
            .flatten()
            .map(|&n| fixed(StrategyKind::Concurrent, Some(n), None, None))
            .collect(),
        ProfileKind::Throughput => vec![fixed(
            StrategyKind::Throughput,
            None,
            None,
            Some(profile.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY)),
        )],
        ProfileKind::Constant | ProfileKind::Poisson | ProfileKind::Gamma => {
            let (kind, burstiness) = match profile.kind {
                ProfileKind::Constant => (StrategyKind::Constant, None),
                ProfileKind::Poisson => (StrategyKind::Poisson, None),
                _ => (StrategyKind::Gamma, profile.burstiness),
            };
            profile
                .rates
                .iter()
                .flatten()
                .map(|&r| {
                    let mut step = fixed(kind, None, Some(r), profile.max_concurrency);
                    if let PlannedStrategy::Fixed(s) = &mut step {
                        s.burstiness = burstiness;
                    }
                    step
                })
                .collect()
        }
        ProfileKind::Replay => vec![PlannedStrategy::Fixed(Strategy {
            kind: StrategyKind::Replay,
            streams: None,
            target_rate_per_s: None,
            max_concurrency: profile.max_concurrency,
            burstiness: None,
            speedup: Some(profile.speedup.unwrap_or(1.0)),
        })],
        ProfileKind::Sweep => {
            let max_concurrency = profile.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
            let steps = profile
                .sweep_size
                .unwrap_or(DEFAULT_SWEEP_SIZE)
                .saturating_sub(2);
            let mut list = vec![
                fixed(StrategyKind::Synchronous, Some(1), None, None),
                fixed(StrategyKind::Throughput, None, None, Some(max_concurrency)),
            ];
            list.extend((1..=steps).map(|step| PlannedStrategy::SweepRate {
                step,
                steps,
                strategy: profile.strategy.unwrap_or_default(),
                burstiness: profile.burstiness,
                spacing: profile.spacing.unwrap_or_default(),
                max_concurrency,
            }));
            list
        }
        ProfileKind::Search => {
            let settings = profile.search.unwrap_or_default();
            let mut list = Vec::new();
            // Without a start rate, a synchronous probe measures one.
            if settings.start_rate.is_none() {
                list.push(fixed(StrategyKind::Synchronous, Some(1), None, None));
            }
            list.push(PlannedStrategy::SearchRates {
                max_steps: settings.max_steps,
                strategy: profile.strategy.unwrap_or_default(),
                max_concurrency: profile.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY),
            });
            list
        }
    };
    workloads(config)
        .into_iter()
        .flat_map(|workload| {
            strategies.iter().map(move |strategy| PlannedBenchmark {
                workload: workload.clone(),
                strategy: strategy.clone(),
            })
        })
        .collect()
}

fn workloads(config: &Config) -> Vec<String> {
    let data = &config.data;
    match data.kind {
        DataKind::Synthetic => vec![data.synthetic_label()],
        // In genai-bench's spelling, so labels match its own reports.
        DataKind::Scenario => data
            .scenario
            .iter()
            .chain(data.scenarios.iter().flatten())
            .map(|s| Scenario::canonical(s).unwrap_or_else(|| s.clone()))
            .collect(),
        DataKind::File | DataKind::Trace => data.path.iter().cloned().collect(),
    }
}
