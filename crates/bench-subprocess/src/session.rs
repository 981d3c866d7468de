//! One run of a tool, from the target check to the report: what every subprocess engine's
//! `run` does around its own mapping and parsing.

use std::path::Path;
use std::time::Duration;

use bench_core::config::Config;
use bench_core::schema::{Benchmark, Report};
use bench_core::{CancelToken, ConfigError, EngineError, RunContext};

use crate::process::{self, Finished, Invocation};
use crate::{secrets, Points, RunFolder, Tool};

/// What reading one point's results gave: its benchmark and the tool's release that wrote them.
#[derive(Debug)]
pub struct Parsed {
    /// The point's benchmark.
    pub benchmark: Benchmark,
    /// The tool's release, when its results say.
    pub version: Option<String>,
}

/// A run in progress: its report, the API key, the run folder, the release that ran.
#[derive(Debug)]
pub struct Session {
    tool: Tool,
    /// The report, filled point by point (see [`Points`]).
    pub report: Report,
    key: Option<String>,
    secrets: Vec<String>,
    folder: RunFolder,
    ran: Option<Option<String>>,
}

impl Tool {
    /// Starts a run of `config`: the target checked before the tool's slow start-up, the
    /// report begun, the key looked up, the run folder made (`run_dir`, else temporary).
    pub async fn begin(
        &self,
        config: &Config,
        run_dir: Option<&Path>,
    ) -> Result<Session, EngineError> {
        let checked = crate::check_target(config, true).await?;
        let mut report = Report::new(self.engine, config);
        report.warnings.extend(checked);
        let key = secrets::api_key(&config.target);
        let secrets = key.iter().cloned().collect();
        let folder = RunFolder::create(self, run_dir)?;
        Ok(Session {
            tool: *self,
            report,
            key,
            secrets,
            folder,
            ran: None,
        })
    }

    /// Refuses a config with neither `max_seconds` nor `max_requests`: a tool run needs one.
    pub fn require_limit(&self, config: &Config) -> Result<(), ConfigError> {
        let c = &config.constraints;
        if c.max_seconds.is_none() && c.max_requests.is_none() {
            return Err(ConfigError::MissingKey {
                key: "constraints.max_requests".to_owned(),
                hint: Some(format!(
                    "{} needs a limit per benchmark (or constraints.max_seconds)",
                    self.engine
                )),
            });
        }
        Ok(())
    }
}

impl Session {
    /// The API key, to hand over through the environment.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The secrets to blank from what the tool prints and leaves.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The run folder.
    pub fn folder(&self) -> &Path {
        self.folder.path()
    }

    /// Runs one invocation in `cwd` (see [`process::run`]); afterwards the secrets are blanked
    /// from every file of the run folder. An error means it could not start: a missing program
    /// names `engines.<name>.command` and the install hint.
    pub async fn invoke(
        &self,
        invocation: &Invocation,
        cwd: &Path,
        timeout: Duration,
        cancel: &CancelToken,
        on_line: impl FnMut(&str),
    ) -> Result<Finished, EngineError> {
        let finished = process::run(invocation, cwd, timeout, cancel, &self.secrets, on_line)
            .await
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    EngineError::Config(ConfigError::InvalidValue {
                        key: format!("engines.{}.command", self.tool.engine),
                        message: format!(
                            "`{}` was not found; {}",
                            invocation.program, self.tool.install_hint
                        ),
                    })
                } else {
                    self.tool
                        .failed(format!("cannot start `{}`: {e}", invocation.program))
                }
            })?;
        secrets::scrub_files(&[self.folder.path()], &self.secrets);
        Ok(finished)
    }

    /// The benchmark of what a point's results gave, noting the first release that ran.
    pub fn parsed(&mut self, parsed: Result<Parsed, String>) -> Result<Benchmark, String> {
        parsed.map(|parsed| {
            self.ran.get_or_insert(parsed.version);
            parsed.benchmark
        })
    }

    /// Ends the run: the report closed, a warning when another release ran, the run folder
    /// removed (or named when kept).
    pub fn end(mut self, points: Points, ctx: &RunContext) -> Report {
        points.end(ctx, &mut self.report);
        let ran = self.ran.take().flatten();
        self.report
            .warnings
            .extend(self.tool.version_warning(ran.as_deref()));
        self.report.warnings.extend(self.folder.close(&self.tool));
        self.report
    }
}

impl Invocation {
    /// The engine's `command` (program first) with `args` after its own arguments.
    pub fn of(mut command: Vec<String>, args: Vec<String>) -> Self {
        let program = if command.is_empty() {
            String::new()
        } else {
            command.remove(0)
        };
        Self {
            program,
            args: command.into_iter().chain(args).collect(),
            env: Vec::new(),
        }
    }
}
