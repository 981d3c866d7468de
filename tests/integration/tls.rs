//! HTTPS targets end to end: the native engine against the mock serving TLS (certificates made
//! at test time with rcgen), what the report says about the transport, the words for every
//! handshake that fails, HTTP/2 against HTTP/1.1, a proxy from the environment, and secrets.
//!
//! The mock runs on a runtime of its own that the test keeps alive; the CLI runs in-process on
//! its own runtime, as a user's `llm-bench` would. Tests that set environment variables rely on
//! nextest running every test in its own process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bench_cli::exit_codes;
use bench_core::schema::{Benchmark, TimestampSource, Transport};
use bench_core::Report;
use bench_mock::test_pki::{Pair, Pki};
use bench_mock::{MockConfig, MockServer};
use bench_tests::cli::{llm_bench, ok, Outcome};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::run_cli;

/// A mock on a runtime of its own; the server is dropped before its runtime.
struct Mock {
    server: MockServer,
    _runtime: tokio::runtime::Runtime,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The mock serving HTTPS with `pair`, fast, with `config`'s other knobs.
fn mock(pair: &Pair, config: MockConfig) -> Mock {
    let runtime = runtime();
    let server = runtime
        .block_on(MockServer::start(MockConfig {
            tls_cert: Some(pair.cert.clone()),
            tls_key: Some(pair.key.clone()),
            ..config
        }))
        .unwrap();
    assert!(
        server.base_url().starts_with("https://"),
        "{}",
        server.base_url()
    );
    Mock {
        server,
        _runtime: runtime,
    }
}

fn fast() -> MockConfig {
    MockConfig {
        ttft_ms: 5.0,
        itl_ms: 1.0,
        ..MockConfig::default()
    }
}

/// A TOML path value.
fn path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A short benchmark of `url`: `target` lines go under `[target]`, `tls` lines under
/// `[target.tls]`, `rest` after everything.
fn config(url: &str, target: &str, tls: &str, rest: &str) -> String {
    let tls = if tls.is_empty() {
        String::new()
    } else {
        format!("[target.tls]\n{tls}\n")
    };
    format!(
        "[target]\nurl = \"{url}\"\nmodel = \"m\"\n{target}\n{tls}\
         [profile]\nkind = \"concurrent\"\nstreams = [2]\n\
         [constraints]\nmax_requests = 20\nmax_seconds = 5\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 8\napproximate = true\n\
         {rest}"
    )
}

/// Runs `llm-bench <command>` on `config`, expecting exit 5 and no report; stderr.
fn refused(command: &str, config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config).unwrap();
    let report = dir.path().join("report.json");
    let mut args = vec![command, "--config", file.to_str().unwrap()];
    if command == "run" {
        args.extend(["--no-progress", "--output", report.to_str().unwrap()]);
    }
    let out: Outcome = llm_bench(args);
    assert_eq!(
        out.code,
        exit_codes::TARGET_FAILED,
        "{command}: {}{}",
        out.stdout,
        out.stderr
    );
    assert!(!report.exists(), "nothing was measured");
    out.stderr
}

fn transport(b: &Benchmark) -> &Transport {
    b.transport
        .as_ref()
        .expect("the native engine reports its transport")
}

/// Every request succeeded.
fn all_successful(report: &Report) -> &Benchmark {
    let b = &report.benchmarks[0];
    assert!(b.requests.total > 0, "{:?}", b.requests);
    assert_eq!(
        b.requests.successful, b.requests.total,
        "{:?} {:?}",
        b.requests, b.errors
    );
    b
}

#[test]
fn https_with_the_ca_file_is_verified_and_speaks_http2() {
    let pki = Pki::new();
    let mock = mock(&pki.server, fast());
    let report = run_cli(
        &config(
            &mock.server.base_url(),
            "",
            &format!("ca_file = {}", path(&pki.ca)),
            "",
        ),
        &[],
        exit_codes::OK,
    );
    let b = all_successful(&report);
    let t = transport(b);
    assert_eq!(t.scheme, "https", "{t:?}");
    assert_eq!(t.tls_verified, Some(true), "{t:?}");
    assert_eq!(t.proxy, None, "{t:?}");
    assert_eq!(
        t.http_versions.keys().collect::<Vec<_>>(),
        ["HTTP/2"],
        "{t:?}"
    );
    assert_eq!(t.http_versions["HTTP/2"], b.requests.total, "{t:?}");
    assert!(t.connections_opened >= 1, "{t:?}");
    let setup = t.connection_setup_ms.as_ref().unwrap();
    assert!(setup.count >= 1 && setup.min > 0.0, "{setup:?}");
    assert!(report.warnings.iter().all(|w| w.code != "tls_unverified"));
    assert!(b.warnings.iter().all(|w| w.code != "tls_unverified"));
    // TLS records cannot be mapped to reads: times are the client's reads, and it says so.
    let timestamps = b.timestamps.as_ref().unwrap();
    assert_eq!(
        timestamps.source,
        TimestampSource::UserSpace,
        "{timestamps:?}"
    );
    assert_eq!(timestamps.client_delay_ms, None);
    let warning = report
        .warnings
        .iter()
        .find(|w| w.code == "user_space_timestamps")
        .expect("the fallback is announced");
    assert!(warning.message.contains("TLS"), "{}", warning.message);
    let stats = mock.server.stats();
    assert!(stats.http2_connections >= 1, "{stats:?}");
    assert_eq!(stats.http1_connections, 0, "{stats:?}");
}

#[test]
fn without_the_ca_file_the_untrusted_certificate_is_refused() {
    let pki = Pki::new();
    let mock = mock(&pki.server, fast());
    let stderr = refused("run", &config(&mock.server.base_url(), "", "", ""));
    assert!(
        stderr.contains("not signed by a trusted authority")
            && stderr.contains("target.tls.ca_file"),
        "{stderr}"
    );
    assert_eq!(mock.server.stats().requests, 0);
}

#[test]
fn insecure_skip_verify_runs_unverified_and_warns() {
    let pki = Pki::new();
    let mock = mock(&pki.server, fast());
    let report = run_cli(
        &config(
            &mock.server.base_url(),
            "",
            "insecure_skip_verify = true",
            "",
        ),
        &[],
        exit_codes::OK,
    );
    let b = all_successful(&report);
    let warned = report
        .warnings
        .iter()
        .chain(&b.warnings)
        .any(|w| w.code == "tls_unverified");
    assert!(warned, "{:?} {:?}", report.warnings, b.warnings);
    assert_eq!(transport(b).tls_verified, Some(false));
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let pki = Pki::new();
    let mock = mock(
        &pki.server,
        MockConfig {
            tls_client_ca: Some(pki.client_ca.clone()),
            ..fast()
        },
    );
    let url = mock.server.base_url();
    let ca = format!("ca_file = {}\n", path(&pki.ca));
    let stderr = refused("run", &config(&url, "", &ca, ""));
    assert!(stderr.contains("client certificate"), "{stderr}");
    assert!(mock.server.stats().tls_handshake_failures >= 1);
    let report = run_cli(
        &config(
            &url,
            "",
            &format!(
                "{ca}client_cert = {}\nclient_key = {}",
                path(&pki.client.cert),
                path(&pki.client.key)
            ),
            "",
        ),
        &[],
        exit_codes::OK,
    );
    all_successful(&report);
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = Pki::new();
    let mock = mock(&pki.expired, fast());
    let ca = format!("ca_file = {}", path(&pki.ca));
    let stderr = refused("run", &config(&mock.server.base_url(), "", &ca, ""));
    assert!(stderr.contains("expired"), "{stderr}");
}

#[test]
fn a_certificate_for_another_name_is_refused_unless_server_name_names_it() {
    let pki = Pki::new();
    let mock = mock(&pki.other, fast());
    let url = mock.server.base_url();
    let ca = format!("ca_file = {}", path(&pki.ca));
    let stderr = refused("run", &config(&url, "", &ca, ""));
    assert!(stderr.contains("not valid for"), "{stderr}");
    // Connects to 127.0.0.1, verifies other.example.
    let report = run_cli(
        &config(
            &url,
            "",
            &format!("{ca}\nserver_name = \"other.example\""),
            "",
        ),
        &[],
        exit_codes::OK,
    );
    let b = all_successful(&report);
    assert_eq!(transport(b).tls_verified, Some(true));
}

fn ttft_p50(b: &Benchmark) -> f64 {
    ok(&b.metrics.ttft_ms).percentiles.p50
}

#[test]
fn http2_and_http1_are_both_spoken_and_measure_the_same_ttft() {
    let pki = Pki::new();
    let mock = mock(
        &pki.server,
        MockConfig {
            ttft_ms: 20.0,
            itl_ms: 1.0,
            ..MockConfig::default()
        },
    );
    let url = mock.server.base_url();
    let ca = format!("ca_file = {}", path(&pki.ca));
    let before = mock.server.stats();
    let h2 = run_cli(&config(&url, "", &ca, ""), &[], exit_codes::OK);
    let middle = mock.server.stats();
    let h1 = run_cli(&config(&url, "http2 = false", &ca, ""), &[], exit_codes::OK);
    let after = mock.server.stats();
    let (b2, b1) = (all_successful(&h2), all_successful(&h1));
    let (t2, t1) = (transport(b2), transport(b1));
    assert_eq!(
        t2.http_versions.keys().collect::<Vec<_>>(),
        ["HTTP/2"],
        "{t2:?}"
    );
    assert_eq!(
        t1.http_versions.keys().collect::<Vec<_>>(),
        ["HTTP/1.1"],
        "{t1:?}"
    );
    assert_eq!(t2.http_versions["HTTP/2"], b2.requests.total);
    assert_eq!(t1.http_versions["HTTP/1.1"], b1.requests.total);
    // The server saw the same: only HTTP/2 connections in the first run, only HTTP/1.1 in
    // the second (preflight probes included).
    assert!(
        middle.http2_connections > before.http2_connections,
        "{middle:?}"
    );
    assert_eq!(
        middle.http1_connections, before.http1_connections,
        "{middle:?}"
    );
    assert!(
        after.http1_connections > middle.http1_connections,
        "{after:?}"
    );
    assert_eq!(
        after.http2_connections, middle.http2_connections,
        "{after:?}"
    );
    // Two streams at once: HTTP/1.1 needs a connection per stream.
    assert!(
        after.http1_connections - middle.http1_connections >= 2,
        "{middle:?} {after:?}"
    );
    let (a, b) = (ttft_p50(b2), ttft_p50(b1));
    assert!(
        (a - b).abs() < 3.0,
        "TTFT p50 HTTP/2 {a} ms, HTTP/1.1 {b} ms"
    );
    for ttft in [a, b] {
        assert!((ttft - 20.0).abs() < 3.0, "TTFT p50 {ttft} ms, mock 20 ms");
    }
}

/// A CONNECT proxy on loopback, counting tunnels and keeping the request heads it read.
struct Proxy {
    url: String,
    connects: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

fn proxy() -> Proxy {
    let runtime = runtime();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connects = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (connects.clone(), heads.clone());
    runtime.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(tunnel(client, count.clone(), seen.clone()));
        }
    });
    Proxy {
        url,
        connects,
        heads,
        _runtime: runtime,
    }
}

async fn tunnel(
    mut client: tokio::net::TcpStream,
    count: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().push(head.clone());
    let Some(authority) = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split(' ').next())
    else {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    count.fetch_add(1, Ordering::SeqCst);
    let Ok(mut upstream) = tokio::net::TcpStream::connect(authority).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

#[test]
fn https_proxy_from_the_environment_is_used_reported_and_can_be_turned_off() {
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        std::env::remove_var(name);
    }
    let pki = Pki::new();
    let mock = mock(&pki.server, fast());
    let proxy = proxy();
    let url = mock.server.base_url();
    let ca = format!("ca_file = {}", path(&pki.ca));
    let connects = || proxy.connects.load(Ordering::SeqCst);

    std::env::set_var("HTTPS_PROXY", &proxy.url);
    let report = run_cli(&config(&url, "", &ca, ""), &[], exit_codes::OK);
    let b = all_successful(&report);
    assert!(connects() > 0, "the run went through the proxy");
    assert_eq!(transport(b).proxy.as_deref(), Some(proxy.url.as_str()));
    let authority = url.trim_start_matches("https://");
    assert!(
        proxy
            .heads
            .lock()
            .unwrap()
            .iter()
            .all(|h| h.starts_with(&format!("CONNECT {authority} "))),
        "{:?}",
        proxy.heads.lock().unwrap()
    );

    // NO_PROXY names the target: direct.
    let before = connects();
    std::env::set_var("NO_PROXY", "127.0.0.1");
    let report = run_cli(&config(&url, "", &ca, ""), &[], exit_codes::OK);
    assert_eq!(connects(), before, "NO_PROXY=127.0.0.1 goes direct");
    assert_eq!(transport(all_successful(&report)).proxy, None);
    std::env::remove_var("NO_PROXY");

    // proxy_from_env = false: direct whatever the environment says.
    let report = run_cli(
        &config(&url, "proxy_from_env = false", &ca, ""),
        &[],
        exit_codes::OK,
    );
    assert_eq!(connects(), before, "proxy_from_env = false goes direct");
    assert_eq!(transport(all_successful(&report)).proxy, None);

    // Credentials are sent to the proxy and kept out of the report.
    let with_credentials = proxy.url.replace("http://", "http://user:secret@");
    std::env::set_var("HTTPS_PROXY", &with_credentials);
    let heads_before = proxy.heads.lock().unwrap().len();
    let report = run_cli(&config(&url, "", &ca, ""), &[], exit_codes::OK);
    assert!(connects() > before, "the run went through the proxy");
    assert_eq!(
        transport(all_successful(&report)).proxy.as_deref(),
        Some(proxy.url.as_str())
    );
    // `run_cli` read it from the file the CLI wrote.
    let written = serde_json::to_string(&report).unwrap();
    assert!(
        !written.contains("secret") && !written.contains("user:"),
        "{written}"
    );
    // Basic base64("user:secret").
    let heads = proxy.heads.lock().unwrap();
    assert!(
        heads[heads_before..].iter().all(|h| h
            .to_ascii_lowercase()
            .contains("proxy-authorization: basic dxnlcjpzzwnyzxq=")),
        "{heads:?}"
    );
}

#[test]
fn the_api_key_is_sent_over_https_and_written_nowhere() {
    const KEY: &str = "sk-tls-secret-123";
    std::env::set_var("LLM_BENCH_TLS_TEST_KEY", KEY);
    let pki = Pki::new();
    let mock = mock(&pki.server, fast());
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = ["r.json", "r.yaml", "r.csv", "r.html"]
        .iter()
        .map(|f| dir.path().join(f))
        .collect();
    let records = dir.path().join("requests.jsonl");
    let mut rest = String::new();
    for file in &files {
        rest.push_str(&format!("[[output]]\npath = {}\n", path(file)));
    }
    rest.push_str(&format!(
        "[engines.native]\nrequest_records = {}\n",
        path(&records)
    ));
    let text = config(
        &mock.server.base_url(),
        "api_key_env = \"LLM_BENCH_TLS_TEST_KEY\"",
        &format!("ca_file = {}", path(&pki.ca)),
        &rest,
    );
    let file = dir.path().join("config.toml");
    std::fs::write(&file, &text).unwrap();
    // The config's outputs (`--output` would replace them).
    let out = llm_bench(["run", "--config", file.to_str().unwrap(), "--no-progress"]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let parsed: Report =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    all_successful(&parsed);
    assert!(!out.stdout.contains(KEY) && !out.stderr.contains(KEY));
    for written in files.iter().chain([&records]) {
        let text = std::fs::read_to_string(written).unwrap();
        assert!(!text.is_empty(), "{}", written.display());
        assert!(!text.contains(KEY), "{} holds the key", written.display());
    }
}

#[test]
fn validate_checks_the_handshake_and_words_it_as_run_does() {
    let pki = Pki::new();
    let mock = mock(&pki.expired, fast());
    let text = config(
        &mock.server.base_url(),
        "",
        &format!("ca_file = {}", path(&pki.ca)),
        "",
    );
    let validate = refused("validate", &text);
    let run = refused("run", &text);
    assert!(validate.contains("expired"), "{validate}");
    let line = |stderr: &str| {
        stderr
            .lines()
            .find(|l| l.contains("expired"))
            // Without rustls's "verification time N (UNIX) ... (M seconds ago)".
            .map(|l| l.replace(|c: char| c.is_ascii_digit(), ""))
    };
    assert_eq!(
        line(&validate),
        line(&run),
        "validate: {validate}\nrun: {run}"
    );
}
