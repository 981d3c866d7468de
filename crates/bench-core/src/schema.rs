//! The unified, versioned report: the contract between engines and everything that reads
//! results (bench-report's writers, the autotuner, comparisons).
//!
//! Rules: field names carry their unit (`ttft_ms`, `duration_s`); a metric an engine cannot
//! measure is `null`, never zero; adding an optional field is compatible, anything else bumps
//! [`SCHEMA_VERSION`]. Definitions of every metric are in `docs/metrics.md`.

mod search;
mod server;
mod sessions;
mod shard;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Strategy};
pub use crate::time::Timestamp;
pub use search::{Interval, ObjectiveResult, Search, SearchAnswer, SearchEnd, SearchStep};
pub use server::{
    GaugeSummary, ScrapeStatus, ServerHistogram, ServerMetrics, ServerSeries, TokenCheck,
    UnmappedMetric,
};
pub use sessions::{Sessions, TurnMetrics};
pub use shard::{ClockOffset, Merged, MergedShard, ShardRun};

/// Version of the report layout. Bumped on any change a reader could trip on.
pub const SCHEMA_VERSION: u32 = 1;

/// The result of one `llm-bench run`: one or more benchmarks by one engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Layout version, [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// The program that wrote the report.
    pub tool: Tool,
    /// The registry name of the engine that measured.
    pub engine: String,
    /// When the run started.
    pub started_at: Timestamp,
    /// When the run ended (or was interrupted).
    pub ended_at: Timestamp,
    /// True when the run was stopped early by the user; the benchmarks hold what was measured.
    pub interrupted: bool,
    /// The configuration that produced this report, replayable, with secrets redacted.
    pub config: Config,
    /// Warnings about the run as a whole.
    pub warnings: Vec<Warning>,
    /// One entry per benchmark, in the order they ran.
    pub benchmarks: Vec<Benchmark>,
    /// The SLO search's steps and answer (`profile.kind = "search"`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
    /// This report's place in a sharded run (`[shard]`); absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRun>,
    /// The shards a merged report (`llm-bench merge`) joined; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
}

impl Report {
    /// An empty report for `engine`, started now, holding a redacted copy of `config`.
    pub fn new(engine: &str, config: &Config) -> Self {
        let now = Timestamp::now();
        Self {
            schema_version: SCHEMA_VERSION,
            tool: Tool::current(),
            engine: engine.to_owned(),
            started_at: now,
            ended_at: now,
            interrupted: false,
            config: config.redacted(),
            warnings: Vec::new(),
            benchmarks: Vec::new(),
            search: None,
            shard: None,
            merged: None,
        }
    }
}

/// Name and version of the writing program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// Always `llm-bench`.
    pub name: String,
    /// The crate version of bench-core that wrote the report.
    pub version: String,
}

impl Tool {
    fn current() -> Self {
        Self {
            name: "llm-bench".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// One load level held for a while and measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Benchmark {
    /// Position in the run, from 0.
    pub index: usize,
    /// How load was generated.
    pub strategy: Strategy,
    /// The workload label: a traffic scenario such as `D(100,100)`, or a synthetic spec.
    pub workload: String,
    /// The measured window; warmup and cooldown are outside it.
    pub window: Window,
    /// Requests in the measured window by outcome.
    pub requests: RequestTotals,
    /// Failed requests grouped by kind and HTTP status.
    pub errors: Vec<ErrorCount>,
    /// What ended the benchmark; `null` when it ran out of work on its own.
    pub stopped_by: Option<StopReason>,
    /// Things a reader must know to trust the figures (client-bound, approximate tokens, ...).
    pub warnings: Vec<Warning>,
    /// Distributions and rates.
    pub metrics: Metrics,
    /// Requests meeting the config's `[slo]`; `null` without one.
    #[serde(default)]
    pub goodput: Option<Goodput>,
    /// The wait, before the benchmark, for the server to finish the requests the previous
    /// benchmark left; absent when the engine does not drain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    /// How requests reached the server: HTTP versions, connections opened and their set-up
    /// time, TLS, proxy; absent when the engine does not see its connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Where the response times came from and how late the client read them; absent when
    /// the engine does not read the responses itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamps: Option<Timestamps>,
    /// Multi-turn sessions: figures by turn index and per session; absent without sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Sessions>,
    /// The server's own metrics over the benchmark (`[target.metrics]`); absent without
    /// scraping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerMetrics>,
}

/// How the times of a benchmark's responses were taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timestamps {
    /// `kernel` when first-token and chunk times are the kernel's receive time of the data;
    /// `user_space` when they are the moment the client read it.
    pub source: TimestampSource,
    /// Per read that completed content: the time the client read the data minus the time
    /// the kernel received it, in ms: how long the client's own business kept data waiting.
    /// `null` with user-space timestamps, which cannot see it.
    pub client_delay_ms: Option<Distribution>,
    /// Share of content events (0 to 1) that arrived in one read together with another, so
    /// got one time between them: the client fell behind the stream. `null` with user-space
    /// timestamps.
    pub coalesced_share: Option<f64>,
    /// Reads that came back without a kernel time, timed when they were read instead.
    pub reads_without_kernel_time: u64,
}

/// Where response times came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimestampSource {
    /// The kernel's receive time of each read (`SO_TIMESTAMPNS`).
    Kernel,
    /// The moment the client read the data.
    UserSpace,
}

/// What the client's connections to the server were during one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    /// Responses by the HTTP version they came in (`HTTP/1.1`, `HTTP/2`).
    pub http_versions: std::collections::BTreeMap<String, u64>,
    /// Connections the client opened since the previous benchmark ended, for the benchmark's
    /// requests and the drain before it (with HTTP/2 one connection carries many
    /// requests; with connection reuse off, one per request).
    pub connections_opened: u64,
    /// Time to open each of them, in ms: TCP connect, a proxy's CONNECT and the TLS handshake.
    /// It is not part of TTFT: a request that opened a connection starts its TTFT when the
    /// connection is ready. `null` when none was opened.
    pub connection_setup_ms: Option<Distribution>,
    /// `https` or `http`.
    pub scheme: String,
    /// With `https`: false when `target.tls.insecure_skip_verify` accepted the certificate
    /// unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verified: Option<bool>,
    /// The proxy the requests went through (from the environment), without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// The wait before a benchmark for the server's in-flight requests to reach 0, read from its
/// Prometheus gauges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drain {
    /// Seconds waited (0 when the server was already idle or the drain is off).
    pub seconds: f64,
    /// How the wait ended.
    pub outcome: DrainOutcome,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DrainOutcome {
    /// The server's in-flight gauges read 0.
    Idle,
    /// The server still had requests at the timeout; the figures include that backlog.
    TimedOut,
    /// The server exposes none of the known gauges, and one-token probes were sent instead
    /// until one's TTFT was back within 2x (or 20 ms) of the fastest probe of the run.
    Probed,
    /// Neither gauges nor a probe gave an answer, so nothing was waited for.
    Unknown,
    /// The drain is turned off (`drain_timeout_seconds = 0`).
    Off,
}

/// How many requests met every service-level objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Goodput {
    /// Requests judged: successful and errored ones in the window (incomplete ones are not).
    pub judged: u64,
    /// Of those, the requests that met every objective.
    pub met: u64,
    /// `met / judged`.
    pub slo_attainment: f64,
    /// Requests that met every objective and ended inside the window, per second.
    pub requests_per_s: f64,
}

/// The measured window of a benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Start of measurement (after warmup).
    pub start: Timestamp,
    /// End of measurement (before cooldown).
    pub end: Timestamp,
    /// `end - start` in seconds; the denominator of every rate.
    pub duration_s: f64,
}

/// Request counts by outcome. `total = successful + incomplete + errored`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestTotals {
    /// Completed with a full response.
    pub successful: u64,
    /// Cancelled before completion (time limit, interruption); not the server's fault.
    pub incomplete: u64,
    /// Failed: an HTTP error, a broken stream, a timeout, an error object.
    pub errored: u64,
    /// All of the above.
    pub total: u64,
}

impl RequestTotals {
    /// Builds totals whose `total` is the sum of the parts.
    pub fn new(successful: u64, incomplete: u64, errored: u64) -> Self {
        Self {
            successful,
            incomplete,
            errored,
            total: successful + incomplete + errored,
        }
    }
}

/// Failed requests of one kind (and status code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorCount {
    /// `http_status`, `connect`, `timeout`, `stream`, `decode`, `server_error_object`, ...
    pub kind: String,
    /// The HTTP status, when the failure had one.
    pub status_code: Option<u16>,
    /// How many requests failed this way.
    pub count: u64,
    /// One example message, redacted and truncated.
    pub example: Option<String>,
}

/// Why a benchmark ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// `constraints.max_seconds` elapsed.
    MaxSeconds,
    /// `constraints.max_requests` were sent.
    MaxRequests,
    /// `constraints.max_errors` requests failed.
    MaxErrors,
    /// `constraints.max_error_rate` was exceeded over its window.
    MaxErrorRate,
    /// The server was detected to be over-saturated.
    OverSaturation,
    /// The data source had no more requests.
    DataExhausted,
    /// The user interrupted the run.
    Interrupted,
}

/// Something the reader must know to trust the figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// A stable code, e.g. `client_bound`, `approximate_tokens`, `rounded_duration`.
    pub code: String,
    /// The human explanation, with the figures that triggered it.
    pub message: String,
}

/// A metric split by request outcome. A part with no samples is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusSplit<T> {
    /// Over successful requests.
    pub successful: Option<T>,
    /// Over incomplete (cancelled) requests.
    pub incomplete: Option<T>,
    /// Over errored requests.
    pub errored: Option<T>,
    /// Over all requests.
    pub total: Option<T>,
}

/// Every metric of a benchmark. `null` means the engine cannot measure it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Actual send to end of response.
    pub request_latency_ms: Option<StatusSplit<Distribution>>,
    /// Actual send to the first content-bearing chunk.
    pub ttft_ms: Option<StatusSplit<Distribution>>,
    /// Gaps between consecutive content-bearing chunks, pooled over requests.
    pub itl_ms: Option<StatusSplit<Distribution>>,
    /// Per request, (last token - first token) / (output tokens - 1).
    pub tpot_ms: Option<StatusSplit<Distribution>>,
    /// Per request, last token - first token.
    pub decode_time_ms: Option<StatusSplit<Distribution>>,
    /// Actual send - intended send (open-loop profiles).
    pub schedule_lag_ms: Option<StatusSplit<Distribution>>,
    /// End of response - intended send: latency free of coordinated omission.
    pub latency_from_intended_send_ms: Option<StatusSplit<Distribution>>,
    /// Prompt tokens per request.
    pub prompt_tokens: Option<StatusSplit<Distribution>>,
    /// Output tokens per request.
    pub output_tokens: Option<StatusSplit<Distribution>>,
    /// Reasoning models: the reasoning a response streamed before its answer, and when the
    /// answer began; absent when the engine does not tell reasoning from answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Counts over the measured window divided by its duration.
    pub rates: Rates,
}

/// The reasoning phase of responses (`reasoning_content` or `reasoning` in a chunk's delta)
/// against their answer (`content`, tool calls). A response without reasoning has 0
/// reasoning tokens and its answer starts at its first token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reasoning {
    /// Actual send to the first answer chunk (TTFT counts the first reasoning chunk).
    pub time_to_first_answer_token_ms: Option<StatusSplit<Distribution>>,
    /// Reasoning tokens per request.
    pub reasoning_tokens: Option<StatusSplit<Distribution>>,
    /// Answer tokens per request: output tokens less reasoning tokens.
    pub answer_tokens: Option<StatusSplit<Distribution>>,
    /// Gaps between consecutive reasoning chunks, pooled over requests.
    pub reasoning_itl_ms: Option<StatusSplit<Distribution>>,
    /// Gaps between consecutive answer chunks, pooled over requests.
    pub answer_itl_ms: Option<StatusSplit<Distribution>>,
}

/// Throughput over the measured window: counts divided by `window.duration_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Requests that ended in the window, per second.
    pub requests_per_s: Option<StatusSplit<f64>>,
    /// Output tokens produced in the window, per second.
    pub output_tokens_per_s: Option<StatusSplit<f64>>,
    /// Prompt plus output tokens in the window, per second.
    pub total_tokens_per_s: Option<StatusSplit<f64>>,
    /// Requests in flight, weighted by time over the window.
    pub concurrency: Option<Concurrency>,
}

/// Time-weighted request concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// Mean requests in flight over the window.
    pub mean: f64,
    /// Most requests in flight at any instant of the window.
    pub max: u64,
}

/// Summary of one metric's values, in the unit its field name gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// Number of values.
    pub count: u64,
    /// Sum of the values (exact).
    pub sum: f64,
    /// Arithmetic mean (exact).
    pub mean: f64,
    /// Equal to `percentiles.p50`.
    pub median: f64,
    /// The middle of the most populated histogram bucket.
    pub mode: f64,
    /// Population standard deviation (exact).
    pub stdev: f64,
    /// Population variance, divisor `count` (exact).
    pub variance: f64,
    /// Smallest value (exact).
    pub min: f64,
    /// Largest value (exact).
    pub max: f64,
    /// Nearest-rank percentiles, to 3 significant digits.
    pub percentiles: Percentiles,
    /// The histogram itself, so distributions can be merged exactly.
    pub histogram: Option<EncodedHistogram>,
}

/// Nearest-rank percentiles: `pX` is the smallest value with at least X % of values at or
/// below it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    pub p0_1: f64,
    pub p1: f64,
    pub p5: f64,
    pub p10: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
}

/// An HdrHistogram in its V2 deflate encoding, base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncodedHistogram {
    /// The value of one histogram unit, in the metric's unit (0.001 for ms kept to the µs).
    pub resolution: f64,
    /// Always `hdr-v2-deflate-base64`.
    pub encoding: String,
    /// The encoded bytes.
    pub data: String,
}

impl EncodedHistogram {
    /// The one encoding written and read.
    pub const ENCODING: &'static str = "hdr-v2-deflate-base64";
}

/// The JSON Schema of [`Report`], as committed in `docs/schema/report.schema.json`.
pub fn report_json_schema() -> String {
    pretty(schemars::schema_for!(Report))
}

/// The JSON Schema of [`Config`], as committed in `docs/schema/config.schema.json`.
pub fn config_json_schema() -> String {
    pretty(schemars::schema_for!(Config))
}

/// A JSON Schema as committed: pretty-printed, with a final newline.
pub(crate) fn pretty(schema: schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is plain JSON");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The committed schemas of bench-core's types must match the types (bench-report checks
    /// its own). `UPDATE_SCHEMAS=1 cargo test` (or `cargo xtask codegen`) rewrites them.
    #[test]
    fn committed_json_schemas_are_fresh() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for (name, text) in [
            ("config.schema.json", super::config_json_schema()),
            ("report.schema.json", super::report_json_schema()),
            (
                "progress-event.schema.json",
                crate::progress::progress_json_schema(),
            ),
        ] {
            let path = dir.join(name);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "stale schemas in docs/schema: {stale:?}; run `cargo xtask codegen` and commit them"
        );
    }
}
