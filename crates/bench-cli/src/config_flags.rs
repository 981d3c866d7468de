//! The config of `run` and `validate` from the command line: a file (or standard input), the
//! flags that stand for config keys, and `--set`, in that order of precedence (a later layer
//! wins), with errors that name the layer a wrong value came from.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bench_core::config::ConfigFormat;
use bench_core::{Config, ConfigError};
use bench_runner::RunError;

use crate::Failure;

/// Where the config comes from and what the command line changes in it.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// The config file: .toml, .yaml, .yml or .json; `-` reads it from standard input (JSON
    /// when it starts with `{`, else TOML, else YAML). Without it, the config key flags are the
    /// whole config.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The server's base URL (`target.url`); without it and without a config's, the embedded
    /// mock server is the target.
    #[arg(long, value_name = "URL", help_heading = "Config keys")]
    pub(crate) target: Option<String>,
    /// The served model (`target.model`); without it, the one model GET /v1/models lists.
    #[arg(long, value_name = "NAME", help_heading = "Config keys")]
    pub(crate) model: Option<String>,
    /// The load pattern (`profile.kind`): synchronous, concurrent, throughput, constant,
    /// poisson, gamma, sweep, search or replay.
    #[arg(long, value_name = "KIND", help_heading = "Config keys")]
    pub(crate) profile: Option<String>,
    /// How much load, read by the profile's kind (`profile.rate`): requests per second for
    /// constant, poisson and gamma (`profile.rates`, e.g. `1,2,4`), streams for concurrent
    /// (`profile.streams`), benchmarks for sweep (`profile.sweep_size`), requests in flight
    /// for throughput (`profile.max_concurrency`).
    #[arg(long, value_name = "RATE[,RATE...]", help_heading = "Config keys")]
    pub(crate) rate: Option<String>,
    /// The request data (`data`), as the compact string a config takes, e.g.
    /// `prompt_tokens=256,output_tokens=128,tokenizer=data/tokenizer`, or a traffic scenario
    /// such as `D(100,100)`.
    #[arg(long, value_name = "SPEC", help_heading = "Config keys")]
    pub(crate) data: Option<String>,
    /// Seconds each benchmark runs at most (`constraints.max_seconds`).
    #[arg(long, value_name = "S", help_heading = "Config keys")]
    pub(crate) max_seconds: Option<f64>,
    /// Requests each benchmark sends at most (`constraints.max_requests`).
    #[arg(long, value_name = "N", help_heading = "Config keys")]
    pub(crate) max_requests: Option<u64>,
    /// The engine to use (`benchmark_engine`).
    #[arg(long, value_name = "NAME", help_heading = "Config keys")]
    pub(crate) engine: Option<String>,
    /// Run shard I of N of the config's load (`shard.index`, `shard.count`), e.g. `0/4`; in
    /// a Kubernetes Indexed Job, `--shard-count N` and the pod's `JOB_COMPLETION_INDEX` do it.
    #[arg(long, value_name = "I/N", help_heading = "Config keys")]
    pub(crate) shard: Option<String>,
    /// How many shards share the run (`shard.count`); the index comes from `--shard`,
    /// `shard.index` or `JOB_COMPLETION_INDEX`.
    #[arg(long, value_name = "N", help_heading = "Config keys")]
    pub(crate) shard_count: Option<u32>,
    /// When every shard starts its first benchmark (`shard.start_at`): RFC 3339 in UTC
    /// (`2026-11-29T12:00:00Z`) or Unix seconds.
    #[arg(long, value_name = "TIME", help_heading = "Config keys")]
    pub(crate) start_at: Option<String>,
    /// The sharded run's id (`shard.run_id`), the same for every shard; default: derived from
    /// the config.
    #[arg(long, value_name = "ID", help_heading = "Config keys")]
    pub(crate) run_id: Option<String>,
    /// Override one config key, e.g. `--set profile.rates=[5,10]`. Repeatable; applied in
    /// order, after the file and the config key flags.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
}

/// One override and the flag it came from, e.g. `--max-seconds 30` and
/// `constraints.max_seconds=30`.
struct Layer {
    flag: String,
    assignment: String,
}

impl Layer {
    /// The dotted key it sets.
    fn key(&self) -> &str {
        self.assignment
            .split_once('=')
            .map_or(self.assignment.as_str(), |(k, _)| k)
            .trim()
    }

    /// Whether an error about `key` can come from this layer.
    fn touches(&self, key: &str) -> bool {
        let own = self.key();
        let own = own.replace('[', ".").replace(']', "");
        let key = key.replace('[', ".").replace(']', "");
        let related = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}."));
        if own == RATE_KEY {
            return RATE_TARGETS.iter().any(|t| related(&key, t));
        }
        related(&key, &own) || related(&own, &key)
    }
}

/// The shorthand `--rate` sets, and the keys it may land on.
const RATE_KEY: &str = "profile.rate";
const RATE_TARGETS: [&str; 5] = [
    RATE_KEY,
    "profile.rates",
    "profile.streams",
    "profile.sweep_size",
    "profile.max_concurrency",
];

/// Each flag that stands for a config key, with the key: docs/cli.md lists the same.
pub(crate) const KEY_FLAGS: [(&str, &str); 12] = [
    ("--target", "target.url"),
    ("--model", "target.model"),
    ("--profile", "profile.kind"),
    ("--rate", RATE_KEY),
    ("--data", "data"),
    ("--max-seconds", "constraints.max_seconds"),
    ("--max-requests", "constraints.max_requests"),
    ("--engine", "benchmark_engine"),
    ("--shard", "shard.index"),
    ("--shard-count", "shard.count"),
    ("--start-at", "shard.start_at"),
    ("--run-id", "shard.run_id"),
];

/// The environment variable Kubernetes sets to a pod's index in an Indexed Job.
pub(crate) const JOB_INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// The flag that sets `key`, when one does.
fn flag_for(key: &str) -> Option<&'static str> {
    KEY_FLAGS
        .iter()
        .find(|(_, k)| {
            // `profile` missing is `--profile` missing, as is `profile.kind`.
            *k == key || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}."))
        })
        .map(|(flag, _)| *flag)
}

impl ConfigArgs {
    /// The flags' overrides, in the order of `KEY_FLAGS`, then `--set`'s in the order given.
    fn layers(&self) -> Result<Vec<Layer>, Failure> {
        let mut layers = Vec::new();
        // `value` as typed, and as the TOML value of the assignment.
        let mut add = |flag: &str, key: &str, value: Option<String>, toml: fn(&str) -> String| {
            if let Some(value) = value {
                layers.push(Layer {
                    flag: format!("{flag} {value}"),
                    assignment: format!("{key}={}", toml(&value)),
                });
            }
        };
        let text: fn(&str) -> String = |s| serde_json::Value::from(s).to_string();
        // The shorthand reads numbers itself; numbers are TOML as they are.
        let raw: fn(&str) -> String = str::to_owned;
        add("--target", "target.url", self.target.clone(), text);
        add("--model", "target.model", self.model.clone(), text);
        add("--profile", "profile.kind", self.profile.clone(), text);
        add("--rate", RATE_KEY, self.rate.clone(), raw);
        add("--data", "data", self.data.clone(), text);
        add(
            "--max-seconds",
            "constraints.max_seconds",
            self.max_seconds.map(|s| s.to_string()),
            raw,
        );
        add(
            "--max-requests",
            "constraints.max_requests",
            self.max_requests.map(|n| n.to_string()),
            raw,
        );
        add("--engine", "benchmark_engine", self.engine.clone(), text);
        if let Some(given) = &self.shard {
            let (index, count) = given
                .split_once('/')
                .and_then(|(i, n)| Some((i.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)))
                .ok_or_else(|| {
                    Failure::bad_input(anyhow::anyhow!(
                        "invalid --shard {given}: give the shard's index and the shard count as I/N, e.g. --shard 0/4 for the first of four"
                    ))
                })?;
            add("--shard", "shard.index", Some(index.to_string()), raw);
            add("--shard", "shard.count", Some(count.to_string()), raw);
        }
        add(
            "--shard-count",
            "shard.count",
            self.shard_count.map(|n| n.to_string()),
            raw,
        );
        let start_at = match &self.start_at {
            Some(given) => Some(start_instant(given).ok_or_else(|| {
                Failure::bad_input(anyhow::anyhow!(
                    "invalid --start-at {given}: give an instant in UTC as RFC 3339 (2026-11-29T12:00:00Z) or as Unix seconds (1795953600)"
                ))
            })?),
            None => None,
        };
        add(
            "--start-at",
            "shard.start_at",
            start_at.map(|at| at.to_string()),
            text,
        );
        add("--run-id", "shard.run_id", self.run_id.clone(), text);
        for given in &self.overrides {
            layers.push(Layer {
                flag: format!("--set {given}"),
                assignment: given.clone(),
            });
        }
        Ok(layers)
    }
}

/// Where the config text came from, for messages.
enum Source<'a> {
    File(&'a Path),
    Stdin,
    Flags,
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "invalid config {}", path.display()),
            Self::Stdin => f.write_str("invalid config from standard input"),
            Self::Flags => {
                f.write_str("invalid config (no --config: the flags are the whole config)")
            }
        }
    }
}

/// Reads the config the flags name, applies the flags and `--set`, and validates it.
pub(crate) fn load(args: &ConfigArgs) -> Result<Config, Failure> {
    let (source, text, format) = match args.config.as_deref() {
        None => (Source::Flags, String::new(), ConfigFormat::Toml),
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the config from standard input (--config -)")
                .map_err(Failure::bad_input)?;
            let format = ConfigFormat::detect(&text);
            (Source::Stdin, text, format)
        }
        Some(path) => {
            let format = ConfigFormat::from_path(path).map_err(Failure::bad_input)?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))
                .map_err(Failure::bad_input)?;
            (Source::File(path), text, format)
        }
    };
    let folder = match source {
        Source::File(path) => path.parent(),
        Source::Stdin | Source::Flags => None,
    };
    let layers = args.layers()?;
    let overrides: Vec<String> = layers.iter().map(|l| l.assignment.clone()).collect();
    let mut config =
        bench_runner::load_config(&text, format, &overrides, folder).map_err(|error| {
            let RunError::Config(error) = error else {
                return Failure::bad_input(anyhow::Error::new(error).context(source.to_string()));
            };
            let context = origin(&error, &layers).map_or_else(
                || source.to_string(),
                |layer| format!("invalid {}", layer.flag),
            );
            let hint = missing_hint(&error, &source);
            Failure::bad_input(anyhow::anyhow!("{context}: {error}{hint}"))
        })?;
    index_from_the_job(&mut config, std::env::var(JOB_INDEX_VAR).ok())?;
    // Before anything is checked or sent: a start that has passed cannot be met.
    if let Some(start_at) = config.shard.as_ref().and_then(|s| s.start_at) {
        bench_core::config::check_start_at(start_at, bench_core::schema::Timestamp::now())
            .map_err(|error| Failure::bad_input(anyhow::anyhow!("invalid config: {error}")))?;
    }
    Ok(config)
}

/// A sharded config without an index takes it from Kubernetes' `JOB_COMPLETION_INDEX`, so the
/// pods of an Indexed Job run one command line. The config or `--shard` wins over the
/// variable; a config without `[shard]` ignores it (an Indexed Job may run unsharded work).
fn index_from_the_job(config: &mut Config, job_index: Option<String>) -> Result<(), Failure> {
    let (Some(shard), Some(given)) = (&mut config.shard, job_index) else {
        return Ok(());
    };
    if shard.index.is_some() {
        return Ok(());
    }
    let index: u32 = given.trim().parse().map_err(|_| {
        Failure::bad_input(anyhow::anyhow!(
            "invalid {JOB_INDEX_VAR}={given:?}: a shard index is a whole number from 0; Kubernetes sets it in an Indexed Job (completionMode: Indexed)"
        ))
    })?;
    shard.index = Some(index);
    config.validate().map_err(|error| {
        Failure::bad_input(anyhow::anyhow!("invalid {JOB_INDEX_VAR}={given}: {error}"))
    })
}

/// `--start-at`'s instant: RFC 3339 in UTC, or Unix seconds.
pub(crate) fn start_instant(given: &str) -> Option<bench_core::schema::Timestamp> {
    use bench_core::schema::Timestamp;
    if let Some(at) = Timestamp::parse(given.trim()) {
        return Some(at);
    }
    let seconds: f64 = given.trim().parse().ok()?;
    (0.0..1e11)
        .contains(&seconds)
        .then(|| Timestamp::from_unix_micros((seconds * 1e6).round() as i64))
}

/// The command-line layer an error is about: the last one (the one that won) that set the key
/// the error names, or the override that could not be applied.
fn origin<'a>(error: &ConfigError, layers: &'a [Layer]) -> Option<&'a Layer> {
    if let ConfigError::Override { given, .. } = error {
        return layers.iter().rev().find(|l| &l.assignment == given);
    }
    let key = error.key()?;
    layers.iter().rev().find(|l| l.touches(key))
}

/// For a missing key that a flag sets, the flag to pass.
fn missing_hint(error: &ConfigError, source: &Source<'_>) -> String {
    let ConfigError::MissingKey { key, .. } = error else {
        return String::new();
    };
    // Either limit will do.
    let either = (key == "constraints.max_seconds").then_some("--max-seconds or --max-requests");
    let Some(flag) = either.or_else(|| flag_for(key)) else {
        return String::new();
    };
    match source {
        Source::Flags => format!("; pass {flag} (or a config file with --config)"),
        _ => format!("; set it in the config or pass {flag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(flag: &str, assignment: &str) -> Layer {
        Layer {
            flag: flag.to_owned(),
            assignment: assignment.to_owned(),
        }
    }

    #[test]
    fn an_error_is_traced_to_the_layer_that_set_its_key() {
        let layers = [
            layer("--max-seconds 5", "constraints.max_seconds=5"),
            layer("--rate 4", "profile.rate=4"),
            layer("--set output[0].path=a.txt", "output[0].path=a.txt"),
            layer(
                "--set constraints.max_seconds=two",
                "constraints.max_seconds=two",
            ),
        ];
        let invalid = |key: &str| ConfigError::InvalidValue {
            key: key.to_owned(),
            message: String::new(),
        };
        let flag = |key: &str| origin(&invalid(key), &layers).map(|l| l.flag.as_str());
        assert_eq!(
            flag("constraints.max_seconds"),
            Some("--set constraints.max_seconds=two")
        );
        assert_eq!(flag("profile.streams"), Some("--rate 4"));
        assert_eq!(flag("output[0].path"), Some("--set output[0].path=a.txt"));
        assert_eq!(flag("output[0]"), Some("--set output[0].path=a.txt"));
        assert_eq!(flag("constraints.max_requests"), None);
        assert_eq!(flag("profile.kind"), None);
    }

    #[test]
    fn every_key_flag_is_a_flag_of_the_command() {
        use clap::CommandFactory as _;
        let command = crate::cli::Cli::command();
        let run = command.find_subcommand("run").unwrap();
        for (flag, _) in KEY_FLAGS {
            let long = flag.trim_start_matches("--");
            assert!(
                run.get_arguments().any(|a| a.get_long() == Some(long)),
                "{flag}"
            );
        }
    }
}
