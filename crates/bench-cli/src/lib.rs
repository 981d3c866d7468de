//! `llm-bench`: the composition root. It alone knows the set of engines, owns the tokio
//! runtime, reads and writes files, installs logging and chooses exit codes.

mod cli;
mod compare;
mod completions;
mod config_flags;
pub mod exit_codes;
mod k8s;
mod live;
mod live_export;
#[cfg(test)]
mod manual;
mod merge;
mod mock;
mod outputs;
mod progress;
mod signals;
mod terminal;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use bench_core::config::OutputSpec;
use bench_core::{registry, CancelToken, EngineError, Report, RunContext};
use bench_runner::{write_atomically, RunError};
use clap::Parser as _;

use crate::cli::{Cli, Command, ReportArgs, ReportFormat, RunArgs, SchemaKind, ValidateArgs};

pub use bench_runner::EXPECTED_ENGINES;

/// The binary's entry point: real arguments, real stdout and stderr.
pub fn main() -> ExitCode {
    init_logging();
    // Not locked for the whole run: log lines and `--progress-json -` are written from the
    // runtime's threads, which would wait on a lock held here forever.
    let code = run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests running the CLI in-process) keeps the first subscriber.
    // Colour codes only for a person at a terminal, never into files and pipes.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// A failure with its exit code.
pub(crate) struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: exit_codes::BAD_INPUT,
            error: error.into(),
        }
    }

    fn run_failed(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: exit_codes::RUN_FAILED,
            error: error.into(),
        }
    }

    /// A runner's error, with the exit code its kind calls for.
    fn runner(error: RunError) -> Self {
        match error {
            RunError::Engine(error) => Self::engine(error),
            RunError::Config(_) | RunError::BadInput(_) => Self::bad_input(error),
            RunError::Failed(_) => Self::run_failed(error),
        }
    }

    /// An engine's error, with the exit code its kind calls for.
    fn engine(error: EngineError) -> Self {
        let code = match &error {
            EngineError::Config(_) | EngineError::Prerequisite { .. } => exit_codes::BAD_INPUT,
            EngineError::Target { .. } => exit_codes::TARGET_FAILED,
            _ => exit_codes::RUN_FAILED,
        };
        Self {
            code,
            error: error.into(),
        }
    }
}

/// Runs `llm-bench` with `args` (the first is the program name) and returns the exit code.
pub fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = write!(
                stdout_or_stderr(&error, stdout, stderr),
                "{}",
                error.render()
            );
            return if error.use_stderr() {
                exit_codes::BAD_INPUT
            } else {
                exit_codes::OK
            };
        }
    };
    let result = match cli.command {
        Command::Run(args) => run_command(&args, stdout, stderr),
        Command::Engines => list_engines(stdout),
        Command::Validate(args) => validate_command(&args, stdout),
        Command::MockServer(args) => mock::serve(&args, stdout),
        Command::Report(args) => rerender(&args, stdout),
        Command::Compare(args) => compare::command(&args, stdout),
        Command::Merge(args) => merge::command(&args, stdout),
        Command::Schema { which } => print_schema(which, stdout),
        Command::Completions(args) => completions::print(&args, stdout),
        Command::K8s(args) => k8s::command(&args, stdout, stderr),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(stderr, "error: {:#}", failure.error);
            failure.code
        }
    }
}

fn stdout_or_stderr<'a>(
    error: &clap::Error,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
) -> &'a mut dyn Write {
    if error.use_stderr() {
        stderr
    } else {
        stdout
    }
}

fn run_command(
    args: &RunArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, Failure> {
    let limits = bench_runner::raise_open_file_limit();
    let mut config = config_flags::load(&args.config)?;
    let to_stdout = outputs::choose(
        &mut config,
        &args.output,
        args.progress_json.as_ref(),
        args.engines.len(),
    )?;
    // Once, before any engine's preflight: every engine and report get the same name.
    bench_runner::discover_model(&mut config).map_err(Failure::runner)?;
    // Every engine is resolved (and the config validated for it) before anything runs.
    let names = if args.engines.is_empty() {
        vec![config.benchmark_engine.clone()]
    } else {
        args.engines.clone()
    };
    let several = names.len() > 1;
    if let Some(twice) = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| names[..i].contains(n).then_some(n))
    {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--engines names `{twice}` twice; each engine runs once"
        )));
    }
    let mut planned = Vec::new();
    for name in &names {
        let mut per_engine = config.clone();
        per_engine.benchmark_engine = name.clone();
        if several {
            for output in &mut per_engine.outputs {
                output.path = with_suffix(&output.path, name);
            }
        }
        let engine = registry::engine_for(&per_engine).map_err(Failure::bad_input)?;
        planned.push((per_engine, engine));
    }
    // Listening before the preflight: a bad or busy address fails before anything is checked.
    let export = match &args.metrics_listen {
        Some(address) => {
            let export = live_export::LiveExport::start(address).map_err(Failure::bad_input)?;
            let _ = writeln!(
                stderr,
                "serving live metrics at http://{}/metrics",
                export.address()
            );
            Some(export)
        }
        None => None,
    };
    // Every engine's preflight passes before the first one sends a request. The target is
    // left out: each engine checks it as its run begins (the embedded mock starts only then).
    let mut found = Vec::new();
    for (per_engine, engine) in &planned {
        found.push(
            bench_runner::preflight(per_engine, engine.as_ref(), true, limits)
                .map_err(Failure::runner)?,
        );
    }
    // With `--progress-json -` standard output carries JSON lines only, with `--output -`
    // the report only.
    let machine_stdout = to_stdout
        || args
            .progress_json
            .as_ref()
            .is_some_and(|p| p.as_os_str() == outputs::STDOUT);
    let (human, report_out): (&mut dyn Write, &mut dyn Write) = if machine_stdout {
        (stderr, stdout)
    } else {
        (stdout, stderr)
    };
    let human_width = if machine_stdout {
        terminal::width(std::io::stderr())
    } else {
        terminal::width(std::io::stdout())
    };
    let cancel = CancelToken::new();
    // The first SIGINT or SIGTERM cancels the run, so the engine returns what it measured; a
    // second one writes the current checkpoint and exits at once.
    let watch = signals::Watch::start(cancel.clone());
    let mut reports = Vec::new();
    let mut interrupted = false;
    for ((per_engine, engine), preflight_warnings) in planned.into_iter().zip(found) {
        if cancel.is_cancelled() {
            interrupted = true;
            break;
        }
        let checkpoint = Arc::new(progress::Checkpoint::new(engine.name(), &per_engine));
        watch.on_exit(checkpoint.clone());
        let mut context = run_context(args, cancel.clone(), checkpoint)?;
        if let Some(export) = &export {
            context = context.with_live(export.live());
        }
        let mut report = bench_runner::execute(&per_engine, engine.as_ref(), &context)
            .map_err(Failure::runner)?;
        // What the preflight found belongs in the report, once.
        bench_runner::add_warnings(&mut report, preflight_warnings);
        write_outputs(&report, &per_engine.outputs)?;
        if to_stdout {
            let json = render_as(&report, bench_core::config::OutputFormat::Json)?;
            let _ = report_out.write_all(json.as_bytes());
            let _ = report_out.flush();
        }
        let _ = write!(
            human,
            "{}",
            bench_report::render::summary_table_within(&report, human_width)
        );
        for output in &per_engine.outputs {
            let _ = writeln!(human, "wrote {}", output.path);
        }
        interrupted |= report.interrupted;
        reports.push((per_engine.benchmark_engine.clone(), report));
    }
    if reports.len() > 1 {
        let comparison = bench_report::compare::compare(&reports, COMPARE_TOLERANCE);
        let _ = write!(human, "{}", comparison.table());
        let first = &config.outputs[0].path;
        let json = serde_json::to_string_pretty(&comparison)
            .context("cannot render the comparison")
            .map_err(Failure::run_failed)?;
        for (path, text) in [
            (with_suffix_ext(first, "compare", "json"), json),
            (with_suffix_ext(first, "compare", "html"), comparison.html()),
        ] {
            write_atomically(Path::new(&path), text.as_bytes()).map_err(Failure::run_failed)?;
            let _ = writeln!(human, "wrote {path}");
        }
    }
    if interrupted {
        return Ok(exit_codes::INTERRUPTED);
    }
    let empty: Vec<String> = reports
        .iter()
        .flat_map(|(engine, report)| {
            report
                .benchmarks
                .iter()
                .filter(|b| b.requests.successful == 0)
                .map(move |b| format!("{engine} benchmark {}", b.index + 1))
        })
        .collect();
    if empty.is_empty() {
        Ok(exit_codes::OK)
    } else {
        Err(Failure {
            code: exit_codes::NO_SUCCESS,
            error: anyhow::anyhow!(
                "{} completed no successful request in its measured window; the report says why (exit {})",
                empty.join(", "),
                exit_codes::NO_SUCCESS
            ),
        })
    }
}

/// The tolerance of the comparison `run --engines` writes (`compare` takes `--tolerance`).
const COMPARE_TOLERANCE: f64 = 0.1;

/// `report.json` with `native` becomes `report.native.json`.
fn with_suffix(path: &str, suffix: &str) -> String {
    let p = Path::new(path);
    match p.extension().and_then(|e| e.to_str()) {
        Some(ext) => with_suffix_ext(path, suffix, ext),
        None => format!("{path}.{suffix}"),
    }
}

/// `report.json` with `compare` and `html` becomes `report.compare.html`.
fn with_suffix_ext(path: &str, suffix: &str, extension: &str) -> String {
    let p = Path::new(path);
    let stem = p
        .file_stem()
        .map_or_else(|| path.to_owned(), |s| s.to_string_lossy().into_owned());
    let name = format!("{stem}.{suffix}.{extension}");
    match p.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.join(name).to_string_lossy().into_owned(),
        None => name,
    }
}

/// Progress sinks (with the report checkpoint) and the cancellation token of one engine's run.
fn run_context(
    args: &RunArgs,
    cancel: CancelToken,
    checkpoint: Arc<progress::Checkpoint>,
) -> Result<RunContext, Failure> {
    let mut sinks: Vec<Arc<dyn bench_core::progress::ProgressSink>> = vec![checkpoint];
    if !args.no_progress {
        // Live lines on a terminal, log lines every few seconds anywhere else.
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            sinks.push(Arc::new(live::TerminalProgress::stderr()));
        } else {
            sinks.push(Arc::new(progress::LogProgress::new()));
        }
    }
    if let Some(path) = &args.progress_json {
        let out: Box<dyn std::io::Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::File::create(path)
                    .with_context(|| {
                        format!("cannot create the --progress-json file {}", path.display())
                    })
                    .map_err(Failure::bad_input)?,
            )
        };
        sinks.push(Arc::new(progress::JsonLines::new(out)));
    }
    let progress: Arc<dyn bench_core::progress::ProgressSink> = Arc::new(progress::Fanout(sinks));
    Ok(RunContext::new(progress, cancel))
}

fn write_outputs(report: &Report, outputs: &[OutputSpec]) -> Result<(), Failure> {
    let mut failures = Vec::new();
    // Write every output even if one fails, so nothing measured is lost.
    for output in outputs {
        if let Err(error) = bench_runner::write_report(report, output) {
            failures.push(format!("{error:#}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::run_failed(anyhow::anyhow!(
            "the run finished but {} of {} report files could not be written: {}",
            failures.len(),
            outputs.len(),
            failures.join("; ")
        )))
    }
}

fn list_engines(stdout: &mut dyn Write) -> Result<u8, Failure> {
    let registrations = registry::registrations();
    if registrations.is_empty() {
        let _ = writeln!(stdout, "no engines are compiled into this build");
    }
    for registration in registrations {
        let _ = writeln!(stdout, "{}: {}", registration.name, registration.summary);
        match (registration.build)(&Default::default()) {
            Ok(engine) => {
                let caps = engine.capabilities();
                let join = |names: Vec<&str>| names.join(", ");
                let _ = writeln!(
                    stdout,
                    "  profiles: {}",
                    join(caps.profiles.iter().map(|p| p.name()).collect())
                );
                let _ = writeln!(
                    stdout,
                    "  data:     {}",
                    join(caps.data.iter().map(|d| d.name()).collect())
                );
                let _ = writeln!(
                    stdout,
                    "  options:  {}",
                    if caps.features == bench_core::Feature::ALL {
                        "every config key".to_owned()
                    } else {
                        join(caps.features.iter().map(|f| f.key()).collect())
                    }
                );
                let _ = writeln!(
                    stdout,
                    "  metrics:  {}",
                    join(caps.metrics.iter().map(|m| m.field()).collect())
                );
            }
            Err(error) => {
                let _ = writeln!(stdout, "  (cannot be built with default options: {error})");
            }
        }
    }
    Ok(exit_codes::OK)
}

fn validate_command(args: &ValidateArgs, stdout: &mut dyn Write) -> Result<u8, Failure> {
    let limits = bench_runner::raise_open_file_limit();
    let mut config = config_flags::load(&args.config)?;
    let discovered = if args.offline {
        None
    } else {
        bench_runner::discover_model(&mut config).map_err(Failure::runner)?
    };
    let engine = registry::engine_for(&config).map_err(Failure::bad_input)?;
    let warnings = bench_runner::preflight(&config, engine.as_ref(), args.offline, limits)
        .map_err(Failure::runner)?;
    let plan = config.plan();
    let _ = writeln!(
        stdout,
        "config ok: engine `{}`, {} benchmark(s)",
        config.benchmark_engine,
        plan.len()
    );
    let _ = writeln!(
        stdout,
        "preflight passed{}",
        match (config.target.kind(), args.offline) {
            (bench_core::config::TargetKind::Mock, _) =>
                " (the target is the embedded mock, started with the run)",
            (_, true) => " (offline: the target was not checked)",
            (_, false) => "",
        }
    );
    if let Some(model) = discovered {
        let _ = writeln!(
            stdout,
            "target.model: `{model}`, the one model the server lists"
        );
    } else if config.target.model.is_none()
        && config.target.kind() == bench_core::config::TargetKind::Server
    {
        let _ = writeln!(
            stdout,
            "target.model: not given; the run takes the one model the server lists (offline: not asked)"
        );
    }
    for warning in &warnings {
        let _ = writeln!(stdout, "warning [{}]: {}", warning.code, warning.message);
    }
    for (i, benchmark) in plan.iter().enumerate() {
        let _ = writeln!(
            stdout,
            "  {}. {} [{}]",
            i + 1,
            benchmark.strategy,
            benchmark.workload
        );
    }
    Ok(exit_codes::OK)
}

/// Reads a saved report (JSON, or YAML by extension).
pub(crate) fn read_report(path: &Path) -> Result<Report, Failure> {
    bench_runner::read_report(path).map_err(Failure::runner)
}

fn rerender(args: &ReportArgs, stdout: &mut dyn Write) -> Result<u8, Failure> {
    let report = read_report(&args.file)?;
    let rendered = match args.format {
        ReportFormat::Summary => {
            bench_report::render::summary_table_within(&report, terminal::width(std::io::stdout()))
        }
        ReportFormat::Json => render_as(&report, bench_core::config::OutputFormat::Json)?,
        ReportFormat::Yaml => render_as(&report, bench_core::config::OutputFormat::Yaml)?,
        ReportFormat::Csv => render_as(&report, bench_core::config::OutputFormat::Csv)?,
        ReportFormat::Html => render_as(&report, bench_core::config::OutputFormat::Html)?,
        ReportFormat::Autotuner => render_as(&report, bench_core::config::OutputFormat::Autotuner)?,
    };
    match &args.output {
        Some(out) => write_atomically(out, rendered.as_bytes()).map_err(Failure::run_failed)?,
        None => {
            let _ = write!(stdout, "{rendered}");
        }
    }
    Ok(exit_codes::OK)
}

fn render_as(report: &Report, format: bench_core::config::OutputFormat) -> Result<String, Failure> {
    bench_report::render::render(report, format).map_err(Failure::run_failed)
}

fn print_schema(which: SchemaKind, stdout: &mut dyn Write) -> Result<u8, Failure> {
    let text = match which {
        SchemaKind::Config => bench_core::schema::config_json_schema(),
        SchemaKind::Report => bench_core::schema::report_json_schema(),
        SchemaKind::Autotuner => bench_report::schema::autotuner_json_schema(),
        SchemaKind::Comparison => bench_report::schema::comparison_json_schema(),
        SchemaKind::ProgressEvent => bench_core::progress::progress_json_schema(),
    };
    let _ = write!(stdout, "{text}");
    Ok(exit_codes::OK)
}
