//! The configuration model: what to benchmark, how, and where the results go.
//!
//! Text in TOML, YAML or JSON becomes a generic tree, the legacy autotuner block (if any) is
//! converted (`legacy`), `--set key=value` overrides are applied (`overrides`), and the tree
//! is deserialized strictly: an unknown key is an error that suggests the intended one
//! (`strict`). [`Config::validate`] then checks what types cannot: ranges, and that each key
//! fits the kind it sits under. The reference is `docs/config.md`.

mod compact;
mod legacy;
pub mod limits;
mod overrides;
mod plan;
mod scenario;
mod strict;

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use limits::{
    at_most, seconds, shown, MAX_ERROR_RATE_WINDOW, MAX_RATE_PER_S, MAX_REQUESTS, MAX_SAMPLES,
    MAX_SECONDS, MAX_STEPS, MAX_STREAMS, MAX_TOKENS, MIN_RATE_PER_S,
};
pub use plan::{PlannedBenchmark, PlannedStrategy, DEFAULT_MAX_CONCURRENCY, DEFAULT_SWEEP_SIZE};
pub use scenario::{Scenario, ScenarioError, VALID_FORMS as SCENARIO_FORMS};

/// The engine used when `benchmark_engine` is not given.
pub const DEFAULT_ENGINE: &str = "native";

/// A complete benchmark configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The registered engine that runs the benchmark (`llm-bench engines` lists them).
    #[serde(default = "default_engine")]
    pub benchmark_engine: String,
    /// Seed for every random choice (arrivals, synthetic data), so runs are repeatable.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The server under test; the embedded mock when absent.
    #[serde(default)]
    pub target: Target,
    /// How load is generated.
    pub profile: Profile,
    /// Limits that end each benchmark; at least `max_seconds` or `max_requests`.
    #[serde(default)]
    pub constraints: Constraints,
    /// Leading part of each benchmark that is run but not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Transient>,
    /// Trailing part of each benchmark that is run but not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Transient>,
    /// What the requests contain.
    pub data: Data,
    /// Service-level objectives: each benchmark reports the share of requests meeting all of
    /// them and the goodput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// Report files to write; the format follows the extension.
    #[serde(default, rename = "output", skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputSpec>,
    /// Options read only by one engine, keyed by engine name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub engines: BTreeMap<String, OptionsTable>,
}

fn default_engine() -> String {
    DEFAULT_ENGINE.to_owned()
}

fn default_seed() -> u64 {
    42
}

/// The OpenAI-compatible server under test: a server at `url`, or the embedded mock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `server` (at `url`) or `mock` (the embedded mock server, started for the run). Default:
    /// `server` when `url` is given, else `mock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TargetKind>,
    /// Base URL, e.g. `http://127.0.0.1:8000` (the `/v1/...` path is added). Required for
    /// `server`; set by llm-bench for `mock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The served model name sent in each request. Required for `server`; default
    /// `mock-model` for `mock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Which endpoint: `chat` (`/v1/chat/completions`) or `completions` (`/v1/completions`).
    #[serde(default)]
    pub api: Api,
    /// Environment variable holding the API key, sent as a bearer token when set. The key itself
    /// never appears in a config or a report. An empty name sends no key.
    #[serde(default = "default_api_key_env")]
    pub api_key_env: String,
    /// Extra HTTP headers. Values of headers whose names look secret are redacted in reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Network timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// HTTPS settings: a CA bundle, a client certificate for mutual TLS, a server name,
    /// and the explicit opt-out of verification.
    #[serde(default, skip_serializing_if = "Tls::is_default")]
    pub tls: Tls,
    /// Speak HTTP/2 when the server offers it (TLS ALPN); `false` speaks HTTP/1.1 only.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub http2: bool,
    /// Send requests through the proxy that `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` name
    /// (as curl does); `false` connects directly whatever the environment says.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub proxy_from_env: bool,
    /// `mock`: the mock server's knobs (`docs/mock-server.md`), read strictly by the mock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<OptionsTable>,
}

/// What kind of server is benchmarked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A running server at `target.url`.
    Server,
    /// The embedded mock server, started before the run and stopped after it.
    Mock,
}

/// The model name used with the embedded mock when `target.model` is not given.
pub const DEFAULT_MOCK_MODEL: &str = "mock-model";

impl Target {
    /// The effective kind: explicit, else `server` when a URL is given, else `mock`.
    pub fn kind(&self) -> TargetKind {
        self.kind.unwrap_or(if self.url.is_some() {
            TargetKind::Server
        } else {
            TargetKind::Mock
        })
    }

    /// The model name to send.
    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MOCK_MODEL)
    }
}

impl Default for Target {
    fn default() -> Self {
        Self {
            kind: None,
            url: None,
            model: None,
            api: Api::default(),
            api_key_env: default_api_key_env(),
            headers: BTreeMap::new(),
            timeouts: Timeouts::default(),
            tls: Tls::default(),
            http2: true,
            proxy_from_env: true,
            mock: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// `[target.tls]`: how HTTPS connections to the target are verified and authenticated. Paths
/// written in a config file are relative to its folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM bundle of the certificate authorities to trust instead of the system's (as curl's
    /// `--cacert`): for a private CA or a self-signed server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// A PEM certificate (chain) presented to the server, for mutual TLS; with `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// The PEM private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// The name the server's certificate is checked against (and sent as SNI and `Host`),
    /// when it differs from the URL's host: e.g. a URL with an IP address behind a gateway
    /// whose certificate names `llm.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Accept any certificate, unverified. Every run warns (`tls_unverified`) and the report
    /// records it; for a test server only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_skip_verify: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Tls {
    /// Nothing set: the system's trust store, no client certificate.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_api_key_env() -> String {
    "OPENAI_API_KEY".to_owned()
}

/// The OpenAI API flavour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `POST /v1/chat/completions` with a `messages` list.
    #[default]
    Chat,
    /// `POST /v1/completions` with a `prompt` string.
    Completions,
}

/// Network timeouts, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Establishing a connection.
    #[serde(default = "default_connect_seconds")]
    pub connect_seconds: f64,
    /// The longest silence between two reads of a response.
    #[serde(default = "default_read_seconds")]
    pub read_seconds: f64,
    /// A whole request, from send to the end of the response; unbounded when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_seconds: Option<f64>,
}

fn default_connect_seconds() -> f64 {
    10.0
}

fn default_read_seconds() -> f64 {
    120.0
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_seconds: default_connect_seconds(),
            read_seconds: default_read_seconds(),
            request_seconds: None,
        }
    }
}

/// How load is generated: a kind and the parameters that kind reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The load pattern.
    pub kind: ProfileKind,
    /// `concurrent`: the stream counts, one benchmark each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<u32>>,
    /// `constant`, `poisson`: the arrival rates in requests per second, one benchmark each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<Vec<f64>>,
    /// `sweep`: total benchmarks, synchronous and throughput included (default 10, at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_size: Option<u32>,
    /// `sweep`: the arrival process of the rate steps (default `constant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RateStrategy>,
    /// `sweep`: how the rate steps are spaced (default `linear`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spacing: Option<Spacing>,
    /// Cap on requests in flight: the throughput level for `throughput` and `sweep` (default
    /// 512); optional for `constant` and `poisson`, where arrivals then wait and the wait is
    /// reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Seconds over which load ramps up linearly at the start of each benchmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rampup_seconds: Option<f64>,
}

/// The load patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    /// One request at a time.
    Synchronous,
    /// A fixed number of streams per benchmark (`streams`).
    Concurrent,
    /// As many requests as `max_concurrency` allows.
    Throughput,
    /// Evenly spaced arrivals at each of `rates`.
    Constant,
    /// Poisson arrivals at each of `rates`.
    Poisson,
    /// Synchronous, throughput, then `sweep_size - 2` rates between the two.
    Sweep,
}

impl ProfileKind {
    /// Every kind, in documentation order.
    pub const ALL: [ProfileKind; 6] = [
        Self::Synchronous,
        Self::Concurrent,
        Self::Throughput,
        Self::Constant,
        Self::Poisson,
        Self::Sweep,
    ];

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Synchronous => "synchronous",
            Self::Concurrent => "concurrent",
            Self::Throughput => "throughput",
            Self::Constant => "constant",
            Self::Poisson => "poisson",
            Self::Sweep => "sweep",
        }
    }
}

/// The arrival process of a sweep's rate steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateStrategy {
    /// Evenly spaced arrivals.
    #[default]
    Constant,
    /// Poisson arrivals.
    Poisson,
}

/// How a sweep spaces its rate steps between the synchronous and the throughput rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    /// Equal differences (GuideLLM's choice).
    #[default]
    Linear,
    /// Equal ratios: more steps at low rates, where latency changes least.
    Geometric,
}

/// Limits that end a benchmark; any one that fires ends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Wall time per benchmark; requests still in flight then are cancelled and counted
    /// incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<f64>,
    /// Requests sent per benchmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    /// Failed requests per benchmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_errors: Option<u64>,
    /// Share of failed requests among the last `error_rate_window` finished ones, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Size of the sliding window of `max_error_rate` (default 30 requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate_window: Option<u32>,
    /// Stop (or warn) when the server is over-saturated: requests in flight and TTFT both
    /// rising with confidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_saturation: Option<OverSaturation>,
    /// After an interruption (SIGINT, SIGTERM), seconds the requests in flight get to finish
    /// before they are cancelled and counted incomplete (default 2; 0 cancels at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_grace_seconds: Option<f64>,
}

/// Seconds requests in flight get to finish after an interruption, by default.
pub const DEFAULT_INTERRUPT_GRACE_SECONDS: f64 = 2.0;

impl Constraints {
    /// The interruption grace: the configured one, else the default. Never panics, even on a
    /// value that [`Config::validate`] would refuse: it is clamped to [0, `MAX_SECONDS`] (NaN
    /// to 0).
    pub fn interrupt_grace(&self) -> std::time::Duration {
        let grace = self
            .interrupt_grace_seconds
            .unwrap_or(DEFAULT_INTERRUPT_GRACE_SECONDS);
        limits::duration_from_secs(grace).min(limits::duration_from_secs(MAX_SECONDS))
    }
}

/// The over-saturation detector: a least-squares trend, over per-second means, of the
/// requests in flight and of TTFT; it fires when both slopes are positive at the given
/// confidence. Without this table the native engine runs it in `monitor` mode with the
/// defaults below, which scale with `max_seconds` so a short benchmark is judged too.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverSaturation {
    /// `enforce` stops the benchmark (the default when this table is given); `monitor` only
    /// warns; `off` turns the detector off.
    #[serde(default)]
    pub mode: SaturationMode,
    /// Seconds into the benchmark before the detector may fire (default: 30, or a quarter of
    /// `max_seconds` when that is shorter, at least 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seconds: Option<f64>,
    /// Seconds of history the trends are fitted over (default: 120, or `max_seconds` when that
    /// is shorter, at least 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    /// One-sided confidence that each slope is positive (default 0.95).
    #[serde(default = "default_saturation_confidence")]
    pub confidence: f64,
}

/// `min_seconds` and `window_seconds` for benchmarks without a time limit (or a long one).
const SATURATION_MIN_SECONDS: f64 = 30.0;
const SATURATION_WINDOW_SECONDS: f64 = 120.0;

fn default_saturation_confidence() -> f64 {
    0.95
}

impl OverSaturation {
    /// The detector without a config table: it warns, and its times follow `max_seconds`.
    pub fn monitor() -> Self {
        Self {
            mode: SaturationMode::Monitor,
            min_seconds: None,
            window_seconds: None,
            confidence: default_saturation_confidence(),
        }
    }

    /// Seconds before the detector may fire: the given value, else 30 s or a quarter of
    /// `max_seconds` when shorter, but at least 3 s (the trend needs 5 per-second points).
    pub fn min_seconds_for(&self, max_seconds: Option<f64>) -> f64 {
        self.min_seconds.unwrap_or_else(|| {
            max_seconds.map_or(SATURATION_MIN_SECONDS, |s| {
                (s / 4.0).clamp(3.0, SATURATION_MIN_SECONDS)
            })
        })
    }

    /// Seconds of history fitted: the given value, else 120 s or `max_seconds` when shorter,
    /// but at least 5 s.
    pub fn window_seconds_for(&self, max_seconds: Option<f64>) -> f64 {
        self.window_seconds.unwrap_or_else(|| {
            max_seconds.map_or(SATURATION_WINDOW_SECONDS, |s| {
                s.clamp(5.0, SATURATION_WINDOW_SECONDS)
            })
        })
    }
}

impl Constraints {
    /// The detector a benchmark runs: the configured one, else [`OverSaturation::monitor`];
    /// none with `mode = "off"`.
    pub fn saturation(&self) -> Option<OverSaturation> {
        match self.over_saturation {
            Some(o) if o.mode == SaturationMode::Off => None,
            Some(o) => Some(o),
            None => Some(OverSaturation::monitor()),
        }
    }
}

/// What the over-saturation detector does when it fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SaturationMode {
    /// Stop the benchmark (`stopped_by = over_saturation`).
    #[default]
    Enforce,
    /// Add a warning and go on.
    Monitor,
    /// Do not run the detector.
    Off,
}

/// Service-level objectives, in milliseconds from the request's actual send. A request meets
/// them when it meets every one given; errored requests never do; incomplete (cancelled) ones
/// are not judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Time to first token at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// No gap between two consecutive content chunks longer than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<f64>,
    /// Time per output token (after the first) at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    /// Request latency at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
}

/// A warmup or cooldown length: exactly one of a fraction of the benchmark, seconds, or
/// requests. Written as `warmup = { seconds = 5 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transient {
    /// A fraction in [0, 1) of the benchmark's `max_seconds` (or `max_requests`).
    Fraction(f64),
    /// Seconds.
    Seconds(f64),
    /// Requests.
    Requests(u64),
}

/// What the requests contain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// The source: `synthetic`, `scenario` or `file`.
    pub kind: DataKind,
    /// `synthetic`: prompt length in tokens (the mean when `prompt_tokens_stdev` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u32>,
    /// `synthetic`: standard deviation of the prompt length (clamped normal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_stdev: Option<f64>,
    /// `synthetic`: smallest prompt length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_min: Option<u32>,
    /// `synthetic`: largest prompt length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_max: Option<u32>,
    /// `synthetic` (or `file`, overriding each row): output length in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u32>,
    /// `synthetic`: standard deviation of the output length (clamped normal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_stdev: Option<f64>,
    /// `synthetic`: smallest output length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_min: Option<u32>,
    /// `synthetic`: largest output length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_max: Option<u32>,
    /// `synthetic`: tokens of a prefix shared by every prompt (prefix-cache tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_tokens: Option<u32>,
    /// Number of distinct requests prepared, reused in a cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    /// A local Hugging Face `tokenizer.json`, or a directory holding one; relative to the
    /// config file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    /// `synthetic`, `scenario`: build prompts without a tokenizer, of approximate length; the
    /// report then warns. Without it, those kinds need `tokenizer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate: Option<bool>,
    /// `scenario`: one genai-bench traffic scenario, e.g. `D(100,100)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// `scenario`: several traffic scenarios, each run with every profile step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<Vec<String>>,
    /// `file`: a `.jsonl`, `.json` or `.csv` file of prompts; relative to the config file's
    /// folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `file`: the column holding the prompt (detected when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_column: Option<String>,
}

/// Where request data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Generated prompts of given token lengths.
    Synthetic,
    /// genai-bench traffic scenarios.
    Scenario,
    /// Prompts read from a file.
    File,
}

impl DataKind {
    /// Every kind, in documentation order.
    pub const ALL: [DataKind; 3] = [Self::Synthetic, Self::Scenario, Self::File];

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Synthetic => "synthetic",
            Self::Scenario => "scenario",
            Self::File => "file",
        }
    }
}

/// One report file to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Where to write; relative paths are relative to the working directory.
    pub path: String,
    /// The format; taken from the extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
}

impl OutputSpec {
    /// The format to write: the explicit one, else the one the extension names.
    pub fn resolved_format(&self) -> Result<OutputFormat, ConfigError> {
        if let Some(format) = self.format {
            return Ok(format);
        }
        let extension = Path::new(&self.path)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("json") => Ok(OutputFormat::Json),
            Some("yaml" | "yml") => Ok(OutputFormat::Yaml),
            Some("csv") => Ok(OutputFormat::Csv),
            Some("html" | "htm") => Ok(OutputFormat::Html),
            other => Err(ConfigError::InvalidValue {
                key: "output.path".to_owned(),
                message: format!(
                    "cannot tell the format of `{}` from its extension {}; use .json, .yaml, .yml, \
                     .csv or .html, or set `format`",
                    self.path,
                    other.map_or("(none)".to_owned(), |e| format!("`.{e}`"))
                ),
            }),
        }
    }
}

/// Report file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// The full report, pretty-printed JSON.
    Json,
    /// The full report as YAML.
    Yaml,
    /// One row per benchmark, flat named columns.
    Csv,
    /// A self-contained HTML page with charts (no network needed to view it).
    Html,
    /// The autotuner's metrics object (genai-bench's shape, times in seconds); only by
    /// `format = "autotuner"`, as it is also `.json`.
    Autotuner,
}

/// An engine's own options table (`[engines.<name>]`), kept opaque until that engine parses it
/// with [`OptionsTable::parse`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OptionsTable(serde_json::Value);

impl JsonSchema for OptionsTable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OptionsTable".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "Options read only by the engine of this name; it rejects unknown keys."
        })
    }
}

impl OptionsTable {
    /// Parses the table strictly into the engine's own options type. Unknown keys are errors
    /// that name `engines.<engine>.<key>` and suggest the intended key.
    pub fn parse<T: DeserializeOwned>(&self, engine: &str) -> Result<T, ConfigError> {
        strict::from_value(self.as_object(), &format!("engines.{engine}"))
    }

    /// Parses the table strictly on top of `base`: keys the table gives replace `base`'s, the
    /// others keep `base`'s values. `path` is the table's dotted key, for error messages.
    pub fn parse_over<T: Serialize + DeserializeOwned>(
        &self,
        path: &str,
        base: &T,
    ) -> Result<T, ConfigError> {
        let mut merged = serde_json::to_value(base).map_err(|e| invalid(path, e.to_string()))?;
        if let (Some(target), serde_json::Value::Object(table)) =
            (merged.as_object_mut(), self.as_object())
        {
            target.extend(table);
        }
        strict::from_value(merged, path)
    }

    fn as_object(&self) -> serde_json::Value {
        match &self.0 {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            other => other.clone(),
        }
    }
}

/// The text formats a config may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// `.toml`
    Toml,
    /// `.yaml`, `.yml`
    Yaml,
    /// `.json`
    Json,
}

impl ConfigFormat {
    /// The format named by a file's extension.
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("toml") => Ok(Self::Toml),
            Some("yaml" | "yml") => Ok(Self::Yaml),
            Some("json") => Ok(Self::Json),
            other => Err(ConfigError::InvalidValue {
                key: "--config".to_owned(),
                message: format!(
                    "cannot tell the format of `{}` from its extension {}; name it .toml, .yaml, \
                     .yml or .json",
                    path.display(),
                    other.map_or("(none)".to_owned(), |e| format!("`.{e}`"))
                ),
            }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Toml => "TOML",
            Self::Yaml => "YAML",
            Self::Json => "JSON",
        }
    }
}

impl Config {
    /// Parses, converts the legacy block, applies `--set` overrides, and validates.
    pub fn load(
        text: &str,
        format: ConfigFormat,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax {
            format: format.name(),
            message,
        };
        let tree: serde_json::Value = match format {
            ConfigFormat::Toml => toml::from_str(text).map_err(|e| syntax(e.to_string()))?,
            ConfigFormat::Yaml => {
                serde_norway::from_str(text).map_err(|e| syntax(e.to_string()))?
            }
            ConfigFormat::Json => serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?,
        };
        let mut tree = match tree {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => {
                return Err(syntax(
                    "the document is empty; see docs/config.md".to_owned(),
                ))
            }
            _ => return Err(syntax("the top level must be a table of keys".to_owned())),
        };
        legacy::convert(&mut tree)?;
        compact::expand(&mut tree)?;
        let mut tree = serde_json::Value::Object(tree);
        for given in overrides {
            overrides::apply(&mut tree, given)?;
        }
        // Again, for `--set data=...`.
        if let serde_json::Value::Object(map) = &mut tree {
            compact::expand(map)?;
        }
        let config: Config = strict::from_value(tree, "")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and cross-field rules that the types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.benchmark_engine.trim().is_empty() {
            return Err(invalid(
                "benchmark_engine",
                "must name an engine, e.g. `native`",
            ));
        }
        self.target.validate()?;
        self.profile.validate()?;
        self.constraints.validate()?;
        for (key, transient) in [("warmup", &self.warmup), ("cooldown", &self.cooldown)] {
            if let Some(t) = transient {
                t.validate(key, &self.constraints)?;
            }
        }
        if let (Some(Transient::Fraction(w)), Some(Transient::Fraction(c))) =
            (self.warmup, self.cooldown)
        {
            if w + c >= 1.0 {
                return Err(invalid(
                    "cooldown.fraction",
                    format!("warmup ({w}) and cooldown ({c}) together leave nothing to measure; keep their sum below 1"),
                ));
            }
        }
        self.data.validate()?;
        // Each scenario runs every profile step: the product is the plan's length.
        let planned = self.plan().len();
        if planned > MAX_STEPS as usize {
            return Err(invalid(
                "data.scenarios",
                format!("with the profile's steps the plan has {planned} benchmarks, more than the limit of {MAX_STEPS}; give fewer scenarios or steps"),
            ));
        }
        if let Some(slo) = &self.slo {
            let given = [
                ("ttft_ms", slo.ttft_ms),
                ("itl_ms", slo.itl_ms),
                ("tpot_ms", slo.tpot_ms),
                ("e2e_ms", slo.e2e_ms),
            ];
            if given.iter().all(|(_, v)| v.is_none()) {
                return Err(invalid(
                    "slo",
                    "is empty; give at least one of ttft_ms, itl_ms, tpot_ms, e2e_ms, or remove it",
                ));
            }
            for (key, value) in given {
                if let Some(v) = value {
                    let key = format!("slo.{key}");
                    positive(&key, v)?;
                    // Milliseconds, under the same 30-day bound as every duration.
                    let max_ms = MAX_SECONDS * 1000.0;
                    if v > max_ms {
                        return Err(invalid(&key, format!("{} ms is more than the limit of {max_ms} ms (30 days); give at most that", shown(v))));
                    }
                }
            }
        }
        for output in &self.outputs {
            output.resolved_format()?;
        }
        Ok(())
    }

    /// A copy safe to write into a report: secret-looking header values and engine options
    /// are replaced by `<redacted>`.
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        for (name, value) in copy.target.headers.iter_mut() {
            if looks_secret(name) {
                *value = REDACTED.to_owned();
            }
        }
        for options in copy.engines.values_mut().chain(copy.target.mock.as_mut()) {
            redact_tree(&mut options.0);
        }
        copy
    }

    /// The benchmarks this config asks for, in run order. Sweep rate steps are placeholders,
    /// since their rates come from the sweep's first two measurements.
    pub fn plan(&self) -> Vec<PlannedBenchmark> {
        plan::plan(self)
    }
}

/// What a redacted secret is replaced by.
pub const REDACTED: &str = "<redacted>";

/// Header and option names treated as secrets.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "key",
        "token",
        "secret",
        "password",
        "cookie",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

fn redact_tree(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                // `api_key_env` names a variable; the name is not the secret.
                if looks_secret(key) && !key.ends_with("_env") && child.is_string() {
                    *child = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    redact_tree(child);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_tree),
        _ => {}
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        message: message.into(),
    }
}

fn positive(key: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{} must be a positive number", shown(value)),
        ))
    }
}

/// A list of profile steps (`streams`, `rates`) no longer than [`MAX_STEPS`].
fn steps(key: &str, len: usize) -> Result<(), ConfigError> {
    if len > MAX_STEPS as usize {
        return Err(invalid(
            key,
            format!(
                "has {len} entries, more than the limit of {MAX_STEPS} benchmarks; give at most {MAX_STEPS}"
            ),
        ));
    }
    Ok(())
}

/// Rejects keys that the chosen kind does not read, and requires those it needs.
fn check_kind_fields(
    section: &str,
    kind: &str,
    set: &[(&str, bool)],
    allowed: &[&str],
    required: &[&str],
) -> Result<(), ConfigError> {
    for (field, present) in set {
        if *present && !allowed.contains(field) {
            let users = if allowed.is_empty() {
                "it takes no other keys".to_owned()
            } else {
                format!("it reads only {}", allowed.join(", "))
            };
            return Err(invalid(
                &format!("{section}.{field}"),
                format!(
                    "not used by {section}.kind = `{kind}` ({users}); remove it or change the kind"
                ),
            ));
        }
    }
    for field in required {
        if !set.iter().any(|(f, present)| f == field && *present) {
            return Err(ConfigError::MissingKey {
                key: format!("{section}.{field}"),
                hint: Some(format!("{section}.kind = `{kind}` needs it")),
            });
        }
    }
    Ok(())
}

impl Target {
    fn validate(&self) -> Result<(), ConfigError> {
        match self.kind() {
            TargetKind::Server => {
                let url = self.url.as_deref().ok_or_else(|| ConfigError::MissingKey {
                    key: "target.url".to_owned(),
                    hint: Some("target.kind = `server` needs the server's base URL, e.g. `http://127.0.0.1:8000`; or use kind = `mock`".to_owned()),
                })?;
                validate_url(url)?;
                if self.mock.is_some() {
                    return Err(invalid(
                        "target.mock",
                        "is only read with target.kind = `mock`; remove it or change the kind",
                    ));
                }
                if self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
                    return Err(ConfigError::MissingKey {
                        key: "target.model".to_owned(),
                        hint: Some(
                            "name the served model, as `GET /v1/models` lists it".to_owned(),
                        ),
                    });
                }
            }
            TargetKind::Mock => {
                if let Some(url) = &self.url {
                    return Err(invalid("target.url", format!("`{url}` cannot be used with target.kind = `mock`: the embedded mock gets its own address; remove url or set kind = `server`")));
                }
                if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                    return Err(invalid(
                        "target.model",
                        "is empty; remove it to use the mock's default name",
                    ));
                }
            }
        }
        for (name, value) in &self.headers {
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid_name {
                return Err(invalid(
                    "target.headers",
                    format!("`{name}` is not a valid HTTP header name"),
                ));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(invalid(
                    &format!("target.headers.{name}"),
                    "header values cannot contain line breaks",
                ));
            }
        }
        seconds(
            "target.timeouts.connect_seconds",
            self.timeouts.connect_seconds,
            true,
        )?;
        seconds(
            "target.timeouts.read_seconds",
            self.timeouts.read_seconds,
            true,
        )?;
        if let Some(s) = self.timeouts.request_seconds {
            seconds("target.timeouts.request_seconds", s, true)?;
        }
        self.validate_tls()
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        match (&tls.client_cert, &tls.client_key) {
            (Some(_), None) => {
                return Err(ConfigError::MissingKey {
                    key: "target.tls.client_key".to_owned(),
                    hint: Some(
                        "target.tls.client_cert needs the PEM private key that goes with it"
                            .to_owned(),
                    ),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::MissingKey {
                    key: "target.tls.client_cert".to_owned(),
                    hint: Some(
                        "target.tls.client_key needs the PEM certificate that goes with it"
                            .to_owned(),
                    ),
                })
            }
            _ => {}
        }
        for (key, value) in [
            ("target.tls.ca_file", &tls.ca_file),
            ("target.tls.client_cert", &tls.client_cert),
            ("target.tls.client_key", &tls.client_key),
            ("target.tls.server_name", &tls.server_name),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(key, "is empty; remove it or give a value"));
            }
        }
        if tls.insecure_skip_verify && tls.ca_file.is_some() {
            return Err(invalid(
                "target.tls.insecure_skip_verify",
                "verifies nothing, so target.tls.ca_file would be ignored; give only one of them",
            ));
        }
        let plain = self
            .url
            .as_deref()
            .is_some_and(|u| u.trim().starts_with("http://"));
        if plain && !tls.is_default() {
            return Err(invalid(
                "target.tls",
                "is only used with an https:// target.url; remove it or use https",
            ));
        }
        Ok(())
    }
}

/// A base URL must be http(s) with a host.
fn validate_url(url: &str) -> Result<(), ConfigError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        None if url.contains("://") => Err(invalid(
            "target.url",
            format!("`{url}` uses an unsupported scheme; use http:// or https://"),
        )),
        None => Err(invalid(
            "target.url",
            format!("`{url}` has no scheme; write `http://{url}`"),
        )),
        Some(host) if host.is_empty() || host.starts_with('/') => Err(invalid(
            "target.url",
            format!("`{url}` has no host; write e.g. `http://127.0.0.1:8000`"),
        )),
        Some(_) => Ok(()),
    }
}

impl Profile {
    fn validate(&self) -> Result<(), ConfigError> {
        let set = [
            ("streams", self.streams.is_some()),
            ("rates", self.rates.is_some()),
            ("sweep_size", self.sweep_size.is_some()),
            ("strategy", self.strategy.is_some()),
            ("spacing", self.spacing.is_some()),
            ("max_concurrency", self.max_concurrency.is_some()),
            ("rampup_seconds", self.rampup_seconds.is_some()),
        ];
        let (allowed, required): (&[&str], &[&str]) = match self.kind {
            ProfileKind::Synchronous => (&[], &[]),
            ProfileKind::Concurrent => (&["streams", "rampup_seconds"], &["streams"]),
            ProfileKind::Throughput => (&["max_concurrency", "rampup_seconds"], &[]),
            ProfileKind::Constant | ProfileKind::Poisson => {
                (&["rates", "max_concurrency", "rampup_seconds"], &["rates"])
            }
            ProfileKind::Sweep => (
                &[
                    "sweep_size",
                    "strategy",
                    "spacing",
                    "max_concurrency",
                    "rampup_seconds",
                ],
                &[],
            ),
        };
        check_kind_fields("profile", self.kind.name(), &set, allowed, required)?;
        if let Some(streams) = &self.streams {
            if streams.is_empty() {
                return Err(invalid(
                    "profile.streams",
                    "is empty; give at least one stream count, e.g. [1, 4, 8]",
                ));
            }
            steps("profile.streams", streams.len())?;
            for (i, &n) in streams.iter().enumerate() {
                let key = format!("profile.streams[{i}]");
                if n == 0 {
                    return Err(invalid(&key, "0 streams send nothing; use 1 or more"));
                }
                at_most(&key, n, MAX_STREAMS, "streams")?;
            }
        }
        if let Some(rates) = &self.rates {
            if rates.is_empty() {
                return Err(invalid(
                    "profile.rates",
                    "is empty; give at least one rate in requests per second, e.g. [5.0]",
                ));
            }
            steps("profile.rates", rates.len())?;
            for (i, &rate) in rates.iter().enumerate() {
                let key = format!("profile.rates[{i}]");
                positive(&key, rate)?;
                if rate < MIN_RATE_PER_S {
                    return Err(invalid(&key, format!("{} requests per second is less than the minimum of {MIN_RATE_PER_S} (one request every 1000 s); give at least {MIN_RATE_PER_S}", shown(rate))));
                }
                if rate > MAX_RATE_PER_S {
                    return Err(invalid(&key, format!("{} requests per second is more than the limit of {MAX_RATE_PER_S}; give at most {MAX_RATE_PER_S}", shown(rate))));
                }
            }
        }
        if let Some(size) = self.sweep_size {
            if size < 2 {
                return Err(invalid("profile.sweep_size", format!("{size} is too small: a sweep needs at least 2 benchmarks (synchronous and throughput)")));
            }
            at_most("profile.sweep_size", size, MAX_STEPS, "benchmarks")?;
        }
        if let Some(cap) = self.max_concurrency {
            if cap == 0 {
                return Err(invalid(
                    "profile.max_concurrency",
                    "0 would send nothing; use 1 or more",
                ));
            }
            at_most("profile.max_concurrency", cap, MAX_STREAMS, "requests")?;
        }
        if let Some(r) = self.rampup_seconds {
            seconds("profile.rampup_seconds", r, false)?;
        }
        Ok(())
    }
}

impl Constraints {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_seconds.is_none() && self.max_requests.is_none() {
            return Err(ConfigError::MissingKey {
                key: "constraints.max_seconds".to_owned(),
                hint: Some("set constraints.max_seconds or constraints.max_requests, or a benchmark never ends".to_owned()),
            });
        }
        if let Some(s) = self.max_seconds {
            seconds("constraints.max_seconds", s, true)?;
        }
        if let Some(g) = self.interrupt_grace_seconds {
            seconds("constraints.interrupt_grace_seconds", g, false)?;
        }
        if let Some(n) = self.max_requests {
            if n == 0 {
                return Err(invalid(
                    "constraints.max_requests",
                    "0 requests measure nothing; use 1 or more",
                ));
            }
            at_most("constraints.max_requests", n, MAX_REQUESTS, "requests")?;
        }
        if let Some(n) = self.max_errors {
            if n == 0 {
                return Err(invalid(
                    "constraints.max_errors",
                    "0 would stop before the first request; use 1 or more",
                ));
            }
            at_most("constraints.max_errors", n, MAX_REQUESTS, "errors")?;
        }
        if let Some(rate) = self.max_error_rate {
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(invalid(
                    "constraints.max_error_rate",
                    format!("{rate} is not a share in (0, 1], e.g. 0.1 for 10 %"),
                ));
            }
        }
        if let Some(o) = &self.over_saturation {
            if let Some(min) = o.min_seconds {
                seconds("constraints.over_saturation.min_seconds", min, false)?;
            }
            if let Some(window) = o.window_seconds {
                if !(window.is_finite() && window >= 3.0) {
                    return Err(invalid(
                        "constraints.over_saturation.window_seconds",
                        format!(
                            "{} is too short: the trends need at least 3 seconds",
                            shown(window)
                        ),
                    ));
                }
                seconds("constraints.over_saturation.window_seconds", window, true)?;
            }
            if !(o.confidence > 0.5 && o.confidence < 1.0) {
                return Err(invalid(
                    "constraints.over_saturation.confidence",
                    format!("{} is not in (0.5, 1), e.g. 0.95", o.confidence),
                ));
            }
        }
        match self.error_rate_window {
            Some(_) if self.max_error_rate.is_none() => Err(invalid(
                "constraints.error_rate_window",
                "is only read with constraints.max_error_rate; set that too or remove it",
            )),
            Some(0) => Err(invalid(
                "constraints.error_rate_window",
                "must hold at least 1 request",
            )),
            Some(n) => at_most(
                "constraints.error_rate_window",
                n,
                MAX_ERROR_RATE_WINDOW,
                "requests",
            ),
            None => Ok(()),
        }
    }
}

impl Transient {
    fn validate(&self, key: &str, constraints: &Constraints) -> Result<(), ConfigError> {
        match *self {
            Transient::Fraction(f) => {
                if !(0.0..1.0).contains(&f) {
                    return Err(invalid(&format!("{key}.fraction"), format!("{f} is not in [0, 1); for an absolute length use `seconds` or `requests`")));
                }
            }
            Transient::Seconds(s) => {
                seconds(&format!("{key}.seconds"), s, false)?;
                if let Some(max) = constraints.max_seconds {
                    if s >= max {
                        return Err(invalid(&format!("{key}.seconds"), format!("{s} s is not shorter than constraints.max_seconds = {max}; nothing would be measured")));
                    }
                }
            }
            Transient::Requests(n) => {
                at_most(&format!("{key}.requests"), n, MAX_REQUESTS, "requests")?;
                if let Some(max) = constraints.max_requests {
                    if n >= max {
                        return Err(invalid(&format!("{key}.requests"), format!("{n} is not fewer than constraints.max_requests = {max}; nothing would be measured")));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Data {
    fn validate(&self) -> Result<(), ConfigError> {
        let set = [
            ("prompt_tokens", self.prompt_tokens.is_some()),
            ("prompt_tokens_stdev", self.prompt_tokens_stdev.is_some()),
            ("prompt_tokens_min", self.prompt_tokens_min.is_some()),
            ("prompt_tokens_max", self.prompt_tokens_max.is_some()),
            ("output_tokens", self.output_tokens.is_some()),
            ("output_tokens_stdev", self.output_tokens_stdev.is_some()),
            ("output_tokens_min", self.output_tokens_min.is_some()),
            ("output_tokens_max", self.output_tokens_max.is_some()),
            ("prefix_tokens", self.prefix_tokens.is_some()),
            ("samples", self.samples.is_some()),
            ("tokenizer", self.tokenizer.is_some()),
            ("approximate", self.approximate.is_some()),
            ("scenario", self.scenario.is_some()),
            ("scenarios", self.scenarios.is_some()),
            ("path", self.path.is_some()),
            ("prompt_column", self.prompt_column.is_some()),
        ];
        let (allowed, required): (&[&str], &[&str]) = match self.kind {
            DataKind::Synthetic => (
                &[
                    "prompt_tokens",
                    "prompt_tokens_stdev",
                    "prompt_tokens_min",
                    "prompt_tokens_max",
                    "output_tokens",
                    "output_tokens_stdev",
                    "output_tokens_min",
                    "output_tokens_max",
                    "prefix_tokens",
                    "samples",
                    "tokenizer",
                    "approximate",
                ],
                &["prompt_tokens", "output_tokens"],
            ),
            DataKind::Scenario => (
                &[
                    "scenario",
                    "scenarios",
                    "samples",
                    "tokenizer",
                    "approximate",
                ],
                &[],
            ),
            DataKind::File => (
                &[
                    "path",
                    "prompt_column",
                    "output_tokens",
                    "samples",
                    "tokenizer",
                    "approximate",
                ],
                &["path"],
            ),
        };
        check_kind_fields("data", self.kind.name(), &set, allowed, required)?;
        if self.kind == DataKind::Scenario {
            match (&self.scenario, &self.scenarios) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "data.scenarios",
                        "give either `scenario` or `scenarios`, not both",
                    ))
                }
                (None, None) => {
                    return Err(ConfigError::MissingKey {
                        key: "data.scenario".to_owned(),
                        hint: Some(
                            "data.kind = `scenario` needs a traffic scenario such as `D(100,100)`"
                                .to_owned(),
                        ),
                    })
                }
                (None, Some(list)) if list.is_empty() => {
                    return Err(invalid(
                        "data.scenarios",
                        "is empty; give at least one traffic scenario such as `D(100,100)`",
                    ))
                }
                _ => {}
            }
            let named = self
                .scenario
                .iter()
                .map(|s| ("data.scenario".to_owned(), s))
                .chain(
                    self.scenarios
                        .iter()
                        .flatten()
                        .enumerate()
                        .map(|(i, s)| (format!("data.scenarios[{i}]"), s)),
                );
            for (key, text) in named {
                let scenario = Scenario::parse(text).map_err(|e| invalid(&key, e.to_string()))?;
                let largest = scenario.numbers().into_iter().max().unwrap_or(0);
                if largest > MAX_TOKENS {
                    return Err(invalid(&key, format!("`{text}` asks for {largest} tokens, more than the limit of {MAX_TOKENS}; give at most {MAX_TOKENS}")));
                }
            }
        }
        for (key, value) in [
            ("prompt_tokens", self.prompt_tokens),
            ("output_tokens", self.output_tokens),
            ("samples", self.samples),
        ] {
            if value == Some(0) {
                return Err(invalid(&format!("data.{key}"), "must be at least 1"));
            }
        }
        if let Some(n) = self.samples {
            at_most("data.samples", n, MAX_SAMPLES, "samples")?;
        }
        for (key, value) in [
            ("prompt_tokens", self.prompt_tokens),
            ("prompt_tokens_min", self.prompt_tokens_min),
            ("prompt_tokens_max", self.prompt_tokens_max),
            ("output_tokens", self.output_tokens),
            ("output_tokens_min", self.output_tokens_min),
            ("output_tokens_max", self.output_tokens_max),
            ("prefix_tokens", self.prefix_tokens),
        ] {
            if let Some(n) = value {
                at_most(&format!("data.{key}"), n, MAX_TOKENS, "tokens")?;
            }
        }
        for (key, stdev) in [
            ("prompt_tokens_stdev", self.prompt_tokens_stdev),
            ("output_tokens_stdev", self.output_tokens_stdev),
        ] {
            if let Some(s) = stdev {
                if !(s.is_finite() && s >= 0.0) {
                    return Err(invalid(
                        &format!("data.{key}"),
                        format!("{} must be zero or more", shown(s)),
                    ));
                }
                if s > f64::from(MAX_TOKENS) {
                    return Err(invalid(
                        &format!("data.{key}"),
                        format!("{} tokens is more than the limit of {MAX_TOKENS}; give at most {MAX_TOKENS}", shown(s)),
                    ));
                }
            }
        }
        for (name, min, max) in [
            (
                "prompt_tokens",
                self.prompt_tokens_min,
                self.prompt_tokens_max,
            ),
            (
                "output_tokens",
                self.output_tokens_min,
                self.output_tokens_max,
            ),
        ] {
            if let (Some(min), Some(max)) = (min, max) {
                if min > max {
                    return Err(invalid(
                        &format!("data.{name}_min"),
                        format!("{min} is larger than data.{name}_max = {max}"),
                    ));
                }
            }
        }
        let token_exact = matches!(self.kind, DataKind::Synthetic | DataKind::Scenario);
        match (token_exact, self.tokenizer.is_some(), self.approximate) {
            (true, false, None | Some(false)) => {
                return Err(ConfigError::MissingKey {
                    key: "data.tokenizer".to_owned(),
                    hint: Some(format!(
                        "data.kind = `{}` builds prompts of an exact token count, which needs the server's tokenizer: \
                         give a local tokenizer.json or the model directory holding it (the repository's test tokenizer is data/tokenizer), \
                         or set data.approximate = true to accept approximate prompt lengths",
                        self.kind.name()
                    )),
                })
            }
            (_, true, Some(true)) => {
                return Err(invalid(
                    "data.approximate",
                    "is true but data.tokenizer is given; remove one of them",
                ))
            }
            _ => {}
        }
        for (key, value) in [("tokenizer", &self.tokenizer), ("path", &self.path)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(
                    &format!("data.{key}"),
                    "is empty; give a file path",
                ));
            }
        }
        Ok(())
    }

    /// A short label of the workload, used when there is no scenario string.
    pub(crate) fn synthetic_label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.prompt_tokens {
            parts.push(format!("prompt_tokens={p}"));
        }
        if let Some(o) = self.output_tokens {
            parts.push(format!("output_tokens={o}"));
        }
        parts.join(",")
    }
}

/// The name in `candidates` closest to `given`, when it is a plausible typo.
pub(crate) fn closest_name(given: &str, candidates: &[String]) -> Option<String> {
    strict::closest(given, candidates).map(str::to_owned)
}
