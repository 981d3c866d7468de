//! The native engine against the mock over real HTTP: profiles, rates, constraints, windows,
//! and measured timings against the mock's injected values and ground truth.

use bench_core::config::{ConfigFormat, StrategyKind};
use bench_core::schema::{Benchmark, StopReason, TimestampSource};
use bench_core::{registry, Config, Report, RunContext};
use bench_mock::{FaultSpec, MockConfig, MockServer};
use bench_tests::cli::{ok, successful_rate};

/// Runs the native engine on `config` (TOML, without `[target]`) against `mock`.
async fn run(mock: &MockServer, config: &str) -> Report {
    let text = format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n{config}",
        mock.base_url()
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    engine.run(&config, &RunContext::default()).await.unwrap()
}

fn mock(ttft_ms: f64, itl_ms: f64) -> MockConfig {
    MockConfig {
        ttft_ms,
        itl_ms,
        ..MockConfig::default()
    }
}

const DATA: &str =
    "[data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 8\napproximate = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_timings_match_the_mock_and_its_ground_truth() {
    let server = MockServer::start(mock(20.0, 4.0)).await.unwrap();
    let report = run(
        &server,
        &format!("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 15\n{DATA}"),
    )
    .await;
    let b = &report.benchmarks[0];
    assert_eq!((b.requests.successful, b.requests.total), (15, 15));
    assert_eq!(b.stopped_by, Some(StopReason::MaxRequests));
    let ttft = ok(&b.metrics.ttft_ms);
    let itl = ok(&b.metrics.itl_ms);
    assert_eq!(itl.count, 15 * 7, "7 gaps per 8-token stream, pooled");
    assert_eq!(ok(&b.metrics.output_tokens).mean, 8.0);
    // The client sees the server's TTFT plus the loopback round trip.
    let truth = server.ground_truth();
    assert_eq!(
        truth.len(),
        15,
        "the server saw exactly the requests the report counts"
    );
    let mut server_ttft: Vec<f64> = truth
        .iter()
        .map(|t| (t.first_token_unix_us.unwrap() - t.arrival_unix_us) as f64 / 1000.0)
        .collect();
    server_ttft.sort_by(f64::total_cmp);
    let error = ttft.median - server_ttft[7];
    assert!(
        (0.0..1.0).contains(&error),
        "client TTFT p50 {} vs server {}",
        ttft.median,
        server_ttft[7]
    );
    assert!((itl.median - 4.0).abs() < 0.5, "ITL p50 {}", itl.median);
    assert!((ok(&b.metrics.tpot_ms).median - 4.0).abs() < 0.5);
    let decode = ok(&b.metrics.decode_time_ms).median;
    assert!((decode - 28.0).abs() < 2.0, "decode {decode}");
    let conc = b.metrics.rates.concurrency.unwrap();
    assert!(
        conc.mean > 0.8 && conc.mean <= 1.0 && conc.max == 1,
        "{conc:?}"
    );
    // Latency: the server's 20 + 7 x 4 ms, plus the round trip; from the intended send it can
    // only be longer.
    let latency = ok(&b.metrics.request_latency_ms);
    assert!(
        (48.0..52.0).contains(&latency.median),
        "latency p50 {}",
        latency.median
    );
    let from_intended = ok(&b.metrics.latency_from_intended_send_ms);
    assert!(from_intended.min >= latency.min && from_intended.median - latency.median < 1.0);
    // Prompt tokens are the server's usage figures, the same the ground truth records.
    let prompt = ok(&b.metrics.prompt_tokens);
    let truth_prompt: Vec<u32> = truth.iter().map(|t| t.prompt_tokens).collect();
    assert_eq!(
        (prompt.min, prompt.max),
        (
            f64::from(*truth_prompt.iter().min().unwrap()),
            f64::from(*truth_prompt.iter().max().unwrap())
        )
    );
    // Rates: 15 requests over the window, 8 tokens each.
    let rates = &b.metrics.rates;
    let rps = rates.requests_per_s.as_ref().unwrap().successful.unwrap();
    let tps = rates
        .output_tokens_per_s
        .as_ref()
        .unwrap()
        .successful
        .unwrap();
    assert!(
        (rps * b.window.duration_s - 15.0).abs() < 1e-6,
        "{rps} req/s over {} s",
        b.window.duration_s
    );
    assert!((tps - 8.0 * rps).abs() < 1e-6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_and_throughput_profiles_run_their_streams() {
    let server = MockServer::start(mock(5.0, 1.0)).await.unwrap();
    let report = run(&server, &format!("[profile]\nkind = \"concurrent\"\nstreams = [1, 4]\n[constraints]\nmax_requests = 40\n{DATA}")).await;
    let streams: Vec<_> = report
        .benchmarks
        .iter()
        .map(|b| (b.strategy.kind, b.strategy.streams))
        .collect();
    assert_eq!(
        streams,
        [
            (StrategyKind::Concurrent, Some(1)),
            (StrategyKind::Concurrent, Some(4))
        ]
    );
    let conc = report.benchmarks[1].metrics.rates.concurrency.unwrap();
    assert_eq!(conc.max, 4);
    assert!(conc.mean > 3.0, "{conc:?}");
    assert!(report.benchmarks.iter().all(|b| b.requests.total == 40));
    let report = run(&server, &format!("[profile]\nkind = \"throughput\"\nmax_concurrency = 8\n[constraints]\nmax_requests = 80\n{DATA}")).await;
    assert_eq!(
        report.benchmarks[0].metrics.rates.concurrency.unwrap().max,
        8
    );
    assert_eq!(server.ground_truth().len(), 80 + 80);
}

fn achieved(b: &Benchmark) -> f64 {
    b.metrics
        .rates
        .requests_per_s
        .as_ref()
        .unwrap()
        .total
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_and_poisson_keep_their_rate() {
    let server = MockServer::start(mock(5.0, 1.0)).await.unwrap();
    let report = run(&server, &format!("[profile]\nkind = \"constant\"\nrates = [40.0]\n[constraints]\nmax_seconds = 2\n{DATA}")).await;
    let b = &report.benchmarks[0];
    assert!(
        (achieved(b) - 40.0).abs() < 40.0 * 0.05,
        "constant achieved {}",
        achieved(b)
    );
    let lag = ok(&b.metrics.schedule_lag_ms);
    assert!(lag.median < 1.0, "schedule lag p50 {} ms", lag.median);
    assert_eq!(b.stopped_by, Some(StopReason::MaxSeconds));
    let report = run(
        &server,
        &format!(
            "[profile]\nkind = \"poisson\"\nrates = [60.0]\n[constraints]\nmax_seconds = 2\n{DATA}"
        ),
    )
    .await;
    let b = &report.benchmarks[0];
    assert!(
        (achieved(b) - 60.0).abs() < 60.0 * 0.25,
        "poisson achieved {}",
        achieved(b)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_runs_synchronous_throughput_then_rising_rates() {
    let server = MockServer::start(mock(5.0, 1.0)).await.unwrap();
    let report = run(&server, &format!("[profile]\nkind = \"sweep\"\nsweep_size = 4\nmax_concurrency = 16\n[constraints]\nmax_seconds = 1\n{DATA}")).await;
    let kinds: Vec<_> = report.benchmarks.iter().map(|b| b.strategy.kind).collect();
    assert_eq!(
        kinds,
        [
            StrategyKind::Synchronous,
            StrategyKind::Throughput,
            StrategyKind::Constant,
            StrategyKind::Constant
        ]
    );
    let rates: Vec<f64> = report.benchmarks[2..]
        .iter()
        .map(|b| b.strategy.target_rate_per_s.unwrap())
        .collect();
    let sync = successful_rate(&report.benchmarks[0]);
    assert!(sync < rates[0] && rates[0] < rates[1], "{sync} {rates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_constraints_stop_the_benchmark_and_errors_are_counted_by_kind() {
    let faulty = MockConfig {
        faults: vec![FaultSpec::parse("http_500:every=2").unwrap()],
        ..mock(2.0, 1.0)
    };
    let server = MockServer::start(faulty).await.unwrap();
    let report = run(&server, &format!("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_seconds = 5\nmax_errors = 5\n{DATA}")).await;
    let b = &report.benchmarks[0];
    assert_eq!(b.stopped_by, Some(StopReason::MaxErrors));
    assert_eq!(b.requests.errored, 5);
    assert_eq!(
        (
            b.errors[0].kind.as_str(),
            b.errors[0].status_code,
            b.errors[0].count
        ),
        ("http_status", Some(500), 5)
    );
    assert_eq!(b.requests.total as usize, server.ground_truth().len());

    let server = MockServer::start(MockConfig {
        faults: vec![FaultSpec::parse("close_mid_stream:every=2,after=3").unwrap()],
        ..mock(2.0, 1.0)
    })
    .await
    .unwrap();
    let report = run(&server, &format!("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_seconds = 5\nmax_error_rate = 0.4\nerror_rate_window = 10\n{DATA}")).await;
    let b = &report.benchmarks[0];
    assert_eq!(b.stopped_by, Some(StopReason::MaxErrorRate));
    assert_eq!(b.errors[0].kind, "stream");
    assert_eq!(b.requests.total as usize, server.ground_truth().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_limit_cancels_requests_in_flight_as_incomplete() {
    let server = MockServer::start(MockConfig {
        output_tokens: 1000,
        ..mock(5.0, 5.0)
    })
    .await
    .unwrap();
    let report = run(&server, "[profile]\nkind = \"concurrent\"\nstreams = [3]\n[constraints]\nmax_seconds = 0.5\n[data]\nkind = \"synthetic\"\nprompt_tokens = 4\noutput_tokens = 1000\napproximate = true\n").await;
    let b = &report.benchmarks[0];
    assert_eq!((b.requests.successful, b.requests.incomplete), (0, 3));
    assert_eq!(b.stopped_by, Some(StopReason::MaxSeconds));
    let partial = b
        .metrics
        .output_tokens
        .as_ref()
        .unwrap()
        .incomplete
        .as_ref()
        .unwrap();
    assert!(
        partial.mean > 50.0,
        "streamed tokens of cancelled requests are kept: {}",
        partial.mean
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_and_cooldown_shrink_the_measured_window() {
    let server = MockServer::start(mock(2.0, 1.0)).await.unwrap();
    let report = run(&server, &format!("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 30\n[warmup]\nrequests = 5\n[cooldown]\nrequests = 5\n{DATA}")).await;
    let b = &report.benchmarks[0];
    // Sequential requests: the 6th to the 25th overlap the window, plus the one that straddles
    // each edge.
    assert!(
        (20..=22).contains(&b.requests.total),
        "{} requests in the window",
        b.requests.total
    );
    let per_request_s = ok(&b.metrics.request_latency_ms).mean / 1000.0;
    assert!(
        (b.window.duration_s - 20.0 * per_request_s).abs() < 5.0 * per_request_s,
        "window {} s",
        b.window.duration_s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goodput_counts_requests_meeting_every_objective() {
    // Every third request stalls 150 ms mid-stream, so it breaks an ITL objective of 50 ms.
    let stalls = MockConfig {
        faults: vec![FaultSpec::parse("stall:every=3,after=2,seconds=0.15").unwrap()],
        ..mock(5.0, 1.0)
    };
    let server = MockServer::start(stalls).await.unwrap();
    let report = run(&server, &format!("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 30\n[slo]\nitl_ms = 50\nttft_ms = 100\n{DATA}")).await;
    let g = report.benchmarks[0].goodput.unwrap();
    assert_eq!((g.judged, g.met), (30, 20));
    assert!((g.slo_attainment - 2.0 / 3.0).abs() < 1e-9);
    let rate = achieved(&report.benchmarks[0]);
    assert!(
        g.requests_per_s > 0.0 && g.requests_per_s < rate,
        "goodput {} of {rate} req/s",
        g.requests_per_s
    );
    let report = run(
        &server,
        &format!("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 3\n{DATA}"),
    )
    .await;
    assert!(
        report.benchmarks[0].goodput.is_none(),
        "no objectives, no goodput"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_records_stream_to_a_file_and_join_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let server = MockServer::start(mock(10.0, 2.0)).await.unwrap();
    let config = format!(
        "[profile]\nkind = \"concurrent\"\nstreams = [3]\n[constraints]\nmax_requests = 12\n{DATA}[engines.native]\nrequest_records = \"{}\"\n",
        path.display()
    );
    let report = run(&server, &config).await;
    // Plain HTTP: the engine's own client, timed by the kernel's receive times.
    let timestamps = report.benchmarks[0].timestamps.as_ref().unwrap();
    assert_eq!(timestamps.source, TimestampSource::Kernel, "{timestamps:?}");
    assert_eq!(timestamps.reads_without_kernel_time, 0, "{timestamps:?}");
    let delay = timestamps
        .client_delay_ms
        .as_ref()
        .expect("the client's delay");
    assert!(delay.count >= 12 * 8 / 2 && delay.min >= 0.0, "{delay:?}");
    assert!(timestamps
        .coalesced_share
        .is_some_and(|s| (0.0..=1.0).contains(&s)));
    let lines: Vec<serde_json::Value> = bench_tests::json_lines(&path);
    assert_eq!(lines.len(), 12);
    let truth = server.ground_truth();
    for line in &lines {
        assert_eq!(line["outcome"], "successful");
        let id = line["request_id"].as_str().unwrap();
        let t = truth
            .iter()
            .find(|t| t.request_id.as_deref() == Some(id))
            .expect("joined by x-request-id");
        // The client sends before the server sees the request, and sees the first token after.
        assert!(line["sent_unix_us"].as_i64().unwrap() <= t.arrival_unix_us + 1_000);
        assert!(line["started_unix_us"].as_i64() <= line["sent_unix_us"].as_i64());
        assert_eq!(line["kernel_timestamps"], true);
        assert!(
            line["first_token_unix_us"].as_i64().unwrap() >= t.first_token_unix_us.unwrap() - 1_000
        );
        assert_eq!(line["output_tokens"], 8);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_saturation_stops_a_benchmark_whose_queue_keeps_growing() {
    // Two slots of 20 ms requests serve 100 req/s; 300 req/s arrive, so the queue and TTFT grow.
    let server = MockServer::start(MockConfig {
        max_batch: 2,
        output_tokens: 8,
        ..mock(6.0, 2.0)
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let report = run(
        &server,
        &format!("[profile]\nkind = \"constant\"\nrates = [300.0]\n[constraints]\nmax_seconds = 20\n[constraints.over_saturation]\nmin_seconds = 4\n{DATA}"),
    )
    .await;
    let b = &report.benchmarks[0];
    assert_eq!(
        b.stopped_by,
        Some(StopReason::OverSaturation),
        "{:?}",
        b.warnings
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    assert!(b.warnings.iter().any(|w| w.code == "over_saturated"));

    let calm = MockServer::start(mock(5.0, 1.0)).await.unwrap();
    let report = run(
        &calm,
        &format!("[profile]\nkind = \"constant\"\nrates = [20.0]\n[constraints]\nmax_seconds = 6\n[constraints.over_saturation]\nmode = \"monitor\"\nmin_seconds = 4\n{DATA}"),
    )
    .await;
    let b = &report.benchmarks[0];
    assert_eq!(b.stopped_by, Some(StopReason::MaxSeconds));
    assert!(
        b.warnings.iter().all(|w| w.code != "over_saturated"),
        "{:?}",
        b.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autotuners_legacy_block_runs_on_the_native_engine() {
    let server = MockServer::start(MockConfig {
        tokenizer: Some(bench_tests::test_tokenizer()),
        ..mock(3.0, 1.0)
    })
    .await
    .unwrap();
    let text = format!(
        r#"{{"benchmark": {{"benchmark_engine": "native", "traffic_scenarios": ["D(20,6)", "U(4,8)/(2,3)"], "num_concurrency": [1, 2],
            "max_requests_per_iteration": 10, "max_time_per_iteration": 20, "model_name": "m", "model_tokenizer": {:?}}},
            "target": {{"url": "{}"}}}}"#,
        bench_tests::test_tokenizer().display().to_string(),
        server.base_url()
    );
    let config = Config::load(&text, ConfigFormat::Json, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    let report = engine.run(&config, &RunContext::default()).await.unwrap();
    let steps: Vec<(&str, Option<u32>)> = report
        .benchmarks
        .iter()
        .map(|b| (b.workload.as_str(), b.strategy.streams))
        .collect();
    assert_eq!(
        steps,
        [
            ("D(20,6)", Some(1)),
            ("D(20,6)", Some(2)),
            ("U(4,8)/(2,3)", Some(1)),
            ("U(4,8)/(2,3)", Some(2))
        ]
    );
    assert!(report
        .benchmarks
        .iter()
        .all(|b| b.requests.successful == 10 && b.stopped_by == Some(StopReason::MaxRequests)));
    assert_eq!(ok(&report.benchmarks[0].metrics.output_tokens).mean, 6.0);
    // model_tokenizer makes the prompts token-exact, as the server counts them.
    let prompt = ok(&report.benchmarks[0].metrics.prompt_tokens);
    assert_eq!([prompt.min, prompt.max], [20.0, 20.0]);
    let prompt = ok(&report.benchmarks[2].metrics.prompt_tokens);
    assert!(prompt.min >= 4.0 && prompt.max <= 8.0, "{prompt:?}");
    let uniform = ok(&report.benchmarks[2].metrics.output_tokens);
    assert!(uniform.min >= 2.0 && uniform.max <= 3.0, "{uniform:?}");
    assert_eq!(server.ground_truth().len(), 40);
}
