//! What llm-bench's engines that run an external benchmark tool share, so that such an engine
//! is only the mapping of a config onto the tool's command line and the parsing of its results:
//!
//! - [`process`]: one invocation in its own process group, output streamed with secrets
//!   blanked, stopped on a timeout or a cancellation by signalling the whole group;
//! - [`secrets`]: the API key, handed over through the environment (or, for a tool that takes
//!   it only as an option, through [`secrets::python_launcher`]) and never on a command line;
//! - the run folder: where the tool writes, kept or temporary;
//! - [`Points`]: the plan, one invocation per point, with progress, cancellation and
//!   sweeps; [`settle`]: how an invocation ended, as a benchmark;
//! - [`Tool`]: the tool's name, tested release and install hint, for words that name the fix;
//!   its [`Tool::preflight`] checks the installation, the tokenizer and the target, and its
//!   [`Tool::begin`] starts a [`Session`]: the report, the key, the run folder, each
//!   invocation run with secrets scrubbed from what it leaves, and the end of the run.
//!
//! Per-request results become a benchmark through `bench_core::measure`.

mod driver;
mod folder;
pub mod process;
mod python;
pub mod secrets;
mod session;

use bench_core::config::{Config, Target};
use bench_core::schema::Warning;
use bench_core::{ConfigError, EngineError};

pub use driver::{settle, Point, Points};
use folder::RunFolder;
pub use python::python_of;
pub use session::{Parsed, Session};

/// An external benchmark tool as its engine presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The engine's registry name, which is also how the tool is named in messages.
    pub engine: &'static str,
    /// The Python package whose version is checked (`genai-bench`, `guidellm`).
    pub package: &'static str,
    /// The release the engine reads the output of and is tested with.
    pub tested_version: &'static str,
    /// How to install it, as the end of an error message.
    pub install_hint: &'static str,
    /// The prefix of the engine's warning codes (`genai_bench`).
    pub code: &'static str,
}

impl Tool {
    /// An engine failure with a message.
    pub fn failed(&self, message: String) -> EngineError {
        EngineError::Failed {
            engine: self.engine.to_owned(),
            source: message.into(),
        }
    }

    /// The refusal of something in the config the tool cannot do, with the fix (the
    /// registry adds which engines can run the config instead).
    pub fn unsupported(&self, what: &str, hint: &str) -> ConfigError {
        ConfigError::Unsupported {
            engine: self.engine.to_owned(),
            what: what.to_owned(),
            hint: Some(hint.to_owned()),
        }
    }

    /// The preflight of the installation `command` (the config's `engines.<name>.command`)
    /// runs: refused when it is missing, is no installation of the package, or holds another
    /// release; a warning when the release cannot be told before it runs (a wrapper script).
    async fn check_installation(&self, command: &[String]) -> Result<Vec<Warning>, EngineError> {
        let program = command.join(" ");
        let key = format!("engines.{}.command", self.engine);
        match python::version(command, self.package).await {
            Ok(Some(v)) if v == self.tested_version => Ok(Vec::new()),
            Ok(Some(v)) => Err(EngineError::Prerequisite {
                message: format!(
                    "`{program}` runs {} {v}, but this engine reads the output of {} {} and is tested with it only; {}",
                    self.package, self.package, self.tested_version, self.install_hint
                ),
            }),
            Ok(None) => Ok(vec![Warning {
                code: format!("{}_version", self.code),
                message: format!(
                    "`{program}` is not a Python program whose interpreter could be found (a wrapper script?), so its {} version is not known before it runs; the report warns if it is not {}",
                    self.package, self.tested_version
                ),
            }]),
            Err(python::Problem::NotFound(_)) => Err(EngineError::Prerequisite {
                message: format!(
                    "{} was not found: `{program}` ({key}) is not on PATH or not a file; {}",
                    self.engine, self.install_hint
                ),
            }),
            Err(python::Problem::NoPackage { detail, .. }) => Err(EngineError::Prerequisite {
                message: format!(
                    "`{program}` ({key}) is not a {} installation: {detail}; {}",
                    self.package, self.install_hint
                ),
            }),
        }
    }

    /// The preflight of a subprocess engine: the installation `command` runs, the tokenizer
    /// directory, and unless `offline` the target.
    pub async fn preflight(
        &self,
        config: &Config,
        command: &[String],
        offline: bool,
    ) -> Result<Vec<Warning>, EngineError> {
        let mut warnings = self.check_installation(command).await?;
        check_tokenizer(config)?;
        if !offline {
            warnings.extend(check_target(config, true).await?);
        }
        Ok(warnings)
    }

    /// The warning when the release that ran (as its results say) is not the tested one.
    pub fn version_warning(&self, ran: Option<&str>) -> Option<Warning> {
        ran.filter(|v| *v != self.tested_version).map(|v| Warning {
            code: format!("{}_version", self.code),
            message: format!(
                "{} {v} ran; this engine is tested with {}",
                self.package, self.tested_version
            ),
        })
    }
}

/// An engine's `command` option: the tool's executable, or a command line that runs it
/// (`["python3", "-m", "genai_bench.cli.cli"]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// A program: a path, or a name looked up on PATH.
    Program(String),
    /// A program and its first arguments.
    Argv(Vec<String>),
}

impl CommandLine {
    /// The command line, program first; `default` when not given (or given empty).
    pub fn argv(command: Option<&CommandLine>, default: &str) -> Vec<String> {
        match command {
            Some(CommandLine::Program(p)) if !p.is_empty() => vec![p.clone()],
            Some(CommandLine::Argv(argv)) if !argv.is_empty() => argv.clone(),
            _ => vec![default.to_owned()],
        }
    }
}

/// The server's base URL as tools that add `/v1/...` themselves want it: `target.url`
/// without a trailing `/` or `/v1`.
pub fn api_base(target: &Target) -> String {
    let url = target.url.as_deref().unwrap_or_default().trim();
    url.trim_end_matches('/').trim_end_matches("/v1").to_owned()
}

/// The shared target check (bench-target's, with the words every engine uses), with a
/// one-token request streamed or not as the tool sends it: before the first invocation, so a
/// target that is down or no OpenAI server is refused in seconds, not after the tool's start-up.
pub(crate) async fn check_target(
    config: &Config,
    stream: bool,
) -> Result<Vec<Warning>, EngineError> {
    let target = &config.target;
    let client = bench_target::client(target)?;
    let checked =
        bench_target::check(&client, target, bench_target::probe_body(target, stream)).await?;
    Ok(checked.warnings)
}

/// Tools load the tokenizer from a local directory holding `tokenizer.json`: refuses
/// `data.tokenizer` when it holds none.
fn check_tokenizer(config: &Config) -> Result<(), ConfigError> {
    let Some(tokenizer) = &config.data.tokenizer else {
        return Ok(());
    };
    let path = std::path::Path::new(tokenizer);
    let file = if path.is_dir() {
        path.join("tokenizer.json")
    } else {
        path.to_owned()
    };
    if file.is_file() {
        return Ok(());
    }
    Err(ConfigError::InvalidValue {
        key: "data.tokenizer".to_owned(),
        message: format!("`{tokenizer}` holds no tokenizer.json; give the model directory (relative paths in a config file are relative to its folder)"),
    })
}

/// A file path a tool running in another folder can use: made absolute against the working
/// directory (a path that cannot be made absolute is passed as given).
pub fn absolute(path: &str) -> String {
    std::path::absolute(path).map_or_else(|_| path.to_owned(), |p| p.display().to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const TOOL: Tool = Tool {
        engine: "fake-tool",
        package: "fake-tool",
        tested_version: "1.0",
        install_hint: "install it with pip install fake-tool==1.0",
        code: "fake_tool",
    };

    #[test]
    fn the_base_url_loses_its_v1_and_slashes() {
        let mut target = Target::default();
        for (url, base) in [
            ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"),
            ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"),
            ("https://h/", "https://h"),
        ] {
            target.url = Some(url.to_owned());
            assert_eq!(api_base(&target), base);
        }
    }

    #[tokio::test]
    async fn a_missing_installation_is_refused_with_the_key_and_the_install_hint() {
        let error = TOOL
            .check_installation(&["surely-not-a-program-llm-bench".to_owned()])
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("engines.fake-tool.command"), "{message}");
        assert!(message.contains("pip install fake-tool==1.0"), "{message}");
        assert_eq!(TOOL.version_warning(Some("1.0")), None);
        assert_eq!(
            TOOL.version_warning(Some("0.9")).unwrap().code,
            "fake_tool_version"
        );
    }
}
