//! The real `llm-bench` binary as a process: what only a process can show (signals, stdout).

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
