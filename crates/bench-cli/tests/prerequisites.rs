//! What the `llm-bench` binary can only show with something from outside the repository: the
//! Python package's suite (`tests/python/`, run with pytest beside this package's binary, so it
//! can compare the Python API with the CLI), a web server in Python, a high open-file limit.
//! Each test runs when it is there, is skipped when it is not, and fails naming it under
//! `LLM_BENCH_SLOW_TESTS=1` (CI), as `test_prerequisites` decides.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::run_binary;
use test_prerequisites::gated;

fn main() -> ExitCode {
    test_prerequisites::main(&[
        gated!(python_api_suite_passes, [PythonApi]),
        gated!(
            a_server_that_is_not_openai_stops_the_run_before_the_first_benchmark,
            [Python3]
        ),
        gated!(
            two_thousand_streams_fit_under_a_soft_limit_of_1024_and_a_hard_one_is_named,
            [OpenFiles]
        ),
    ])
}

/// The suite's folder, `tests/python` at the repository's root.
fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python")
        .canonicalize()
        .unwrap()
}

fn python_api_suite_passes() {
    let python = test_prerequisites::var("LLM_BENCH_PYTHON_API");
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

/// A web server that is not an LLM server (`python3 -m http.server`): the preflight stops the
/// run before any benchmark with what came back, and the exit code says the target failed.
fn a_server_that_is_not_openai_stops_the_run_before_the_first_benchmark() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let config = dir.path().join("c.toml");
    let report = dir.path().join("r.json");
    std::fs::write(
        &config,
        format!("[target]\nurl = \"http://127.0.0.1:{port}\"\nmodel = \"m\"\n[profile]\nkind = \"constant\"\nrates = [500]\n[constraints]\nmax_seconds = 2\n[data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 16\napproximate = true\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = run_binary(
        "",
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--output",
            report.to_str().unwrap(),
        ],
    );
    let (validate_code, _, validate_stderr) =
        run_binary("", &["validate", "--config", config.to_str().unwrap()]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, Some(5), "{stdout}{stderr}");
    for expected in [
        "HTTP 501",
        "text/html",
        "Unsupported method ('POST')",
        "check target.url",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(
        !stderr.contains("benchmark 1"),
        "no benchmark started: {stderr}"
    );
    assert!(!report.exists(), "nothing was measured");
    assert_eq!(validate_code, Some(5), "{validate_stderr}");
    assert!(validate_stderr.contains("HTTP 501"), "{validate_stderr}");
}

/// 2,000 streams under a soft open-file limit of 1,024 (many desktops' default): the binary
/// raises its soft limit to the hard one and every request succeeds; with the hard limit at
/// 1,024 too, it refuses before the first request, naming the limit and the command.
fn two_thousand_streams_fit_under_a_soft_limit_of_1024_and_a_hard_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let report = dir.path().join("r.json");
    std::fs::write(
        &config,
        "[target.mock]\nttft_ms = 50\nitl_ms = 5\n[profile]\nkind = \"concurrent\"\nstreams = [2000]\n[constraints]\nmax_requests = 4000\nmax_seconds = 120\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n",
    )
    .unwrap();
    let args = [
        "run",
        "--no-progress",
        "--config",
        config.to_str().unwrap(),
        "--output",
        report.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = run_binary("ulimit -Sn 1024 &&", &args);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let requests = &written["benchmarks"][0]["requests"];
    assert_eq!(requests["successful"], 4000, "{requests} {stderr}");
    assert_eq!(requests["errored"], 0, "{requests}");

    std::fs::remove_file(&report).unwrap();
    let (code, _, stderr) = run_binary("ulimit -n 1024 &&", &args);
    assert_eq!(code, Some(2), "{stderr}");
    for expected in [
        "open-file limit is 1024",
        "ulimit -n",
        "2000 requests in flight",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(!report.exists(), "refused before the first request");
}
