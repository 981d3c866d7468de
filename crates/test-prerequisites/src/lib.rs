//! Tests that need something from outside the repository (the real genai-bench, llama.cpp's
//! server, Chromium, a Python with a package) live in test binaries of their own (`harness =
//! false`) whose `main` calls [`main`] with a table of [`Gated`] tests. Each test
//!
//! - runs when everything it needs is there;
//! - is ignored when something is missing, so nextest and `cargo test` count it as skipped,
//!   not passed; run anyway (`cargo nextest run --run-ignored only`, `cargo test -- --ignored`),
//!   it fails naming what is missing and how to provide it;
//! - fails that way when `LLM_BENCH_SLOW_TESTS=1` (CI), which requires everything.
//!
//! A new prerequisite is a new [`Prerequisite`] variant: its probe in
//! [`Prerequisite::is_present`], what to do about it in [`Prerequisite::how`], and a line in
//! the README's list (`.ci/run` provides it for CI).

use std::process::{Command, ExitCode};

use libtest_mimic::{Arguments, Trial};

/// Something a test needs from outside the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prerequisite {
    /// `LLM_BENCH_GENAI_BENCH`: the path of a genai-bench 0.0.5 executable.
    GenaiBench,
    /// `LLM_BENCH_GUIDELLM`: the path of a `guidellm` executable.
    GuideLlm,
    /// `LLM_BENCH_REAL_SERVER` (its URL) and `LLM_BENCH_REAL_SERVER_TOKENIZER` (its tokenizer
    /// directory): llama.cpp's server as `cargo xtask real-server start` runs it.
    RealServer,
    /// Chromium on `PATH` (`chromium`, `chromium-browser` or `google-chrome`): [`chromium`].
    Chromium,
    /// `LLM_BENCH_PYTHON`: a python3 (3.9 or later) with the `jsonschema` package.
    JsonschemaPython,
    /// `LLM_BENCH_PYTHON_API`: a python with the llm_bench wheel, pytest and mypy.
    PythonApi,
    /// `LLM_BENCH_PYARROW_PYTHON`: a python3 with the `pyarrow` package.
    PyarrowPython,
    /// `LLM_BENCH_PROMETHEUS_PYTHON`: a python3 with the `prometheus_client` package.
    PrometheusPython,
    /// `LLM_BENCH_K8S_VALIDATE`: the `kubernetes-validate` executable (PyPI
    /// `kubernetes-validate`, which carries the Kubernetes API's schemas and checks offline).
    K8sValidate,
    /// `python3` on `PATH`.
    Python3,
    /// A hard open-file limit of 5,000 or more (`ulimit -Hn`).
    OpenFiles,
}

impl Prerequisite {
    /// Whether it is there. Only that: a variable set to a wrong path fails the test that
    /// uses it, as it should.
    pub fn is_present(self) -> bool {
        match self {
            Self::GenaiBench => is_set("LLM_BENCH_GENAI_BENCH"),
            Self::GuideLlm => is_set("LLM_BENCH_GUIDELLM"),
            Self::RealServer => {
                is_set("LLM_BENCH_REAL_SERVER") && is_set("LLM_BENCH_REAL_SERVER_TOKENIZER")
            }
            Self::Chromium => chromium().is_some(),
            Self::JsonschemaPython => is_set("LLM_BENCH_PYTHON"),
            Self::PythonApi => is_set("LLM_BENCH_PYTHON_API"),
            Self::PyarrowPython => is_set("LLM_BENCH_PYARROW_PYTHON"),
            Self::PrometheusPython => is_set("LLM_BENCH_PROMETHEUS_PYTHON"),
            Self::K8sValidate => is_set("LLM_BENCH_K8S_VALIDATE"),
            Self::Python3 => answers("python3"),
            // Where the limit cannot be read, the test finds out itself.
            Self::OpenFiles => hard_open_file_limit().is_none_or(|limit| limit >= 5000),
        }
    }

    /// What it is and how to provide it.
    pub fn how(self) -> &'static str {
        match self {
            Self::GenaiBench => {
                "genai-bench 0.0.5: set LLM_BENCH_GENAI_BENCH to its executable \
                 (`pip install genai-bench==0.0.5` in a venv)"
            }
            Self::GuideLlm => {
                "GuideLLM: set LLM_BENCH_GUIDELLM to its `guidellm` executable \
                 (`pip install guidellm` in a venv)"
            }
            Self::RealServer => {
                "llama.cpp's server: run `cargo xtask real-server start`, then set \
                 LLM_BENCH_REAL_SERVER to its URL (http://127.0.0.1:8090) and \
                 LLM_BENCH_REAL_SERVER_TOKENIZER to its tokenizer directory \
                 (~/.cache/llm-bench/real-server/tokenizer)"
            }
            Self::Chromium => {
                "Chromium: install it so that `chromium`, `chromium-browser` or `google-chrome` \
                 is on PATH (Debian's package is `chromium`)"
            }
            Self::JsonschemaPython => {
                "a python with jsonschema: set LLM_BENCH_PYTHON to a python3 (3.9 or later) \
                 that has the jsonschema package (`pip install jsonschema` in a venv)"
            }
            Self::PythonApi => {
                "the Python package: set LLM_BENCH_PYTHON_API to the python of a venv with \
                 the llm_bench wheel, pytest and mypy (`pip install maturin pytest mypy`, then \
                 `pip install --no-build-isolation ./crates/bench-python`)"
            }
            Self::PyarrowPython => {
                "a python with pyarrow: set LLM_BENCH_PYARROW_PYTHON to a python3 that has the \
                 pyarrow package (`pip install pyarrow` in a venv)"
            }
            Self::PrometheusPython => {
                "a python with prometheus_client: set LLM_BENCH_PROMETHEUS_PYTHON to a python3 \
                 that has the prometheus_client package (`pip install prometheus_client` in a \
                 venv)"
            }
            Self::K8sValidate => {
                "kubernetes-validate: set LLM_BENCH_K8S_VALIDATE to its `kubernetes-validate` \
                 executable (`pip install kubernetes-validate==1.37.0` in a venv)"
            }
            Self::Python3 => "python3: install it so that `python3` is on PATH",
            Self::OpenFiles => {
                "a hard open-file limit of 5000 or more: raise `ulimit -Hn` (nofile in \
                 /etc/security/limits.conf)"
            }
        }
    }
}

/// A test and what it needs.
#[derive(Debug, Clone, Copy)]
pub struct Gated {
    /// Its name, as nextest filters and shows it: `module::function`, as libtest names tests.
    pub name: &'static str,
    /// Everything it needs.
    pub needs: &'static [Prerequisite],
    /// Panics to fail, as a `#[test]` does.
    pub test: fn(),
}

/// A [`Gated`] test from its function's path (relative to the test binary's root, which makes
/// its name: `report::the_html_report_renders`) and what it needs; with a third argument, the
/// function is async and that function runs it (`block_on`, a runtime built for the test).
#[macro_export]
macro_rules! gated {
    ($test:path, [$($needs:ident),+ $(,)?]) => {
        $crate::Gated {
            name: stringify!($test),
            needs: &[$($crate::Prerequisite::$needs),+],
            test: $test,
        }
    };
    ($test:path, [$($needs:ident),+ $(,)?], $block_on:path) => {
        $crate::Gated {
            name: stringify!($test),
            needs: &[$($crate::Prerequisite::$needs),+],
            test: || $block_on($test()),
        }
    };
}

/// The `main` of a test binary with `harness = false`: runs `tests` under libtest's command
/// line (nextest's too).
pub fn main(tests: &[Gated]) -> ExitCode {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    // nextest runs each test in a process of its own (`--exact NAME`): only that one is probed.
    for gated in tests
        .iter()
        .filter(|t| !args.exact || args.filter.as_deref().is_none_or(|f| f == t.name))
    {
        let (trial, missing) = trial(gated);
        // nextest shows no reason for a skip; a plain `cargo test` run shows this one.
        if !args.list && args.is_ignored(&trial) && !args.is_filtered_out(&trial) {
            eprintln!("skipped {}: {missing}", gated.name);
        }
        trials.push(trial);
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// The test as a trial, ignored when something it needs is missing outside CI; and the
/// message that names what is missing (empty when nothing is).
fn trial(gated: &Gated) -> (Trial, String) {
    let missing: Vec<String> = gated
        .needs
        .iter()
        .filter(|p| !p.is_present())
        .map(|p| format!("missing {}", p.how()))
        .collect();
    let message = missing.join("; ");
    let failure = if required() {
        format!("{message} (LLM_BENCH_SLOW_TESTS=1 requires every test's prerequisites)")
    } else {
        message.clone()
    };
    let test = gated.test;
    let trial = Trial::test(gated.name, move || {
        if !missing.is_empty() {
            return Err(failure.into());
        }
        test();
        Ok(())
    })
    .with_ignored_flag(!message.is_empty() && !required());
    (trial, message)
}

/// Whether every test's prerequisites are required (`LLM_BENCH_SLOW_TESTS=1`, as CI sets).
pub fn required() -> bool {
    std::env::var("LLM_BENCH_SLOW_TESTS").is_ok_and(|v| v == "1")
}

/// The value of a prerequisite's environment variable, for a test that is running (so the
/// variable is set).
pub fn var(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{name} is not set"))
}

/// The first Chromium on `PATH` that answers `--version`.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|binary| answers(binary))
}

fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// Whether `program --version` runs and succeeds.
fn answers(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The hard open-file limit, as the shell reads it (`None`: unlimited or unknown).
fn hard_open_file_limit() -> Option<u64> {
    let output = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}
