//! Progress as log lines: benchmark start and end, and a live line every few seconds.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bench_core::config::StrategyKind;
use bench_core::progress::{ProgressEvent, ProgressSink};

/// How often an update is logged while a benchmark runs.
const INTERVAL: Duration = Duration::from_secs(5);

/// Logs progress events through `tracing` at info level.
#[derive(Debug)]
pub(crate) struct LogProgress {
    last_update: Mutex<Option<Instant>>,
}

impl LogProgress {
    pub(crate) fn new() -> Self {
        Self {
            last_update: Mutex::new(None),
        }
    }
}

impl ProgressSink for LogProgress {
    fn event(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::BenchmarkStarted {
                index,
                of,
                strategy,
                workload,
                ..
            } => {
                let of = of.map(|n| format!("/{n}")).unwrap_or_default();
                let cap = match strategy.max_concurrency {
                    Some(c) => format!(", max_concurrency {c}"),
                    None if strategy.kind == StrategyKind::Throughput => {
                        ", streams sized to the server".to_owned()
                    }
                    None => String::new(),
                };
                tracing::info!(
                    "benchmark {}{of} started: {}{cap}, workload {workload}",
                    index + 1,
                    bench_report::render::strategy_label(strategy),
                );
            }
            ProgressEvent::Update(u) => {
                let mut last = self.last_update.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_some_and(|t| t.elapsed() < INTERVAL) {
                    return;
                }
                *last = Some(Instant::now());
                tracing::info!(
                    "benchmark {} {} {:.0}s: ok {} err {} in flight {}, {:.1} req/s, {:.0} out tok/s, TTFT p50 {}",
                    u.index + 1,
                    phase_name(u.phase),
                    u.elapsed_s,
                    u.requests.successful,
                    u.requests.errored,
                    u.in_flight,
                    u.requests_per_s,
                    u.output_tokens_per_s,
                    u.ttft_p50_ms.map_or("-".to_owned(), |v| format!("{v:.1} ms"))
                );
            }
            ProgressEvent::BenchmarkFinished { index, benchmark } => {
                let r = &benchmark.requests;
                tracing::info!(
                    "benchmark {} finished: {} ok, {} incomplete, {} errored in {:.1}s",
                    index + 1,
                    r.successful,
                    r.incomplete,
                    r.errored,
                    benchmark.window.duration_s
                );
            }
            _ => {}
        }
    }
}

fn phase_name(phase: bench_core::progress::Phase) -> &'static str {
    use bench_core::progress::Phase;
    match phase {
        Phase::Warmup => "warmup",
        Phase::Active => "measuring",
        Phase::Cooldown => "cooldown",
    }
}

/// Writes each event as one JSON line, flushed at once so a follower sees it.
pub(crate) struct JsonLines {
    out: Mutex<Box<dyn std::io::Write + Send>>,
}

impl JsonLines {
    pub(crate) fn new(out: Box<dyn std::io::Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }
}

impl std::fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonLines")
    }
}

impl ProgressSink for JsonLines {
    fn event(&self, event: &ProgressEvent) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// Sends every event to each sink in turn.
pub(crate) struct Fanout(pub(crate) Vec<std::sync::Arc<dyn ProgressSink>>);

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fanout({} sinks)", self.0.len())
    }
}

impl ProgressSink for Fanout {
    fn event(&self, event: &ProgressEvent) {
        for sink in &self.0 {
            sink.event(event);
        }
    }
}

/// Keeps the report files current while a run goes on: after each benchmark they hold every
/// benchmark finished so far, marked `interrupted` (true if the process dies now), so a run
/// killed by a second signal still leaves valid files behind. The final report replaces them.
pub(crate) struct Checkpoint {
    report: Mutex<bench_core::Report>,
    outputs: Vec<bench_core::config::OutputSpec>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Checkpoint")
    }
}

impl Checkpoint {
    /// For a run of `engine` on `config` (the config as the user gave it, redacted here).
    pub(crate) fn new(engine: &str, config: &bench_core::Config) -> Self {
        let mut report = bench_core::Report::new(engine, config);
        report.config = config.redacted();
        report.interrupted = true;
        Self {
            report: Mutex::new(report),
            outputs: config.outputs.clone(),
        }
    }

    /// Writes every output now (atomically); a failure is logged, not fatal.
    pub(crate) fn write(&self) {
        let mut report = self.report.lock().unwrap_or_else(|p| p.into_inner());
        report.ended_at = bench_core::schema::Timestamp::now();
        for output in &self.outputs {
            let written = bench_runner::write_report(&report, output);
            if let Err(error) = written {
                tracing::warn!("cannot write the interim report {}: {error:#}", output.path);
            }
        }
    }
}

impl ProgressSink for Checkpoint {
    fn event(&self, event: &ProgressEvent) {
        if let ProgressEvent::BenchmarkFinished { benchmark, .. } = event {
            self.report
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .benchmarks
                .push((**benchmark).clone());
            self.write();
        }
    }
}
