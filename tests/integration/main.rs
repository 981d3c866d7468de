//! Cross-crate tests: one binary, one link step.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

mod cli;
mod config;
mod data;
mod drain;
mod faults;
mod genai_bench;
mod guidellm;
mod mock;
mod native;
mod preflight;
mod python_types;
mod real_server;
mod registry;
mod report;
mod saturation;
mod sizing;
mod tls;
mod trust_native;

use std::path::PathBuf;

// Link the test engine (and through it every engine of the binary).
use bench_tests as _;

/// A file under `tests/fixtures/`.
fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

/// The distribution over successful requests of a metric that must have one.
fn ok(
    split: &Option<bench_core::schema::StatusSplit<bench_core::schema::Distribution>>,
) -> &bench_core::schema::Distribution {
    split.as_ref().unwrap().successful.as_ref().unwrap()
}

/// A benchmark's rate of successful requests per second.
fn successful_rate(b: &bench_core::schema::Benchmark) -> f64 {
    b.metrics
        .rates
        .requests_per_s
        .as_ref()
        .unwrap()
        .successful
        .unwrap()
}

/// What one in-process `llm-bench` invocation produced.
struct Outcome {
    code: u8,
    stdout: String,
    stderr: String,
}

/// Runs `llm-bench` in-process with `args` (without the program name).
fn llm_bench<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut all: Vec<std::ffi::OsString> = vec!["llm-bench".into()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = bench_cli::run(all, &mut stdout, &mut stderr);
    Outcome {
        code,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// Runs `llm-bench run` in-process on `config` (TOML) with `--set` overrides, expecting exit
/// `code`; the report.
pub(crate) fn run_cli(config: &str, sets: &[&str], code: u8) -> bench_core::Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let report = dir.path().join("report.json");
    let mut args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        "--config".into(),
        path.into_os_string(),
        "--no-progress".into(),
        "--output".into(),
        report.clone().into_os_string(),
    ];
    for set in sets {
        args.push("--set".into());
        args.push(set.into());
    }
    let out = llm_bench(args);
    assert_eq!(out.code, code, "{}", out.stderr);
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}

/// The python3 (3.9 or later, with the `jsonschema` package) named by `LLM_BENCH_PYTHON`, which
/// `.ci/run` makes a venv for. Required when the slow suites run; otherwise its absence skips
/// the test, saying so.
pub(crate) fn python_from_env() -> Option<String> {
    let python = std::env::var("LLM_BENCH_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    if python.is_none() && std::env::var("LLM_BENCH_SLOW_TESTS").is_ok_and(|v| v == "1") {
        panic!("LLM_BENCH_SLOW_TESTS=1 needs LLM_BENCH_PYTHON=<a python3 with the jsonschema package> (.ci/run makes a venv with it)");
    }
    if python.is_none() {
        eprintln!(
            "skipped: set LLM_BENCH_PYTHON to a python3 (3.9 or later) that has the jsonschema package to run it"
        );
    }
    python
}
