//! Drained benchmarks: before each benchmark the native engine waits for the server to
//! finish what the previous one left (the mock's `/metrics` gauges), so no benchmark measures
//! another's backlog.

use bench_core::config::ConfigFormat;
use bench_core::schema::{Benchmark, DrainOutcome};
use bench_core::{registry, Config, Report, RunContext};
use bench_mock::{MockConfig, MockServer};

/// Two slots; 16 streams leave 2 requests decoding and 14 queued when the client stops.
/// A queued request notices its client left only when it writes its first token, after its
/// 150 ms prefill, so the mock stays busy for about 7 x 150 ms after a flood.
fn slow_mock() -> MockConfig {
    MockConfig {
        max_batch: 2,
        ttft_ms: 150.0,
        itl_ms: 20.0,
        output_tokens: 20,
        ..MockConfig::default()
    }
}

/// 16 streams for 1 s, then 1 stream for 1 s (its requests take about 0.55 s unloaded).
async fn flood_then_one_stream(mock: &MockServer, native: &str) -> Report {
    flood_then_one_stream_of(mock, 16, native).await
}

/// `flood` streams for 1 s, then 1 stream for 1 s.
async fn flood_then_one_stream_of(mock: &MockServer, flood: u32, native: &str) -> Report {
    let text = format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n\
         [profile]\nkind = \"concurrent\"\nstreams = [{flood}, 1]\n[constraints]\nmax_seconds = 1\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 20\napproximate = true\n\
         [engines.native]\n{native}\n",
        mock.base_url()
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    engine.run(&config, &RunContext::default()).await.unwrap()
}

/// TTFT p50 over every request that saw its first token, or `None` when none did.
fn ttft_p50(b: &Benchmark) -> Option<f64> {
    let ttft = b.metrics.ttft_ms.as_ref()?.total.as_ref()?;
    Some(ttft.percentiles.p50)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_benchmark_after_a_flood_waits_for_the_backlog_and_measures_the_idle_server() {
    let mock = MockServer::start(slow_mock()).await.unwrap();
    let report = flood_then_one_stream(&mock, "").await;
    let (flood, after) = (&report.benchmarks[0], &report.benchmarks[1]);
    // A fresh server: idle at once.
    let first = flood.drain.unwrap();
    assert_eq!((first.outcome, first.seconds), (DrainOutcome::Idle, 0.0));
    assert!(flood.requests.incomplete >= 2, "{:?}", flood.requests);
    waited_for_the_backlog(after, DrainOutcome::Idle);
    assert!(after.warnings.iter().all(|w| w.code != "drain_timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_drain_off_a_benchmark_measures_the_previous_ones_backlog() {
    let mock = MockServer::start(slow_mock()).await.unwrap();
    // 48 streams leave about 23 x 150 ms of backlog: with 16, a loaded CI machine once started
    // the next benchmark after the backlog had gone.
    let report = flood_then_one_stream_of(&mock, 48, "drain_timeout_seconds = 0").await;
    for b in &report.benchmarks {
        let drain = b.drain.unwrap();
        assert_eq!((drain.outcome, drain.seconds), (DrainOutcome::Off, 0.0));
    }
    // The single stream's first request queued behind the flood's leftovers.
    let after = &report.benchmarks[1];
    let backlog = ttft_p50(after).is_none_or(|ttft| ttft > 400.0);
    assert!(backlog, "TTFT p50 {:?} ms", ttft_p50(after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_still_busy_at_the_timeout_is_warned_about() {
    let mock = MockServer::start(slow_mock()).await.unwrap();
    // 48 streams leave about 23 x 150 ms of backlog, so the 0.2 s timeout comes long before
    // the server is idle even when a loaded machine starts the drain late (with 16 streams, a
    // CI run once found the backlog gone 0.11 s into the drain).
    let report = flood_then_one_stream_of(&mock, 48, "drain_timeout_seconds = 0.2").await;
    let after = &report.benchmarks[1];
    let drain = after.drain.unwrap();
    assert_eq!(drain.outcome, DrainOutcome::TimedOut, "{drain:?}");
    assert!((0.2..2.0).contains(&drain.seconds), "{drain:?}");
    let warning = after
        .warnings
        .iter()
        .find(|w| w.code == "drain_timeout")
        .unwrap();
    assert!(
        warning.message.starts_with("the server still had ")
            && warning.message.contains("the figures include that backlog"),
        "{}",
        warning.message
    );
}

#[test]
fn the_drain_timeout_is_validated() {
    let base = "[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n[profile]\nkind = \"synchronous\"\n\
        [constraints]\nmax_requests = 1\n[data]\nkind = \"synthetic\"\nprompt_tokens = 4\noutput_tokens = 4\napproximate = true\n";
    for (value, expected) in [
        ("-1", "invalid `engines.native.drain_timeout_seconds`: -1 must be zero or more seconds (0 turns the drain off)"),
        ("1e300", "invalid `engines.native.drain_timeout_seconds`: 1e300 s is more than the limit of 2592000 s (30 days); give at most that"),
    ] {
        let text = format!("{base}[engines.native]\ndrain_timeout_seconds = {value}\n");
        let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
        let error = registry::engine_for(&config).err().unwrap().to_string();
        assert_eq!(error, expected, "{value}");
    }
    let text = format!("{base}[engines.native]\ndrain_timeout_seconds = 2592000\n");
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    assert!(registry::engine_for(&config).is_ok());
}

/// A server without in-flight gauges (the mock with `/metrics` off): the drain probes with
/// one-token requests until one's TTFT is back near the run's fastest, so the benchmark after
/// a flood still measures the idle server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_gauges_the_drain_probes_until_the_ttft_is_back() {
    let mock = MockServer::start(MockConfig {
        metrics: false,
        ..slow_mock()
    })
    .await
    .unwrap();
    let report = flood_then_one_stream(&mock, "").await;
    let (flood, after) = (&report.benchmarks[0], &report.benchmarks[1]);
    let first = flood.drain.unwrap();
    assert_eq!((first.outcome, first.seconds), (DrainOutcome::Probed, 0.0));
    waited_for_the_backlog(after, DrainOutcome::Probed);
}

/// The benchmark after a flood waited (ending with `outcome`) and then measured the idle
/// server, not the backlog.
fn waited_for_the_backlog(after: &Benchmark, outcome: DrainOutcome) {
    let drain = after.drain.unwrap();
    assert_eq!(drain.outcome, outcome, "{drain:?}");
    assert!(
        drain.seconds > 0.3 && drain.seconds < 10.0,
        "it waited for the backlog: {drain:?}"
    );
    let ttft = ttft_p50(after).unwrap();
    assert!(
        (140.0..300.0).contains(&ttft),
        "TTFT p50 {ttft} ms, the unloaded 150 ms, not the backlog"
    );
}
