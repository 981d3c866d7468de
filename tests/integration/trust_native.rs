//! Whether the native engine's verdicts can be trusted: no panic from any config or measured
//! value, `client_bound` only when the client really set the pace, `concurrency_capped` when
//! the cap did, and a server failing everything stopped early.
//!
//! Tests named `timed_*` judge timings and run alone (`.config/nextest.toml`); they use the
//! in-process CLI, whose embedded mock has a runtime of its own, so the mock's work never
//! delays the client's schedule.

use bench_cli::exit_codes;
use bench_core::config::{ConfigFormat, StrategyKind};
use bench_core::schema::{Benchmark, StopReason};
use bench_core::{registry, Config, Report, RunContext};
use bench_mock::{MockConfig, MockServer};
use bench_tests::cli::llm_bench;

use crate::run_cli;

fn codes(b: &Benchmark) -> Vec<&str> {
    b.warnings.iter().map(|w| w.code.as_str()).collect()
}

/// A sweep whose benchmarks complete no request (128 tokens at 50 ms each outlast 2 s)
/// measures 0 req/s: its rate step is skipped with `sweep_incomplete`. It used to panic
/// ("cannot convert float seconds to Duration"): the rate step got rate 0, so infinite
/// arrival offsets.
#[test]
fn a_sweep_that_completes_no_request_skips_its_rate_steps() {
    let report = run_cli(
        "benchmark_engine = \"native\"\n[target.mock]\nitl_ms = 50\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 128\napproximate = true\n",
        &[
            "profile.kind=sweep",
            "profile.sweep_size=3",
            "constraints.max_seconds=2",
        ],
        // Not 101 (a panic): no benchmark completed a request.
        exit_codes::NO_SUCCESS,
    );
    let kinds: Vec<_> = report.benchmarks.iter().map(|b| b.strategy.kind).collect();
    assert_eq!(kinds, [StrategyKind::Synchronous, StrategyKind::Throughput]);
    assert!(report
        .benchmarks
        .iter()
        .all(|b| b.requests.successful == 0 && b.requests.incomplete > 0));
    let skipped: Vec<&str> = report
        .warnings
        .iter()
        .filter(|w| w.code == "sweep_incomplete")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(skipped.len(), 1, "{:?}", report.warnings);
    assert!(
        skipped[0].starts_with("sweep rate step 1/1 skipped: neither the synchronous nor the throughput benchmark measured a request rate"),
        "{}",
        skipped[0]
    );
}

/// Values no config should hold (the config's validation bounds them; the engine must not
/// rely on it): limits, ramp-ups and warmups past what an `Instant` holds, and rates of 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_past_any_clock_or_rate_never_panic() {
    let server = MockServer::start(MockConfig {
        ttft_ms: 1.0,
        itl_ms: 0.0,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let base = format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n\
         [constraints]\nmax_requests = 4\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 2\napproximate = true\n",
        server.base_url()
    );
    let engine_run = |config: Config| async move {
        let engine = registry::engine_for(&config).unwrap();
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            engine.run(&config, &RunContext::default()),
        )
        .await
        .expect("bounded")
        .unwrap()
    };
    // A time limit and a ramp-up of 1e300 s, and a cooldown of a tenth of that limit: the
    // first stream (or arrival) runs at once, the others are due past any clock, and never.
    for (profile, total, stopped_by) in [
        (
            "[profile]\nkind = \"concurrent\"\nstreams = [2]",
            4,
            Some(StopReason::MaxRequests),
        ),
        ("[profile]\nkind = \"constant\"\nrates = [100.0]", 1, None),
    ] {
        let mut config =
            Config::load(&format!("{base}{profile}\n"), ConfigFormat::Toml, &[]).unwrap();
        config.constraints.max_seconds = Some(1e300);
        config.cooldown = Some(bench_core::config::Transient::Fraction(0.1));
        config.profile.rampup_seconds = Some(1e300);
        let report = engine_run(config).await;
        let b = &report.benchmarks[0];
        assert_eq!(
            (b.requests.successful, b.stopped_by),
            (total, stopped_by),
            "{profile}: {:?}",
            b.requests
        );
    }
    // A rate of 0, or not a number: no arrival ever comes, and nothing is sent.
    for rate in [0.0, f64::NAN] {
        let mut config = Config::load(
            &format!("{base}[profile]\nkind = \"constant\"\nrates = [5.0]\n"),
            ConfigFormat::Toml,
            &[],
        )
        .unwrap();
        config.profile.rates = Some(vec![rate]);
        config.constraints.max_seconds = Some(1.0);
        let report = engine_run(config).await;
        assert_eq!(report.benchmarks[0].requests.total, 0, "rate {rate}");
    }
}

/// The embedded mock shaped like examples/quickstart.toml (a small GPU server).
const QUICKSTART_MOCK: &str = "benchmark_engine = \"native\"\n[target.mock]\nttft_ms = 30\n\
    prefill_ms_per_token = 0.05\nitl_ms = 8\nmax_batch = 32\nslowdown = 1.5\n\
    [data]\nkind = \"synthetic\"\nprompt_tokens = 128\noutput_tokens = 32\napproximate = true\n";

/// 20 req/s for 3 s is nothing for the client: no `client_bound`, whatever the noise (the
/// old rule fired on "sent 20.48 req/s of the 20.00 asked, schedule lag p99 1.7 ms").
#[test]
fn timed_a_rate_the_client_easily_keeps_is_not_client_bound() {
    let report = run_cli(
        &format!("{QUICKSTART_MOCK}[profile]\nkind = \"constant\"\nrates = [20.0]\nmax_concurrency = 64\n[constraints]\nmax_seconds = 3\n"),
        &[],
        exit_codes::OK,
    );
    let b = &report.benchmarks[0];
    assert!(b.requests.successful >= 50, "{:?}", b.requests);
    assert!(
        codes(b)
            .iter()
            .all(|c| *c != "client_bound" && *c != "concurrency_capped"),
        "{:?}",
        b.warnings
    );
    assert!(
        b.metrics.schedule_lag_ms.is_some(),
        "the lag is reported either way"
    );
}

/// The README's quickstart itself (a 20 s sweep against the embedded mock, run alone): on an
/// idle machine no benchmark is `client_bound`; it used to be in 1 or 2 of 3 runs.
#[test]
fn timed_the_quickstart_raises_no_client_bound() {
    let quickstart =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.toml");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("quickstart.json");
    let out = llm_bench([
        "run".as_ref(),
        "--config".as_ref(),
        quickstart.as_os_str(),
        "--no-progress".as_ref(),
        "--output".as_ref(),
        report.as_os_str(),
    ]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report.benchmarks.len(), 5);
    for b in &report.benchmarks {
        assert!(
            !codes(b).contains(&"client_bound"),
            "benchmark {}: {:?}",
            b.index + 1,
            b.warnings
        );
    }
}

/// 1e6 req/s is beyond any client: the pacer hands out arrivals faster than tasks can send
/// them, the lag grows to many times the server's TTFT, and the report says so.
#[test]
fn timed_a_rate_beyond_the_client_is_client_bound() {
    let report = run_cli(
        "benchmark_engine = \"native\"\n[target.mock]\nttft_ms = 0\nitl_ms = 0\n\
         [profile]\nkind = \"constant\"\nrates = [1000000.0]\n\
         [constraints]\nmax_requests = 3000\nmax_seconds = 60\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 1\napproximate = true\n",
        &[],
        exit_codes::OK,
    );
    let b = &report.benchmarks[0];
    assert_eq!(b.requests.total, 3000, "{:?} {:?}", b.requests, b.errors);
    let bound: Vec<_> = b
        .warnings
        .iter()
        .filter(|w| w.code == "client_bound")
        .collect();
    assert_eq!(bound.len(), 1, "{:?}", b.warnings);
    assert!(
        bound[0]
            .message
            .contains("req/s of the 1000000.00 req/s asked"),
        "{}",
        bound[0].message
    );
    assert!(!codes(b).contains(&"concurrency_capped"));
}

/// Two slots of ~120 ms requests carry about 16 req/s; 50 req/s arrive. The arrivals wait
/// for `max_concurrency`: the server is saturated, which is not the client's fault.
#[test]
fn timed_a_cap_holding_arrivals_back_is_concurrency_capped_not_client_bound() {
    let report = run_cli(
        "benchmark_engine = \"native\"\n[target.mock]\nttft_ms = 50\nitl_ms = 10\n\
         [profile]\nkind = \"constant\"\nrates = [50.0]\nmax_concurrency = 2\n\
         [constraints]\nmax_seconds = 3\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 8\napproximate = true\n",
        &[],
        exit_codes::OK,
    );
    let b = &report.benchmarks[0];
    let codes = codes(b);
    assert!(codes.contains(&"concurrency_capped"), "{:?}", b.warnings);
    assert!(!codes.contains(&"client_bound"), "{:?}", b.warnings);
    let capped = &b
        .warnings
        .iter()
        .find(|w| w.code == "concurrency_capped")
        .unwrap()
        .message;
    assert!(
        capped.starts_with("max_concurrency = 2 held back "),
        "{capped}"
    );
    assert_eq!(b.metrics.rates.concurrency.unwrap().max, 2);
}
