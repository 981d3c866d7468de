//! The real `llm-bench` binary as a process: what only a process can show (signals, stdout).

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

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
