//! Test support for the cross-crate tests.
//!
//! It links `llm-bench`'s library (and with it every engine the binary force-links), and adds
//! one engine of its own, `test-echo`, that exists only in test binaries. `test-echo` proves
//! the registry, the engine contract and the CLI's run path without a network: it "serves"
//! every request of the plan with the latencies its options give, records them through
//! bench-core's statistics, and reports progress like a real engine. It is not a benchmark.

pub mod cli;
pub mod conformance;
pub mod live;

use std::time::Duration;

use bench_core::config::{DataKind, PlannedStrategy, ProfileKind};
use bench_core::measure::{BenchmarkBuilder, Ended, Head, RequestError, RequestRecord};
use bench_core::progress::{Phase, ProgressEvent, ProgressUpdate};
use bench_core::schema::{Benchmark, Concurrency, Timestamp, Window};
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
            // A test engine: it ignores what it cannot echo.
            features: bench_core::Feature::ALL.to_vec(),
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
        let decode_ms = o.itl_ms * f64::from(output_tokens - 1);
        let request_ms = o.ttft_ms + decode_ms;
        let gaps = vec![o.itl_ms; output_tokens.saturating_sub(1) as usize];
        let mut measured = BenchmarkBuilder::new();
        for i in 1..=requests {
            let failed = o.error_every.is_some_and(|n| i % n == 0);
            measured.add(&if failed {
                RequestRecord {
                    latency_ms: Some(request_ms),
                    ..RequestRecord::new(Ended::Errored(RequestError {
                        kind: "http_status",
                        status_code: Some(500),
                        message: "internal server error",
                    }))
                }
            } else {
                RequestRecord {
                    latency_ms: Some(request_ms),
                    ttft_ms: Some(o.ttft_ms),
                    itl_ms: &gaps,
                    tpot_ms: Some(o.itl_ms),
                    decode_time_ms: Some(decode_ms),
                    output_tokens: Some(u64::from(output_tokens)),
                    ..RequestRecord::new(Ended::Successful)
                }
            });
        }
        // One request at a time, back to back.
        let start = Timestamp::now();
        let duration_s = request_ms * requests as f64 / 1000.0;
        let mut benchmark = measured.finish(Head {
            index,
            strategy,
            workload: workload.to_owned(),
            window: Window {
                start,
                end: start.plus(Duration::from_secs_f64(duration_s)),
                duration_s,
            },
            stopped_by: None,
            warnings: Vec::new(),
        });
        benchmark.metrics.rates.concurrency = Some(Concurrency { mean: 1.0, max: 1 });
        benchmark
    }
}

/// Every line of a JSON-lines file (request records, the mock's log, progress events), each
/// parsed as `T`; panics naming the file when it cannot be read or a line does not parse.
pub fn json_lines<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// The repository's test tokenizer directory (`data/tokenizer/`), as an absolute path.
pub fn test_tokenizer() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tokenizer")
}

/// Reads every process's `/proc/<pid>/cmdline` (which any user of the host can read) every
/// 20 ms until stopped, noting those that hold `secret` and whether a process whose command
/// line holds `tool` was seen (so the scan ran while the tool did).
#[derive(Debug)]
pub struct CmdlineScan {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<String>, bool)>,
}

impl CmdlineScan {
    /// Starts scanning.
    pub fn start(secret: &str, tool: &str) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, secret, tool) = (stop.clone(), secret.to_owned(), tool.to_owned());
        let thread = std::thread::spawn(move || {
            let (mut leaks, mut seen) = (Vec::new(), false);
            while !flag.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").expect("a Linux /proc").flatten() {
                    let Ok(line) = std::fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    let line = String::from_utf8_lossy(&line).replace('\0', " ");
                    seen |= line.contains(&tool);
                    if line.contains(&secret) && !leaks.contains(&line) {
                        leaks.push(line);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (leaks, seen)
        });
        Self { stop, thread }
    }

    /// The command lines that held the secret, and whether the tool was seen.
    pub fn stop(self) -> (Vec<String>, bool) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the scan does not panic")
    }
}
