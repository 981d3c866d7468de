//! The real `llm-bench` binary as a process: what only a process can show (signals, stdout).

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::run_binary;

#[test]
fn mock_server_serves_until_sigterm_then_reports_and_exits_0() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args([
            "mock-server",
            "--port",
            "0",
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("bench-mock listening on http://")
        .expect(&line)
        .to_owned();

    let mut stream = TcpStream::connect(&url).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let body = r#"{"model":"m","prompt":"hi","max_tokens":3}"#;
    write!(stream, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("\"completion_tokens\":3"), "{response}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(code.code(), Some(0), "{rest}");
    assert!(
        rest.starts_with("bench-mock stopped: 1 requests, 3 tokens"),
        "{rest}"
    );
}

#[test]
fn sigint_stops_a_run_writes_the_partial_report_and_exits_130() {
    let dir = std::env::temp_dir().join(format!("llm-bench-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("long.toml");
    let report = dir.join("partial.json");
    std::fs::write(
        &config,
        "[target.mock]\nttft_ms = 5\nitl_ms = 20\noutput_tokens = 100\n[profile]\nkind = \"concurrent\"\nstreams = [2, 4]\n\
         [constraints]\nmax_seconds = 60\ninterrupt_grace_seconds = 0\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 100\napproximate = true\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args(["run", "--no-progress", "--config"])
        .arg(&config)
        .arg("--output")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run stops promptly"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(written["interrupted"], true);
    let benchmarks = written["benchmarks"].as_array().unwrap();
    assert_eq!(benchmarks.len(), 1, "the second benchmark never started");
    assert_eq!(benchmarks[0]["stopped_by"], "interrupted");
    assert!(
        benchmarks[0]["requests"]["incomplete"].as_u64().unwrap() >= 1,
        "requests in flight are kept as incomplete"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `llm-bench run` on `config` (TOML), writing its report to `report`.
fn start_run(dir: &std::path::Path, config: &str, report: &std::path::Path) -> std::process::Child {
    let path = dir.join("run.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args(["run", "--no-progress", "--config"])
        .arg(&path)
        .arg("--output")
        .arg(report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// With a grace, the requests in flight at the interrupt finish and count as successful.
#[test]
fn an_interrupt_gives_requests_in_flight_their_grace() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    // Each request takes about 1 s; the interrupt comes at 0.5 s, the grace is 5 s.
    let child = start_run(
        dir.path(),
        "[target.mock]\nttft_ms = 5\nitl_ms = 10\noutput_tokens = 100\n[profile]\nkind = \"concurrent\"\nstreams = [2]\n\
         [constraints]\nmax_seconds = 60\ninterrupt_grace_seconds = 5\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 100\napproximate = true\n",
        &report,
    );
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let requests = &written["benchmarks"][0]["requests"];
    assert_eq!(requests["successful"], 2, "{requests}");
    assert_eq!(requests["incomplete"], 0, "{requests}");
    assert_eq!(written["benchmarks"][0]["stopped_by"], "interrupted");
}

/// A second signal exits at once; the report file still holds, whole and valid, every
/// benchmark that had finished.
#[test]
fn a_second_interrupt_exits_at_once_leaving_the_finished_benchmarks_behind() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let child = start_run(
        dir.path(),
        "[target.mock]\nttft_ms = 5\nitl_ms = 20\noutput_tokens = 100\n[profile]\nkind = \"concurrent\"\nstreams = [1, 2, 4]\n\
         [constraints]\nmax_seconds = 1\ninterrupt_grace_seconds = 60\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 100\napproximate = true\n",
        &report,
    );
    // Requests take 2 s: benchmark 0 ends at its 1 s limit with its one request incomplete;
    // benchmark 1 is running at 1.6 s, its requests in the grace when the second signal comes.
    std::thread::sleep(Duration::from_millis(1600));
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let started = std::time::Instant::now();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second signal does not wait for the grace"
    );
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(written["interrupted"], true);
    let benchmarks = written["benchmarks"].as_array().unwrap();
    assert_eq!(benchmarks.len(), 1, "{stderr}");
    assert_eq!(benchmarks[0]["strategy"]["streams"], 1);
    assert_eq!(benchmarks[0]["requests"]["incomplete"], 1);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no half-written files");
}

/// A sweep whose throughput step completes no request (outputs far longer than the step)
/// skips its rate steps with `sweep_incomplete` instead of panicking on a rate of 0.
#[test]
fn a_sweep_whose_throughput_step_completes_nothing_skips_its_rate_steps() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let report = dir.path().join("r.json");
    std::fs::write(
        &config,
        "[target.mock]\nttft_ms = 5\nitl_ms = 50\n[profile]\nkind = \"synchronous\"\n[constraints]\nmax_seconds = 30\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 128\napproximate = true\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_binary(
        "",
        &[
            "run",
            "--no-progress",
            "--config",
            config.to_str().unwrap(),
            "--output",
            report.to_str().unwrap(),
            "--set",
            "profile.kind=\"sweep\"",
            "--set",
            "profile.sweep_size=3",
            "--set",
            "constraints.max_seconds=2",
        ],
    );
    assert_ne!(code, Some(101), "a panic: {stderr}");
    // Every request needs 6.4 s; none finishes in a 2 s benchmark.
    assert_eq!(code, Some(4), "{stdout}{stderr}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let warnings = written["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w["code"] == "sweep_incomplete"),
        "{warnings:?}"
    );
    assert_eq!(written["benchmarks"].as_array().unwrap().len(), 2);
}

/// `--progress-json -` leaves standard output to JSON lines; the table goes to stderr, and
/// logs written to a pipe carry no colour codes.
#[test]
fn progress_json_on_stdout_is_json_lines_only_and_pipes_get_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let report = dir.path().join("r.json");
    std::fs::write(
        &config,
        "[target.mock]\nttft_ms = 1\nitl_ms = 1\n[profile]\nkind = \"concurrent\"\nstreams = [1, 2]\n[constraints]\nmax_requests = 6\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n",
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
            "--progress-json",
            "-",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.lines().count() >= 4, "{stdout}");
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    assert!(
        stderr.contains("wrote "),
        "the table and files go to stderr: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI codes into a pipe: {stderr:?}"
    );
    assert!(!stderr.contains("Some("), "no debug formatting: {stderr}");
    assert!(stderr.contains("benchmark 1/2 started"), "{stderr}");
}

/// The API key goes over TLS to the server and nowhere else: not into trace-level logs, the
/// console, the report files or the request records.
#[test]
fn the_api_key_stays_out_of_trace_logs_and_files_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let pki = bench_mock::test_pki::Pki::new();
    let (ca, cert, key) = (&pki.ca, &pki.server.cert, &pki.server.key);
    let mut mock = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args([
            "mock-server",
            "--port",
            "0",
            "--ttft-ms",
            "2",
            "--itl-ms",
            "1",
        ])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(mock.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("bench-mock listening on ")
        .expect(&line)
        .to_owned();
    assert!(url.starts_with("https://"), "{url}");
    let secret = "sk-llm-bench-trace-secret-4711";
    let records = dir.path().join("records.jsonl");
    let config = format!(
        "[target]\nurl = \"{url}\"\nmodel = \"mock-model\"\napi_key_env = \"LLM_BENCH_TRACE_KEY\"\n\
         [target.tls]\nca_file = {ca:?}\n\
         [profile]\nkind = \"concurrent\"\nstreams = [2]\n\
         [constraints]\nmax_requests = 10\nmax_seconds = 10\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n\
         [engines.native]\nrequest_records = {records:?}\n",
        ca = ca.display().to_string(),
        records = records.display().to_string(),
    );
    let config_path = dir.path().join("tls.toml");
    std::fs::write(&config_path, config).unwrap();
    let report = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args(["run", "--config"])
        .arg(&config_path)
        .arg("--output")
        .arg(&report)
        .env("LLM_BENCH_TRACE_KEY", secret)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = mock.kill();
    let _ = mock.wait();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // Trace level was on: the HTTP/2 layer logged its frames.
    assert!(stderr.contains("TRACE"), "no trace output: {stderr}");
    let report_text = std::fs::read_to_string(&report).unwrap();
    assert!(report_text.contains("\"HTTP/2\""), "{report_text}");
    for (what, text) in [
        ("stdout", stdout.to_string()),
        ("stderr", stderr.to_string()),
        ("the report", report_text),
        (
            "the request records",
            std::fs::read_to_string(&records).unwrap(),
        ),
    ] {
        assert!(!text.contains(secret), "the API key appears in {what}");
    }
}

#[test]
fn config_from_stdin_is_read_by_its_content() {
    let toml = "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 2\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n";
    let json = r#"{"profile": {"kind": "concurrent", "streams": [1, 2]}, "constraints": {"max_requests": 2}, "data": "prompt_tokens=8,output_tokens=4,approximate=true"}"#;
    let yaml = "profile:\n  kind: throughput\n  max_concurrency: 3\nconstraints:\n  max_seconds: 1\ndata: D(8,4)\n";
    for (text, plan) in [
        (toml, "1 benchmark(s)\n"),
        (json, "2 benchmark(s)\n"),
        (yaml, "1 benchmark(s)\n"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
            .args([
                "validate",
                "-c",
                "-",
                "--set",
                "data.approximate=true",
                "--offline",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{text}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(plan), "{text}: {stdout}");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args(["validate", "-c", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"[profile\nkind = 1\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.starts_with(
            "error: invalid config from standard input: cannot parse the config as TOML"
        ),
        "{stderr}"
    );
}

#[test]
fn bash_completion_completes_commands_flags_and_values() {
    let (code, script, stderr) = run_binary("", &["completions", "bash"]);
    assert_eq!(code, Some(0), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm-bench.bash");
    std::fs::write(&path, &script).unwrap();
    // What bash's completion would offer after each command line (the last word is the one
    // being completed), through the function the script registers for llm-bench.
    let complete = |words: &[&str]| {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let line = words.join(" ");
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source \"$0\"; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; f=$(complete -p llm-bench); f=${{f#*-F }}; f=${{f%% *}}; \"$f\" llm-bench {} {}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                quoted.join(" "),
                words.len() - 1,
                quoted[words.len() - 1],
                quoted[words.len() - 2],
            ))
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let commands = complete(&["llm-bench", ""]);
    for command in ["run", "validate", "completions", "schema", "mock-server"] {
        assert!(
            commands.lines().any(|l| l == command),
            "{command}: {commands}"
        );
    }
    assert_eq!(complete(&["llm-bench", "val"]), "validate\n");
    assert_eq!(
        complete(&["llm-bench", "run", "--max-s"]),
        "--max-seconds\n"
    );
    let kinds = complete(&["llm-bench", "schema", ""]);
    assert!(kinds.lines().any(|l| l == "progress-event"), "{kinds}");
    for shell in ["zsh", "fish"] {
        let (code, script, _) = run_binary("", &["completions", shell]);
        assert_eq!(code, Some(0));
        assert!(
            script.contains("max-seconds") && script.contains("progress-event"),
            "{shell}: {script}"
        );
    }
}
