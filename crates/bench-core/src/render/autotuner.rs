//! The autotuner's metrics object: one JSON object per experiment, in the shape the autotuner
//! stores genai-bench results in today, so it can switch engines without changing its store.
//!
//! Times are in **seconds** (genai-bench's default `--metrics-time-unit s`), token counts in
//! tokens, throughputs per second. Statistics are over successful requests. A figure that was
//! not measured is `null`.

use schemars::JsonSchema;
use serde::Serialize;

use crate::schema::{Benchmark, Distribution, Report, StatusSplit, StrategyKind};

/// The whole object.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AutotunerMetrics {
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

/// One benchmark.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RawResult {
    /// The workload label: a traffic scenario such as `D(100,100)`, or the synthetic spec.
    pub scenario: String,
    /// Concurrent streams (`synchronous` = 1); `null` for rate-based benchmarks.
    pub num_concurrency: Option<u32>,
    /// `num_concurrency` for closed-loop benchmarks, `request_rate` for rate-based ones.
    pub iteration_type: &'static str,
    /// The target rate of a rate-based benchmark, requests per second; `null` otherwise.
    pub request_rate: Option<f64>,
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
    /// Distributions over successful requests.
    pub stats: Stats,
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
    fn from(d: &Distribution, scale: f64) -> Self {
        let p = &d.percentiles;
        Self {
            min: d.min * scale,
            max: d.max * scale,
            mean: d.mean * scale,
            median: d.median * scale,
            stddev: d.stdev * scale,
            sum: d.sum * scale,
            p25: p.p25 * scale,
            p50: p.p50 * scale,
            p75: p.p75 * scale,
            p90: p.p90 * scale,
            p95: p.p95 * scale,
            p99: p.p99 * scale,
        }
    }
}

/// Milliseconds to seconds.
const MS: f64 = 1e-3;

fn stat(split: &Option<StatusSplit<Distribution>>, scale: f64) -> Option<Stat> {
    split
        .as_ref()
        .and_then(|s| s.successful.as_ref())
        .map(|d| Stat::from(d, scale))
}

fn raw(b: &Benchmark) -> RawResult {
    let m = &b.metrics;
    let ok = |split: &Option<StatusSplit<f64>>| split.as_ref().and_then(|s| s.successful);
    let output = ok(&m.rates.output_tokens_per_s);
    let total = ok(&m.rates.total_tokens_per_s);
    let closed = matches!(
        b.strategy.kind,
        StrategyKind::Synchronous | StrategyKind::Concurrent
    );
    let requests = b.requests;
    RawResult {
        scenario: b.workload.clone(),
        num_concurrency: if closed {
            Some(b.strategy.streams.unwrap_or(1))
        } else {
            None
        },
        iteration_type: if closed {
            "num_concurrency"
        } else {
            "request_rate"
        },
        request_rate: b.strategy.target_rate_per_s,
        run_duration: b.window.duration_s,
        mean_output_throughput_tokens_per_s: output,
        mean_input_throughput_tokens_per_s: total.zip(output).map(|(t, o)| t - o),
        mean_total_tokens_throughput_tokens_per_s: total,
        requests_per_second: ok(&m.rates.requests_per_s),
        num_completed_requests: requests.successful,
        num_error_requests: requests.errored,
        num_requests: requests.total,
        error_rate: if requests.total == 0 {
            0.0
        } else {
            requests.errored as f64 / requests.total as f64
        },
        stats: Stats {
            ttft: stat(&m.ttft_ms, MS),
            tpot: stat(&m.tpot_ms, MS),
            e2e_latency: stat(&m.request_latency_ms, MS),
            output_latency: stat(&m.decode_time_ms, MS),
            num_input_tokens: stat(&m.prompt_tokens, 1.0),
            num_output_tokens: stat(&m.output_tokens, 1.0),
        },
    }
}

/// The autotuner's object for `report`.
pub fn metrics(report: &Report) -> AutotunerMetrics {
    let raw_results: Vec<RawResult> = report.benchmarks.iter().map(raw).collect();
    let mean = |values: Vec<f64>| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let throughputs: Vec<f64> = raw_results
        .iter()
        .filter_map(|r| r.mean_output_throughput_tokens_per_s)
        .collect();
    AutotunerMetrics {
        num_result_files: raw_results.len(),
        mean_ttft: mean(
            raw_results
                .iter()
                .filter_map(|r| r.stats.ttft.as_ref().map(|s| s.mean))
                .collect(),
        ),
        mean_tpot: mean(
            raw_results
                .iter()
                .filter_map(|r| r.stats.tpot.as_ref().map(|s| s.mean))
                .collect(),
        ),
        mean_output_throughput: mean(throughputs.clone()),
        max_output_throughput: throughputs.into_iter().reduce(f64::max),
        raw_results,
    }
}
