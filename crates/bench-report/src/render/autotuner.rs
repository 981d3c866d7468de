//! The autotuner's metrics object: one JSON object per experiment, in the shape the autotuner
//! stores genai-bench results in today, so it can switch engines without changing its store.
//!
//! Times are in **seconds** (genai-bench's default `--metrics-time-unit s`), token counts in
//! tokens, throughputs per second. Statistics are over successful requests. A figure that was
//! not measured is `null`. Figures are rounded to what was measured (`super::places`).

use bench_core::config::{DataKind, Scenario, StrategyKind};
use bench_core::schema::{
    Benchmark, Distribution, Goodput, Report, SearchEnd, StatusSplit, StopReason, Warning,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::{places, round};

/// The whole object.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AutotunerMetrics {
    /// The SLO search's answer, when the run was one (`profile.kind = "search"`); its steps
    /// are the `raw_results`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_search: Option<SloSearch>,
    /// True when the run was stopped early by the user; the results hold what was measured.
    pub interrupted: bool,
    /// Warnings about the run as a whole (each benchmark's own are in its `raw_results` entry).
    pub warnings: Vec<Warning>,
    /// Benchmarks in `raw_results` (genai-bench: run files).
    pub num_result_files: usize,
    /// One entry per benchmark, in run order.
    pub raw_results: Vec<RawResult>,
    /// Mean over benchmarks of `stats.ttft.mean`, seconds.
    pub mean_ttft: Option<f64>,
    /// Mean over benchmarks of `stats.tpot.mean`, seconds.
    pub mean_tpot: Option<f64>,
    /// Mean over benchmarks of `mean_output_throughput_tokens_per_s`.
    pub mean_output_throughput: Option<f64>,
    /// Largest `mean_output_throughput_tokens_per_s` of any benchmark.
    pub max_output_throughput: Option<f64>,
}

/// What an SLO search found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SloSearch {
    /// The highest rate that met the SLOs, requests per second; `null` when none did.
    pub max_rate_per_s: Option<f64>,
    /// The lowest rate that missed them; `null` when none did.
    pub lowest_failing_rate_per_s: Option<f64>,
    /// The share of requests that had to meet every objective.
    pub attainment_target: f64,
    /// Why the search stopped.
    pub ended: SearchEnd,
    /// The answer and the confidence on the steps around it, in words.
    pub statement: String,
}

/// One benchmark.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RawResult {
    /// The workload label: a traffic scenario in genai-bench's own spelling such as
    /// `D(100,100)` or `N(480,240)/(300,150)`, or the synthetic spec, or the data file.
    pub scenario: String,
    /// How load was generated.
    pub strategy: StrategyKind,
    /// Requests held in flight: the streams of `synchronous` (1) and `concurrent`, the
    /// concurrency cap of `throughput`; `null` for `constant` and `poisson`.
    pub num_concurrency: Option<u32>,
    /// `num_concurrency` for `synchronous`, `concurrent` and `throughput`, `request_rate` for
    /// `constant` and `poisson`.
    pub iteration_type: IterationType,
    /// The target rate of `constant` and `poisson`, requests per second; `null` otherwise.
    pub request_rate: Option<f64>,
    /// The cap on requests in flight, when one applied.
    pub max_concurrency: Option<u32>,
    /// The measured window, seconds.
    pub run_duration: f64,
    /// Output tokens of successful requests per second of the window.
    pub mean_output_throughput_tokens_per_s: Option<f64>,
    /// Prompt tokens of successful requests per second of the window.
    pub mean_input_throughput_tokens_per_s: Option<f64>,
    /// Prompt plus output tokens of successful requests per second of the window.
    pub mean_total_tokens_throughput_tokens_per_s: Option<f64>,
    /// Successful requests per second of the window.
    pub requests_per_second: Option<f64>,
    /// Successful requests.
    pub num_completed_requests: u64,
    /// Failed requests.
    pub num_error_requests: u64,
    /// All requests in the window: successful, errored and incomplete.
    pub num_requests: u64,
    /// `num_error_requests / num_requests` (0 when there were none).
    pub error_rate: f64,
    /// What ended the benchmark early; `null` when it ran out of work on its own.
    pub stopped_by: Option<StopReason>,
    /// The benchmark's own warnings (client-bound, approximate tokens, ...).
    pub warnings: Vec<Warning>,
    /// Requests meeting the config's `[slo]`; `null` without one.
    pub goodput: Option<Goodput>,
    /// Distributions over successful requests.
    pub stats: Stats,
}

/// What a benchmark's step varied, in genai-bench's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IterationType {
    /// Closed loop: requests in flight (`num_concurrency`).
    NumConcurrency,
    /// Open loop: arrivals per second (`request_rate`).
    RequestRate,
}

/// The distributions genai-bench reports, under its names.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stats {
    /// Time to first token, seconds.
    pub ttft: Option<Stat>,
    /// Time per output token after the first, seconds.
    pub tpot: Option<Stat>,
    /// Request latency, seconds.
    pub e2e_latency: Option<Stat>,
    /// Decode time (first to last token), seconds.
    pub output_latency: Option<Stat>,
    /// Prompt tokens per request.
    pub num_input_tokens: Option<Stat>,
    /// Output tokens per request.
    pub num_output_tokens: Option<Stat>,
}

/// One distribution, in genai-bench's keys.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stat {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// The 50th percentile.
    pub median: f64,
    /// Population standard deviation.
    pub stddev: f64,
    /// Sum of the values.
    pub sum: f64,
    /// 25th percentile (nearest rank, as every llm-bench percentile).
    pub p25: f64,
    /// 50th percentile.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Stat {
    /// `d` times `scale`, rounded to `places` decimals.
    fn from(d: &Distribution, scale: f64, places: u32) -> Self {
        let p = &d.percentiles;
        let r = |v: f64| round(v * scale, places);
        Self {
            min: r(d.min),
            max: r(d.max),
            mean: r(d.mean),
            median: r(d.median),
            stddev: r(d.stdev),
            sum: r(d.sum),
            p25: r(p.p25),
            p50: r(p.p50),
            p75: r(p.p75),
            p90: r(p.p90),
            p95: r(p.p95),
            p99: r(p.p99),
        }
    }
}

/// Milliseconds to seconds.
const MS: f64 = 1e-3;

/// A time distribution in milliseconds, written in seconds.
fn seconds(split: &Option<StatusSplit<Distribution>>) -> Option<Stat> {
    successful(split).map(|d| Stat::from(d, MS, places::SECONDS))
}

fn tokens(split: &Option<StatusSplit<Distribution>>) -> Option<Stat> {
    successful(split).map(|d| Stat::from(d, 1.0, places::TOKENS))
}

fn successful(split: &Option<StatusSplit<Distribution>>) -> Option<&Distribution> {
    split.as_ref().and_then(|s| s.successful.as_ref())
}

/// genai-bench's spelling of a traffic scenario (`D(100,100)`, no leading zeros); any other
/// label as it is.
/// The plan already labels scenarios canonically; this keeps reports saved before it did
/// (or by an engine that labels as given) in genai-bench's form too.
fn scenario_label(workload: &str, data_kind: DataKind) -> String {
    if data_kind == DataKind::Scenario {
        if let Some(canonical) = Scenario::canonical(workload) {
            return canonical;
        }
    }
    workload.to_owned()
}

fn raw(b: &Benchmark, data_kind: DataKind) -> RawResult {
    let m = &b.metrics;
    let ok = |split: &Option<StatusSplit<f64>>| split.as_ref().and_then(|s| s.successful);
    let rate = |v: Option<f64>| v.map(|v| round(v, places::RATE));
    let output = ok(&m.rates.output_tokens_per_s);
    let total = ok(&m.rates.total_tokens_per_s);
    let s = &b.strategy;
    let (num_concurrency, iteration_type) = match s.kind {
        StrategyKind::Synchronous => (Some(s.streams.unwrap_or(1)), IterationType::NumConcurrency),
        StrategyKind::Concurrent => (s.streams, IterationType::NumConcurrency),
        StrategyKind::Throughput => (s.max_concurrency, IterationType::NumConcurrency),
        StrategyKind::Constant
        | StrategyKind::Poisson
        | StrategyKind::Gamma
        | StrategyKind::Replay => (None, IterationType::RequestRate),
    };
    let requests = b.requests;
    RawResult {
        scenario: scenario_label(&b.workload, data_kind),
        strategy: s.kind,
        num_concurrency,
        iteration_type,
        request_rate: rate(s.target_rate_per_s),
        max_concurrency: s.max_concurrency,
        run_duration: round(b.window.duration_s, places::SECONDS),
        mean_output_throughput_tokens_per_s: rate(output),
        mean_input_throughput_tokens_per_s: rate(total.zip(output).map(|(t, o)| t - o)),
        mean_total_tokens_throughput_tokens_per_s: rate(total),
        requests_per_second: rate(ok(&m.rates.requests_per_s)),
        num_completed_requests: requests.successful,
        num_error_requests: requests.errored,
        num_requests: requests.total,
        error_rate: if requests.total == 0 {
            0.0
        } else {
            round(
                requests.errored as f64 / requests.total as f64,
                places::SHARE,
            )
        },
        stopped_by: b.stopped_by,
        warnings: b.warnings.clone(),
        goodput: b.goodput.map(|g| Goodput {
            slo_attainment: round(g.slo_attainment, places::SHARE),
            requests_per_s: round(g.requests_per_s, places::RATE),
            ..g
        }),
        stats: Stats {
            ttft: seconds(&m.ttft_ms),
            tpot: seconds(&m.tpot_ms),
            e2e_latency: seconds(&m.request_latency_ms),
            output_latency: seconds(&m.decode_time_ms),
            num_input_tokens: tokens(&m.prompt_tokens),
            num_output_tokens: tokens(&m.output_tokens),
        },
    }
}

/// The autotuner's object for `report`.
pub fn metrics(report: &Report) -> AutotunerMetrics {
    let raw_results: Vec<RawResult> = report
        .benchmarks
        .iter()
        .map(|b| raw(b, report.config.data.kind))
        .collect();
    let mean = |values: Vec<f64>, places: u32| {
        (!values.is_empty())
            .then(|| round(values.iter().sum::<f64>() / values.len() as f64, places))
    };
    let throughputs: Vec<f64> = raw_results
        .iter()
        .filter_map(|r| r.mean_output_throughput_tokens_per_s)
        .collect();
    AutotunerMetrics {
        slo_search: report.search.as_ref().map(|s| SloSearch {
            max_rate_per_s: s.answer.rate_per_s.map(|r| round(r, places::RATE)),
            lowest_failing_rate_per_s: s
                .answer
                .lowest_failing_rate_per_s
                .map(|r| round(r, places::RATE)),
            attainment_target: s.attainment_target,
            ended: s.answer.ended,
            statement: s.answer.statement.clone(),
        }),
        interrupted: report.interrupted,
        warnings: report.warnings.clone(),
        num_result_files: raw_results.len(),
        mean_ttft: mean(
            raw_results
                .iter()
                .filter_map(|r| r.stats.ttft.as_ref().map(|s| s.mean))
                .collect(),
            places::SECONDS,
        ),
        mean_tpot: mean(
            raw_results
                .iter()
                .filter_map(|r| r.stats.tpot.as_ref().map(|s| s.mean))
                .collect(),
            places::SECONDS,
        ),
        mean_output_throughput: mean(throughputs.clone(), places::RATE),
        max_output_throughput: throughputs.into_iter().reduce(f64::max),
        raw_results,
    }
}
