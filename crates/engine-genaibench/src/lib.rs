//! engine-genaibench: runs the real genai-bench as a subprocess, registered as `genai-bench`.
//!
//! One genai-bench invocation per benchmark point (a traffic scenario at one concurrency), so
//! a point that fails does not take the rest with it (genai-bench aborts the whole process when
//! a run has no successful request). `command` builds the command line, `process` runs it,
//! `parse` turns its result folder into bench-core's schema.

mod command;
mod install;
mod parse;
mod process;

use std::path::{Path, PathBuf};

use bench_core::config::{
    Api, Config, DataKind, OptionsTable, PlannedStrategy, ProfileKind, Transient,
};
use bench_core::progress::ProgressEvent;
use bench_core::schema::{
    Benchmark, Metrics, Rates, Report, RequestTotals, StopReason, Timestamp, Warning, Window,
};
use bench_core::{
    BenchmarkEngine, Capabilities, ConfigError, EngineError, EngineRegistration, MetricKind,
    Preflight, RunContext,
};
use serde::Deserialize;

use crate::command::Point;

/// The registry name.
const NAME: &str = "genai-bench";
/// The genai-bench release this adapter was built and tested against.
const TESTED_VERSION: &str = "0.0.5";
/// How to get it.
const INSTALL_HINT: &str = "install it with `python3 -m venv .venv && .venv/bin/pip install genai-bench==0.0.5` and set [engines.genai-bench] command = \".venv/bin/genai-bench\"";

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
        }
    }
}

impl Options {
    /// The command line: program first.
    fn command(&self) -> Vec<String> {
        match &self.command {
            Some(CommandLine::Program(p)) => vec![p.clone()],
            Some(CommandLine::Argv(argv)) if !argv.is_empty() => argv.clone(),
            _ => vec!["genai-bench".to_owned()],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CommandLine {
    Program(String),
    Argv(Vec<String>),
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
    ConfigError::Unsupported {
        engine: NAME.to_owned(),
        what: what.to_owned(),
        hint: Some(format!("{hint}, or use benchmark_engine = \"native\"")),
    }
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
        if !self.capabilities().profiles.contains(&config.profile.kind) {
            return Err(unsupported(
                &format!("profile.kind = `{}`", config.profile.kind.name()),
                "genai-bench only runs closed-loop concurrency levels; use profile.kind = `synchronous` or `concurrent`",
            ));
        }
        if config.data.kind == DataKind::File {
            return Err(unsupported(
                "data.kind = `file`",
                "this adapter runs genai-bench's traffic scenarios; give data.kind = `scenario` or `synthetic`",
            ));
        }
        self.capabilities().check(NAME, config)?;
        let c = &config.constraints;
        let tls = &config.target.tls;
        let checks: [(bool, &str, &str); 13] = [
            (
                tls.client_cert.is_some(),
                "target.tls.client_cert (mutual TLS)",
                "genai-bench has no option for a client certificate; remove it",
            ),
            (
                tls.server_name.is_some(),
                "target.tls.server_name",
                "genai-bench connects to the URL's host by name; put that name in target.url",
            ),
            (
                tls.insecure_skip_verify,
                "target.tls.insecure_skip_verify",
                "genai-bench always verifies certificates; give the server's CA in target.tls.ca_file",
            ),
            (
                c.max_errors.is_some(),
                "constraints.max_errors",
                "genai-bench has no error limit; remove it",
            ),
            (
                c.max_error_rate.is_some(),
                "constraints.max_error_rate",
                "genai-bench has no error-rate limit; remove it",
            ),
            (
                c.over_saturation
                    .is_some_and(|o| o.mode != bench_core::config::SaturationMode::Off),
                "constraints.over_saturation",
                "genai-bench cannot detect over-saturation; remove it",
            ),
            (
                matches!(
                    config.warmup,
                    Some(Transient::Seconds(_) | Transient::Requests(_))
                ),
                "warmup in seconds or requests",
                "genai-bench only drops a fraction of requests; give warmup = { fraction = ... }",
            ),
            (
                matches!(
                    config.cooldown,
                    Some(Transient::Seconds(_) | Transient::Requests(_))
                ),
                "cooldown in seconds or requests",
                "genai-bench only drops a fraction of requests; give cooldown = { fraction = ... }",
            ),
            (
                config.profile.rampup_seconds.is_some(),
                "profile.rampup_seconds",
                "genai-bench starts every stream at once; remove it",
            ),
            (
                config.slo.is_some(),
                "slo",
                "this adapter does not compute goodput; remove [slo]",
            ),
            (
                config.target.api == Api::Completions,
                "target.api = completions",
                "genai-bench only sends chat completions; set target.api = \"chat\"",
            ),
            (
                !config.target.headers.is_empty(),
                "target.headers",
                "genai-bench sends no custom headers; remove them",
            ),
            (
                config.data.samples.is_some(),
                "data.samples",
                "genai-bench draws a new prompt per request; remove samples",
            ),
        ];
        if let Some((_, what, hint)) = checks.iter().find(|(bad, ..)| *bad) {
            return Err(unsupported(what, hint));
        }
        if config.data.approximate == Some(true) || config.data.tokenizer.is_none() {
            return Err(unsupported(
                "data without a tokenizer",
                "genai-bench builds every prompt with the model's tokenizer; give data.tokenizer (a local directory with tokenizer.json)",
            ));
        }
        if config.data.kind == DataKind::Synthetic
            && command::scenario_for("", &config.data).is_none()
        {
            return Err(unsupported(
                "synthetic lengths with _min/_max",
                "genai-bench's traffic scenarios are D(in,out), N(mean,std)/(mean,std) and U(min,max)/(min,max); give data.kind = \"scenario\" with one of them",
            ));
        }
        if c.max_seconds.is_none() && c.max_requests.is_none() {
            return Err(ConfigError::MissingKey {
                key: "constraints.max_requests".to_owned(),
                hint: Some("genai-bench needs a limit per run".to_owned()),
            });
        }
        Ok(())
    }

    async fn preflight(
        &self,
        config: &Config,
        options: &Preflight,
    ) -> Result<Vec<Warning>, EngineError> {
        self.validate(config)?;
        let mut warnings = Vec::new();
        let program = self.options.command().join(" ");
        match install::version(&self.options.command()).await {
            Ok(Some(v)) if v != TESTED_VERSION => {
                return Err(EngineError::Prerequisite {
                    message: format!("`{program}` runs genai-bench {v}, but this adapter reads the output of genai-bench {TESTED_VERSION} and is tested with it only; {INSTALL_HINT}"),
                })
            }
            Ok(Some(_)) => {}
            Ok(None) => warnings.push(Warning {
                code: "genai_bench_version".to_owned(),
                message: format!("`{program}` is not a Python program whose interpreter could be found (a wrapper script?), so its genai-bench version is not known before it runs; the report warns if it is not {TESTED_VERSION}"),
            }),
            Err(install::Problem::NotFound(_)) => {
                return Err(EngineError::Prerequisite {
                    message: format!("genai-bench was not found: `{program}` (engines.{NAME}.command) is not on PATH or not a file; {INSTALL_HINT}"),
                })
            }
            Err(install::Problem::NoPackage { detail, .. }) => {
                return Err(EngineError::Prerequisite {
                    message: format!("`{program}` (engines.{NAME}.command) is not a genai-bench installation: {detail}; {INSTALL_HINT}"),
                })
            }
        }
        // genai-bench loads the tokenizer from a local directory holding tokenizer.json.
        if let Some(tokenizer) = &config.data.tokenizer {
            let path = Path::new(tokenizer);
            let file = if path.is_dir() {
                path.join("tokenizer.json")
            } else {
                path.to_owned()
            };
            if !file.is_file() {
                return Err(EngineError::Config(ConfigError::InvalidValue {
                    key: "data.tokenizer".to_owned(),
                    message: format!("`{tokenizer}` holds no tokenizer.json; give the model directory (relative paths in a config file are relative to its folder)"),
                }));
            }
        }
        if !options.offline {
            warnings.extend(check_target(config).await?);
        }
        Ok(warnings)
    }

    async fn run(&self, config: &Config, ctx: &RunContext) -> Result<Report, EngineError> {
        self.validate(config)?;
        // Before the first invocation, so a target that is down or not an OpenAI server is
        // refused in seconds, not found out by genai-bench after its start-up.
        let checked = check_target(config).await?;
        let mut report = Report::new(NAME, config);
        report.warnings.extend(checked);
        report.warnings.extend(command::warnings(config));
        let key = std::env::var(&config.target.api_key_env)
            .ok()
            .filter(|k| !config.target.api_key_env.is_empty() && !k.is_empty());
        let secrets: Vec<String> = key.iter().cloned().collect();
        let (run_dir, temporary) = match &self.options.run_dir {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir().join(format!(
                    "llm-bench-genai-bench-{}-{}",
                    std::process::id(),
                    Timestamp::now().unix_micros()
                )),
                true,
            ),
        };
        std::fs::create_dir_all(run_dir.join("logs")).map_err(|e| {
            failed(format!(
                "cannot create the run directory {}: {e}",
                run_dir.display()
            ))
        })?;
        // A key is handed over through the environment to genai-bench's own Python, never on
        // a command line; without that Python there is no safe way, so the run stops.
        let python = match &key {
            Some(_) => Some(install::python_of(&self.options.command()).ok_or_else(|| {
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
        let planned = config.plan();
        let of = planned.len();
        let mut versions_checked = false;
        for (index, step) in planned.iter().enumerate() {
            if ctx.cancel.is_cancelled() {
                break;
            }
            let PlannedStrategy::Fixed(strategy) = &step.strategy else {
                continue; // validate() admits no rate profiles
            };
            let point = Point {
                scenario: command::scenario_for(&step.workload, &config.data)
                    .unwrap_or_else(|| step.workload.clone()),
                concurrency: strategy.streams.unwrap_or(1),
            };
            ctx.progress.event(&ProgressEvent::BenchmarkStarted {
                index,
                of: Some(of),
                strategy: strategy.clone(),
                workload: step.workload.clone(),
            });
            let folder = format!("point{index}");
            let handover = match (&key, &python) {
                (Some(key), Some(python)) => command::Key::Handed { key, python },
                _ => command::Key::None,
            };
            let invocation =
                command::build(config, &self.options, &point, &folder, &run_dir, handover);
            let limit = command::minutes(config.constraints.max_seconds) as f64 * 60.0;
            // A limit past what a `Duration` holds (max_seconds = 1e300) is no timeout at all.
            let timeout = bench_core::config::limits::duration_from_secs(
                limit + self.options.overhead_seconds,
            );
            let mut started: Option<Timestamp> = None;
            let spawned = Timestamp::now();
            let finished = process::run(
                &invocation,
                &run_dir,
                timeout,
                &ctx.cancel,
                &secrets,
                |line| {
                    tracing::debug!(target: "genai_bench", "{line}");
                    if started.is_none() && line.contains("Starting benchmark with concurrency") {
                        started = Some(Timestamp::now());
                    }
                },
            )
            .await
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    EngineError::Config(ConfigError::InvalidValue {
                        key: format!("engines.{NAME}.command"),
                        message: format!("`{}` was not found; {INSTALL_HINT}", invocation.program),
                    })
                } else {
                    failed(format!("cannot start `{}`: {e}", invocation.program))
                }
            })?;
            scrub(&invocation.results, &run_dir.join("logs"), &secrets);
            let context = parse::Context {
                index,
                strategy: strategy.clone(),
                workload: step.workload.clone(),
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
                secrets: &secrets,
            };
            let parsed = parse::folder(&invocation.results, &context);
            let benchmark = match (parsed, finished.stopped) {
                (Ok(parsed), stopped) => {
                    if !versions_checked {
                        versions_checked = true;
                        if let Some(v) = parsed.version.as_deref().filter(|v| *v != TESTED_VERSION)
                        {
                            report.warnings.push(Warning {
                                code: "genai_bench_version".to_owned(),
                                message: format!("genai-bench {v} ran; this adapter is tested with {TESTED_VERSION}"),
                            });
                        }
                    }
                    let mut b = parsed.benchmark;
                    if stopped == Some(process::Stopped::Cancelled) {
                        b.stopped_by = Some(StopReason::Interrupted);
                    }
                    b
                }
                (Err(_), Some(process::Stopped::Cancelled)) => empty(
                    index,
                    strategy,
                    &step.workload,
                    spawned,
                    Some(StopReason::Interrupted),
                    "interrupted before genai-bench wrote results".to_owned(),
                ),
                (Err(why), stopped) => {
                    let how = match (stopped, finished.status.code()) {
                        (Some(process::Stopped::Timeout), _) => format!("was stopped after {:.0} s (its time limit plus engines.{NAME}.overhead_seconds)", timeout.as_secs_f64()),
                        (_, Some(code)) => format!("exited with status {code}"),
                        (_, None) => "was killed by a signal".to_owned(),
                    };
                    let tail = finished.tail.join("\n");
                    if index == 0 && finished.status.code() == Some(2) {
                        // A usage error: every point would fail the same way.
                        return Err(failed(format!("genai-bench {how} ({why}); a usage error, so the installed genai-bench may not be {TESTED_VERSION} ({INSTALL_HINT}). Its last output:\n{tail}")));
                    }
                    tracing::warn!("genai-bench point {} failed: {how}: {why}", index + 1);
                    empty(index, strategy, &step.workload, spawned, None, format!("genai-bench {how} and left no usable results ({why}); its last output:\n{tail}"))
                }
            };
            ctx.progress.event(&ProgressEvent::BenchmarkFinished {
                index,
                benchmark: Box::new(benchmark.clone()),
            });
            report.benchmarks.push(benchmark);
        }
        if temporary {
            let _ = std::fs::remove_dir_all(&run_dir);
        } else {
            report.warnings.push(Warning {
                code: "genai_bench_files".to_owned(),
                message: format!(
                    "genai-bench's own results, logs and plots are in {}",
                    run_dir.display()
                ),
            });
        }
        report.interrupted = ctx.cancel.is_cancelled();
        report.ended_at = Timestamp::now();
        Ok(report)
    }
}

/// A benchmark that measured nothing, with the reason as a warning.
fn empty(
    index: usize,
    strategy: &bench_core::config::Strategy,
    workload: &str,
    at: Timestamp,
    stopped_by: Option<StopReason>,
    why: String,
) -> Benchmark {
    Benchmark {
        index,
        strategy: strategy.clone(),
        workload: workload.to_owned(),
        window: Window {
            start: at,
            end: at,
            duration_s: 0.0,
        },
        requests: RequestTotals::default(),
        errors: Vec::new(),
        stopped_by,
        warnings: vec![Warning {
            code: "genai_bench_failed".to_owned(),
            message: why,
        }],
        metrics: Metrics {
            request_latency_ms: None,
            ttft_ms: None,
            itl_ms: None,
            tpot_ms: None,
            decode_time_ms: None,
            schedule_lag_ms: None,
            latency_from_intended_send_ms: None,
            prompt_tokens: None,
            output_tokens: None,
            rates: Rates {
                requests_per_s: None,
                output_tokens_per_s: None,
                total_tokens_per_s: None,
                concurrency: None,
            },
        },
        goodput: None,
        drain: None,
        transport: None,
    }
}

/// The shared target check, with a one-token streamed chat request (what genai-bench sends).
async fn check_target(config: &Config) -> Result<Vec<Warning>, EngineError> {
    let target = &config.target;
    let client = bench_target::client(target)?;
    let checked =
        bench_target::check(&client, target, bench_target::probe_body(target, true)).await?;
    Ok(checked.warnings)
}

fn failed(message: String) -> EngineError {
    EngineError::Failed {
        engine: NAME.to_owned(),
        source: message.into(),
    }
}

/// genai-bench writes the API key in plain text into `experiment_metadata.json` (`cmd`) and its
/// log; blank it there, since those files stay on disk.
fn scrub(results: &Path, logs: &Path, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    let files = [results, logs]
        .into_iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "log"));
    for file in files {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let clean = process::blank(&text, secrets);
            if clean != text {
                let _ = std::fs::write(&file, clean);
            }
        }
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
    fn tls_keys_genai_bench_cannot_honour_are_refused_naming_the_key_and_the_native_engine() {
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
            assert!(
                message.contains("benchmark_engine = \"native\""),
                "{key}: {message}"
            );
        }
    }

    #[test]
    fn a_ca_file_is_accepted() {
        engine().validate(&config("ca_file = \"/ca.pem\"")).unwrap();
        engine().validate(&config("")).unwrap();
    }
}
