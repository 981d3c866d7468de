//! Command-line flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub(crate) use crate::config_flags::ConfigArgs;

/// Benchmark LLM inference servers that speak the OpenAI HTTP API.
#[derive(Debug, Parser)]
#[command(name = "llm-bench", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run benchmarks described by a config file, flags or both, and write the report.
    Run(RunArgs),
    /// List the engines compiled into this binary with their capabilities.
    Engines,
    /// Check everything a run checks before its first request (the config, files, engine
    /// commands, the open-file limit, the target), and print the benchmarks it would run.
    Validate(ValidateArgs),
    /// Re-render a saved report (JSON or YAML) as JSON, YAML, CSV, HTML, the autotuner's object or
    /// the summary table.
    Report(ReportArgs),
    /// Compare saved reports side by side, flagging differences beyond a tolerance and beyond
    /// the noise (exit 3).
    Compare(CompareArgs),
    /// Merge the reports of a sharded run's shards (`run --shard I/N`) into the run's one
    /// report: counts summed, distributions merged exactly, rates over the union window.
    Merge(MergeArgs),
    /// Serve the mock OpenAI-compatible server until interrupted (see docs/mock-server.md).
    MockServer(crate::mock::MockServerArgs),
    /// Print a JSON Schema (the same files as docs/schema/): of the config, the report, the
    /// autotuner's object, the comparison or a progress event.
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        which: SchemaKind,
    },
    /// Print a shell completion script for llm-bench, e.g.
    /// `llm-bench completions bash > ~/.local/share/bash-completion/completions/llm-bench`.
    Completions(crate::completions::CompletionsArgs),
    /// Kubernetes: print the manifests that run a config as sharded pods (docs/kubernetes.md).
    K8s(crate::k8s::K8sArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// A report written by `llm-bench run` (.json, .yaml or .yml).
    pub(crate) file: PathBuf,
    /// What to produce.
    #[arg(long, value_enum, default_value_t = ReportFormat::Summary)]
    pub(crate) format: ReportFormat,
    /// Write it here (atomically) instead of to standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// Two or more reports written by `llm-bench run`; the first is the baseline.
    #[arg(required = true, num_args = 2..)]
    pub(crate) files: Vec<PathBuf>,
    /// Relative difference from the baseline above which a value is flagged (0.1 = 10 %), when
    /// it is also beyond the noise (the two values' 95 % intervals do not overlap).
    #[arg(long, default_value_t = 0.1)]
    pub(crate) tolerance: f64,
    /// Also write the comparison here: .html or .json (atomically). Repeatable.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(crate) output: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MergeArgs {
    /// The shards' reports (.json, .yaml or .yml), in any order; every shard of the run, or
    /// the merged report says which are missing.
    #[arg(required = true, value_name = "SHARD")]
    pub(crate) files: Vec<PathBuf>,
    /// Write the merged report here (format from the extension: .json, .yaml, .yml, .csv,
    /// .html); `-` writes it to standard output as JSON. Repeatable.
    #[arg(long, short = 'o', value_name = "PATH", required = true)]
    pub(crate) output: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    /// The console summary table.
    Summary,
    /// The full report as JSON.
    Json,
    /// The full report as YAML.
    Yaml,
    /// One row per benchmark.
    Csv,
    /// A self-contained HTML page with charts.
    Html,
    /// The autotuner's metrics object (genai-bench's shape, times in seconds).
    Autotuner,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SchemaKind {
    /// The config file (TOML, YAML or JSON).
    Config,
    /// The report (JSON or YAML).
    Report,
    /// The autotuner's metrics object (`--format autotuner`).
    Autotuner,
    /// The JSON written by `compare`.
    Comparison,
    /// One line of `run --progress-json`.
    ProgressEvent,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// Check everything but the target (no network).
    #[arg(long)]
    pub(crate) offline: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// Write the report here (format from the extension: .json, .yaml, .yml, .csv, .html),
    /// instead of the config's outputs; `-` writes it to standard output as JSON. Repeatable.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(crate) output: Vec<PathBuf>,
    /// Run the config on each of these engines in turn (comma-separated), write each report
    /// with the engine's name before the extension, and a comparison (`.compare.json`,
    /// `.compare.html`) beside the first output.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "NAMES",
        conflicts_with = "engine"
    )]
    pub(crate) engines: Vec<String>,
    /// Do not report progress while running.
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Also write every progress event as a JSON line to FILE (`-` for standard output), for a
    /// UI to follow; the schema is docs/schema/progress-event.schema.json.
    #[arg(long, value_name = "FILE")]
    pub(crate) progress_json: Option<PathBuf>,
    /// Serve the run's live figures (requests by outcome, in flight, rate, TTFT, ITL, latency,
    /// schedule lag) in Prometheus's text format at http://ADDR/metrics while it runs, e.g.
    /// 127.0.0.1:9464 (port 0 picks a free port; the address is printed on standard error).
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<String>,
}
