//! engine-native: the in-process load generator, registered as `native`.
//!
//! A streaming OpenAI client on reqwest (`client`, with its own SSE parser `sse`), load
//! patterns and constraints (`runner`), online aggregation into the unified schema
//! (`aggregate`), and the sweep that chains benchmarks (this file). Its public face is its
//! registration; everything else is private.

mod aggregate;
mod arrivals;
mod client;
mod connection;
mod cpu;
mod http1;
mod receive_time;
mod records;
mod replay;
mod runner;
mod saturation;
mod search;
mod session;
mod session_figures;
mod setup;
mod shard;
mod sizing;
mod sse;
mod workload;

use std::sync::Arc;

use bench_core::config::limits::duration_from_secs;
use bench_core::config::{
    Config, DataKind, OptionsTable, ProfileKind, Strategy, StrategyKind, Transient,
};
use bench_core::schema::{Report, Timestamp, Warning};
use bench_core::sweep::SweepEnds;
use bench_core::{
    BenchmarkEngine, Capabilities, ConfigError, EngineError, EngineRegistration, Feature,
    MetricKind, Preflight, RunContext,
};
use serde::Deserialize;

use crate::aggregate::{Boundary, Clock};
use crate::runner::{Plan, Shared};

/// The registry name.
const NAME: &str = "native";

bench_core::inventory::submit! {
    EngineRegistration {
        name: NAME,
        summary: "in-process load generator: streaming OpenAI client, every profile, per-chunk timing",
        build,
    }
}

/// `[engines.native]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Stream responses (SSE); without it TTFT is the whole response and ITL is not measured.
    #[serde(default = "yes")]
    stream: bool,
    /// Send `ignore_eos: true`, so servers that support it generate exactly `output_tokens`.
    #[serde(default = "yes")]
    ignore_eos: bool,
    /// Extra fields merged into every request body (`temperature`, `top_p`, ...).
    #[serde(default)]
    extra_body: serde_json::Map<String, serde_json::Value>,
    /// Write every request's timestamps and outcome to this JSON-lines file.
    #[serde(default)]
    request_records: Option<std::path::PathBuf>,
    /// Retry a request that failed with one of `retry_on_status` up to this many times (off by
    /// default); every attempt counts as a request.
    #[serde(default)]
    retries: u32,
    /// The HTTP statuses retried when `retries` > 0.
    #[serde(default = "default_retry_statuses")]
    retry_on_status: Vec<u16>,
    /// Keep connections open between requests. Unset: yes, unless a probe before the first
    /// benchmark finds the server closing the connection after a streamed response.
    #[serde(default)]
    reuse_connections: Option<bool>,
    /// Before each benchmark, how long to wait at most for the server to finish what an
    /// earlier one left (`docs/config.md`, "Drained benchmarks").
    #[serde(default)]
    drain_timeout_seconds: bench_scrape::drain::DrainTimeout,
    /// Where response times come from: `kernel` (the default) takes them from the kernel's
    /// receive time of each read, on the engine's own HTTP/1.1 client; `user_space` from the
    /// moment the client read them (reqwest, as every other tool does).
    #[serde(default)]
    timestamps: Timestamps,
}

/// `[engines.native] timestamps`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Timestamps {
    #[default]
    Kernel,
    UserSpace,
}

fn default_retry_statuses() -> Vec<u16> {
    vec![429, 502, 503, 504]
}

fn yes() -> bool {
    true
}

fn build(options: &OptionsTable) -> Result<Box<dyn BenchmarkEngine>, ConfigError> {
    Ok(Box::new(NativeEngine {
        options: options.parse(NAME)?,
    }))
}

#[derive(Debug)]
struct NativeEngine {
    options: Options,
}

#[bench_core::async_trait]
impl BenchmarkEngine for NativeEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            profiles: ProfileKind::ALL.to_vec(),
            data: DataKind::ALL.to_vec(),
            // The config's keys are the native engine's: it implements every one.
            features: Feature::ALL.to_vec(),
            metrics: vec![
                MetricKind::RequestLatency,
                MetricKind::Ttft,
                MetricKind::Itl,
                MetricKind::Tpot,
                MetricKind::DecodeTime,
                MetricKind::ScheduleLag,
                MetricKind::LatencyFromIntendedSend,
                MetricKind::PromptTokens,
                MetricKind::OutputTokens,
                MetricKind::Reasoning,
                MetricKind::Rates,
                MetricKind::Concurrency,
            ],
        }
    }

    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        self.capabilities().check(NAME, config)?;
        let c = &config.constraints;
        match config.cooldown {
            Some(Transient::Seconds(_)) if c.max_seconds.is_none() => Err(unsupported(
                "cooldown.seconds without constraints.max_seconds",
                "a cooldown in seconds is counted back from the time limit; set max_seconds or give cooldown in requests",
            )),
            Some(Transient::Requests(_)) if c.max_requests.is_none() => Err(unsupported(
                "cooldown.requests without constraints.max_requests",
                "a cooldown in requests is counted back from the request limit; set max_requests or give cooldown in seconds",
            )),
            _ => Ok(()),
        }
    }

    async fn preflight(
        &self,
        config: &Config,
        options: &Preflight,
    ) -> Result<Vec<Warning>, EngineError> {
        // The requests load: tokenizer, data file, the first prompt of each length. Without
        // `samples`, so a run's up-front prompts are not built twice.
        let mut light = config.clone();
        light.data.samples = None;
        let mut warnings = Vec::new();
        for label in workload_labels(config) {
            let prepared = self.prepare(&light, label).await?;
            warnings.extend(prepared.warnings.iter().cloned());
        }
        if !options.offline {
            let client = bench_target::client(&config.target)?;
            warnings.extend(self.check_target(&client, config).await?.warnings);
        }
        Ok(warnings)
    }

    async fn run(&self, config: &Config, ctx: &RunContext) -> Result<Report, EngineError> {
        let url = bench_target::completion_url(&config.target);
        let probe_client = bench_target::client(&config.target)?;
        let checked = self.check_target(&probe_client, config).await?;
        let models_url = bench_target::models_url(&url);
        // The connection probe runs beside the run (see `connection`): until it decides,
        // every request gets a connection of its own.
        let (reuse, probe) = match self.options.reuse_connections {
            Some(reuse) => (Arc::new(connection::Reuse::fixed(reuse)), None),
            None if self.options.stream => {
                let body = workload::single_body(config, &self.body_options(), "Hello", 1);
                let reuse = Arc::new(connection::Reuse::undecided());
                let probe = connection::Probe::start(
                    probe_client,
                    url.clone(),
                    models_url.clone(),
                    body,
                    reuse.clone(),
                );
                (reuse, Some(probe))
            }
            None => (Arc::new(connection::Reuse::fixed(true)), None),
        };
        let shared = Arc::new(self.shared(config, ctx, url, reuse)?);
        let mut report = Report::new(NAME, config);
        report.warnings.extend(checked.warnings);
        if self.options.timestamps == Timestamps::Kernel {
            if let Some(why) = user_space_only(&config.target) {
                report.warnings.push(Warning {
                    code: "user_space_timestamps".to_owned(),
                    message: format!("{why}, so response times are taken when the client read them, not when they arrived: a busy client's own delay counts as server time; use a plain-HTTP target without a proxy for kernel receive times, or set engines.native.timestamps = \"user_space\" to choose this"),
                });
            }
        }
        let planned = config.plan();
        let of = planned.len();
        // Per workload: its requests, and the synchronous and throughput rates its sweep's rate
        // steps build on. Each is prepared before its first benchmark, off the runtime.
        let mut workloads: Vec<(String, Arc<workload::Workload>, SweepEnds)> = Vec::new();
        for step in &planned {
            if workloads.iter().any(|(label, ..)| *label == step.workload) {
                continue;
            }
            let prepared = self.prepare(config, step.workload.clone()).await?;
            for warning in &prepared.warnings {
                if !report.warnings.contains(warning) {
                    report.warnings.push(warning.clone());
                }
            }
            workloads.push((
                step.workload.clone(),
                Arc::new(prepared),
                SweepEnds::default(),
            ));
        }
        if config.profile.kind == ProfileKind::Search {
            let (label, requests, _) = workloads
                .first()
                .cloned()
                .expect("a search has its one workload");
            search::run(self, &shared, config, ctx, (label, requests), &mut report).await;
        }
        let planned = if config.profile.kind == ProfileKind::Search {
            Vec::new()
        } else {
            planned
        };
        if config.shard.is_some() {
            let clock = match bench_target::client(&config.target) {
                Ok(client) => shard::clock_offset(&client, &models_url).await,
                Err(_) => None,
            };
            report.shard = shard::run(config, clock);
        }
        for (index, step) in planned.iter().enumerate() {
            if ctx.cancel.is_cancelled() {
                break;
            }
            let (_, requests, sweep_ends) = workloads
                .iter_mut()
                .find(|(label, ..)| *label == step.workload)
                .expect("every planned workload was prepared");
            let requests = requests.clone();
            let strategy = match sweep_ends.strategy(&step.strategy) {
                Ok(strategy) => strategy,
                Err(warning) => {
                    tracing::warn!("benchmark {} of {of}: {}", index + 1, warning.message);
                    report.warnings.push(warning);
                    continue;
                }
            };
            let ran = self
                .benchmark(
                    &shared,
                    config,
                    ctx,
                    (index, of),
                    strategy.clone(),
                    step.workload.clone(),
                    requests,
                )
                .await;
            let measured = ran
                .benchmark
                .metrics
                .rates
                .requests_per_s
                .as_ref()
                .and_then(|r| r.successful);
            sweep_ends.observe(
                strategy.kind,
                // From first to last completion, so the ramp and the tail do not drag it down.
                match strategy.kind {
                    StrategyKind::Throughput => ran.steady_rate.or(measured),
                    _ => measured,
                },
            );
            if strategy.kind == StrategyKind::Throughput
                && config.profile.kind == ProfileKind::Sweep
            {
                if let Some(warning) = sweep_ends.inverted() {
                    tracing::warn!("benchmark {} of {of}: {}", index + 1, warning.message);
                    report.warnings.push(warning);
                }
            }
            report.benchmarks.push(ran.benchmark);
        }
        shared.timer.stop();
        // A run shorter than the probe waits for its answer here, so the report can say.
        if let Some(probe) = probe {
            if probe.finish(&ctx.cancel).await == Some(true) {
                report.warnings.push(Warning {
                    code: "connections_not_reused".to_owned(),
                    message: "the server closed its connection after a streamed response although it announced keep-alive (llama.cpp's server does), so every request opened its own connection; set engines.native.reuse_connections to choose".to_owned(),
                });
            }
        }
        for (_, requests, _) in &workloads {
            report.warnings.extend(requests.run_warnings());
        }
        if let Some(Err(message)) = shared.records.as_ref().map(records::Records::close) {
            report.warnings.push(Warning {
                code: "request_records_incomplete".to_owned(),
                message,
            });
        }
        report.interrupted = ctx.cancel.is_cancelled();
        report.ended_at = Timestamp::now();
        Ok(report)
    }
}

fn unsupported(what: &str, hint: &str) -> ConfigError {
    ConfigError::Unsupported {
        engine: NAME.to_owned(),
        what: what.to_owned(),
        hint: Some(hint.to_owned()),
    }
}

/// A warmup or cooldown as seconds or requests; a fraction is of `max_seconds` when set, else
/// of `max_requests`.
fn boundary(transient: Transient, config: &Config) -> Boundary {
    let c = &config.constraints;
    match transient {
        Transient::Seconds(s) => Boundary::Seconds(s),
        Transient::Requests(n) => Boundary::Requests(n),
        Transient::Fraction(f) => match (c.max_seconds, c.max_requests) {
            (Some(s), _) => Boundary::Seconds(f * s),
            (None, Some(n)) => Boundary::Requests((f * n as f64).round() as u64),
            (None, None) => Boundary::Seconds(0.0),
        },
    }
}

/// An engine failure with a message.
fn failed(message: String) -> EngineError {
    EngineError::Failed {
        engine: NAME.to_owned(),
        source: message.into(),
    }
}

/// The HTTP client's settings from `[target]`.
fn client_builder(config: &Config) -> Result<reqwest::ClientBuilder, EngineError> {
    Ok(bench_target::client_builder(&config.target)?)
}

/// The distinct workloads of a config's plan, in order.
fn workload_labels(config: &Config) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for step in config.plan() {
        if !labels.contains(&step.workload) {
            labels.push(step.workload);
        }
    }
    labels
}

impl NativeEngine {
    /// Runs one benchmark (`index` of `of`): the drain, then the load, then the progress event.
    #[allow(clippy::too_many_arguments)]
    async fn benchmark(
        &self,
        shared: &Arc<Shared>,
        config: &Config,
        ctx: &RunContext,
        (index, of): (usize, usize),
        strategy: Strategy,
        workload: String,
        requests: Arc<workload::Workload>,
    ) -> runner::Ran {
        let first_arrival_s = shard::first_arrival_s(
            config,
            strategy.kind,
            strategy.target_rate_per_s.unwrap_or(0.0),
        );
        let plan = Plan {
            index,
            of,
            // Sized to the server unless the config fixed the level.
            sized: strategy.kind == StrategyKind::Throughput
                && config.profile.max_concurrency.is_none(),
            strategy,
            workload,
            requests,
            constraints: config.constraints.clone(),
            warmup: config.warmup.map(|t| boundary(t, config)),
            cooldown: config.cooldown.map(|t| boundary(t, config)),
            rampup_s: config.profile.rampup_seconds.unwrap_or(0.0),
            first_arrival_s,
            seed: config.seed.wrapping_add(index as u64),
            slo: config.slo,
        };
        // The client cancelled its requests; the server may still be running them.
        let drained = shared
            .drainer
            .before(shared.endpoint.clients.now(), index, &shared.run_cancel)
            .await;
        // The server's metrics from just before the first request to just after the last.
        let scraping = match &shared.scraper {
            Some(scraper) => Some(scraper.begin().await),
            None => None,
        };
        // The shards of a run start their first benchmark together, after their drains.
        let late = match index {
            0 => shard::wait_for_start(config, &ctx.cancel).await,
            _ => None,
        };
        let mut ran = runner::run(shared, plan).await;
        ran.benchmark.warnings.extend(late);
        if let (Some(scraping), Some(settings)) = (scraping, &config.target.metrics) {
            let server = scraping.end(Some(ran.client_tokens)).await;
            ran.benchmark
                .warnings
                .extend(bench_scrape::warnings(&server, settings));
            ran.benchmark.server = Some(server);
        }
        shared
            .drainer
            .attach(drained, &mut ran.benchmark, ctx.cancel.is_cancelled());
        // After the drain is attached, so the event holds the benchmark as reported.
        ctx.progress
            .event(&bench_core::progress::ProgressEvent::BenchmarkFinished {
                index,
                benchmark: Box::new(ran.benchmark.clone()),
            });
        ran
    }

    fn body_options(&self) -> workload::BodyOptions<'_> {
        workload::BodyOptions {
            stream: self.options.stream,
            ignore_eos: self.options.ignore_eos,
            extra_body: &self.options.extra_body,
        }
    }

    /// The preflight's target check, with this engine's own one-token request.
    async fn check_target(
        &self,
        client: &reqwest::Client,
        config: &Config,
    ) -> Result<bench_target::Checked, EngineError> {
        let body = workload::single_body(config, &self.body_options(), "Hello", 1);
        Ok(bench_target::check(client, &config.target, body).await?)
    }

    /// Prepares the requests of one workload, off the runtime.
    async fn prepare(
        &self,
        config: &Config,
        label: String,
    ) -> Result<workload::Workload, EngineError> {
        let config = config.clone();
        let (stream, ignore_eos) = (self.options.stream, self.options.ignore_eos);
        let extra_body = self.options.extra_body.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let options = workload::BodyOptions {
                stream,
                ignore_eos,
                extra_body: &extra_body,
            };
            workload::Workload::new(&config, &label, &options)
        })
        .await
        .map_err(|e| EngineError::Failed {
            engine: NAME.to_owned(),
            source: Box::new(e),
        })??;
        Ok(prepared)
    }

    /// The own HTTP/1.1 client, when `timestamps = "kernel"` and the target is plain HTTP
    /// without a proxy; else reqwest carries the requests.
    fn wire_client(
        &self,
        config: &Config,
        url: &str,
        reuse: &Arc<connection::Reuse>,
        connections: &Arc<setup::Opened>,
    ) -> Result<Option<http1::Client>, EngineError> {
        if self.options.timestamps == Timestamps::UserSpace
            || user_space_only(&config.target).is_some()
        {
            return Ok(None);
        }
        let timeouts = &config.target.timeouts;
        http1::Client::new(http1::Settings {
            url,
            headers: &bench_target::request_headers(&config.target)?,
            connect_timeout: duration_from_secs(timeouts.connect_seconds),
            read_timeout: duration_from_secs(timeouts.read_seconds),
            reuse: reuse.clone(),
            opened: connections.clone(),
        })
        .map_err(failed)
    }

    fn shared(
        &self,
        config: &Config,
        ctx: &RunContext,
        url: String,
        reuse: Arc<connection::Reuse>,
    ) -> Result<Shared, EngineError> {
        let timeouts = &config.target.timeouts;
        let connections = Arc::new(setup::Opened::default());
        // No cap on connections: the pool grows with the profile's concurrency. The second
        // client keeps no idle connection: requests take it while reuse is off or undecided.
        let build = |idle: usize| {
            client_builder(config)?
                .pool_max_idle_per_host(idle)
                .connector_layer(setup::Timing(connections.clone()))
                .build()
                .map_err(|e| failed(format!("cannot build the HTTP client: {e}")))
        };
        let clients = connection::Clients {
            pooled: build(usize::MAX)?,
            fresh: build(0)?,
            reuse: reuse.clone(),
        };
        let records = match &self.options.request_records {
            Some(path) => Some(records::Records::create(path).map_err(|e| {
                failed(format!(
                    "cannot create the request records file {}: {e}",
                    path.display()
                ))
            })?),
            None => None,
        };
        let timer = bench_timer::Timer::start()
            .map_err(|e| failed(format!("cannot start the precise timer: {e}")))?;
        let wire = self.wire_client(config, &url, &reuse, &connections)?;
        let request_tag = format!("{:08x}", rand::random::<u32>());
        let drainer = bench_scrape::drain::Drainer::new(
            url.clone(),
            self.options.drain_timeout_seconds,
            "engines.native.drain_timeout_seconds",
            workload::single_body(config, &self.body_options(), "Hello", 1),
            format!("drain-probe-{request_tag}"),
        );
        Ok(Shared {
            endpoint: client::Endpoint {
                clients,
                wire,
                url,
                stream: self.options.stream,
                request_timeout: timeouts.request_seconds.map(duration_from_secs),
            },
            timer,
            clock: Clock::new(),
            progress: ctx.progress.clone(),
            run_cancel: ctx.cancel.clone(),
            live: ctx.live().cloned(),
            records,
            retry: runner::Retry {
                max: self.options.retries,
                on_status: self.options.retry_on_status.clone(),
            },
            drainer,
            transport: transport_of(&config.target),
            connections,
            scraper: bench_scrape::Scraper::new(config)?,
            request_tag,
        })
    }
}

/// Why the own HTTP/1.1 client (kernel receive times) cannot carry requests to `target`.
fn user_space_only(target: &bench_core::config::Target) -> Option<String> {
    if !bench_target::completion_url(target).starts_with("http://") {
        return Some(
            "the target uses TLS, whose records the own HTTP/1.1 client cannot map to reads"
                .to_owned(),
        );
    }
    bench_target::proxy_for(target).map(|proxy| format!("requests go through the proxy {proxy}"))
}

/// The transport block of `target`'s benchmarks before its counts: scheme, TLS, proxy.
pub(crate) fn transport_of(target: &bench_core::config::Target) -> bench_core::schema::Transport {
    let https = target
        .url
        .as_deref()
        .is_some_and(|u| u.trim().starts_with("https://"));
    bench_core::schema::Transport {
        http_versions: Default::default(),
        connections_opened: 0,
        connection_setup_ms: None,
        scheme: if https { "https" } else { "http" }.to_owned(),
        tls_verified: https.then_some(!target.tls.insecure_skip_verify),
        proxy: bench_target::proxy_for(target),
    }
}
