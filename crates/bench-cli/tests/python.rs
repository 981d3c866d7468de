//! The `llm_bench` Python package's suite (`tests/python/`), run with pytest beside this
//! package's binary, so it can compare the Python API with the CLI.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The venv python with the llm_bench wheel, pytest and mypy (`LLM_BENCH_PYTHON_API`); in
/// the slow suites (CI) its absence fails instead of skipping.
fn python_api() -> Option<String> {
    let python = std::env::var("LLM_BENCH_PYTHON_API")
        .ok()
        .filter(|p| !p.is_empty());
    if python.is_none() && std::env::var("LLM_BENCH_SLOW_TESTS").is_ok_and(|v| v == "1") {
        panic!(
            "LLM_BENCH_SLOW_TESTS=1 needs LLM_BENCH_PYTHON_API=<a venv python with the llm_bench \
             wheel, pytest and mypy installed> (.ci/run builds that venv)"
        );
    }
    if python.is_none() {
        eprintln!(
            "skipped: set LLM_BENCH_PYTHON_API to a python with the llm_bench wheel, pytest and \
             mypy installed (.ci/run builds one)"
        );
    }
    python
}

/// The suite's folder, `tests/python` at the repository's root.
fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python")
        .canonicalize()
        .unwrap()
}

#[test]
fn python_api_suite_passes() {
    let Some(python) = python_api() else {
        return;
    };
    let suite = suite();
    // Reports and other files the suite writes land in a folder of their own.
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // Output is inherited: pytest's progress shows as it goes (with --no-capture).
    let status = Command::new(&python)
        .args(["-m", "pytest"])
        .arg(&suite)
        .args(["-q", "-p", "no:cacheprovider", "--rootdir"])
        .arg(&suite)
        .env("LLM_BENCH_BIN", env!("CARGO_BIN_EXE_llm-bench"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(dir.path())
        .status()
        .unwrap_or_else(|e| panic!("cannot run LLM_BENCH_PYTHON_API={python}: {e}"));
    println!(
        "the Python suite took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "the llm_bench Python suite failed ({status}); its output is above \
         (run it alone: LLM_BENCH_BIN=target/debug/llm-bench {python} -m pytest tests/python -q)"
    );
}
