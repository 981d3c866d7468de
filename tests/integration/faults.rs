//! The fault matrix: every way a server can misbehave, on every rate profile. The mock injects
//! what it can; a raw TCP server here does the rest (never answering, a 10 MB event, an event
//! that never ends, the wrong content type, refusing connections after the preflight).
//! Each run must finish within its limits, put every request in exactly one outcome with an
//! error kind, count what the server saw, and write its report.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_core::config::ConfigFormat;
use bench_core::{registry, Config, Report, RunContext};
use bench_mock::{FaultSpec, MockConfig, MockServer};
use bench_tests::cli::ok;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PROFILES: [&str; 3] = [
    "kind = \"concurrent\"\nstreams = [2]",
    "kind = \"constant\"\nrates = [200]",
    "kind = \"poisson\"\nrates = [200]",
];

async fn run(url: &str, profile: &str, extra: &str) -> Report {
    let text = format!(
        "[target]\nurl = \"{url}\"\nmodel = \"m\"\n{extra}\n[profile]\n{profile}\n[constraints]\nmax_requests = 12\nmax_seconds = 20\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 6\napproximate = true\n"
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    engine.run(&config, &RunContext::default()).await.unwrap()
}

/// Every mock fault, on every third request, on every rate profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mock_fault_on_every_rate_profile_is_counted() {
    let cases: [(&str, Option<&str>); 10] = [
        ("http_429:every=3", Some("http_status")),
        ("http_500:every=3", Some("http_status")),
        ("http_503:every=3", Some("http_status")),
        ("reset_before_headers:every=3", Some("request")),
        ("close_mid_stream:every=3,after=2", Some("stream")),
        ("malformed_chunk:every=3,after=2", Some("decode")),
        (
            "error_in_stream:every=3,after=2",
            Some("server_error_object"),
        ),
        ("missing_done:every=3", None),
        ("stall:every=3,after=2,seconds=0.05", None),
        // A stall longer than the read timeout.
        ("stall:every=3,after=2,seconds=3", Some("timeout")),
    ];
    for profile in PROFILES {
        for (spec, kind) in cases {
            let server = MockServer::start(MockConfig {
                faults: vec![FaultSpec::parse(spec).unwrap()],
                ttft_ms: 2.0,
                itl_ms: 1.0,
                ..MockConfig::default()
            })
            .await
            .unwrap();
            let started = Instant::now();
            let report = run(
                &server.base_url(),
                profile,
                "[target.timeouts]\nread_seconds = 0.5",
            )
            .await;
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{profile} {spec}"
            );
            let b = &report.benchmarks[0];
            let r = b.requests;
            let what = format!("{profile} / {spec}: {r:?} {:?}", b.errors);
            assert_eq!(r.total, 12, "{what}");
            assert_eq!(r.successful + r.incomplete + r.errored, r.total, "{what}");
            assert_eq!(
                r.total as usize,
                server.ground_truth().len(),
                "{what}: the server saw as many"
            );
            assert_eq!(r.incomplete, 0, "{what}");
            let counted: u64 = b.errors.iter().map(|e| e.count).sum();
            assert_eq!(counted, r.errored, "{what}: every error has a kind");
            match kind {
                Some(kind) => {
                    assert_eq!((r.successful, r.errored), (8, 4), "{what}");
                    assert_eq!(b.errors.len(), 1, "{what}");
                    assert_eq!(b.errors[0].kind, kind, "{what}");
                }
                None => assert_eq!(r.successful, 12, "{what}"),
            }
            if spec.starts_with("http_429") {
                assert_eq!(b.errors[0].status_code, Some(429), "{what}");
            }
        }
    }
}

/// What a raw server does with a completion request.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Reads the request and never answers.
    Silent,
    /// One 10 MB content event, then a normal end.
    HugeEvent,
    /// An event that never ends (20 MB without a line end), then close.
    EndlessEvent,
    /// A 200 with `text/plain`.
    PlainText,
    /// A complete chunked stream that announces keep-alive, then a close without notice
    /// (llama.cpp's server does this after every stream).
    ClosesAfterStream,
}

/// A raw HTTP/1.1 server on loopback: answers `GET /v1/models` (the preflight), and every
/// other request as `misbehaviour` says. Counts the completion requests it saw.
async fn raw_server(misbehaviour: Misbehaviour) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, misbehaviour, counter.clone()));
        }
    });
    (url, seen)
}

async fn serve(mut socket: TcpStream, misbehaviour: Misbehaviour, seen: Arc<AtomicUsize>) {
    loop {
        // Read one request: headers, then Content-Length bytes of body.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match socket.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if socket.read_exact(&mut body).await.is_err() {
            return;
        }
        // The drain before each benchmark reads an in-flight gauge (without one it would
        // probe with real requests, which this server would count).
        if head.starts_with("get /metrics") {
            let gauge = "vllm:num_requests_running 0\n";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{gauge}",
                gauge.len()
            );
            if socket.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        if head.starts_with("get /v1/models") {
            let json = r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                json.len()
            );
            if socket.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
        let content = r#"{"choices":[{"index":0,"text":"ok","finish_reason":"length"}]}"#;
        // Like llama.cpp: keep-alive announced, the stream ended, then the socket closed.
        let keep_alive_then_close = |events: usize| {
            let mut reply = String::from("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nkeep-alive: timeout=5, max=100\r\ntransfer-encoding: chunked\r\n\r\n");
            for event in std::iter::repeat_n(format!("data: {content}\n\n"), events)
                .chain(["data: [DONE]\n\n".to_owned()])
            {
                reply.push_str(&format!("{:x}\r\n{event}\r\n", event.len()));
            }
            reply + "0\r\n\r\n"
        };
        if head.contains("x-llm-bench-probe:") {
            // The native engine's connection probe: answered as the others, not counted.
            let reply = match misbehaviour {
                Misbehaviour::ClosesAfterStream => keep_alive_then_close(1),
                _ => format!("{sse}data: {content}\n\ndata: [DONE]\n\n"),
            };
            let _ = socket.write_all(reply.as_bytes()).await;
            return;
        }
        seen.fetch_add(1, Ordering::SeqCst);
        match misbehaviour {
            Misbehaviour::ClosesAfterStream => {
                let _ = socket.write_all(keep_alive_then_close(3).as_bytes()).await;
            }
            Misbehaviour::Silent => {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Misbehaviour::HugeEvent => {
                let text = "x".repeat(10 << 20);
                let event = format!(
                    "{sse}data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n\
                     data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"length\"}}]}}\n\ndata: [DONE]\n\n"
                );
                let _ = socket.write_all(event.as_bytes()).await;
            }
            Misbehaviour::EndlessEvent => {
                let _ = socket.write_all(sse.as_bytes()).await;
                let _ = socket.write_all(b"data: ").await;
                let block = vec![b'z'; 1 << 20];
                for _ in 0..20 {
                    if socket.write_all(&block).await.is_err() {
                        break;
                    }
                }
            }
            Misbehaviour::PlainText => {
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello")
                    .await;
            }
        }
        return;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_server_misbehaving_every_other_way_is_counted() {
    let cases = [
        (Misbehaviour::Silent, Some("timeout")),
        (Misbehaviour::HugeEvent, None),
        (Misbehaviour::EndlessEvent, Some("decode")),
        (Misbehaviour::PlainText, Some("decode")),
    ];
    for profile in PROFILES {
        for (misbehaviour, kind) in cases {
            let (url, seen) = raw_server(misbehaviour).await;
            let started = Instant::now();
            let report = run(&url, profile, "[target.timeouts]\nread_seconds = 0.5").await;
            let what = format!("{profile} / {misbehaviour:?}");
            assert!(started.elapsed() < Duration::from_secs(15), "{what}");
            let b = &report.benchmarks[0];
            let r = b.requests;
            assert_eq!(r.total, 12, "{what}: {r:?}");
            assert_eq!(r.total as usize, seen.load(Ordering::SeqCst), "{what}");
            match kind {
                Some(kind) => {
                    assert_eq!(r.errored, 12, "{what}: {r:?} {:?}", b.errors);
                    assert_eq!(b.errors[0].kind, kind, "{what}: {:?}", b.errors);
                }
                None => {
                    assert_eq!(r.successful, 12, "{what}: {:?}", b.errors);
                    let out = ok(&b.metrics.output_tokens);
                    assert_eq!(out.max, 1.0, "one content chunk, counted once");
                }
            }
        }
    }
}

/// A server that closes every connection right after a stream although it announced
/// keep-alive (llama.cpp's): the probe finds out, every request gets its own connection, and
/// no request is lost to the race between the close and the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_after_each_stream_loses_no_request() {
    for profile in PROFILES {
        let (url, seen) = raw_server(Misbehaviour::ClosesAfterStream).await;
        let report = run(&url, profile, "api = \"completions\"").await;
        let r = report.benchmarks[0].requests;
        assert_eq!(
            (r.total, r.successful),
            (12, 12),
            "{profile}: {:?}",
            report.benchmarks[0].errors
        );
        assert_eq!(seen.load(Ordering::SeqCst), 12, "{profile}");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.code == "connections_not_reused"),
            "{profile}: {:?}",
            report.warnings
        );
    }
    // A server that keeps its connections (the mock) is left alone; its probe is not counted.
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let report = run(&mock.base_url(), PROFILES[0], "").await;
    assert!(report
        .warnings
        .iter()
        .all(|w| w.code != "connections_not_reused"));
    let stats = mock.stats();
    // Two probes: the target check and the connection probe.
    assert_eq!((stats.requests, stats.probes), (12, 2));
}

/// A server that answers the preflight and then stops listening: every request is refused,
/// and counted as a `connect` error, not a crash or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_after_the_preflight_gives_connect_errors() {
    for profile in PROFILES {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let url = format!("http://{address}");
        // Answer the preflight's two requests (the model list, then a one-token stream), each
        // on its own connection, then close the listener.
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            for _ in 0..2 {
                let (mut socket, _) = listener.accept().unwrap();
                let mut buffer = [0u8; 4096];
                let n = socket.read(&mut buffer).unwrap_or(0);
                let (content_type, body) = if buffer[..n].starts_with(b"GET") {
                    (
                        "application/json",
                        r#"{"object":"list","data":[]}"#.to_owned(),
                    )
                } else {
                    (
                        "text/event-stream",
                        "data: {\"choices\":[{\"index\":0,\"text\":\"ok\"}]}\n\ndata: [DONE]\n\n"
                            .to_owned(),
                    )
                };
                let _ = write!(
                    socket,
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let started = Instant::now();
        let report = run(&url, profile, "").await;
        server.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        let b = &report.benchmarks[0];
        assert_eq!(
            (b.requests.total, b.requests.errored),
            (12, 12),
            "{profile}: {:?}",
            b.requests
        );
        assert_eq!(b.errors[0].kind, "connect", "{profile}: {:?}", b.errors);
    }
}

/// Retries are off by default; turned on, every attempt is a request of its own: claimed
/// against `max_requests`, counted in the totals (so they still equal what the server saw),
/// and recorded under its own id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_count_every_attempt() {
    let dir = tempfile::tempdir().unwrap();
    for retries in [0, 2] {
        let server = MockServer::start(MockConfig {
            faults: vec![FaultSpec::parse("http_429:every=3,seconds=0").unwrap()],
            ttft_ms: 2.0,
            itl_ms: 1.0,
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let records = dir.path().join(format!("r{retries}.jsonl"));
        let report = run(
            &server.base_url(),
            "kind = \"concurrent\"\nstreams = [1]",
            &format!(
                "[engines.native]\nretries = {retries}\nrequest_records = {:?}",
                records.display().to_string()
            ),
        )
        .await;
        let b = &report.benchmarks[0];
        assert_eq!(b.requests.total, 12, "{:?}", b.requests);
        assert_eq!(server.ground_truth().len(), 12);
        assert_eq!((b.requests.successful, b.requests.errored), (8, 4));
        let ids: Vec<String> = std::fs::read_to_string(&records)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["request_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let retried = ids.iter().filter(|id| id.contains(".retry")).count();
        if retries == 0 {
            assert_eq!(retried, 0, "{ids:?}");
        } else {
            // Every 429 but a last one cut by max_requests is followed by its retry.
            assert!(retried >= 3, "{ids:?}");
            assert!(ids.iter().any(|id| id.ends_with(".retry1")), "{ids:?}");
        }
    }
}

/// A server that fails every request, with no error limit in the config: the benchmark stops
/// once the last 50 finished requests all failed, long before its time limit, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_failing_everything_is_not_hammered_for_the_whole_time_limit() {
    for profile in [
        "kind = \"synchronous\"",
        "kind = \"concurrent\"\nstreams = [4]",
    ] {
        let server = MockServer::start(MockConfig {
            faults: vec![FaultSpec::parse("http_500:p=1").unwrap()],
            ttft_ms: 2.0,
            itl_ms: 1.0,
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let text = format!(
            "[target]\nurl = \"{}\"\nmodel = \"m\"\n[profile]\n{profile}\n[constraints]\nmax_seconds = 30\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 6\napproximate = true\n",
            server.base_url()
        );
        let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
        let engine = registry::engine_for(&config).unwrap();
        let started = Instant::now();
        let report = engine.run(&config, &RunContext::default()).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{profile}: {:?}",
            started.elapsed()
        );
        let b = &report.benchmarks[0];
        assert_eq!(
            b.stopped_by,
            Some(bench_core::schema::StopReason::MaxErrorRate),
            "{profile}"
        );
        // Requests still in flight when it stopped are cancelled: incomplete.
        let r = b.requests;
        assert_eq!(r.successful, 0, "{profile}: {r:?}");
        assert!(r.incomplete <= 3, "{profile}: {r:?}");
        assert!((50..=53).contains(&r.errored), "{profile}: {r:?}");
        // A request cancelled at the stop may not have reached the server yet.
        let seen = server.ground_truth().len() as u64;
        assert!(
            (r.total - r.incomplete..=r.total).contains(&seen),
            "{profile}: {r:?}, the server saw {seen}"
        );
        assert_eq!(
            (
                b.errors[0].kind.as_str(),
                b.errors[0].status_code,
                b.errors[0].count
            ),
            ("http_status", Some(500), r.errored),
            "{profile}"
        );
        let warning = b
            .warnings
            .iter()
            .find(|w| w.code == "stopped_on_failures")
            .unwrap_or_else(|| panic!("{profile}: {:?}", b.warnings));
        assert!(
            warning
                .message
                .starts_with("the last 50 finished requests all failed"),
            "{}",
            warning.message
        );
    }
}

/// The connection probe runs beside the first benchmark, which starts at once: a closed-loop
/// run against a server that closes after every stream (llama.cpp's) sends its first requests
/// before the probe has decided, and still loses none to the race, on either HTTP client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_run_starting_before_the_probe_decides_loses_no_request() {
    for timestamps in ["kernel", "user_space"] {
        let (url, seen) = raw_server(Misbehaviour::ClosesAfterStream).await;
        let text = format!(
            "[target]\nurl = \"{url}\"\nmodel = \"m\"\napi = \"completions\"\n\
             [profile]\nkind = \"concurrent\"\nstreams = [4]\n\
             [constraints]\nmax_requests = 300\nmax_seconds = 20\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 6\napproximate = true\n\
             [engines.native]\ntimestamps = \"{timestamps}\"\n"
        );
        let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
        let engine = registry::engine_for(&config).unwrap();
        let report = engine.run(&config, &RunContext::default()).await.unwrap();
        let b = &report.benchmarks[0];
        assert_eq!(
            (b.requests.total, b.requests.successful),
            (300, 300),
            "{timestamps}: {:?}",
            b.errors
        );
        assert_eq!(seen.load(Ordering::SeqCst), 300, "{timestamps}");
        // Every request had a connection of its own, before the probe's answer and after.
        let transport = b.transport.as_ref().unwrap();
        assert!(
            transport.connections_opened >= 300,
            "{timestamps}: {transport:?}"
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.code == "connections_not_reused"),
            "{timestamps}: {:?}",
            report.warnings
        );
    }
}

/// Against a server that keeps its connections (the mock), the requests sent while the probe
/// decides open their own connections, and once it has, the run reuses them: a one-stream
/// run of 120 requests (about 1.2 s) opens a handful, not one per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_server_gets_its_connections_reused_once_the_probe_decided() {
    for timestamps in ["kernel", "user_space"] {
        let mock = MockServer::start(MockConfig {
            ttft_ms: 5.0,
            itl_ms: 1.0,
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let text = format!(
            "[target]\nurl = \"{}\"\nmodel = \"m\"\n\
             [profile]\nkind = \"concurrent\"\nstreams = [1]\n\
             [constraints]\nmax_requests = 120\nmax_seconds = 20\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 6\napproximate = true\n\
             [engines.native]\ntimestamps = \"{timestamps}\"\n",
            mock.base_url()
        );
        let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
        let engine = registry::engine_for(&config).unwrap();
        let report = engine.run(&config, &RunContext::default()).await.unwrap();
        let b = &report.benchmarks[0];
        assert_eq!(b.requests.successful, 120, "{timestamps}: {:?}", b.errors);
        let opened = b.transport.as_ref().unwrap().connections_opened;
        // About 100 ms of 10 ms requests before the probe's answer, then one connection.
        assert!(
            (1..=40).contains(&opened),
            "{timestamps}: {opened} connections for 120 requests"
        );
        assert!(
            report
                .warnings
                .iter()
                .all(|w| w.code != "connections_not_reused"),
            "{timestamps}: {:?}",
            report.warnings
        );
        let stats = mock.stats();
        assert_eq!((stats.requests, stats.probes), (120, 2), "{timestamps}");
    }
}
