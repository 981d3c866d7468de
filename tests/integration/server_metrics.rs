//! Scraping the server's own `/metrics` (`[target.metrics]`) against the mock, whose queue,
//! batch and token counters are known, and against metrics endpoints that are absent, slow or
//! answer garbage, which must never change the client's figures.

use std::time::Duration;

use bench_core::config::ConfigFormat;
use bench_core::schema::{Report, ScrapeStatus};
use bench_core::{registry, Config, RunContext};
use bench_mock::{MockConfig, MockServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn run(text: &str) -> Report {
    let config = Config::load(text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    engine.run(&config, &RunContext::default()).await.unwrap()
}

/// Four batch slots; a request holds one for 20 + 7 x 10 = 90 ms.
fn small_mock() -> MockConfig {
    MockConfig {
        max_batch: 4,
        ttft_ms: 20.0,
        itl_ms: 10.0,
        output_tokens: 8,
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_sweep_the_waiting_queue_rises_past_the_batch_at_the_throughput_step() {
    let mock = MockServer::start(small_mock()).await.unwrap();
    let report = run(&format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n\
         [target.metrics]\ninterval_seconds = 0.1\n\
         [profile]\nkind = \"sweep\"\nsweep_size = 3\nmax_concurrency = 32\n\
         [constraints]\nmax_seconds = 1.5\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 8\napproximate = true\n",
        mock.base_url()
    ))
    .await;
    let server = |i: usize| report.benchmarks[i].server.as_ref().unwrap();
    for b in &report.benchmarks {
        let s = b.server.as_ref().unwrap();
        assert_eq!(s.status, ScrapeStatus::Scraped, "{s:?}");
        assert_eq!(s.naming.as_deref(), Some("vllm"));
        assert_eq!(s.failed_scrapes, 0, "{s:?}");
        assert!(s.scrapes >= 10, "{s:?}");
        assert!(
            b.warnings.iter().all(|w| !w.code.starts_with("server_")),
            "{:?}",
            b.warnings
        );
    }
    // One request at a time: never a queue.
    assert_eq!(server(0).waiting.unwrap().max, 0.0);
    assert_eq!(server(0).running.unwrap().max, 1.0);
    // 32 streams against 4 slots: the batch full and the rest waiting.
    let throughput = server(1);
    assert_eq!(throughput.running.unwrap().max, 4.0);
    assert!(throughput.waiting.unwrap().max > 4.0, "{throughput:?}");
    let waiting = throughput
        .series
        .iter()
        .find(|s| s.name == "waiting")
        .unwrap();
    assert!(waiting.points.iter().any(|p| p[1] > 4.0), "{waiting:?}");
    assert!(waiting.points.windows(2).all(|w| w[1][0] > w[0][0]));
    // The server's own TTFT grows with its queue.
    assert!(
        throughput.ttft_ms.unwrap().p50 > 2.0 * server(0).ttft_ms.unwrap().p50,
        "{:?} vs {:?}",
        throughput.ttft_ms,
        server(0).ttft_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_counter_increases_equal_the_clients_totals_exactly() {
    let mock = MockServer::start(small_mock()).await.unwrap();
    let report = run(&format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n\
         [target.metrics]\ninterval_seconds = 0.1\n\
         [profile]\nkind = \"concurrent\"\nstreams = [4]\n[constraints]\nmax_requests = 40\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 8\napproximate = true\n",
        mock.base_url()
    ))
    .await;
    let b = &report.benchmarks[0];
    assert_eq!(b.requests.successful, 40);
    let server = b.server.as_ref().unwrap();
    let check = server.token_check.unwrap();
    assert_eq!(check.client_output_tokens, 40 * 8);
    assert_eq!(check.server_generation_tokens, Some(320.0));
    let output = b
        .metrics
        .output_tokens
        .as_ref()
        .unwrap()
        .total
        .as_ref()
        .unwrap();
    assert_eq!(output.mean * output.count as f64, 320.0);
    let prompt = b
        .metrics
        .prompt_tokens
        .as_ref()
        .unwrap()
        .total
        .as_ref()
        .unwrap();
    assert_eq!(
        check.client_prompt_tokens as f64,
        prompt.mean * prompt.count as f64
    );
    assert_eq!(
        check.server_prompt_tokens,
        Some(check.client_prompt_tokens as f64)
    );
    assert_eq!(
        (check.relative_difference, check.agrees),
        (Some(0.0), Some(true))
    );
    assert_eq!(server.e2e_latency_ms.unwrap().count, 40.0);
    assert!(
        server
            .cpu_ms_per_scrape
            .is_some_and(|ms| ms > 0.0 && ms < 50.0),
        "{server:?}"
    );
}

/// A metrics endpoint that answers every connection with `answer` after `delay`.
async fn fake_metrics(answer: &'static str, delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                tokio::time::sleep(delay).await;
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const GARBAGE: &str =
    "HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\n\r\nhello world\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_slow_or_garbage_metrics_never_change_the_clients_figures() {
    let mock = MockServer::start(small_mock()).await.unwrap();
    let slow = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nup 1\n\n";
    let cases = [
        (
            "on",
            fake_metrics(NOT_FOUND, Duration::ZERO).await,
            ScrapeStatus::Failed,
            "HTTP 404",
        ),
        (
            "on",
            fake_metrics(slow, Duration::from_secs(3)).await,
            ScrapeStatus::Failed,
            "no answer within the scrape interval",
        ),
        (
            "on",
            fake_metrics(GARBAGE, Duration::ZERO).await,
            ScrapeStatus::Failed,
            "not Prometheus text",
        ),
        (
            "auto",
            fake_metrics(NOT_FOUND, Duration::ZERO).await,
            ScrapeStatus::Absent,
            "HTTP 404",
        ),
    ];
    for (mode, url, status, error) in cases {
        let report = run(&format!(
            "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n\
             [target.metrics]\nmode = \"{mode}\"\nurl = \"{url}\"\ninterval_seconds = 0.2\n\
             [profile]\nkind = \"concurrent\"\nstreams = [2]\n[constraints]\nmax_requests = 12\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 8\napproximate = true\n",
            mock.base_url()
        ))
        .await;
        let b = &report.benchmarks[0];
        assert_eq!(
            (b.requests.successful, b.requests.errored),
            (12, 0),
            "{mode} {url}"
        );
        let server = b.server.as_ref().unwrap();
        assert_eq!(server.status, status, "{mode} {server:?}");
        assert!(server.failed_scrapes >= 1);
        assert!(
            server
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains(error)),
            "{server:?}"
        );
        let warned = b
            .warnings
            .iter()
            .find(|w| w.code == "server_metrics_unavailable");
        match mode {
            "on" => assert!(
                warned.is_some_and(|w| w.message.contains(&url) && w.message.contains(error)),
                "{:?}",
                b.warnings
            ),
            _ => assert!(warned.is_none(), "{:?}", b.warnings),
        }
    }
}
