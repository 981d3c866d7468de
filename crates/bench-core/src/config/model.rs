//! The config model: the structs and enums a config deserializes into, their defaults, and
//! the accessors engines read them through.
//!
//! `Profile` and `Data` are flat structs with a `kind`; which kinds read each of their other
//! keys is written once, in a table beside the struct (`PROFILE_KEYS`, `DATA_KEYS`), one row
//! per field. Validation takes the keys a config sets from the struct itself (serde: a field
//! left out serializes to nothing) and checks them against the table; a test checks that the
//! table names every field of the struct (its JSON Schema's properties), so a new field cannot
//! be forgotten. A row per field, rather than a list of keys per kind, keeps a field's rule in
//! one place; an attribute on the field itself would need a proc macro for a few lines of table.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::limits::{duration_from_secs, MAX_SECONDS};
use super::search::SearchSettings;
use super::strict;
use crate::error::ConfigError;

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
    /// This process's share of a run split over several (`run --shard I/N`); absent: the
    /// whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::ShardConfig>,
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
    /// The served model name sent in each request. For `server`, when absent, the one model
    /// `GET /v1/models` lists (several or none are an error); default `mock-model` for `mock`.
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
    /// Scrape the server's Prometheus `/metrics` during each benchmark; absent: no scraping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<super::ServerMetricsScrape>,
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
            metrics: None,
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
    /// `constant`, `poisson`, `gamma`: the arrival rates in requests per second, one benchmark
    /// each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<Vec<f64>>,
    /// `sweep`: total benchmarks, synchronous and throughput included (default 10, at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_size: Option<u32>,
    /// `sweep`, `search`: the arrival process of the rate steps (default `constant`; `gamma`
    /// needs `burstiness`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RateStrategy>,
    /// `sweep`: how the rate steps are spaced (default `linear`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spacing: Option<Spacing>,
    /// Cap on requests in flight: the throughput level for `throughput` and `sweep`, and the
    /// cap of a `search`'s rate steps (default 512); optional for `constant` and `poisson`, where arrivals then wait and the wait is
    /// reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Seconds over which load ramps up linearly at the start of each benchmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rampup_seconds: Option<f64>,
    /// `gamma` (and `sweep` or `search` with `strategy = "gamma"`): the shape of the
    /// gamma-distributed gaps between arrivals; their coefficient of variation is
    /// `1 / sqrt(burstiness)`, so below 1 is burstier than Poisson, 1 is Poisson, above 1 is
    /// more even.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burstiness: Option<f64>,
    /// `search`: how the SLO search brackets and bisects (`[profile.search]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchSettings>,
    /// `replay`: how many times faster than recorded the trace is sent (default 1; 4 sends a
    /// trace of 40 minutes in 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    /// `replay`: seconds of the trace (recorded time, from its first row) skipped before the
    /// first request sent (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_seconds: Option<f64>,
}

/// Which kinds read each key of [`Profile`] but `kind`, and which of them need it.
pub(super) const PROFILE_KEYS: &[KeyRule<ProfileKind>] = {
    use ProfileKind::*;
    &[
        KeyRule::new("streams", &[Concurrent], &[Concurrent]),
        KeyRule::new(
            "rates",
            &[Constant, Poisson, Gamma],
            &[Constant, Poisson, Gamma],
        ),
        KeyRule::new("sweep_size", &[Sweep], &[]),
        KeyRule::new("strategy", &[Sweep, Search], &[]),
        KeyRule::new("spacing", &[Sweep], &[]),
        KeyRule::new(
            "max_concurrency",
            &[Throughput, Constant, Poisson, Gamma, Sweep, Search, Replay],
            &[],
        ),
        KeyRule::new(
            "rampup_seconds",
            &[
                Concurrent, Throughput, Constant, Poisson, Gamma, Sweep, Search,
            ],
            &[],
        ),
        // `sweep` and `search` need it with `strategy = "gamma"` only, which validation checks.
        KeyRule::new("burstiness", &[Gamma, Sweep, Search], &[Gamma]),
        KeyRule::new("search", &[Search], &[]),
        KeyRule::new("speedup", &[Replay], &[]),
        KeyRule::new("start_seconds", &[Replay], &[]),
    ]
};

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
    /// Gamma-distributed gaps (`burstiness`) at each of `rates`.
    Gamma,
    /// Synchronous, throughput, then `sweep_size - 2` rates between the two.
    Sweep,
    /// The highest rate that meets `[slo]`: a synchronous probe, then rate steps bracketing
    /// and bisecting it (`[profile.search]`).
    Search,
    /// Each request of a trace (`data.kind = "trace"`) at its recorded time.
    Replay,
}

impl ProfileKind {
    /// Every kind, in documentation order.
    pub const ALL: [ProfileKind; 9] = [
        Self::Synchronous,
        Self::Concurrent,
        Self::Throughput,
        Self::Constant,
        Self::Poisson,
        Self::Gamma,
        Self::Sweep,
        Self::Search,
        Self::Replay,
    ];

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Synchronous => "synchronous",
            Self::Concurrent => "concurrent",
            Self::Throughput => "throughput",
            Self::Constant => "constant",
            Self::Poisson => "poisson",
            Self::Gamma => "gamma",
            Self::Sweep => "sweep",
            Self::Search => "search",
            Self::Replay => "replay",
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
    /// Gamma-distributed gaps of shape `burstiness`.
    Gamma,
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
        duration_from_secs(grace).min(duration_from_secs(MAX_SECONDS))
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
    /// `file`: a `.jsonl`, `.json` or `.csv` file of prompts; `trace`: a `.jsonl` or `.csv`
    /// trace; relative to the config file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `file`: the column holding the prompt (detected when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_column: Option<String>,
    /// `trace`: tokens of prompt each of a row's `hash_ids` stands for (default 512, as in
    /// Mooncake's traces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_tokens: Option<u32>,
    /// `synthetic`: multi-turn sessions of this many turns; each turn resends the whole
    /// conversation so far (chat API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
    /// `synthetic` with `turns`: tokens of each user message after the first (the first is
    /// `prompt_tokens`); `prompt_tokens`' length when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_prompt_tokens: Option<u32>,
    /// `file`: every row a session of all its human turns (ShareGPT `conversations`,
    /// `messages`), instead of one request of its first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<bool>,
    /// Sessions: seconds a user thinks between an answer and the next turn (the mean when
    /// `think_distribution` is `exponential`); 0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_seconds: Option<f64>,
    /// Sessions: how think times are drawn, `constant` (the default) or `exponential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_distribution: Option<ThinkDistribution>,
}

/// How a session's think times are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThinkDistribution {
    /// Always `think_seconds`.
    Constant,
    /// Exponential with mean `think_seconds` (memoryless users).
    Exponential,
}

/// Which kinds read each key of [`Data`] but `kind`, and which of them need it (`scenario`
/// needs `scenario` or `scenarios`, which validation checks on its own).
pub(super) const DATA_KEYS: &[KeyRule<DataKind>] = {
    use DataKind::*;
    &[
        KeyRule::new("prompt_tokens", &[Synthetic], &[Synthetic]),
        KeyRule::new("prompt_tokens_stdev", &[Synthetic], &[]),
        KeyRule::new("prompt_tokens_min", &[Synthetic], &[]),
        KeyRule::new("prompt_tokens_max", &[Synthetic], &[]),
        KeyRule::new("output_tokens", &[Synthetic, File, Trace], &[Synthetic]),
        KeyRule::new("output_tokens_stdev", &[Synthetic], &[]),
        KeyRule::new("output_tokens_min", &[Synthetic], &[]),
        KeyRule::new("output_tokens_max", &[Synthetic], &[]),
        KeyRule::new("prefix_tokens", &[Synthetic], &[]),
        KeyRule::new("samples", &[Synthetic, Scenario, File], &[]),
        KeyRule::new("tokenizer", &DataKind::ALL, &[]),
        KeyRule::new("approximate", &[Synthetic, Scenario, File], &[]),
        KeyRule::new("scenario", &[Scenario], &[]),
        KeyRule::new("scenarios", &[Scenario], &[]),
        KeyRule::new("path", &[File, Trace], &[File, Trace]),
        KeyRule::new("prompt_column", &[File], &[]),
        KeyRule::new("block_tokens", &[Trace], &[]),
        KeyRule::new("turns", &[Synthetic], &[]),
        KeyRule::new("turn_prompt_tokens", &[Synthetic], &[]),
        KeyRule::new("conversations", &[File], &[]),
        KeyRule::new("think_seconds", &[Synthetic, File], &[]),
        KeyRule::new("think_distribution", &[Synthetic, File], &[]),
    ]
};

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
    /// A timestamped request trace (Mooncake's or the generic shape), for `profile.kind =
    /// "replay"`.
    Trace,
}

impl DataKind {
    /// Every kind, in documentation order.
    pub const ALL: [DataKind; 4] = [Self::Synthetic, Self::Scenario, Self::File, Self::Trace];

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Synthetic => "synthetic",
            Self::Scenario => "scenario",
            Self::File => "file",
            Self::Trace => "trace",
        }
    }
}

impl Data {
    /// Whether requests come as multi-turn sessions (`turns`, or a file's `conversations`).
    pub fn sessions(&self) -> bool {
        self.turns.is_some() || self.conversations == Some(true)
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
        if let Some(t) = self.turns {
            parts.push(format!("turns={t}"));
        }
        parts.join(",")
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
pub struct OptionsTable(pub(super) serde_json::Value);

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
        let mut merged = serde_json::to_value(base).map_err(|e| ConfigError::InvalidValue {
            key: path.to_owned(),
            message: e.to_string(),
        })?;
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

/// One key of a section with a `kind` (`profile`, `data`): the kinds that read it, and those
/// of them that need it.
#[derive(Debug)]
pub(super) struct KeyRule<K: 'static> {
    /// The key, as written in a config.
    pub(super) key: &'static str,
    /// The kinds that read it; under any other kind, setting it is an error.
    pub(super) read_by: &'static [K],
    /// The kinds that cannot do without it.
    pub(super) needed_by: &'static [K],
}

impl<K> KeyRule<K> {
    const fn new(key: &'static str, read_by: &'static [K], needed_by: &'static [K]) -> Self {
        Self {
            key,
            read_by,
            needed_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The keys of `T` but `kind`, from its JSON Schema (so from the struct's serde fields).
    fn fields<T: JsonSchema>() -> BTreeSet<String> {
        let schema = schemars::schema_for!(T);
        let properties = schema.get("properties").and_then(|p| p.as_object());
        properties
            .expect("a struct's schema lists its properties")
            .keys()
            .filter(|key| *key != "kind")
            .cloned()
            .collect()
    }

    fn keys<K>(rules: &[KeyRule<K>]) -> BTreeSet<String> {
        rules.iter().map(|r| r.key.to_owned()).collect()
    }

    /// A field added to `Profile` or `Data` must say which kinds read it.
    #[test]
    fn the_key_tables_name_every_field_once() {
        assert_eq!(keys(PROFILE_KEYS), fields::<Profile>());
        assert_eq!(keys(PROFILE_KEYS).len(), PROFILE_KEYS.len());
        assert_eq!(keys(DATA_KEYS), fields::<Data>());
        assert_eq!(keys(DATA_KEYS).len(), DATA_KEYS.len());
    }

    #[test]
    fn a_key_is_needed_only_by_kinds_that_read_it() {
        for rule in PROFILE_KEYS {
            assert!(!rule.read_by.is_empty(), "{}", rule.key);
            assert!(rule.needed_by.iter().all(|k| rule.read_by.contains(k)));
        }
        for rule in DATA_KEYS {
            assert!(!rule.read_by.is_empty(), "{}", rule.key);
            assert!(rule.needed_by.iter().all(|k| rule.read_by.contains(k)));
        }
    }
}
