//! The engine boundary: what an engine can do, how it is asked to run, and what it returns.

use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::config::{Config, DataKind, ProfileKind};
use crate::error::{ConfigError, EngineError};
use crate::features::{features, Feature};
use crate::live::LiveMetrics;
use crate::progress::{NoProgress, ProgressSink};
use crate::schema::{Report, Warning};

/// A way of generating load and measuring an OpenAI-compatible server.
///
/// Engines register themselves with [`crate::EngineRegistration`]. The caller validates a
/// config with [`BenchmarkEngine::validate`], then awaits [`BenchmarkEngine::run`] on a
/// multi-threaded tokio runtime that it owns.
#[async_trait::async_trait]
pub trait BenchmarkEngine: Send + Sync {
    /// The registry name, e.g. `native`.
    fn name(&self) -> &'static str;

    /// What this engine supports.
    fn capabilities(&self) -> Capabilities;

    /// Rejects what this engine cannot do, naming the key and the alternatives. The default
    /// checks the profile and data kinds against [`BenchmarkEngine::capabilities`]; engines with
    /// finer limits override it and call [`Capabilities::check`] first.
    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        self.capabilities().check(self.name(), config)
    }

    /// Checks, before the first request, everything a run of `config` depends on that a config
    /// alone cannot show: files load (tokenizer, data), external commands exist in the expected
    /// version, and unless `options.offline`, the target answers as an OpenAI-compatible server
    /// serving the model. `llm-bench validate` runs it, and `run` runs it for every engine before
    /// the first one starts. Returns what the run's report would warn about (a model the
    /// server does not list, a version that cannot be told). The default checks nothing.
    async fn preflight(
        &self,
        config: &Config,
        options: &Preflight,
    ) -> Result<Vec<Warning>, EngineError> {
        let _ = (config, options);
        Ok(Vec::new())
    }

    /// Runs every benchmark of `config`. When `ctx.cancel` fires the engine stops scheduling,
    /// finishes or cancels what is in flight, and returns the partial report with
    /// `interrupted = true`; cancellation is not an error.
    async fn run(&self, config: &Config, ctx: &RunContext) -> Result<Report, EngineError>;
}

/// How far [`BenchmarkEngine::preflight`] goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preflight {
    /// Skip every check that needs the network (the target).
    pub offline: bool,
}

impl Preflight {
    /// Checks that include the target (`offline = false`) or leave it out.
    pub fn new(offline: bool) -> Self {
        Self { offline }
    }
}

/// What an engine supports, shown by `llm-bench engines` and checked before a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Profile kinds it can run.
    pub profiles: Vec<ProfileKind>,
    /// Data sources it can read.
    pub data: Vec<DataKind>,
    /// The optional things a config can ask for that it honours; a config using any other
    /// [`Feature`] is refused.
    pub features: Vec<Feature>,
    /// Metrics it reports; the others are `null` in its reports.
    pub metrics: Vec<MetricKind>,
}

impl Capabilities {
    /// Checks the config's profile kind, data kind and every [`Feature`] it uses against
    /// these capabilities, refusing the first it lacks by its key (the registry adds which
    /// engines can run the config instead).
    pub fn check(&self, engine: &str, config: &Config) -> Result<(), ConfigError> {
        let names = |items: Vec<&str>| items.join(", ");
        let refuse = |what: String, hint: Option<String>| ConfigError::Unsupported {
            engine: engine.to_owned(),
            what,
            hint,
        };
        let profile = config.profile.kind;
        if !self.profiles.contains(&profile) {
            return Err(refuse(
                format!("profile.kind = `{}`", profile.name()),
                Some(format!(
                    "it supports {}",
                    names(self.profiles.iter().map(|p| p.name()).collect())
                )),
            ));
        }
        let data = config.data.kind;
        if !self.data.contains(&data) {
            return Err(refuse(
                format!("data.kind = `{}`", data.name()),
                Some(format!(
                    "it supports {}",
                    names(self.data.iter().map(|d| d.name()).collect())
                )),
            ));
        }
        match features(config)
            .into_iter()
            .find(|f| !self.features.contains(f))
        {
            Some(feature) => Err(refuse(feature.key().to_owned(), None)),
            None => Ok(()),
        }
    }
}

/// The metrics of the unified schema, by their report field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MetricKind {
    /// `request_latency_ms`
    RequestLatency,
    /// `ttft_ms`
    Ttft,
    /// `itl_ms`
    Itl,
    /// `tpot_ms`
    Tpot,
    /// `decode_time_ms`
    DecodeTime,
    /// `schedule_lag_ms`
    ScheduleLag,
    /// `latency_from_intended_send_ms`
    LatencyFromIntendedSend,
    /// `prompt_tokens`
    PromptTokens,
    /// `output_tokens`
    OutputTokens,
    /// `reasoning`: time to first answer token, reasoning and answer tokens and ITLs
    Reasoning,
    /// `rates.*`
    Rates,
    /// `rates.concurrency`
    Concurrency,
}

impl MetricKind {
    /// The report field name.
    pub fn field(self) -> &'static str {
        match self {
            Self::RequestLatency => "request_latency_ms",
            Self::Ttft => "ttft_ms",
            Self::Itl => "itl_ms",
            Self::Tpot => "tpot_ms",
            Self::DecodeTime => "decode_time_ms",
            Self::ScheduleLag => "schedule_lag_ms",
            Self::LatencyFromIntendedSend => "latency_from_intended_send_ms",
            Self::PromptTokens => "prompt_tokens",
            Self::OutputTokens => "output_tokens",
            Self::Reasoning => "reasoning",
            Self::Rates => "rates",
            Self::Concurrency => "rates.concurrency",
        }
    }
}

/// What a run gets besides its config: where to report progress, when to stop, and where to
/// keep live figures for a scrape.
#[derive(Clone)]
pub struct RunContext {
    /// Receives typed progress events.
    pub progress: Arc<dyn ProgressSink>,
    /// Fires when the caller wants the run to stop.
    pub cancel: CancelToken,
    live: Option<Arc<LiveMetrics>>,
}

impl RunContext {
    /// A context reporting to `progress` and stopped by `cancel`, keeping no live figures.
    pub fn new(progress: Arc<dyn ProgressSink>, cancel: CancelToken) -> Self {
        Self {
            progress,
            cancel,
            live: None,
        }
    }

    /// The same context, asking the engine to keep each benchmark's figures in `live` as
    /// requests finish (an engine that cannot leaves it empty).
    pub fn with_live(self, live: Arc<LiveMetrics>) -> Self {
        Self {
            live: Some(live),
            ..self
        }
    }

    /// Where the caller wants live figures kept, if anywhere.
    pub fn live(&self) -> Option<&Arc<LiveMetrics>> {
        self.live.as_ref()
    }
}

impl Default for RunContext {
    /// No progress output; never cancelled unless the token is cloned out and fired.
    fn default() -> Self {
        Self::new(Arc::new(NoProgress), CancelToken::new())
    }
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("cancelled", &self.cancel.is_cancelled())
            .field("live", &self.live.is_some())
            .finish_non_exhaustive()
    }
}
