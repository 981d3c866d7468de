//! A reasoning model: the native engine against a mock that streams reasoning chunks
//! (`delta.reasoning_content`, as vLLM does) before the answer, checked against the mock's
//! ground truth.

use bench_core::config::ConfigFormat;
use bench_core::{registry, Config, Report, RunContext};
use bench_mock::{MockConfig, MockServer};
use bench_tests::cli::ok;

async fn run(mock: &MockServer, config: &str) -> Report {
    let text = format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n\
         [profile]\nkind = \"synchronous\"\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 15\napproximate = true\n{config}",
        mock.base_url()
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    engine.run(&config, &RunContext::default()).await.unwrap()
}

/// 10 reasoning chunks then 5 answer chunks, 4 ms apart after a 20 ms TTFT: TTFT is the
/// first reasoning chunk, the time to first answer token the first answer chunk (40 ms
/// later), and the tokens split 10/5; per request, both times match the server's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_is_the_first_reasoning_chunk_and_the_answer_starts_after_ten() {
    let server = MockServer::start(MockConfig {
        ttft_ms: 20.0,
        itl_ms: 4.0,
        reasoning_tokens: 10,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("requests.jsonl");
    let report = run(
        &server,
        &format!(
            "[constraints]\nmax_requests = 6\n[engines.native]\nrequest_records = \"{}\"\n",
            records.display()
        ),
    )
    .await;
    let b = &report.benchmarks[0];
    assert_eq!(b.requests.successful, 6, "{:?}", b.errors);
    let m = &b.metrics;
    let r = m
        .reasoning
        .as_ref()
        .expect("the native engine splits reasoning");
    let tokens = |d: &bench_core::schema::Distribution| (d.min, d.max);
    assert_eq!(tokens(ok(&m.output_tokens)), (15.0, 15.0));
    assert_eq!(tokens(ok(&r.reasoning_tokens)), (10.0, 10.0));
    assert_eq!(tokens(ok(&r.answer_tokens)), (5.0, 5.0));
    // Gaps: 9 between reasoning chunks, 4 between answer chunks, 14 in all, per request.
    assert_eq!(ok(&m.itl_ms).count, 6 * 14);
    assert_eq!(ok(&r.reasoning_itl_ms).count, 6 * 9);
    assert_eq!(ok(&r.answer_itl_ms).count, 6 * 4);
    for itl in [ok(&r.reasoning_itl_ms), ok(&r.answer_itl_ms)] {
        assert!((itl.median - 4.0).abs() < 0.5, "{itl:?}");
    }
    let (ttft, first_answer) = (ok(&m.ttft_ms), ok(&r.time_to_first_answer_token_ms));
    assert!((20.0..23.0).contains(&ttft.median), "TTFT {ttft:?}");
    let reasoning_time = first_answer.median - ttft.median;
    assert!(
        (reasoning_time - 40.0).abs() < 2.0,
        "the answer came {reasoning_time} ms after the first reasoning chunk"
    );

    // Per request, against when the server wrote the first token and the first answer token.
    let truth = server.ground_truth();
    let lines: Vec<serde_json::Value> = bench_tests::json_lines(&records);
    assert_eq!(lines.len(), 6);
    for line in &lines {
        let id = line["request_id"].as_str().unwrap();
        let t = truth
            .iter()
            .find(|t| t.request_id.as_deref() == Some(id))
            .expect("joined by x-request-id");
        assert_eq!((t.reasoning_tokens_planned, t.tokens_sent), (10, 15));
        assert_eq!(line["reasoning_chunks"], 10);
        assert_eq!(line["content_chunks"], 15);
        // Kernel receive times: after the server's write returned at most a little earlier
        // (loopback delivers inside the write), and within a millisecond of it.
        for (client, server) in [
            ("first_token_unix_us", t.first_token_unix_us),
            ("first_answer_token_unix_us", t.first_answer_token_unix_us),
        ] {
            let gap = line[client].as_i64().unwrap() - server.unwrap();
            assert!(
                (-1_000..1_000).contains(&gap),
                "{client}: {gap} us from the server's write"
            );
        }
    }

    server.shutdown().await;
}
