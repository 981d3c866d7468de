//! Trace replay on the native engine against the mock: each request at its recorded offset
//! (divided by the speedup) within the reported schedule lag, prompt lengths as the trace
//! says (the mock counts them with the same tokenizer), and shared `hash_ids` blocks.

use bench_core::config::{ConfigFormat, StrategyKind};
use bench_core::schema::StopReason;
use bench_core::{registry, Config, RunContext};
use bench_mock::{MockConfig, MockServer};

/// Rows of the trace: 500 requests over 20 recorded seconds, replayed 4x in 5 s.
const ROWS: usize = 500;

/// A Mooncake trace: uneven gaps (a seeded LCG), lengths 40 to 200 tokens, and leading
/// `hash_ids` shared by groups of rows (blocks of 16 tokens).
fn trace() -> (String, Vec<(f64, u32, Vec<u64>)>) {
    let mut state = 7u64;
    let mut draw = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut rows = Vec::new();
    let mut t = 0.0;
    for i in 0..ROWS {
        let input = 40 + draw(161) as u32;
        let group = draw(5);
        // Up to four shared blocks from the group, then one of the row's own.
        let shared: Vec<u64> = (0..draw(5)).map(|b| group * 100 + b).collect();
        let mut ids = shared;
        ids.push(10_000 + i as u64);
        rows.push((t, input, ids));
        t += draw(80) as f64;
    }
    let text = rows
        .iter()
        .map(|(t, input, ids)| {
            serde_json::json!({"timestamp": t, "input_length": input, "output_length": 2, "hash_ids": ids})
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_replays_at_its_recorded_offsets_with_its_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let (text, rows) = trace();
    let trace_path = dir.path().join("trace.jsonl");
    std::fs::write(&trace_path, text).unwrap();
    let log = dir.path().join("mock.jsonl");
    let records = dir.path().join("requests.jsonl");
    let tokenizer = bench_tests::test_tokenizer();
    let server = MockServer::start(MockConfig {
        ttft_ms: 2.0,
        itl_ms: 1.0,
        tokenizer: Some(tokenizer.clone()),
        log: Some(log.clone()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let text = format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\napi = \"completions\"\n\
         [profile]\nkind = \"replay\"\nspeedup = 4\n\
         [data]\nkind = \"trace\"\npath = \"{}\"\ntokenizer = \"{}\"\nblock_tokens = 16\n\
         [engines.native]\nrequest_records = \"{}\"\n",
        server.base_url(),
        trace_path.display(),
        tokenizer.display(),
        records.display()
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    let report = engine.run(&config, &RunContext::default()).await.unwrap();
    let b = &report.benchmarks[0];
    assert_eq!(b.strategy.kind, StrategyKind::Replay);
    assert_eq!(b.strategy.speedup, Some(4.0));
    assert_eq!(b.requests.successful, ROWS as u64, "{:?}", report.warnings);
    assert_eq!(b.stopped_by, Some(StopReason::DataExhausted));
    let lag = b
        .metrics
        .schedule_lag_ms
        .as_ref()
        .unwrap()
        .successful
        .as_ref()
        .unwrap();
    let sent: Vec<serde_json::Value> = bench_tests::json_lines(&records);
    assert_eq!(sent.len(), ROWS);
    let by_id = |n: usize| {
        let id = format!("-req-{n}");
        sent.iter()
            .find(|r| r["request_id"].as_str().unwrap().ends_with(&id))
            .unwrap_or_else(|| panic!("{id} recorded"))
    };
    let origin = by_id(0)["intended_unix_us"].as_i64().unwrap();
    for (n, (recorded_ms, _, _)) in rows.iter().enumerate() {
        let r = by_id(n);
        let intended = r["intended_unix_us"].as_i64().unwrap();
        let started = r["started_unix_us"].as_i64().unwrap();
        // Intended: exactly the recorded offset / 4 (µs rounding of the wall clock).
        let planned_us = recorded_ms * 1000.0 / 4.0;
        assert!(
            ((intended - origin) as f64 - planned_us).abs() <= 2.0,
            "req-{n}: intended at {} µs, recorded {planned_us} µs",
            intended - origin
        );
        // Actual: within the reported lag of it.
        let late_ms = (started - intended) as f64 / 1000.0;
        assert!(
            late_ms >= -0.002 && late_ms <= lag.max + 0.002,
            "req-{n}: {late_ms} ms late, the report's largest lag {} ms",
            lag.max
        );
    }
    // The mock counted each prompt with the same tokenizer: the trace's lengths.
    let logged: Vec<bench_mock::RequestRecord> = bench_tests::json_lines(&log);
    assert_eq!(logged.len(), ROWS);
    for record in &logged {
        let id = record.request_id.as_deref().unwrap();
        let (_tag, n) = id.split_once("-req-").unwrap();
        let n: usize = n.parse().unwrap();
        assert_eq!(record.prompt_tokens, rows[n].1, "{id}");
    }
}
