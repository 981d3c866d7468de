//! The report's `search` block: every step of an SLO search (`profile.kind = "search"`) with
//! its verdict and confidence interval, and the answer. Definitions are in `docs/metrics.md`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::StrategyKind;

/// An SLO search: the highest rate whose requests met `[slo]`, and the steps that found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// What was found; read this first.
    pub answer: SearchAnswer,
    /// The arrival process of the rate steps (`constant`, `poisson`).
    pub strategy: StrategyKind,
    /// The share of judged requests that had to meet every objective for a step to pass.
    pub attainment_target: f64,
    /// Two-sided confidence of every step's interval.
    pub confidence: f64,
    /// The relative width of the bracket at which the search stops.
    pub precision: f64,
    /// The most rate steps it could run.
    pub max_steps: u32,
    /// Every step in the order run: the synchronous probe (when there was one), then the rate
    /// steps.
    pub steps: Vec<SearchStep>,
}

/// What an SLO search found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchAnswer {
    /// The highest rate step that passed, requests per second; `null` when none did.
    pub rate_per_s: Option<f64>,
    /// The lowest rate step that failed; `null` when none did.
    pub lowest_failing_rate_per_s: Option<f64>,
    /// Why the search stopped.
    pub ended: SearchEnd,
    /// The answer and the confidence on the two steps around it, in words.
    pub statement: String,
}

/// Why an SLO search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchEnd {
    /// The bracket closed to within `precision`.
    Converged,
    /// `max_steps` rate steps ran before the bracket closed.
    MaxSteps,
    /// Even one request at a time (the synchronous probe) missed the objectives.
    SynchronousFailed,
    /// The next rate would pass the highest rate a config may hold, or fall below the lowest.
    RateLimit,
    /// The run was interrupted.
    Interrupted,
    /// A step measured nothing to build on (its benchmark completed no request).
    NoMeasurement,
}

/// One step of an SLO search: a benchmark and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchStep {
    /// The benchmark's `index` in `benchmarks`.
    pub benchmark: usize,
    /// `synchronous` for the probe, else the rate steps' arrival process.
    pub kind: StrategyKind,
    /// The target rate; for the probe, the successful request rate it measured.
    pub rate_per_s: f64,
    /// Requests judged (successful and errored in the window).
    pub judged: u64,
    /// Of those, requests that met every objective.
    pub met: u64,
    /// `met / judged` (0 when nothing was judged).
    pub attainment: f64,
    /// Wilson score interval on the attainment at `confidence`.
    pub interval: Interval,
    /// The attainment reached the target.
    pub passed: bool,
    /// The interval lies wholly on the verdict's side of the target.
    pub conclusive: bool,
    /// Each objective on its own.
    pub objectives: Vec<ObjectiveResult>,
}

/// A confidence interval on a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// One `[slo]` objective at one search step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveResult {
    /// The `[slo]` key: `ttft_ms`, `itl_ms`, `tpot_ms` or `e2e_ms`.
    pub objective: String,
    /// Its limit in milliseconds.
    pub limit_ms: f64,
    /// Share of judged requests that met this objective (errored ones never do).
    pub attainment: f64,
    /// `attainment` reached the search's target.
    pub passed: bool,
}
