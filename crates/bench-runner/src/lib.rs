//! Runs a config with the compiled-in engines: the part of the composition root that every
//! front end shares. The `llm-bench` binary adds its command line, terminal output, signals and
//! exit codes; the `llm_bench` Python package adds conversion and the bridge to Python threads.
//!
//! Nothing here installs a signal handler, writes to stdout or stderr, or exits the process:
//! a front end that runs inside someone else's process (a Python interpreter) can use all of
//! it. Cancellation is the caller's [`bench_core::CancelToken`] in the [`RunContext`].

mod embedded;
mod engines;
mod fds;
mod files;
mod model;

use std::path::Path;

use bench_core::config::{ConfigFormat, TargetKind};
use bench_core::schema::Warning;
use bench_core::{
    BenchmarkEngine, Config, ConfigError, EngineError, Preflight, Report, RunContext,
};

pub use crate::embedded::{embedded_config, Embedded};
pub use crate::engines::EXPECTED as EXPECTED_ENGINES;
pub use crate::fds::{raise as raise_open_file_limit, Limits};
pub use crate::files::{read_report, write_atomically, write_report};
pub use crate::model::discover_model;

/// Why a run could not be prepared or could not happen. A failing server is not one of these:
/// its failures are counted in the report.
/// Exhaustive on purpose: a front end maps every kind to its own (an exit code, an exception).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config (or a setting derived from it) cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Other bad input: a plan that cannot fit under the open-file limit, an unwritable output
    /// path, settings of the embedded mock.
    #[error("{0}")]
    BadInput(String),
    /// The engine refused or failed (its kind says which: config, prerequisite, target).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Something local failed: a runtime or the embedded mock could not start, a file could
    /// not be written.
    #[error("{0}")]
    Failed(String),
}

/// Parses config `text` in `format`, applies `overrides` (`key=value`, as `--set`), and
/// resolves the relative input paths written in it against `folder`, the folder of the file
/// it came from (values from `overrides` stay relative to the working directory).
pub fn load_config(
    text: &str,
    format: ConfigFormat,
    overrides: &[String],
    folder: Option<&Path>,
) -> Result<Config, RunError> {
    let mut config = Config::load(text, format, overrides)?;
    if let Some(folder) = folder {
        resolve_relative_paths(&mut config, folder, overrides);
    }
    Ok(config)
}

/// Relative input paths written in a config file (`data.path`, `data.tokenizer`, the files of
/// `[target.tls]`) are relative
/// to that file's folder, so a config and its data move together; values from overrides stay
/// relative to the working directory, as anything typed on a command line. Report outputs are
/// written relative to the working directory (docs/config.md).
fn resolve_relative_paths(config: &mut Config, folder: &Path, overrides: &[String]) {
    if folder.as_os_str().is_empty() {
        return;
    }
    let overridden = |key: &str| {
        overrides.iter().any(|o| {
            let given = o.split_once('=').map_or(o.as_str(), |(k, _)| k).trim();
            given == key || key.starts_with(&format!("{given}."))
        })
    };
    let data = &mut config.data;
    let tls = &mut config.target.tls;
    for (key, value) in [
        ("data.path", &mut data.path),
        ("data.tokenizer", &mut data.tokenizer),
        ("target.tls.ca_file", &mut tls.ca_file),
        ("target.tls.client_cert", &mut tls.client_cert),
        ("target.tls.client_key", &mut tls.client_key),
    ] {
        if overridden(key) {
            continue;
        }
        if let Some(v) = value.as_mut() {
            let given = Path::new(v.as_str());
            if given.is_relative() {
                *v = folder.join(given).to_string_lossy().into_owned();
            }
        }
    }
}

/// The multi-threaded runtime engines run on (they may rely on an ambient one).
pub fn runtime() -> Result<tokio::runtime::Runtime, RunError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Failed(format!("cannot start the async runtime: {e}")))
}

/// Everything a run checks before its first request: the engine's own preflight (files,
/// commands, and the target unless `offline` or the embedded mock, which starts with the run)
/// and whether the plan fits under the open-file limit (`limits`, from
/// [`raise_open_file_limit`]). Returns what the run's report should warn about.
pub fn preflight(
    config: &Config,
    engine: &dyn BenchmarkEngine,
    offline: bool,
    limits: Option<Limits>,
) -> Result<Vec<Warning>, RunError> {
    embedded_config(config)?;
    let mock = config.target.kind() == TargetKind::Mock;
    let mut warnings =
        runtime()?.block_on(engine.preflight(config, &Preflight::new(offline || mock)))?;
    match limits.map(|l| fds::fit(config, l)) {
        Some(fds::Fit::Refuse(message)) => return Err(RunError::BadInput(message)),
        Some(fds::Fit::Warn(message)) => warnings.push(Warning {
            code: "open_files".to_owned(),
            message,
        }),
        _ => {}
    }
    Ok(warnings)
}

/// Runs `engine` on `config` to its end (with the embedded mock around it when that is the
/// target) on a runtime of its own, and returns its report, holding the redacted config as
/// given. Cancelling `context.cancel` makes the engine stop and return what it measured, marked
/// `interrupted`; this function never reacts to signals itself.
pub fn execute(
    config: &Config,
    engine: &dyn BenchmarkEngine,
    context: &RunContext,
) -> Result<Report, RunError> {
    // The embedded mock gets its own runtime, so its work never delays the client's schedule.
    let embedded = match embedded_config(config)? {
        Some(settings) => Some(Embedded::start(settings)?),
        None => None,
    };
    let mut resolved = shard_share(config)?;
    if let Some(embedded) = &embedded {
        resolved.target = embedded.target(&config.target);
    }
    // The engine sees a plain server target; the report keeps the config as given.
    let report = runtime()?.block_on(engine.run(&resolved, context));
    if let Some(embedded) = embedded {
        embedded.stop();
    }
    let mut report = report?;
    // Whatever the engine put there, the written config is the redacted one.
    report.config = config.redacted();
    Ok(report)
}

/// The config the engine runs: for a shard, its share of the load, carrying the run id of the
/// whole config (which the share's changed levels would change); else the config itself.
fn shard_share(config: &Config) -> Result<Config, RunError> {
    let Some(shard) = &config.shard else {
        return Ok(config.clone());
    };
    if let Some(start_at) = shard.start_at {
        bench_core::config::check_start_at(start_at, bench_core::schema::Timestamp::now())?;
    }
    let mut share = shard.apply(config, shard.index()?)?;
    if let Some(part) = &mut share.shard {
        part.run_id = Some(shard.run_id(config));
    }
    Ok(share)
}

/// Adds `warnings` (from the preflight) to `report`, each once.
pub fn add_warnings(report: &mut Report, warnings: Vec<Warning>) {
    for warning in warnings {
        if !report.warnings.contains(&warning) {
            report.warnings.push(warning);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_input_paths_follow_the_config_folder_unless_overridden() {
        let text = "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_seconds = 1\n[data]\nkind = \"file\"\npath = \"rows.jsonl\"\ntokenizer = \"/abs/tok\"\n";
        let config = load_config(text, ConfigFormat::Toml, &[], Some(Path::new("/cfg"))).unwrap();
        assert_eq!(config.data.path.as_deref(), Some("/cfg/rows.jsonl"));
        assert_eq!(config.data.tokenizer.as_deref(), Some("/abs/tok"));
        let overrides = vec!["data.path=\"here.jsonl\"".to_owned()];
        let config = load_config(
            text,
            ConfigFormat::Toml,
            &overrides,
            Some(Path::new("/cfg")),
        )
        .unwrap();
        assert_eq!(config.data.path.as_deref(), Some("here.jsonl"));
    }
}
