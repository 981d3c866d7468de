//! Request data end to end: token-exact prompts that the server counts as requested, data
//! files, and the errors for data that cannot work.

use bench_core::config::ConfigFormat;
use bench_core::{registry, Config, Report, RunContext};
use bench_mock::{MockConfig, MockServer};
use bench_tests::cli::{llm_bench, ok};
use bench_tests::test_tokenizer;

/// The mock, counting prompt tokens with the test tokenizer.
async fn counting_mock(output_tokens: u32) -> MockServer {
    MockServer::start(MockConfig {
        ttft_ms: 2.0,
        itl_ms: 0.5,
        output_tokens,
        tokenizer: Some(test_tokenizer()),
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

async fn run(server: &MockServer, rest: &str) -> Report {
    let text = format!(
        "[target]\nurl = \"{}\"\nmodel = \"m\"\n{rest}",
        server.base_url()
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    engine.run(&config, &RunContext::default()).await.unwrap()
}

/// Every request of a spread of lengths (and of a shared prefix) is counted by the server,
/// with the same tokenizer, as exactly the length the client built it for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exact_prompts_are_exactly_what_the_server_counts() {
    let dir = tempfile::tempdir().unwrap();
    for (data, requests) in [
        ("kind = \"scenario\"\nscenario = \"N(120,60)/(4,1)\"", 40),
        (
            "kind = \"synthetic\"\nprompt_tokens = 80\nprefix_tokens = 30\noutput_tokens = 3",
            10,
        ),
        (
            "kind = \"synthetic\"\nprompt_tokens = 300\nprompt_tokens_min = 2\nprompt_tokens_max = 600\nprompt_tokens_stdev = 250\noutput_tokens = 3",
            40,
        ),
    ] {
        // A fresh server per case: request ids start again at req-0.
        let server = counting_mock(4).await;
        let records = dir.path().join("requests.jsonl");
        let report = run(
            &server,
            &format!(
                "[profile]\nkind = \"concurrent\"\nstreams = [4]\n[constraints]\nmax_requests = {requests}\n\
                 [data]\n{data}\ntokenizer = \"{}\"\n[engines.native]\nrequest_records = \"{}\"\n",
                test_tokenizer().display(),
                records.display()
            ),
        )
        .await;
        assert!(
            report.warnings.iter().all(|w| w.code != "approximate_tokens"),
            "{:?}",
            report.warnings
        );
        let truth = server.ground_truth();
        let lines = bench_tests::json_lines::<serde_json::Value>(&records);
        assert_eq!(lines.len(), requests);
        let mut lengths = std::collections::BTreeSet::new();
        for line in &lines {
            let id = line["request_id"].as_str().unwrap();
            let requested = line["requested_prompt_tokens"].as_u64().unwrap();
            let seen = truth
                .iter()
                .find(|t| t.request_id.as_deref() == Some(id))
                .unwrap();
            assert_eq!(u64::from(seen.prompt_tokens), requested, "{data}: {id}");
            assert_eq!(line["prompt_tokens"], requested, "the usage the server sent");
            lengths.insert(requested);
        }
        assert!(lengths.len() > 1 || data.contains("prefix"), "{data}: {lengths:?}");
        if data.contains("prefix") {
            assert_eq!(ok(&report.benchmarks[0].metrics.prompt_tokens).max, 80.0);
        }
    }
}

/// A JSON-lines file and a ShareGPT file drive the native engine: rows in a cycle, odd rows
/// skipped and reported, each row's own output length sent, the server's default otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_run_end_to_end_and_report_their_skipped_rows() {
    let server = counting_mock(5).await;
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("prompts.jsonl");
    std::fs::write(
        &jsonl,
        "{\"prompt\": \"Name three rivers in Europe.\", \"max_tokens\": 3}\n\
         {\"prompt\": \"\"}\n\
         {\"prompt\": \"What is a suspension bridge?\"}\n\
         {broken\n",
    )
    .unwrap();
    let sharegpt = dir.path().join("sharegpt.json");
    std::fs::write(
        &sharegpt,
        r#"[{"id": "1", "conversations": [{"from": "human", "value": "Describe a market day."}, {"from": "gpt", "value": "Busy."}]},
            {"id": "2", "conversations": [{"from": "human", "value": "How is bread made?"}]}]"#,
    )
    .unwrap();
    for (path, skipped, outputs) in [
        (&jsonl, Some("2 of 4 rows"), [3.0, 5.0]),
        (&sharegpt, None, [5.0, 5.0]),
    ] {
        let report = run(
            &server,
            &format!(
                "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 6\n\
                 [data]\nkind = \"file\"\npath = \"{}\"\ntokenizer = \"{}\"\n",
                path.display(),
                test_tokenizer().display()
            ),
        )
        .await;
        let b = &report.benchmarks[0];
        assert_eq!(b.requests.successful, 6, "{:?}", report.warnings);
        let warning = report
            .warnings
            .iter()
            .find(|w| w.code == "data_rows_skipped");
        match skipped {
            Some(text) => {
                let message = &warning.unwrap().message;
                assert!(
                    message.contains(text) && message.contains("line 2: the prompt is empty"),
                    "{message}"
                );
            }
            None => assert!(warning.is_none()),
        }
        let out = ok(&b.metrics.output_tokens);
        assert_eq!([out.min, out.max], outputs);
    }
}

/// One JSON-lines file mixing `prompt`, `text` and `messages` rows: every row is sent with
/// its own prompt; only the row with none of them is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_file_mixing_prompt_text_and_messages_rows_sends_every_kind() {
    let server = counting_mock(2).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\": \"alpha alpha\"}\n\
         {\"text\": \"beta beta beta beta\"}\n\
         {\"messages\": [{\"role\": \"user\", \"content\": \"gamma gamma gamma gamma gamma gamma\"}]}\n\
         {\"id\": 4}\n",
    )
    .unwrap();
    let records = dir.path().join("requests.jsonl");
    let report = run(
        &server,
        &format!(
            "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 3\n\
             [data]\nkind = \"file\"\npath = \"{}\"\ntokenizer = \"{}\"\n\
             [engines.native]\nrequest_records = \"{}\"\n",
            path.display(),
            test_tokenizer().display(),
            records.display()
        ),
    )
    .await;
    assert_eq!(
        report.benchmarks[0].requests.successful, 3,
        "{:?}",
        report.warnings
    );
    let warning = report
        .warnings
        .iter()
        .find(|w| w.code == "data_rows_skipped")
        .unwrap();
    assert!(
        warning.message.contains("1 of 4 rows") && warning.message.contains("line 4: no prompt"),
        "{}",
        warning.message
    );
    // Three different prompts, one per kind of row, as the tokenizer counts them.
    let lengths: std::collections::BTreeSet<u64> =
        bench_tests::json_lines::<serde_json::Value>(&records)
            .iter()
            .map(|l| l["requested_prompt_tokens"].as_u64().unwrap())
            .collect();
    assert_eq!(lengths.len(), 3, "{lengths:?}");
}

#[test]
fn data_that_cannot_work_exits_2_naming_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\n",
            "data.tokenizer",
        ),
        (
            "[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\ntokenizer = \"/nonexistent/tok\"\n",
            "/nonexistent/tok does not exist",
        ),
        (
            "[data]\nkind = \"file\"\npath = \"/nonexistent/prompts.jsonl\"\n",
            "does not exist; check data.path",
        ),
        (
            "[data]\nkind = \"synthetic\"\nprompt_tokens = 8\nprefix_tokens = 20\noutput_tokens = 4\ntokenizer = \"TOK\"\n",
            "the shared prefix alone takes 20",
        ),
    ];
    for (data, expected) in cases {
        let path = dir.path().join("c.toml");
        let data = data.replace("TOK", &test_tokenizer().display().to_string());
        std::fs::write(
            &path,
            format!("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n{data}"),
        )
        .unwrap();
        let out = llm_bench(["run", "--config", path.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{data}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
}
