//! The drain before a benchmark: wait until the server has finished the requests the previous
//! benchmark (or a previous run, or another engine) left, reading its in-flight gauges from
//! its Prometheus `/metrics`. A client that cancels a request does not stop a server that only
//! notices at its next write (llama.cpp's queued requests), so without it a benchmark measures
//! the previous one's backlog. A server without such gauges is probed instead: a one-token
//! request, repeated until its TTFT is back near the fastest probe of the run. Every engine
//! drains before each benchmark: the native engine, and the per-point driver of the engines
//! that run an external tool.

use std::time::{Duration, Instant};

use bench_core::config::limits::{duration_from_secs, MAX_SECONDS};
use bench_core::schema::{Benchmark, Drain, DrainOutcome, Warning};
use bench_core::CancelToken;
use bytes::Bytes;

/// How often the gauges are read.
const POLL: Duration = Duration::from_millis(100);

/// `drain_timeout_seconds` when not given.
const DEFAULT_TIMEOUT_S: f64 = 60.0;

/// Longest wait for one `/metrics` answer, so a hung endpoint cannot stall the drain's clock.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The gauges of requests a server is running or has queued, per server; every one present
/// is summed, over all its label sets.
const GAUGES: &[&str] = &[
    "llamacpp:requests_processing",
    "llamacpp:requests_deferred",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "sglang:num_running_reqs",
    "sglang:num_queue_reqs",
    "tgi_queue_size",
    "tgi_batch_current_size",
];

/// A probe's TTFT counts as back near the baseline within this factor of it...
const PROBE_FACTOR: f64 = 2.0;
/// ... or this much above it (ms), for fast servers whose TTFT is mostly noise.
const PROBE_SLACK_MS: f64 = 20.0;

/// A run's drain: where the server is, how long to wait, and the probe for servers without
/// gauges with the fastest TTFT it has seen in this run (ms), the baseline of an idle server.
#[derive(Debug)]
pub struct Drainer {
    completion_url: String,
    timeout: Duration,
    /// The config key that sets the timeout, named in the `drain_timeout` warning.
    key: String,
    probe_body: Bytes,
    /// The probe's `x-request-id`.
    probe_id: String,
    fastest_ms: std::sync::Mutex<Option<f64>>,
}

impl Drainer {
    /// The drain of a run against `completion_url`, waiting at most `timeout`, set by the
    /// config key `key`; a server without gauges is probed with `probe_body`, a one-token
    /// request sent as `x-request-id: probe_id`.
    pub fn new(
        completion_url: String,
        timeout: DrainTimeout,
        key: &str,
        probe_body: Bytes,
        probe_id: String,
    ) -> Self {
        Self {
            completion_url,
            timeout: duration_from_secs(timeout.0),
            key: key.to_owned(),
            probe_body,
            probe_id,
            fastest_ms: std::sync::Mutex::new(None),
        }
    }

    /// Drains before benchmark `index` (from 0) with `client`, and logs a wait; returns at
    /// once when `cancel` fires.
    pub async fn before(
        &self,
        client: &reqwest::Client,
        index: usize,
        cancel: &CancelToken,
    ) -> Drained {
        let mut drained = wait(client, &self.completion_url, self.timeout, cancel).await;
        if drained.drain.outcome == DrainOutcome::Unknown && drained.first == 0 {
            drained = self.probe(client, cancel).await;
        }
        let (n, seconds) = (index + 1, drained.drain.seconds);
        match drained.drain.outcome {
            DrainOutcome::Probed if seconds > 0.0 => tracing::info!(
                "benchmark {n}: waited {seconds:.1} s until a one-token probe's TTFT was back near the server's idle {:.1} ms (it has no in-flight gauges)",
                drained.probe_ms.map_or(0.0, |(_, b)| b)
            ),
            DrainOutcome::Idle if drained.first > 0 => tracing::info!(
                "benchmark {n}: waited {seconds:.1} s for the server to finish {} requests left by an earlier benchmark or run",
                drained.first
            ),
            DrainOutcome::TimedOut if !cancel.is_cancelled() => tracing::warn!(
                "benchmark {n}: the server still had {} requests after {seconds:.1} s of waiting for it to finish what an earlier benchmark or run left; its figures include that backlog",
                drained.last
            ),
            _ => {}
        }
        drained
    }

    /// Records `drained` on the benchmark that followed it, with a `drain_timeout` warning
    /// when the server never became idle.
    pub fn attach(&self, drained: Drained, benchmark: &mut Benchmark, cancelled: bool) {
        benchmark.drain = Some(drained.drain);
        if drained.drain.outcome == DrainOutcome::TimedOut && !cancelled {
            let still = match drained.probe_ms {
                Some((ttft, baseline)) => format!(
                    "a one-token probe still took {ttft:.1} ms to its first token (idle: {baseline:.1} ms)"
                ),
                None => format!("the server still had {} requests in flight", drained.last),
            };
            benchmark.warnings.push(Warning {
                code: "drain_timeout".to_owned(),
                message: format!(
                    "{still} after {:.1} s of waiting ({}) for the requests an earlier benchmark or run left to finish; the figures include that backlog",
                    drained.drain.seconds, self.key
                ),
            });
        }
    }

    /// Records `ttft_ms`; whether it is back near the baseline (the first one always is).
    fn near_baseline(&self, ttft_ms: f64) -> (bool, f64) {
        let mut fastest = self.fastest_ms.lock().unwrap_or_else(|p| p.into_inner());
        let baseline = fastest.map_or(ttft_ms, |f| f.min(ttft_ms));
        *fastest = Some(baseline);
        let near = ttft_ms <= (PROBE_FACTOR * baseline).max(baseline + PROBE_SLACK_MS);
        (near, baseline)
    }

    /// Without gauges: one-token requests (real ones, which the server counts) until one's
    /// TTFT is within [`PROBE_FACTOR`] (or [`PROBE_SLACK_MS`]) of the fastest probe of the
    /// run, bounded by the timeout. A probe that fails leaves the outcome unknown.
    async fn probe(&self, client: &reqwest::Client, cancel: &CancelToken) -> Drained {
        let start = Instant::now();
        let mut probes = 0u32;
        loop {
            let left = self.timeout.saturating_sub(start.elapsed());
            let Some(ttft_ms) = self.probe_ttft(client, left.min(READ_TIMEOUT * 6)).await else {
                return Drained::new(DrainOutcome::Unknown, start.elapsed().as_secs_f64(), 0, 0);
            };
            probes += 1;
            let (near, baseline) = self.near_baseline(ttft_ms);
            // The first probe of a drain that is already near costs no wait worth reporting.
            let seconds = if probes == 1 {
                0.0
            } else {
                start.elapsed().as_secs_f64()
            };
            let mut drained = if near {
                Drained::new(DrainOutcome::Probed, seconds, 0, 0)
            } else if start.elapsed() >= self.timeout || cancel.is_cancelled() {
                Drained::new(DrainOutcome::TimedOut, start.elapsed().as_secs_f64(), 0, 0)
            } else {
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = cancel.cancelled() => {}
                }
                continue;
            };
            drained.probe_ms = Some((ttft_ms, baseline));
            return drained;
        }
    }

    /// One probe's time to its first response bytes after the headers (ms), or `None` when
    /// it failed or took longer than `within`.
    async fn probe_ttft(&self, client: &reqwest::Client, within: Duration) -> Option<f64> {
        let exchange = async {
            let sent = Instant::now();
            let mut response = client
                .post(&self.completion_url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("x-request-id", &self.probe_id)
                .body(self.probe_body.clone())
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            // The first chunk of the body: the first token of a stream, or the whole answer.
            response.chunk().await.ok()??;
            let ttft = sent.elapsed().as_secs_f64() * 1000.0;
            // Read the rest, so the probe leaves nothing running in the server.
            while let Ok(Some(_)) = response.chunk().await {}
            Some(ttft)
        };
        tokio::time::timeout(within, exchange).await.ok().flatten()
    }
}

/// What a drain found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drained {
    drain: Drain,
    /// Requests the server had at the first reading.
    first: u64,
    /// Requests it had at the last reading (still busy at the timeout when timed out).
    last: u64,
    /// Probed: the last probe's TTFT and the baseline (ms).
    probe_ms: Option<(f64, f64)>,
}

impl Drained {
    fn new(outcome: DrainOutcome, seconds: f64, first: u64, last: u64) -> Self {
        Self {
            drain: Drain { seconds, outcome },
            first,
            last,
            probe_ms: None,
        }
    }
}

/// An engine's `drain_timeout_seconds`: finite, 0 or more (0 turns the drain off), at most
/// the config's 30-day limit; 60 s when not given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrainTimeout(f64);

impl Default for DrainTimeout {
    fn default() -> Self {
        Self(DEFAULT_TIMEOUT_S)
    }
}

impl<'de> serde::Deserialize<'de> for DrainTimeout {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = f64::deserialize(deserializer)?;
        if !(value.is_finite() && value >= 0.0) {
            return Err(D::Error::custom(format!(
                "{value} must be zero or more seconds (0 turns the drain off)"
            )));
        }
        if value > MAX_SECONDS {
            // No 300-digit expansion of a huge value.
            let shown = if value >= 1e15 {
                format!("{value:e}")
            } else {
                value.to_string()
            };
            return Err(D::Error::custom(format!(
                "{shown} s is more than the limit of {MAX_SECONDS} s (30 days); give at most that"
            )));
        }
        Ok(Self(value))
    }
}

/// The sum of the known in-flight gauges in a Prometheus text exposition, or `None` when it
/// holds none of them. Lines are `name{labels} value [timestamp]` or `name value`; comments
/// and anything malformed are skipped.
fn in_flight(text: &str) -> Option<f64> {
    crate::sum_of(text, GAUGES)
}

/// The `/metrics` route on the host and port of `completion_url`.
fn metrics_url(completion_url: &str) -> Option<reqwest::Url> {
    reqwest::Url::parse(completion_url)
        .ok()?
        .join("/metrics")
        .ok()
}

/// One reading of the gauges, or `None` when there is no reading (no route, no known gauge,
/// the server did not answer).
async fn read(client: &reqwest::Client, url: &reqwest::Url, within: Duration) -> Option<f64> {
    let within = within.clamp(Duration::from_millis(1), READ_TIMEOUT);
    let answer = async {
        let response = client.get(url.clone()).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        in_flight(&response.text().await.ok()?)
    };
    tokio::time::timeout(within, answer).await.ok().flatten()
}

/// Waits, polling every [`POLL`], until the server's in-flight gauges read 0 or `timeout`
/// passes; returns at once when cancelled. A zero timeout is the drain turned off.
async fn wait(
    client: &reqwest::Client,
    completion_url: &str,
    timeout: Duration,
    cancel: &CancelToken,
) -> Drained {
    if timeout.is_zero() {
        return Drained::new(DrainOutcome::Off, 0.0, 0, 0);
    }
    let Some(url) = metrics_url(completion_url) else {
        return Drained::new(DrainOutcome::Unknown, 0.0, 0, 0);
    };
    let start = Instant::now();
    let deadline = start.checked_add(timeout);
    let left = || {
        deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        })
    };
    let count = |value: f64| value.round() as u64;
    let mut first = None;
    loop {
        let Some(value) = read(client, &url, left()).await else {
            let seconds = if first.is_some() {
                start.elapsed().as_secs_f64()
            } else {
                0.0
            };
            let first = first.unwrap_or(0);
            return Drained::new(DrainOutcome::Unknown, seconds, first, first);
        };
        let now = count(value);
        let first = *first.get_or_insert(now);
        // Gauges count requests; below one half is none.
        if value < 0.5 {
            // Already idle at the first reading: no wait to report.
            let seconds = if first == 0 {
                0.0
            } else {
                start.elapsed().as_secs_f64()
            };
            return Drained::new(DrainOutcome::Idle, seconds, first, 0);
        }
        let remaining = left();
        if remaining.is_zero() || cancel.is_cancelled() {
            return Drained::new(
                DrainOutcome::TimedOut,
                start.elapsed().as_secs_f64(),
                first,
                now,
            );
        }
        tokio::select! {
            () = tokio::time::sleep(POLL.min(remaining)) => {}
            () = cancel.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_cpp_gauges_are_summed() {
        let text = "\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 10240
# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 4
# HELP llamacpp:requests_deferred Number of requests deferred.
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 508
";
        assert_eq!(in_flight(text), Some(512.0));
    }

    #[test]
    fn vllm_gauges_with_labels_are_summed_over_label_sets() {
        let text = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
vllm:num_requests_running{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 100.0
vllm:e2e_request_latency_seconds_bucket{le="0.3",model_name="m"} 4.0
"#;
        assert_eq!(in_flight(text), Some(12.0));
    }

    #[test]
    fn sglang_gauges_are_read() {
        let text = r#"# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="qwen",engine_type="unified",tp_rank="0"} 0.0
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="qwen",engine_type="unified",tp_rank="0"} 0.0
sglang:token_usage{model_name="qwen"} 0.25
"#;
        assert_eq!(in_flight(text), Some(0.0));
    }

    #[test]
    fn tgi_gauges_are_read() {
        let text = "\
# TYPE tgi_queue_size gauge
tgi_queue_size 5
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 32
tgi_batch_current_max_tokens 16000
";
        assert_eq!(in_flight(text), Some(37.0));
    }

    #[test]
    fn text_without_known_gauges_or_malformed_lines_gives_no_reading() {
        assert_eq!(in_flight(""), None);
        assert_eq!(
            in_flight("# HELP x y\nprocess_cpu_seconds_total 12.5\nup 1\n"),
            None
        );
        // Broken lines are skipped, not fatal; a timestamp after the value is allowed.
        let text = "llamacpp:requests_processing\nllamacpp:requests_deferred{a=\"}\" 3\n\
            tgi_queue_size{q=\"a}b\\\"c\"} 2 1712345678000\ntgi_batch_current_size NaN\n\
            vllm:num_requests_running -1\n";
        assert_eq!(in_flight(text), Some(2.0));
        assert_eq!(in_flight("tgi_queue_size{\n{} 1\n"), None);
        assert_eq!(
            in_flight("tgi_queue_size{x=\"é\"} +Inf\ntgi_queue_size 1\n"),
            Some(1.0)
        );
    }

    #[test]
    fn the_metrics_url_is_on_the_targets_host_and_port() {
        assert_eq!(
            metrics_url("http://127.0.0.1:8080/v1/chat/completions?x=1")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/metrics"
        );
        assert_eq!(metrics_url("not a url"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_mock_drains_at_once_and_a_zero_timeout_is_off() {
        let server = bench_mock::MockServer::start(bench_mock::MockConfig::default())
            .await
            .unwrap();
        let url = format!("{}/v1/chat/completions", server.base_url());
        let client = bench_target::plain_client().unwrap();
        let cancel = CancelToken::new();
        let drained = wait(&client, &url, Duration::from_secs(5), &cancel).await;
        assert_eq!(
            drained,
            Drained::new(DrainOutcome::Idle, 0.0, 0, 0),
            "the mock is idle"
        );
        let off = wait(&client, &url, Duration::ZERO, &cancel).await;
        assert_eq!(off.drain.outcome, DrainOutcome::Off);
    }

    /// A server that answers every request with `status` and `body`.
    async fn fake_server(status: &'static str, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        format!("http://{addr}/v1/chat/completions")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_stays_busy_times_out_and_cancellation_ends_the_wait() {
        let client = bench_target::plain_client().unwrap();
        let cancel = CancelToken::new();
        let url = fake_server(
            "200 OK",
            "llamacpp:requests_processing 4\nllamacpp:requests_deferred 3\n",
        )
        .await;
        // Long enough that the first read answers within it on a loaded machine (with 350 ms
        // a slow first read left the wait `Unknown` under a parallel test run).
        let drained = wait(&client, &url, Duration::from_millis(1500), &cancel).await;
        assert_eq!(drained.drain.outcome, DrainOutcome::TimedOut);
        assert_eq!((drained.first, drained.last), (7, 7));
        assert!(
            (1.5..4.0).contains(&drained.drain.seconds),
            "{}",
            drained.drain.seconds
        );
        let started = Instant::now();
        let cancelled = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            cancelled.cancel();
        });
        let drained = wait(&client, &url, Duration::from_secs(60), &cancel).await;
        assert_eq!(drained.drain.outcome, DrainOutcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_without_gauges_or_not_answering_is_unknown() {
        let client = bench_target::plain_client().unwrap();
        let cancel = CancelToken::new();
        let url = fake_server("404 Not Found", "").await;
        let drained = wait(&client, &url, Duration::from_secs(5), &cancel).await;
        assert_eq!(drained, Drained::new(DrainOutcome::Unknown, 0.0, 0, 0));
        // Nothing listens there (a port just freed).
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
        let drained = wait(&client, &url, Duration::from_secs(5), &cancel).await;
        assert_eq!(drained.drain.outcome, DrainOutcome::Unknown);
    }
}
