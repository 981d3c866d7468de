//! Test support for the cross-crate tests.
//!
//! It links `llm-bench`'s library (and with it every engine the binary force-links), and adds
//! one engine of its own, `test-echo`, that exists only in test binaries. `test-echo` proves
//! the registry, the engine contract and the CLI's run path without a network: it "serves"
//! every request of the plan with the latencies its options give, records them through
//! bench-core's statistics, and reports progress like a real engine. It is not a benchmark.

use std::time::Duration;

use bench_core::config::{DataKind, PlannedStrategy, ProfileKind};
use bench_core::progress::{Phase, ProgressEvent, ProgressUpdate};
use bench_core::schema::{
    Benchmark, Concurrency, ErrorCount, Metrics, Rates, RequestTotals, StatusSplit, Timestamp,
    Window,
};
use bench_core::stats::{Outcome, SplitHistogram};
use bench_core::{
    BenchmarkEngine, Capabilities, Config, ConfigError, EngineError, EngineRegistration,
    MetricKind, Report, RunContext,
};
use serde::Deserialize;

// Link the binary's library so its engines are registered here too.
use bench_cli as _;

/// The name `test-echo` registers under.
pub const TEST_ENGINE: &str = "test-echo";

bench_core::inventory::submit! {
    EngineRegistration {
        name: TEST_ENGINE,
        summary: "test-only engine: answers every planned request with fixed latencies, no network",
        build,
    }
}

/// `[engines.test-echo]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoOptions {
    #[serde(default = "default_ttft_ms")]
    ttft_ms: f64,
    #[serde(default = "default_itl_ms")]
    itl_ms: f64,
    /// Every n-th request fails with HTTP 500.
    #[serde(default)]
    error_every: Option<u64>,
    /// After the first benchmark, wait until the run is cancelled.
    #[serde(default)]
    wait_for_cancel: bool,
}

fn default_ttft_ms() -> f64 {
    10.0
}

fn default_itl_ms() -> f64 {
    2.0
}

fn build(
    options: &bench_core::config::OptionsTable,
) -> Result<Box<dyn BenchmarkEngine>, ConfigError> {
    Ok(Box::new(EchoEngine {
        options: options.parse(TEST_ENGINE)?,
    }))
}

#[derive(Debug)]
struct EchoEngine {
    options: EchoOptions,
}

#[bench_core::async_trait]
impl BenchmarkEngine for EchoEngine {
    fn name(&self) -> &'static str {
        TEST_ENGINE
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            profiles: vec![
                ProfileKind::Synchronous,
                ProfileKind::Concurrent,
                ProfileKind::Constant,
            ],
            data: vec![DataKind::Synthetic, DataKind::Scenario],
            metrics: vec![
                MetricKind::RequestLatency,
                MetricKind::Ttft,
                MetricKind::Itl,
                MetricKind::Tpot,
                MetricKind::DecodeTime,
                MetricKind::OutputTokens,
                MetricKind::Rates,
                MetricKind::Concurrency,
            ],
        }
    }

    async fn run(&self, config: &Config, ctx: &RunContext) -> Result<Report, EngineError> {
        let mut report = Report::new(TEST_ENGINE, config);
        let plan = config.plan();
        for (index, planned) in plan.iter().enumerate() {
            if ctx.cancel.is_cancelled() {
                report.interrupted = true;
                break;
            }
            let PlannedStrategy::Fixed(strategy) = &planned.strategy else {
                unreachable!("validate rejects sweeps");
            };
            ctx.progress.event(&ProgressEvent::BenchmarkStarted {
                index,
                of: Some(plan.len()),
                strategy: strategy.clone(),
                workload: planned.workload.clone(),
            });
            let benchmark = self.echo(index, config, strategy.clone(), &planned.workload);
            ctx.progress.event(&ProgressEvent::Update(ProgressUpdate {
                index,
                phase: Phase::Active,
                elapsed_s: benchmark.window.duration_s,
                remaining_s: None,
                requests: benchmark.requests,
                in_flight: 0,
                requests_per_s: 0.0,
                output_tokens_per_s: 0.0,
                ttft_p50_ms: Some(self.options.ttft_ms),
                itl_p50_ms: Some(self.options.itl_ms),
            }));
            ctx.progress.event(&ProgressEvent::BenchmarkFinished {
                index,
                benchmark: Box::new(benchmark.clone()),
            });
            report.benchmarks.push(benchmark);
            if self.options.wait_for_cancel {
                ctx.cancel.cancelled().await;
                report.interrupted = true;
                break;
            }
        }
        report.ended_at = Timestamp::now();
        Ok(report)
    }
}

impl EchoEngine {
    fn echo(
        &self,
        index: usize,
        config: &Config,
        strategy: bench_core::config::Strategy,
        workload: &str,
    ) -> Benchmark {
        let o = &self.options;
        let requests = config.constraints.max_requests.unwrap_or(10);
        let output_tokens = config.data.output_tokens.unwrap_or(16);
        let ms = || SplitHistogram::new(0.001);
        let (mut latency, mut ttft, mut itl, mut tpot, mut decode) = (ms(), ms(), ms(), ms(), ms());
        let mut tokens = SplitHistogram::new(1.0);
        let (mut ok, mut errored, mut busy_ms, mut out_total) = (0u64, 0u64, 0.0, 0.0);
        for i in 1..=requests {
            let failed = o.error_every.is_some_and(|n| i % n == 0);
            let outcome = if failed {
                Outcome::Errored
            } else {
                Outcome::Successful
            };
            let decode_ms = o.itl_ms * f64::from(output_tokens - 1);
            let request_ms = o.ttft_ms + decode_ms;
            busy_ms += request_ms;
            latency.record(outcome, request_ms).expect("finite");
            if failed {
                errored += 1;
                continue;
            }
            ok += 1;
            out_total += f64::from(output_tokens);
            ttft.record(outcome, o.ttft_ms).expect("finite");
            decode.record(outcome, decode_ms).expect("finite");
            tpot.record(outcome, o.itl_ms).expect("finite");
            tokens
                .record(outcome, f64::from(output_tokens))
                .expect("finite");
            for _ in 1..output_tokens {
                itl.record(outcome, o.itl_ms).expect("finite");
            }
        }
        let start = Timestamp::now();
        let duration_s = busy_ms / 1000.0;
        let end = start.plus(Duration::from_secs_f64(duration_s));
        let per_s = |count: f64| StatusSplit {
            successful: Some(count / duration_s),
            incomplete: None,
            errored: None,
            total: Some(count / duration_s),
        };
        Benchmark {
            index,
            strategy,
            workload: workload.to_owned(),
            window: Window {
                start,
                end,
                duration_s,
            },
            requests: RequestTotals::new(ok, 0, errored),
            errors: if errored > 0 {
                vec![ErrorCount {
                    kind: "http_status".to_owned(),
                    status_code: Some(500),
                    count: errored,
                    example: Some("internal server error".to_owned()),
                }]
            } else {
                Vec::new()
            },
            stopped_by: None,
            warnings: Vec::new(),
            metrics: Metrics {
                request_latency_ms: latency.summary(),
                ttft_ms: ttft.summary(),
                itl_ms: itl.summary(),
                tpot_ms: tpot.summary(),
                decode_time_ms: decode.summary(),
                schedule_lag_ms: None,
                latency_from_intended_send_ms: None,
                prompt_tokens: None,
                output_tokens: tokens.summary(),
                rates: Rates {
                    requests_per_s: Some(StatusSplit {
                        successful: Some(ok as f64 / duration_s),
                        incomplete: None,
                        errored: Some(errored as f64 / duration_s),
                        total: Some((ok + errored) as f64 / duration_s),
                    }),
                    output_tokens_per_s: Some(per_s(out_total)),
                    total_tokens_per_s: Some(per_s(out_total)),
                    concurrency: Some(Concurrency { mean: 1.0, max: 1 }),
                },
            },
            goodput: None,
            drain: None,
            transport: None,
        }
    }
}

/// The repository's test tokenizer directory (`data/tokenizer/`), as an absolute path.
pub fn test_tokenizer() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tokenizer")
}
