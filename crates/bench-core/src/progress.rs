//! Typed progress events, sent by engines while they run.

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::Strategy;
use crate::schema::{self, Benchmark, RequestTotals};

/// Receives progress events. Called from engine tasks: implementations must be cheap and must
/// not block (buffer or drop rather than wait).
pub trait ProgressSink: Send + Sync {
    /// Handles one event.
    fn event(&self, event: &ProgressEvent);
}

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _: &ProgressEvent) {}
}

/// One progress event. Serialized as JSON lines for UIs that follow a run.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A benchmark begins.
    BenchmarkStarted {
        /// Its position in the run.
        index: usize,
        /// How many benchmarks the run holds, when known.
        of: Option<usize>,
        /// How it generates load. A throughput benchmark whose level the engine sizes to the
        /// server has no `max_concurrency` here; its result carries the level chosen.
        strategy: Strategy,
        /// The workload label.
        workload: String,
    },
    /// Live figures, at least once a second while a benchmark runs.
    Update(ProgressUpdate),
    /// A benchmark ended; its full result.
    BenchmarkFinished {
        /// Its position in the run.
        index: usize,
        /// The measured benchmark.
        benchmark: Box<Benchmark>,
    },
}

/// Live figures of the running benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ProgressUpdate {
    /// The benchmark's position in the run.
    pub index: usize,
    /// Which part of the benchmark is running.
    pub phase: Phase,
    /// Seconds since the benchmark started.
    pub elapsed_s: f64,
    /// Seconds left under `max_seconds`, when that applies.
    pub remaining_s: Option<f64>,
    /// Finished requests so far, by outcome.
    pub requests: RequestTotals,
    /// Requests sent and not yet finished.
    pub in_flight: u64,
    /// Recent completions per second.
    pub requests_per_s: f64,
    /// Recent output tokens per second.
    pub output_tokens_per_s: f64,
    /// Median time to first token so far, when known.
    pub ttft_p50_ms: Option<f64>,
    /// Median inter-token latency so far, when known.
    pub itl_p50_ms: Option<f64>,
}

/// The parts of a benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the measured window.
    Warmup,
    /// Inside the measured window.
    Active,
    /// After the measured window.
    Cooldown,
}

/// The JSON Schema of a progress event line (`--progress-json`), as committed in
/// `docs/schema/progress-event.schema.json`.
pub fn progress_json_schema() -> String {
    schema::pretty(schemars::schema_for!(ProgressEvent))
}
