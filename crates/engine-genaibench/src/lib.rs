//! engine-genaibench: runs the real genai-bench as a subprocess, registered as `genai-bench`.
//!
//! One genai-bench invocation per benchmark point (a traffic scenario at one concurrency), so
//! a point that fails does not take the rest with it (genai-bench aborts the whole process when
//! a run has no successful request). `command` builds the command line, `parse` turns its
//! result folder into bench-core's schema; bench-subprocess runs the points.

mod command;
mod parse;

use std::path::PathBuf;

use bench_core::config::{Config, DataKind, OptionsTable, ProfileKind, Transient};
use bench_core::schema::{Report, Timestamp, Warning};
use bench_core::{
    BenchmarkEngine, Capabilities, ConfigError, EngineError, EngineRegistration, Feature,
    MetricKind, Preflight, RunContext,
};
use bench_subprocess::{CommandLine, Points, Tool};
use serde::Deserialize;

/// The registry name.
const NAME: &str = "genai-bench";

/// genai-bench as this engine knows it.
const TOOL: Tool = Tool {
    engine: NAME,
    package: "genai-bench",
    tested_version: "0.0.5",
    install_hint: "install it with `python3 -m venv .venv && .venv/bin/pip install genai-bench==0.0.5` and set [engines.genai-bench] command = \".venv/bin/genai-bench\"",
    code: "genai_bench",
};

bench_core::inventory::submit! {
    EngineRegistration {
        name: NAME,
        summary: "runs the real genai-bench (pip install genai-bench==0.0.5) as a subprocess; concurrency levels and traffic scenarios",
        build,
    }
}

/// `[engines.genai-bench]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    /// The genai-bench executable, or a command line that runs it
    /// (`["python3", "-m", "genai_bench.cli.cli"]`); default `genai-bench` from PATH.
    #[serde(default)]
    command: Option<CommandLine>,
    /// `--api-backend`: `vllm` (the default) or `sglang` send `ignore_eos`, so outputs have the
    /// requested length as with the native engine's default; `openai` does not (for servers
    /// that reject the field).
    #[serde(default = "default_backend")]
    api_backend: String,
    /// Fields merged into every request body (`--additional-request-params`).
    #[serde(default)]
    additional_request_params: serde_json::Map<String, serde_json::Value>,
    /// Arguments appended to every invocation, e.g. `["--server-engine", "vLLM"]`.
    #[serde(default)]
    extra_args: Vec<String>,
    /// Where genai-bench's result folders go; kept after the run. Default: a temporary
    /// directory, removed after the results are read.
    #[serde(default)]
    run_dir: Option<PathBuf>,
    /// Seconds each invocation may take beyond its time limit (start-up, reports, plots).
    #[serde(default = "overhead")]
    overhead_seconds: f64,
    /// Before each point, how long to wait at most for the server to finish what the point
    /// before left (`docs/config.md`, "Drained benchmarks").
    #[serde(default)]
    drain_timeout_seconds: bench_scrape::drain::DrainTimeout,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            command: None,
            api_backend: default_backend(),
            additional_request_params: serde_json::Map::new(),
            extra_args: Vec::new(),
            run_dir: None,
            overhead_seconds: overhead(),
            drain_timeout_seconds: Default::default(),
        }
    }
}

impl Options {
    /// The command line: program first.
    fn command(&self) -> Vec<String> {
        CommandLine::argv(self.command.as_ref(), "genai-bench")
    }
}

fn default_backend() -> String {
    "vllm".to_owned()
}

fn overhead() -> f64 {
    120.0
}

fn build(options: &OptionsTable) -> Result<Box<dyn BenchmarkEngine>, ConfigError> {
    let options: Options = options.parse(NAME)?;
    if !matches!(options.api_backend.as_str(), "openai" | "vllm" | "sglang") {
        return Err(ConfigError::InvalidValue {
            key: format!("engines.{NAME}.api_backend"),
            message: format!(
                "`{}` is not supported; use openai, vllm or sglang (vllm and sglang also send ignore_eos)",
                options.api_backend
            ),
        });
    }
    if !(options.overhead_seconds.is_finite() && options.overhead_seconds > 0.0) {
        return Err(ConfigError::InvalidValue {
            key: format!("engines.{NAME}.overhead_seconds"),
            message: format!(
                "{} must be a positive number of seconds",
                options.overhead_seconds
            ),
        });
    }
    Ok(Box::new(GenaiBench { options }))
}

#[derive(Debug)]
struct GenaiBench {
    options: Options,
}

fn unsupported(what: &str, hint: &str) -> ConfigError {
    TOOL.unsupported(what, hint)
}

#[bench_core::async_trait]
impl BenchmarkEngine for GenaiBench {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            profiles: vec![ProfileKind::Synchronous, ProfileKind::Concurrent],
            data: vec![DataKind::Scenario, DataKind::Synthetic],
            features: vec![
                Feature::Http1Only,
                Feature::CaFile,
                Feature::NoProxyFromEnv,
                Feature::MaxSeconds,
                Feature::MaxRequests,
                Feature::WarmupFraction,
                Feature::CooldownFraction,
                Feature::Tokenizer,
                Feature::LengthStdev,
                Feature::PrefixTokens,
                Feature::ManyWorkloads,
                Feature::ServerMetrics,
            ],
            metrics: vec![
                MetricKind::RequestLatency,
                MetricKind::Ttft,
                MetricKind::Tpot,
                MetricKind::DecodeTime,
                MetricKind::PromptTokens,
                MetricKind::OutputTokens,
                MetricKind::Rates,
            ],
        }
    }

    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        self.capabilities().check(NAME, config)?;
        // What the capabilities cannot say: genai-bench builds every prompt with the tokenizer,
        // and needs a limit per run.
        if config.data.tokenizer.is_none() {
            return Err(unsupported(
                "data without a tokenizer",
                "genai-bench builds every prompt with the model's tokenizer; give data.tokenizer (a local directory with tokenizer.json)",
            ));
        }
        TOOL.require_limit(config)
    }

    async fn preflight(
        &self,
        config: &Config,
        options: &Preflight,
    ) -> Result<Vec<Warning>, EngineError> {
        self.validate(config)?;
        TOOL.preflight(config, &self.options.command(), options.offline)
            .await
    }

    async fn run(&self, config: &Config, ctx: &RunContext) -> Result<Report, EngineError> {
        self.validate(config)?;
        let mut session = TOOL.begin(config, self.options.run_dir.as_deref()).await?;
        session.report.warnings.extend(command::warnings(config));
        let logs = session.folder().join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| {
            TOOL.failed(format!(
                "cannot create the log folder {}: {e}",
                logs.display()
            ))
        })?;
        // A key is handed over through the environment to genai-bench's own Python, never on
        // a command line; without that Python there is no safe way, so the run stops.
        let python = match session.key() {
            Some(_) => Some(bench_subprocess::python_of(&self.options.command()).ok_or_else(|| {
                EngineError::Prerequisite {
                    message: format!(
                        "cannot find the Python that runs `{}`, which the API key in ${} must be handed to without putting it on a command line that every user of this host can read; set engines.genai-bench.command to genai-bench's console script or to [\"<its python>\", \"-m\", \"genai_bench.cli.cli\"]",
                        self.options.command().join(" "),
                        config.target.api_key_env
                    ),
                }
            })?),
            None => None,
        };
        let mut points = Points::new(config, &TOOL, self.options.drain_timeout_seconds)?;
        while let Some(point) = points.next(ctx, &mut session.report).await {
            let genai_point = command::Point {
                scenario: command::scenario_for(&point.workload, &config.data)
                    .unwrap_or_else(|| point.workload.clone()),
                concurrency: point.strategy.streams.unwrap_or(1),
            };
            let name = format!("point{}", point.index);
            let handover = match (session.key(), &python) {
                (Some(key), Some(python)) => command::Key::Handed { key, python },
                _ => command::Key::None,
            };
            let invocation = command::build(
                config,
                &self.options,
                &genai_point,
                &name,
                session.folder(),
                handover,
            );
            let results = session.folder().join(&name);
            let limit = command::minutes(config.constraints.max_seconds) as f64 * 60.0;
            // A limit past what a `Duration` holds (max_seconds = 1e300) is no timeout at all.
            let timeout = bench_core::config::limits::duration_from_secs(
                limit + self.options.overhead_seconds,
            );
            let mut started: Option<Timestamp> = None;
            let spawned = Timestamp::now();
            // genai-bench writes the key in plain text into `experiment_metadata.json` (`cmd`)
            // and its log, which stay on disk: the session blanks them.
            let finished = session
                .invoke(
                    &invocation,
                    session.folder(),
                    timeout,
                    &ctx.cancel,
                    |line| {
                        tracing::debug!(target: "genai_bench", "{line}");
                        if started.is_none() && line.contains("Starting benchmark with concurrency")
                        {
                            started = Some(Timestamp::now());
                        }
                    },
                )
                .await?;
            let context = parse::Context {
                point: &point,
                started: started.unwrap_or(spawned),
                warmup_ratio: match config.warmup {
                    Some(Transient::Fraction(f)) => f,
                    _ => 0.0,
                },
                cooldown_ratio: match config.cooldown {
                    Some(Transient::Fraction(f)) => f,
                    _ => 0.0,
                },
                max_requests: config.constraints.max_requests,
                max_seconds: config.constraints.max_seconds,
                secrets: session.secrets(),
                live: points.live(),
            };
            let parsed = parse::folder(&results, &context);
            let parsed = session.parsed(parsed);
            let benchmark =
                bench_subprocess::settle(&TOOL, &point, &finished, timeout, spawned, parsed)?;
            points
                .finished(&point, benchmark, config, ctx, &mut session.report)
                .await;
        }
        Ok(session.end(points, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_core::config::ConfigFormat;

    /// An https config genai-bench could run, with `tls` lines under `[target.tls]`.
    fn config(tls: &str) -> Config {
        Config::load(
            &format!(
                "benchmark_engine = \"genai-bench\"\n[target]\nurl = \"https://127.0.0.1:8443\"\nmodel = \"m\"\n\
                 [target.tls]\n{tls}\n[profile]\nkind = \"concurrent\"\nstreams = [1]\n\
                 [constraints]\nmax_requests = 5\n[data]\nkind = \"scenario\"\nscenario = \"D(1,1)\"\ntokenizer = \"/tok\"\n"
            ),
            ConfigFormat::Toml,
            &[],
        )
        .unwrap()
    }

    fn engine() -> GenaiBench {
        GenaiBench {
            options: Options::default(),
        }
    }

    #[test]
    fn tls_keys_genai_bench_cannot_honour_are_refused_naming_the_key() {
        for (tls, key) in [
            (
                "client_cert = \"/c.pem\"\nclient_key = \"/c.key\"",
                "target.tls.client_cert",
            ),
            (
                "server_name = \"llm.example.com\"",
                "target.tls.server_name",
            ),
            (
                "insecure_skip_verify = true",
                "target.tls.insecure_skip_verify",
            ),
        ] {
            let error = engine().validate(&config(tls)).unwrap_err();
            assert!(
                matches!(error, ConfigError::Unsupported { .. }),
                "{key}: {error:?}"
            );
            let message = error.to_string();
            assert!(message.contains(key), "{key}: {message}");
        }
    }

    #[test]
    fn a_ca_file_is_accepted() {
        engine().validate(&config("ca_file = \"/ca.pem\"")).unwrap();
        engine().validate(&config("")).unwrap();
    }
}
