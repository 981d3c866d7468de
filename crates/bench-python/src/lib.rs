//! `llm_bench._native`: the bridge between Python and bench-runner. It converts and hands over,
//! nothing more: configs arrive as text, reports and progress events leave as JSON, and the
//! typed classes, exceptions and asyncio live in the Python package (`python/llm_bench/`).
//!
//! Threads: a run goes on in a thread of its own, never holding the GIL. Its progress events
//! are queued in Rust and taken by the Python thread that waits on the run, so no runtime
//! worker ever takes the GIL (a slow Python callback cannot delay the measurement).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bench_core::config::{ConfigFormat, OptionsTable, OutputFormat, OutputSpec};
use bench_core::progress::{ProgressEvent, ProgressSink};
use bench_core::{registry, CancelToken, Config, EngineError, Report, RunContext};
use bench_runner::RunError;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// The start of the message of a run cancelled before its first benchmark (`Interrupted`).
const NOTHING_MEASURED: &str = "interrupted before the first benchmark, nothing was measured";

/// Progress events kept for Python at most; beyond it the oldest update is dropped (a
/// benchmark's start and end are kept), so a consumer that falls behind bounds its memory.
const EVENT_LIMIT: usize = 10_000;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(engines, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(render, m)?)?;
    m.add_function(wrap_pyfunction!(write_report, m)?)?;
    m.add_function(wrap_pyfunction!(load_report, m)?)?;
    m.add_class::<Run>()?;
    m.add_class::<MockServer>()?;
    m.add("EXPECTED_ENGINES", bench_runner::EXPECTED_ENGINES.to_vec())?;
    m.add("SCHEMA_VERSION", bench_core::schema::SCHEMA_VERSION)?;
    Ok(())
}

/// The exception for `error`, of the class `llm_bench._errors` defines for its kind.
fn to_py(py: Python<'_>, error: RunError) -> PyErr {
    let message = error.to_string();
    let (class, key, suggestion) = match &error {
        RunError::Failed(m) if m.starts_with(NOTHING_MEASURED) => ("Interrupted", None, None),
        RunError::Config(c) | RunError::Engine(EngineError::Config(c)) => {
            ("ConfigError", c.key(), c.suggestion())
        }
        RunError::BadInput(_) => ("ConfigError", None, None),
        RunError::Engine(EngineError::Target { .. }) => ("TargetError", None, None),
        RunError::Engine(EngineError::Prerequisite { .. }) => ("PrerequisiteError", None, None),
        RunError::Engine(_) => ("EngineError", None, None),
        RunError::Failed(_) => ("Error", None, None),
    };
    // The engine's own cause, which `Display` leaves out.
    let message = match std::error::Error::source(&error).and_then(|s| s.source()) {
        Some(cause) if matches!(error, RunError::Engine(EngineError::Failed { .. })) => {
            format!("{message}: {cause}")
        }
        _ => message,
    };
    let built = py.import("llm_bench._errors").and_then(|errors| {
        let class = errors.getattr(class)?;
        if class.is(errors.getattr("ConfigError")?) {
            class.call1((message.clone(), key, suggestion))
        } else {
            class.call1((message.clone(),))
        }
    });
    match built {
        Ok(exception) => PyErr::from_value(exception),
        Err(_) => PyRuntimeError::new_err(message),
    }
}

fn format_of(name: &str) -> PyResult<ConfigFormat> {
    match name {
        "toml" => Ok(ConfigFormat::Toml),
        "yaml" => Ok(ConfigFormat::Yaml),
        "json" => Ok(ConfigFormat::Json),
        other => Err(PyRuntimeError::new_err(format!(
            "unknown config format `{other}`; use toml, yaml or json"
        ))),
    }
}

/// Parses a config as bench-runner does for the binary, with `engine` replacing
/// `benchmark_engine` when given.
fn load(
    text: &str,
    format: &str,
    overrides: Vec<String>,
    folder: Option<PathBuf>,
    engine: Option<String>,
) -> PyResult<Result<Config, RunError>> {
    let format = format_of(format)?;
    let mut overrides = overrides;
    if let Some(engine) = engine {
        overrides.push(format!("benchmark_engine=\"{}\"", engine.replace('"', "")));
    }
    Ok(bench_runner::load_config(
        text,
        format,
        &overrides,
        folder.as_deref(),
    ))
}

/// The compiled-in engines and what each can do, as JSON.
#[pyfunction]
fn engines() -> String {
    let list: Vec<serde_json::Value> = registry::registrations()
        .into_iter()
        .map(|registration| {
            let capabilities = (registration.build)(&Default::default())
                .ok()
                .map(|engine| {
                    let caps = engine.capabilities();
                    serde_json::json!({
                        "profiles": caps.profiles.iter().map(|p| p.name()).collect::<Vec<_>>(),
                        "data": caps.data.iter().map(|d| d.name()).collect::<Vec<_>>(),
                        "metrics": caps.metrics.iter().map(|m| m.field()).collect::<Vec<_>>(),
                        "options": caps.features.iter().map(|f| f.key()).collect::<Vec<_>>(),
                    })
                });
            serde_json::json!({
                "name": registration.name,
                "summary": registration.summary,
                "capabilities": capabilities,
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// Loads and checks a config with its engine's preflight (the target too unless `offline`),
/// and returns the plan as JSON: the engine, its benchmarks and the preflight's warnings.
#[pyfunction]
#[pyo3(signature = (text, format, overrides, folder, engine, offline))]
fn validate(
    py: Python<'_>,
    text: String,
    format: String,
    overrides: Vec<String>,
    folder: Option<PathBuf>,
    engine: Option<String>,
    offline: bool,
) -> PyResult<String> {
    let loaded = load(&text, &format, overrides, folder, engine)?;
    let checked = py.detach(move || -> Result<String, RunError> {
        let mut config = loaded?;
        if !offline {
            // As `llm-bench validate`: the one model the server lists, when none is named.
            bench_runner::discover_model(&mut config)?;
        }
        let limits = bench_runner::raise_open_file_limit();
        let engine = registry::engine_for(&config)?;
        let warnings = bench_runner::preflight(&config, engine.as_ref(), offline, limits)?;
        let benchmarks: Vec<serde_json::Value> = config
            .plan()
            .iter()
            .map(|b| serde_json::json!({"strategy": b.strategy.to_string(), "workload": b.workload}))
            .collect();
        Ok(serde_json::json!({
            "engine": config.benchmark_engine,
            "benchmarks": benchmarks,
            "warnings": warnings,
            "target_checked": !offline && config.target.kind() != bench_core::config::TargetKind::Mock,
        })
        .to_string())
    });
    checked.map_err(|e| to_py(py, e))
}

fn report_of(py: Python<'_>, json: &str) -> PyResult<Report> {
    serde_json::from_str(json).map_err(|e| {
        to_py(
            py,
            RunError::Failed(format!(
                "not an llm-bench report of schema version {}: {e}",
                bench_core::schema::SCHEMA_VERSION
            )),
        )
    })
}

/// Renders a report (JSON text) as `format`: json, yaml, csv, html, autotuner or summary.
#[pyfunction]
fn render(py: Python<'_>, report: &str, format: &str) -> PyResult<String> {
    let report = report_of(py, report)?;
    let format = match format {
        "summary" => return Ok(bench_report::render::summary_table(&report)),
        "json" => OutputFormat::Json,
        "yaml" => OutputFormat::Yaml,
        "csv" => OutputFormat::Csv,
        "html" => OutputFormat::Html,
        "autotuner" => OutputFormat::Autotuner,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown report format `{other}`; use json, yaml, csv, html, autotuner or summary"
            )))
        }
    };
    bench_report::render::render(&report, format)
        .map_err(|e| to_py(py, RunError::Failed(e.to_string())))
}

/// Writes a report (JSON text) to `path` atomically, in the format its extension names (or
/// `format`).
#[pyfunction]
#[pyo3(signature = (report, path, format=None))]
fn write_report(py: Python<'_>, report: &str, path: PathBuf, format: Option<&str>) -> PyResult<()> {
    let report = report_of(py, report)?;
    let mut spec = serde_json::json!({"path": path.to_string_lossy()});
    if let Some(format) = format {
        spec["format"] = serde_json::Value::from(format);
    }
    let spec: OutputSpec = serde_json::from_value(spec)
        .map_err(|e| PyValueError::new_err(format!("unknown report format: {e}")))?;
    bench_runner::write_report(&report, &spec).map_err(|e| to_py(py, e))
}

/// Reads a saved report (JSON, or YAML by extension) and returns it as JSON text.
#[pyfunction]
fn load_report(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    let report = bench_runner::read_report(&path).map_err(|e| to_py(py, e))?;
    serde_json::to_string(&report).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// What a run's thread shares with Python: its queued progress events and its outcome.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<String>,
    dropped: u64,
    outcome: Option<Result<String, RunError>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, outcome: Result<String, RunError>) {
        self.lock().outcome = Some(outcome);
        self.changed.notify_all();
    }
}

/// Queues events as JSON for the Python side; called on runtime threads, never takes the GIL.
#[derive(Debug)]
struct Queue(Arc<Shared>);

impl ProgressSink for Queue {
    fn event(&self, event: &ProgressEvent) {
        let Ok(json) = serde_json::to_string(event) else {
            return;
        };
        let mut state = self.0.lock();
        if state.events.len() >= EVENT_LIMIT {
            let update = state
                .events
                .iter()
                .position(|e| e.starts_with(r#"{"event":"update""#))
                .unwrap_or(0);
            state.events.remove(update);
            state.dropped += 1;
        }
        state.events.push_back(json);
        drop(state);
        self.0.changed.notify_all();
    }
}

/// One run, going on in a thread of its own.
#[pyclass(module = "llm_bench._native")]
#[derive(Debug)]
struct Run {
    cancel: CancelToken,
    shared: Arc<Shared>,
}

#[pymethods]
impl Run {
    /// Loads the config (raising at once if it is bad) and starts the run: the engine's
    /// preflight, then its benchmarks. `progress` says whether to queue progress events.
    #[staticmethod]
    #[pyo3(signature = (text, format, overrides, folder, engine, progress))]
    fn start(
        py: Python<'_>,
        text: String,
        format: String,
        overrides: Vec<String>,
        folder: Option<PathBuf>,
        engine: Option<String>,
        progress: bool,
    ) -> PyResult<Self> {
        let config = load(&text, &format, overrides, folder, engine)?.map_err(|e| to_py(py, e))?;
        let engine = registry::engine_for(&config).map_err(|e| to_py(py, e.into()))?;
        let cancel = CancelToken::new();
        let shared = Arc::new(Shared::default());
        let sink: Arc<dyn ProgressSink> = if progress {
            Arc::new(Queue(shared.clone()))
        } else {
            Arc::new(bench_core::progress::NoProgress)
        };
        let context = RunContext::new(sink, cancel.clone());
        let finish = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("llm-bench-run".to_owned())
            .spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_to_end(&config, engine.as_ref(), &context)
                }))
                .unwrap_or_else(|_| {
                    Err(RunError::Failed(
                        "the run panicked; this is a bug in llm-bench, please report it".to_owned(),
                    ))
                });
                finish.finish(outcome);
            });
        if let Err(error) = spawned {
            return Err(PyRuntimeError::new_err(format!(
                "cannot start the run's thread: {error}"
            )));
        }
        Ok(Self { cancel, shared })
    }

    /// Waits up to `timeout` seconds (without the GIL) for the run to end or an event to
    /// arrive; returns whether the run has ended.
    fn wait(&self, py: Python<'_>, timeout: f64) -> bool {
        let shared = self.shared.clone();
        py.detach(move || {
            let state = shared.lock();
            if state.outcome.is_some() || !state.events.is_empty() {
                return state.outcome.is_some();
            }
            let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
            let (state, _) = shared
                .changed
                .wait_timeout_while(state, timeout, |s| {
                    s.outcome.is_none() && s.events.is_empty()
                })
                .unwrap_or_else(|p| p.into_inner());
            state.outcome.is_some()
        })
    }

    /// Takes the queued progress events (JSON texts), oldest first.
    fn events(&self) -> Vec<String> {
        self.shared.lock().events.drain(..).collect()
    }

    /// Progress events dropped because nobody took them.
    fn dropped_events(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// Asks the engine to stop: it ends its benchmark within `interrupt_grace_seconds` and
    /// returns what it measured, marked interrupted. Idempotent.
    fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the run has ended.
    fn done(&self) -> bool {
        self.shared.lock().outcome.is_some()
    }

    /// The report as JSON text once the run has ended; raises the run's error, or
    /// RuntimeError if it has not ended.
    fn result(&self, py: Python<'_>) -> PyResult<String> {
        match self.shared.lock().outcome.take() {
            Some(Ok(report)) => Ok(report),
            Some(Err(error)) => Err(to_py(py, error)),
            None => Err(PyRuntimeError::new_err(
                "the run has not ended (or its result was already taken)",
            )),
        }
    }
}

impl Drop for Run {
    /// A run nobody can wait for any more stops; its thread ends on its own.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The preflight, then the run, as `llm-bench run` does for one engine (without signals).
fn run_to_end(
    config: &Config,
    engine: &dyn bench_core::BenchmarkEngine,
    context: &RunContext,
) -> Result<String, RunError> {
    // The one model the server lists, when the config names none (the report then names it).
    let mut config = config.clone();
    bench_runner::discover_model(&mut config)?;
    let config = &config;
    let limits = bench_runner::raise_open_file_limit();
    let warnings = bench_runner::preflight(config, engine, true, limits)?;
    if context.cancel.is_cancelled() {
        return Err(RunError::Failed(format!(
            "{NOTHING_MEASURED}: the run was cancelled during its preflight"
        )));
    }
    let mut report = bench_runner::execute(config, engine, context)?;
    bench_runner::add_warnings(&mut report, warnings);
    // The config's `[[output]]` files are written as the CLI writes them; a file that cannot
    // be written is a warning here, as the report itself still reaches the caller.
    for output in &config.outputs {
        if let Err(error) = bench_runner::write_report(&report, output) {
            report.warnings.push(bench_core::schema::Warning {
                code: "output_not_written".to_owned(),
                message: format!("cannot write {}: {error}", output.path),
            });
        }
    }
    serde_json::to_string(&report)
        .map_err(|e| RunError::Failed(format!("cannot serialize the report: {e}")))
}

/// The mock server, on a runtime of its own, for the caller's own tests.
#[pyclass(module = "llm_bench._native")]
#[derive(Debug)]
struct MockServer {
    server: Mutex<Option<bench_runner::Embedded>>,
    url: String,
}

#[pymethods]
impl MockServer {
    /// Starts a mock with `settings` (JSON: the knobs of `[target.mock]` in docs/config.md)
    /// on 127.0.0.1 and a free port unless told otherwise.
    #[new]
    fn new(py: Python<'_>, settings: &str) -> PyResult<Self> {
        let mut settings: serde_json::Value = serde_json::from_str(settings)
            .map_err(|e| PyRuntimeError::new_err(format!("invalid mock settings: {e}")))?;
        // Faults may be given as the CLI's `--fault` strings.
        if let Some(faults) = settings.get_mut("faults").and_then(|f| f.as_array_mut()) {
            for fault in faults.iter_mut() {
                if let Some(spec) = fault.as_str() {
                    let parsed = bench_mock::FaultSpec::parse(spec).map_err(|e| {
                        to_py(
                            py,
                            RunError::BadInput(format!("invalid MockServer fault: {e}")),
                        )
                    })?;
                    *fault = serde_json::to_value(parsed)
                        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
                }
            }
        }
        let table: OptionsTable = serde_json::from_value(settings)
            .map_err(|e| PyRuntimeError::new_err(format!("invalid mock settings: {e}")))?;
        let base = bench_mock::MockConfig {
            port: 0,
            ..bench_mock::MockConfig::default()
        };
        let started = py.detach(move || -> Result<bench_runner::Embedded, RunError> {
            let settings = table.parse_over("MockServer", &base)?;
            settings
                .validate()
                .map_err(|e| RunError::BadInput(format!("invalid MockServer settings: {e}")))?;
            bench_runner::Embedded::start(settings)
        });
        let server = started.map_err(|e| to_py(py, e))?;
        let url = server.server().base_url();
        Ok(Self {
            server: Mutex::new(Some(server)),
            url,
        })
    }

    /// The base URL (`http://127.0.0.1:PORT`, `https://` with `tls_cert`), for `target.url`.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Counters and token-timing precision (`GET /mock/stats`) as JSON.
    fn stats(&self) -> PyResult<String> {
        self.with(|server| serde_json::to_string(&server.stats()))
    }

    /// The ground truth of the requests served (the first `record_limit`) as JSON.
    fn ground_truth(&self) -> PyResult<String> {
        self.with(|server| serde_json::to_string(&server.ground_truth()))
    }

    /// Stops the server. Idempotent.
    fn stop(&self, py: Python<'_>) {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(server) = server {
            py.detach(move || server.stop());
        }
    }
}

impl MockServer {
    fn with(
        &self,
        read: impl FnOnce(&bench_mock::MockServer) -> serde_json::Result<String>,
    ) -> PyResult<String> {
        let guard = self.server.lock().unwrap_or_else(|p| p.into_inner());
        let server = guard
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the mock server was stopped"))?;
        read(server.server()).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }
}
