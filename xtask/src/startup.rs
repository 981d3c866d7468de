//! `cargo xtask bench startup [--runs N] [--quick] [--binary PATH]`: how long the release `llm-bench` takes
//! from its spawn to its first benchmark request, and a one-request run's whole wall time and
//! CPU, against a loopback server in this process that stamps what arrives.
//!
//! The server answers the model list, the in-flight gauge the drain reads, and streamed
//! completions (four tokens, at once). It serves two ways: keeping connections open, as vLLM
//! does, and like llama.cpp's server, which announces keep-alive and closes every connection
//! after its stream. The target check's and the connection probe's requests (marked
//! `x-llm-bench-probe`) and the drain's (`x-request-id: drain-probe`) are not benchmark
//! requests; the first other completion request is.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The start-up this benchmark checks: spawn to first benchmark request.
const TARGET_MS: f64 = 30.0;

pub(crate) fn command(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args
            .get(i + 1)
            .context("--runs needs a number")?
            .parse()
            .context("--runs: not a whole number")?,
        None if args.iter().any(|a| a == "--quick") => 5,
        None => 20,
    };
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    // `--binary PATH` measures another build (an older one, to compare), as it is.
    let binary = match args.iter().position(|a| a == "--binary") {
        Some(i) => std::path::PathBuf::from(args.get(i + 1).context("--binary needs a path")?),
        None => {
            crate::wire_check::build_release(root)?;
            target.join("release/llm-bench")
        }
    };
    let out = target.join("startup-bench");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    println!(
        "xtask: start-up of {} over {runs} runs each (one request, concurrent 1 stream)",
        binary.display()
    );
    println!(
        "{:<34} {:>22} {:>22} {:>22}",
        "server", "to first request ms", "wall ms", "cpu ms"
    );
    let mut slowest_median: f64 = 0.0;
    for closes in [false, true] {
        let server = Server::start(closes)?;
        let mut first = Vec::new();
        let mut wall = Vec::new();
        let mut cpu = Vec::new();
        for run in 0..runs {
            let measured = one_run(&binary, &server, &out.join(format!("run-{run}.json")))?;
            first.push(measured.first_request_ms);
            wall.push(measured.wall_ms);
            cpu.push(measured.cpu_ms);
        }
        let name = if closes {
            "closes after each stream (llama.cpp)"
        } else {
            "keeps connections (vLLM)"
        };
        println!(
            "{name:<34} {:>22} {:>22} {:>22}",
            spread(&mut first),
            spread(&mut wall),
            spread(&mut cpu)
        );
        slowest_median = slowest_median.max(median(&mut first));
    }
    println!("(median / p90; target: under {TARGET_MS} ms to the first benchmark request)");
    if slowest_median >= TARGET_MS {
        println!("xtask: start-up median {slowest_median:.1} ms misses the {TARGET_MS} ms target");
    }
    Ok(())
}

/// One run's figures, in ms.
struct Measured {
    first_request_ms: f64,
    wall_ms: f64,
    cpu_ms: f64,
}

/// The arguments of a one-request run against `server`, writing `report`.
fn run_args(server: &Server, report: &Path) -> Vec<std::ffi::OsString> {
    let args = [
        "run",
        "--target",
        &server.url,
        "--model",
        "m",
        "--profile",
        "concurrent",
        "--rate",
        "1",
        "--max-requests",
        "1",
        "--data",
        "prompt_tokens=16,output_tokens=4",
        "--set",
        "data.approximate=true",
        "-o",
    ];
    let mut args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    args.push(report.into());
    args
}

fn one_run(binary: &Path, server: &Server, report: &Path) -> anyhow::Result<Measured> {
    server.reset();
    let spawned = Instant::now();
    let output = Command::new(binary)
        .args(run_args(server, report))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let wall = spawned.elapsed();
    if !output.status.success() {
        bail!(
            "llm-bench run failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let Some(first) = server.first_request() else {
        bail!("the server saw no benchmark request");
    };
    Ok(Measured {
        first_request_ms: ms(first.saturating_duration_since(spawned)),
        wall_ms: ms(wall),
        cpu_ms: cpu_of_run(binary, server, report)?,
    })
}

/// The CPU time (user and system, ms) of another such run, from bash's `time`: it reads
/// `getrusage` of its child to the microsecond, which this crate cannot call without
/// `unsafe`. A run of its own, so bash's start does not count in the other figures.
fn cpu_of_run(binary: &Path, server: &Server, report: &Path) -> anyhow::Result<f64> {
    server.reset();
    let output = Command::new("bash")
        .args([
            "-c",
            "TIMEFORMAT='%3U %3S'; { time \"$@\" >/dev/null 2>&1; } 2>&1",
            "bash",
        ])
        .arg(binary)
        .args(run_args(server, report))
        .stdin(Stdio::null())
        .output()
        .context("cannot run bash, which times the run's CPU")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let seconds: Vec<f64> = text
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    match seconds[..] {
        [user, system] if output.status.success() => Ok((user + system) * 1000.0),
        _ => bail!("cannot read the run's CPU time from bash's `time`: `{text}`"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    percentile(values, 0.5)
}

/// The nearest-rank percentile `q` of `values`.
fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn spread(values: &mut [f64]) -> String {
    format!(
        "{:.1} / {:.1}",
        percentile(values, 0.5),
        percentile(values, 0.9)
    )
}

/// The loopback server, on threads of its own.
struct Server {
    url: String,
    first: Arc<Mutex<Option<Instant>>>,
}

impl Server {
    fn start(closes_after_stream: bool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot listen on loopback")?;
        let url = format!("http://{}", listener.local_addr()?);
        let first = Arc::new(Mutex::new(None));
        let stamps = first.clone();
        std::thread::spawn(move || {
            for socket in listener.incoming().flatten() {
                let stamps = stamps.clone();
                std::thread::spawn(move || serve(socket, closes_after_stream, &stamps));
            }
        });
        Ok(Self { url, first })
    }

    fn reset(&self) {
        *self.first.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn first_request(&self) -> Option<Instant> {
        *self.first.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves one connection until the client closes it (or, closing after streams, until the
/// first stream has ended).
fn serve(socket: TcpStream, closes_after_stream: bool, first: &Mutex<Option<Instant>>) {
    let _ = socket.set_nodelay(true);
    let Ok(mut writer) = socket.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(socket);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let arrived = Instant::now();
        let request_line = line.trim_end().to_owned();
        let (mut length, mut marked) = (0usize, false);
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            marked |= header.starts_with("x-llm-bench-probe:")
                || header.starts_with("x-request-id: drain-probe");
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = |content_type: &str, text: &str| {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            )
        };
        let answer = if request_line.starts_with("GET /v1/models") {
            reply(
                "application/json",
                r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#,
            )
        } else if request_line.starts_with("GET /metrics") {
            reply("text/plain", "vllm:num_requests_running 0\n")
        } else if request_line.starts_with("POST ") {
            if !marked {
                let mut first = first.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(arrived);
            }
            stream()
        } else {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned()
        };
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
        if closes_after_stream && request_line.starts_with("POST ") {
            return;
        }
    }
}

/// A streamed chat completion of four tokens, chunked, announcing keep-alive.
fn stream() -> String {
    let mut reply = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nkeep-alive: timeout=5, max=100\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    let token = r#"data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}"#;
    let last = r#"data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"length"}],"usage":{"prompt_tokens":16,"completion_tokens":4,"total_tokens":20}}"#;
    for event in [token, token, token, last, "data: [DONE]"] {
        let event = format!("{event}\n\n");
        reply.push_str(&format!("{:x}\r\n{event}\r\n", event.len()));
    }
    reply + "0\r\n\r\n"
}
