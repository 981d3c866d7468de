//! Sharded runs (`run --shard I/N`): the shards' shares add up to the config's load, their
//! constant arrivals interleave into its even schedule from one agreed start, and what cannot
//! be shared is refused with the reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bench_core::schema::Timestamp;
use bench_core::Report;
use bench_mock::{MockConfig, MockServer};
use bench_tests::cli::llm_bench;

const SHARDS: u32 = 4;
/// The whole run's rate: each shard sends a quarter.
const RATE: f64 = 40.0;

fn config(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("sharded.toml");
    std::fs::write(&path, format!("{}[shard]\ncount = {SHARDS}\n", whole(url))).unwrap();
    path
}

/// The run the shards share, as one process would run it.
fn whole(url: &str) -> String {
    format!(
        "[target]\nurl = \"{url}\"\nmodel = \"mock-model\"\n\
         [profile]\nkind = \"constant\"\nrates = [{RATE}]\n[constraints]\nmax_seconds = 3\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 8\napproximate = true\n"
    )
}

/// Nearest-rank percentile of `values` (sorted).
fn nearest_rank(values: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    values[rank - 1]
}

fn report_path(dir: &Path, i: u32) -> PathBuf {
    dir.join(format!("shard-{i}.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_interleave_into_the_whole_runs_schedule_from_one_start() {
    let server = MockServer::start(MockConfig {
        ttft_ms: 10.0,
        itl_ms: 2.0,
        output_tokens: 8,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server.base_url());
    let start = Timestamp::now().plus(Duration::from_secs(3));
    // The shards as separate runs, each its own runtime and client, started together.
    let shards: Vec<_> = (0..SHARDS)
        .map(|i| {
            let (config, dir, start) = (config.clone(), dir.path().to_owned(), start.to_string());
            tokio::task::spawn_blocking(move || {
                let report = report_path(&dir, i);
                let records = dir.join(format!("records-{i}.jsonl"));
                let out = llm_bench([
                    "run".to_owned(),
                    "--config".to_owned(),
                    config.display().to_string(),
                    "--shard".to_owned(),
                    format!("{i}/{SHARDS}"),
                    "--start-at".to_owned(),
                    start,
                    "--set".to_owned(),
                    format!(
                        "engines.native.request_records={:?}",
                        records.display().to_string()
                    ),
                    "-o".to_owned(),
                    report.display().to_string(),
                    "--no-progress".to_owned(),
                ]);
                assert_eq!(out.code, 0, "shard {i}: {}", out.stderr);
                let report: Report =
                    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
                (
                    report,
                    bench_tests::json_lines::<serde_json::Value>(&records),
                    report_path(&dir, i),
                )
            })
        })
        .collect();
    let mut reports = Vec::new();
    let mut sent = Vec::new();
    let mut files = Vec::new();
    let mut ttft_ms = Vec::new();
    for shard in shards {
        let (report, records, file) = shard.await.unwrap();
        files.push(file);
        ttft_ms.extend(
            records
                .iter()
                .filter(|r| r["outcome"] == "successful")
                .map(|r| {
                    (r["first_token_unix_us"].as_i64().unwrap()
                        - r["sent_unix_us"].as_i64().unwrap()) as f64
                        / 1000.0
                }),
        );
        sent.extend(records.iter().map(|r| {
            (
                r["intended_unix_us"].as_i64().unwrap(),
                r["sent_unix_us"].as_i64().unwrap(),
                // Each shard's run tag keeps its ids apart from the other shards' (vLLM
                // takes them as engine request ids), though every shard counts from req-0.
                r["request_id"].as_str().unwrap().to_owned(),
            )
        }));
        reports.push(report);
    }
    // One run: the same id, every index once, each a quarter of the rate.
    let run_id = &reports[0].shard.as_ref().unwrap().run_id;
    for (i, report) in reports.iter().enumerate() {
        let shard = report.shard.as_ref().expect("a shard's report says so");
        assert_eq!((shard.index, shard.count), (i as u32, SHARDS));
        assert_eq!(&shard.run_id, run_id);
        assert_eq!(shard.start_at, Some(start));
        let clock = shard.clock.expect("the mock sends a Date header");
        assert!(
            clock.offset_ms.abs() <= clock.uncertainty_ms + 1.0,
            "{clock:?}"
        );
        let b = &report.benchmarks[0];
        assert_eq!(b.strategy.target_rate_per_s, Some(RATE / f64::from(SHARDS)));
        assert!(
            b.warnings.iter().all(|w| w.code != "shard_started_late"),
            "{:?}",
            b.warnings
        );
        // The report keeps the config as given, so the shards' configs differ in the index only.
        assert_eq!(report.config.shard.as_ref().unwrap().index, Some(i as u32));
    }
    // The union is the whole run's schedule: an arrival every 1/RATE s from the agreed start.
    sent.sort_unstable();
    let step_us = 1e6 / RATE;
    let origin = sent[0].0;
    let start_us = start.unix_micros();
    assert!(
        (origin - start_us).abs() < 20_000,
        "the first arrival {} us after the agreed start",
        origin - start_us
    );
    // Each arrival's distance from the whole run's grid: the intended times show how well the
    // shards' clocks and starts line up, the actual sends add each shard's schedule lag.
    let off = |pick: fn(&(i64, i64, String)) -> i64| -> (f64, f64) {
        let mut off: Vec<f64> = sent
            .iter()
            .enumerate()
            .map(|(k, s)| pick(s) as f64 - origin as f64 - k as f64 * step_us)
            .collect();
        off.sort_by(f64::total_cmp);
        let median = off[off.len() / 2];
        let spread = off.iter().map(|d| (d - median).abs()).fold(0.0, f64::max);
        (median, spread)
    };
    let (_, intended_spread) = off(|s| s.0);
    let (lag, actual_spread) = off(|s| s.1);
    eprintln!(
        "{} arrivals; off the whole run's grid: intended at most {intended_spread:.0} us, sent {lag:.0} us late in the median and at most {actual_spread:.0} us from that",
        sent.len()
    );
    assert!(
        intended_spread < 5_000.0,
        "the shards' schedules are {intended_spread} us apart"
    );
    // Every send is as far off the grid as its shard's schedule allowed: the largest lag a
    // shard reported, plus the shards' misalignment.
    let lag_max_us = reports
        .iter()
        .filter_map(|r| r.benchmarks[0].metrics.schedule_lag_ms.as_ref())
        .flat_map(|split| [&split.successful, &split.incomplete, &split.errored])
        .flatten()
        .map(|d| d.max * 1000.0)
        .fold(0.0, f64::max);
    assert!(
        actual_spread <= intended_spread + lag_max_us + 1_000.0,
        "a send {actual_spread} us off the grid; the lag bound is {lag_max_us} us"
    );
    // Three seconds at 40/s, give or take the arrival due at the end.
    assert!((118..=122).contains(&sent.len()), "{}", sent.len());
    // Every request once, and the server saw every one the shards sent.
    let mut ids: Vec<&str> = sent.iter().map(|s| s.2.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), sent.len(), "request ids repeat across shards");
    // The mock records what it finished: a request cancelled at the end of the benchmark may
    // be one the shards sent and the mock never answered.
    let truth = server.ground_truth();
    let answered = truth.iter().filter(|t| t.completed).count() as u64;
    assert!(
        truth.len() <= sent.len() && sent.len() - truth.len() <= 1,
        "the mock saw {} of {} requests",
        truth.len(),
        sent.len()
    );

    // Merged, the shards are the run: every request the mock saw, the TTFT distribution of
    // all their records, the whole rate over the union of their windows.
    let merged_path = dir.path().join("merged.json");
    let mut args = vec!["merge".to_owned()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["-o".to_owned(), merged_path.display().to_string()]);
    let out = tokio::task::spawn_blocking(move || llm_bench(args))
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let merged: Report =
        serde_json::from_str(&std::fs::read_to_string(&merged_path).unwrap()).unwrap();
    let b = &merged.benchmarks[0];
    assert_eq!(b.requests.total, sent.len() as u64, "{:?}", b.requests);
    assert_eq!(
        b.requests.successful, answered,
        "the mock's own count of answered requests"
    );
    assert_eq!(b.strategy.target_rate_per_s, Some(RATE));
    let ttft = bench_tests::cli::ok(&b.metrics.ttft_ms);
    ttft_ms.sort_by(f64::total_cmp);
    assert_eq!(ttft.count, ttft_ms.len() as u64);
    for (p, merged_p) in [
        (50.0, ttft.percentiles.p50),
        (90.0, ttft.percentiles.p90),
        (99.0, ttft.percentiles.p99),
    ] {
        let exact = nearest_rank(&ttft_ms, p);
        // The histogram keeps 3 significant digits, at most 0.001 ms apart.
        assert!(
            (merged_p - exact).abs() <= exact * 1e-3 + 0.002,
            "p{p}: merged {merged_p} ms, from the records {exact} ms"
        );
    }
    let sent_rate = b.requests.total as f64 / b.window.duration_s;
    assert!(
        (sent_rate / RATE - 1.0).abs() < 0.01,
        "{sent_rate} req/s sent over the union window"
    );
    // One process at the whole rate, for comparison (the closing note's table).
    let whole_path = dir.path().join("whole.toml");
    std::fs::write(&whole_path, whole(&server.base_url())).unwrap();
    let whole_report = dir.path().join("whole.json");
    let args = vec![
        "run".to_owned(),
        "--config".to_owned(),
        whole_path.display().to_string(),
        "-o".to_owned(),
        whole_report.display().to_string(),
        "--no-progress".to_owned(),
    ];
    let out = tokio::task::spawn_blocking(move || llm_bench(args))
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let one: Report =
        serde_json::from_str(&std::fs::read_to_string(&whole_report).unwrap()).unwrap();
    let o = &one.benchmarks[0];
    let one_ttft = bench_tests::cli::ok(&o.metrics.ttft_ms);
    eprintln!(
        "| | requests | sent req/s | ok req/s | TTFT p50 / p99 ms | ITL p50 / p99 ms |\n|---|---|---|---|---|---|\n\
         | 1 process at {RATE}/s | {} | {:.2} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |\n\
         | {SHARDS} shards at {}/s, merged | {} | {:.2} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
        o.requests.total,
        o.requests.total as f64 / o.window.duration_s,
        bench_tests::cli::successful_rate(o),
        one_ttft.percentiles.p50,
        one_ttft.percentiles.p99,
        bench_tests::cli::ok(&o.metrics.itl_ms).percentiles.p50,
        bench_tests::cli::ok(&o.metrics.itl_ms).percentiles.p99,
        RATE / f64::from(SHARDS),
        b.requests.total,
        sent_rate,
        bench_tests::cli::successful_rate(b),
        ttft.percentiles.p50,
        ttft.percentiles.p99,
        bench_tests::cli::ok(&b.metrics.itl_ms).percentiles.p50,
        bench_tests::cli::ok(&b.metrics.itl_ms).percentiles.p99,
    );
    assert!(o.requests.total.abs_diff(b.requests.total) <= 2);
    assert!((one_ttft.percentiles.p50 / ttft.percentiles.p50 - 1.0).abs() < 0.2);
}

#[test]
fn what_cannot_be_shared_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "http://127.0.0.1:9");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "validate",
            "--offline",
            "--config",
            config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        llm_bench(args)
    };
    let bad = run(&["--shard", "two/four"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains(
            "invalid --shard two/four: give the shard's index and the shard count as I/N"
        ),
        "{}",
        bad.stderr
    );
    let outside = run(&["--shard", "4/4"]);
    assert_eq!(outside.code, 2);
    assert!(
        outside
            .stderr
            .contains("4 is not a shard of 4; give 0 to 3"),
        "{}",
        outside.stderr
    );
    let sweep = run(&[
        "--shard",
        "0/4",
        "--set",
        "profile={ kind = \"sweep\", sweep_size = 4 }",
    ]);
    assert_eq!(sweep.code, 2);
    assert!(
        sweep.stderr.contains("`sweep` cannot be sharded"),
        "{}",
        sweep.stderr
    );
    let start = run(&["--shard", "0/4", "--start-at", "yesterday"]);
    assert_eq!(start.code, 2);
    assert!(
        start.stderr.contains("invalid --start-at yesterday"),
        "{}",
        start.stderr
    );
}

#[test]
fn a_start_in_the_past_or_a_day_ahead_stops_the_run_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "http://127.0.0.1:9");
    for (at, says) in [
        ("1700000000", "in the past"),
        ("2999-01-01T00:00:00Z", "more than the limit"),
    ] {
        let out = llm_bench([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--shard",
            "1/4",
            "--start-at",
            at,
            "--no-progress",
            "-o",
            dir.path().join("r.json").to_str().unwrap(),
        ]);
        assert_eq!(out.code, 2, "{at}: {}", out.stderr);
        assert!(
            out.stderr.contains("shard.start_at") && out.stderr.contains(says),
            "{at}: {}",
            out.stderr
        );
    }
}
