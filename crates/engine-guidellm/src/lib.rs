//! engine-guidellm: runs the real GuideLLM (`guidellm run`) as a subprocess, registered as
//! `guidellm`.
//!
//! One GuideLLM invocation per benchmark point, driven by bench-subprocess like every
//! subprocess engine: a sweep runs as its synchronous and throughput points, then constant or
//! Poisson points at the rates bench-core derives from them (GuideLLM's own linear spacing).
//! `command` maps a config onto GuideLLM's command line; `parse` reads its JSON report.

mod command;
mod parse;

use std::path::PathBuf;

use bench_core::config::{Config, OptionsTable};
use bench_core::progress::ProgressEvent;
use bench_core::schema::{Report, Timestamp, Warning};
use bench_core::{
    BenchmarkEngine, Capabilities, ConfigError, EngineError, EngineRegistration, Preflight,
    RunContext,
};
use bench_subprocess::process::Invocation;
use bench_subprocess::{CommandLine, Points, Tool};
use serde::Deserialize;

/// The registry name.
const NAME: &str = "guidellm";

/// GuideLLM as this engine knows it.
const TOOL: Tool = Tool {
    engine: NAME,
    package: "guidellm",
    tested_version: "0.8.1",
    install_hint: "install it with `python3 -m venv .venv && .venv/bin/pip install guidellm==0.8.1` (docs/guidellm.md shows a 2 GB install without CUDA) and set [engines.guidellm] command = \".venv/bin/guidellm\"",
    code: "guidellm",
};

bench_core::inventory::submit! {
    EngineRegistration {
        name: NAME,
        summary: "runs the real GuideLLM (pip install guidellm==0.8.1) as a subprocess; every profile, synthetic data with a local tokenizer, data files",
        build,
    }
}

/// `[engines.guidellm]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    /// The `guidellm` executable, or a command line that runs it; default `guidellm` from PATH.
    #[serde(default)]
    command: Option<CommandLine>,
    /// Arguments appended to every invocation.
    #[serde(default)]
    extra_args: Vec<String>,
    /// Where GuideLLM's reports and output go; kept after the run. Default: a temporary
    /// folder, removed after the reports are read.
    #[serde(default)]
    run_dir: Option<PathBuf>,
    /// Seconds each invocation may take beyond its time limit (start-up, data, reports).
    #[serde(default)]
    overhead_seconds: Option<f64>,
    /// Before each point, how long to wait at most for the server to finish what the point
    /// before left (`docs/config.md`, "Drained benchmarks").
    #[serde(default)]
    drain_timeout_seconds: bench_scrape::drain::DrainTimeout,
}

/// Seconds an invocation may take beyond its time limit by default: GuideLLM's start-up
/// (imports, spawning its workers, building the data) takes 10-20 s on a small machine.
const OVERHEAD_SECONDS: f64 = 120.0;

impl Options {
    fn command(&self) -> Vec<String> {
        CommandLine::argv(self.command.as_ref(), "guidellm")
    }
}

fn build(options: &OptionsTable) -> Result<Box<dyn BenchmarkEngine>, ConfigError> {
    let options: Options = options.parse(NAME)?;
    if let Some(s) = options.overhead_seconds {
        if !(s.is_finite() && s > 0.0) {
            return Err(ConfigError::InvalidValue {
                key: format!("engines.{NAME}.overhead_seconds"),
                message: format!("{s} must be a positive number of seconds"),
            });
        }
    }
    Ok(Box::new(Guidellm { options }))
}

#[derive(Debug)]
struct Guidellm {
    options: Options,
}

#[bench_core::async_trait]
impl BenchmarkEngine for Guidellm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        command::capabilities()
    }

    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        self.capabilities().check(NAME, config)?;
        command::validate(config, &TOOL)
    }

    async fn preflight(
        &self,
        config: &Config,
        options: &Preflight,
    ) -> Result<Vec<Warning>, EngineError> {
        self.validate(config)?;
        command::check_files(config)?;
        TOOL.preflight(config, &self.options.command(), options.offline)
            .await
    }

    async fn run(&self, config: &Config, ctx: &RunContext) -> Result<Report, EngineError> {
        self.validate(config)?;
        let mut session = TOOL.begin(config, self.options.run_dir.as_deref()).await?;
        session.report.warnings.extend(command::warnings(config));
        let overhead = self.options.overhead_seconds.unwrap_or(OVERHEAD_SECONDS);
        let mut points = Points::new(config, &TOOL, self.options.drain_timeout_seconds)?;
        while let Some(point) = points.next(ctx, &mut session.report).await {
            let dir = session.folder().join(format!("point{}", point.index));
            std::fs::create_dir_all(&dir).map_err(|e| {
                TOOL.failed(format!("cannot create the folder {}: {e}", dir.display()))
            })?;
            let output = dir.join("report.json");
            let args = command::args(config, &point, &output, &self.options.extra_args);
            let invocation = command::with_environment(
                Invocation::of(self.options.command(), args),
                config,
                session.key(),
            );
            let timeout = bench_core::config::limits::duration_from_secs(
                config.constraints.max_seconds.unwrap_or(0.0) + overhead,
            );
            let spawned = Timestamp::now();
            let finished = session
                .invoke(&invocation, &dir, timeout, &ctx.cancel, |line| {
                    tracing::debug!(target: "guidellm", "{line}");
                    if let Some(update) = parse::progress(line, point.index) {
                        ctx.progress.event(&ProgressEvent::Update(update));
                    }
                })
                .await?;
            let parsed = std::fs::read_to_string(&output)
                .map_err(|e| format!("GuideLLM wrote no report {}: {e}", output.display()))
                .and_then(|text| parse::report(&text, &point, session.secrets(), points.live()));
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
