//! What a run checks before its first request, and how it ends when the server fails: the
//! preflight (`validate`, and `run` for every engine before the first), relative paths, and
//! the exit codes a program reads.

use std::path::Path;

use bench_cli::exit_codes;
use bench_core::Report;
use bench_tests::cli::llm_bench;

const DATA: &str =
    "[data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 4\napproximate = true\n";

/// Writes `text` as `name` in `dir` and returns its path.
fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An address on which nothing listens.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[test]
fn validate_finds_what_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let mock = "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 2\n";
    let cases = [
        (
            "tokenizer.toml",
            format!("{mock}[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 2\ntokenizer = \"no-such-tokenizer\"\n"),
            exit_codes::BAD_INPUT,
            "no-such-tokenizer",
        ),
        (
            "data.toml",
            format!("{mock}[data]\nkind = \"file\"\npath = \"nope.jsonl\"\n"),
            exit_codes::BAD_INPUT,
            "nope.jsonl",
        ),
        (
            "refused.toml",
            format!(
                "[target]\nurl = \"{}\"\nmodel = \"m\"\n{mock}{DATA}",
                refused_url()
            ),
            exit_codes::TARGET_FAILED,
            "cannot reach",
        ),
    ];
    for (name, text, code, named) in cases {
        let config = write(dir.path(), name, &text);
        let out = llm_bench(["validate", "--config", config.to_str().unwrap()]);
        assert_eq!(out.code, code, "{name}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(named), "{name}: {}", out.stderr);
        assert!(!out.stdout.contains("config ok"), "{name}: {}", out.stdout);
        // `run` refuses it the same way, before sending anything.
        let report = dir.path().join(format!("{name}.json"));
        let out = llm_bench([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--no-progress",
            "--output",
            report.to_str().unwrap(),
        ]);
        assert_eq!(out.code, code, "{name}: {}", out.stderr);
        assert!(!report.exists(), "{name}: nothing was measured");
    }
    // --offline leaves the target out.
    let config = dir.path().join("refused.toml");
    let out = llm_bench([
        "validate",
        "--config",
        config.to_str().unwrap(),
        "--offline",
    ]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    assert!(
        out.stdout.contains("offline: the target was not checked"),
        "{}",
        out.stdout
    );
}

#[test]
fn relative_paths_in_a_config_file_are_relative_to_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("configs");
    std::fs::create_dir(&folder).unwrap();
    write(
        &folder,
        "rows.jsonl",
        "{\"prompt\": \"one\"}\n{\"prompt\": \"two\"}\n",
    );
    let config = write(
        &folder,
        "file.toml",
        "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 2\n[data]\nkind = \"file\"\npath = \"rows.jsonl\"\noutput_tokens = 2\n",
    );
    // The test runs in the tests/ folder: rows.jsonl is found only next to the config.
    let out = llm_bench(["validate", "--config", config.to_str().unwrap()]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    // A `--set` value is relative to the working directory, as typed.
    let out = llm_bench([
        "validate",
        "--config",
        config.to_str().unwrap(),
        "--set",
        "data.path=\"rows.jsonl\"",
    ]);
    assert_eq!(out.code, exit_codes::BAD_INPUT, "{}", out.stdout);
    // The quickstart runs from any working directory.
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.toml");
    let out = llm_bench(["validate", "--config", quickstart.to_str().unwrap()]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
}

#[test]
fn every_engine_is_preflighted_before_the_first_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let config = write(
        dir.path(),
        "two.toml",
        &format!(
            "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 2\n\
             [data]\nkind = \"scenario\"\nscenario = \"D(16,4)\"\ntokenizer = {:?}\n\
             [engines.genai-bench]\ncommand = \"/nonexistent/genai-bench\"\n",
            bench_tests::test_tokenizer()
        ),
    );
    let started = std::time::Instant::now();
    let out = llm_bench([
        "run",
        "--config",
        config.to_str().unwrap(),
        "--no-progress",
        "--engines",
        "native,genai-bench",
        "--output",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.code, exit_codes::BAD_INPUT, "{}", out.stderr);
    assert!(
        out.stderr.contains("genai-bench was not found"),
        "{}",
        out.stderr
    );
    assert!(
        !dir.path().join("r.native.json").exists(),
        "native did not run first"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn a_server_that_fails_every_request_is_stopped_early_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    // Every completion fails; the preflight's probe is answered (the mock leaves probes out of
    // its faults), as a server that accepts one request and then fails under load would.
    let config = write(
        dir.path(),
        "failing.toml",
        &format!(
            "[target.mock]\nttft_ms = 1\nitl_ms = 1\n[[target.mock.faults]]\nkind = \"http_500\"\nprobability = 1.0\n\
             [profile]\nkind = \"concurrent\"\nstreams = [4]\n[constraints]\nmax_seconds = 30\n{DATA}"
        ),
    );
    let started = std::time::Instant::now();
    let out = llm_bench([
        "run",
        "--config",
        config.to_str().unwrap(),
        "--no-progress",
        "--output",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.code, exit_codes::NO_SUCCESS, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("benchmark 1 completed no successful request"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "the default error-rate stop ended it, not max_seconds"
    );
    let written: Report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let b = &written.benchmarks[0];
    assert_eq!(b.requests.successful, 0);
    assert!(b.requests.errored > 0);
    assert_eq!(
        b.stopped_by,
        Some(bench_core::schema::StopReason::MaxErrorRate)
    );
    // The console shows what failed, not only counts.
    assert!(out.stdout.contains("http 500 ×"), "{}", out.stdout);
}
