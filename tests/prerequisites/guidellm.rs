//! The real GuideLLM end to end against the embedded mock (`LLM_BENCH_GUIDELLM` names its
//! executable; `.ci/run` installs it).

use bench_core::schema::Benchmark;
use bench_core::Report;
use bench_tests::cli::{guidellm_config as config, llm_bench, ok};
use bench_tests::CmdlineScan;

/// The mock's own time to first token of every request it logged, in ms (from its arrival).
fn served_ttft_ms(truth: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(truth)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let first = v["first_token_unix_us"].as_f64()?;
            Some((first - v["arrival_unix_us"].as_f64()?) / 1000.0)
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The real GuideLLM through llm-bench against the embedded mock (TTFT 20 ms, 16 tokens 5 ms
/// apart), on a concurrent and a constant profile: totals against the mock's own count, TTFT
/// against its ground truth, and a planted API key that never reaches a command line.
pub(crate) fn the_real_guidellm_runs_concurrent_and_constant_profiles_against_the_embedded_mock() {
    let executable = test_prerequisites::var("LLM_BENCH_GUIDELLM");
    let planted = "sk-planted-guidellm-4d2a";
    std::env::set_var("LLM_BENCH_PLANTED_GUIDELLM_KEY", planted);
    for (profile, limits) in [
        ("kind = \"concurrent\"\nstreams = [2]", "max_requests = 20"),
        ("kind = \"constant\"\nrates = [5]", "max_seconds = 4"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let truth = dir.path().join("truth.jsonl");
        let report = dir.path().join("report.json");
        let path = config(
            dir.path(),
            &format!("command = {executable:?}\nrun_dir = {:?}", dir.path().join("run").display().to_string()),
            &format!(
                "[target]\napi_key_env = \"LLM_BENCH_PLANTED_GUIDELLM_KEY\"\n[target.mock]\nttft_ms = 20\nitl_ms = 5\nlog = {:?}\n[profile]\n{profile}\n\
                 [constraints]\n{limits}\n[[output]]\npath = {:?}",
                truth.display().to_string(),
                report.display().to_string()
            ),
        );
        let scan = CmdlineScan::start(planted, "guidellm");
        let out = llm_bench(["run", "--no-progress", "--config", path.to_str().unwrap()]);
        let (leaks, saw_guidellm) = scan.stop();
        assert_eq!(out.code, 0, "{profile}: {}", out.stderr);
        assert!(saw_guidellm, "the scan never saw GuideLLM running");
        assert!(
            leaks.is_empty(),
            "the API key was on these command lines: {leaks:?}"
        );
        let files = walk(&dir.path().join("run"));
        for file in &files {
            let text = std::fs::read(file).unwrap();
            assert!(
                !String::from_utf8_lossy(&text).contains(planted),
                "the key was left in {}",
                file.display()
            );
        }
        let report: Report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        assert_eq!(report.engine, "guidellm");
        let b: &Benchmark = &report.benchmarks[0];
        let served = served_ttft_ms(&truth);
        // Every request the mock served is counted, but one per stream still in flight when
        // a time limit ends the run, which GuideLLM may leave out.
        let counted = b.requests.total as usize;
        assert!(
            counted <= served.len() && served.len() <= counted + 2,
            "{profile}: the mock saw {} requests, the report counts {counted} ({:?})",
            served.len(),
            b.requests
        );
        assert_eq!(b.requests.errored, 0, "{profile}: {:?}", b.errors);
        let ttft = ok(&b.metrics.ttft_ms);
        let bias = ttft.mean - mean(&served);
        // GuideLLM's TTFT starts before its request is on the wire and ends when its Python
        // loop has parsed the chunk: a few ms over the mock's own figure on an idle machine.
        assert!(
            (0.0..30.0).contains(&bias),
            "{profile}: GuideLLM TTFT mean {:.2} ms vs served {:.2} ms",
            ttft.mean,
            mean(&served)
        );
        eprintln!(
            "{profile}: GuideLLM TTFT mean {:.2} ms, served {:.2} ms, bias {bias:+.2} ms",
            ttft.mean,
            mean(&served)
        );
        let tpot = ok(&b.metrics.tpot_ms);
        assert!((tpot.median - 5.0).abs() < 1.0, "{profile}: TPOT {tpot:?}");
        assert_eq!(ok(&b.metrics.output_tokens).max, 16.0, "ignore_eos sent");
        assert!(b.metrics.itl_ms.is_none());
        if b.strategy.target_rate_per_s.is_some() {
            assert!(b.metrics.schedule_lag_ms.is_some(), "{profile}");
            let rate = b
                .metrics
                .rates
                .requests_per_s
                .as_ref()
                .unwrap()
                .total
                .unwrap();
            assert!((rate - 5.0).abs() < 1.0, "{profile}: {rate} req/s");
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The engine contract on the real GuideLLM (`bench_tests::conformance`).
pub(crate) fn guidellm_keeps_the_engine_contract() {
    let executable = test_prerequisites::var("LLM_BENCH_GUIDELLM");
    bench_tests::conformance::check("guidellm", &format!("command = {executable:?}"), 30.0);
}

/// The real GuideLLM (httpx) verifies the server's certificate against the CA of
/// `target.tls.ca_file`, which reaches it as `SSL_CERT_FILE`.
pub(crate) fn the_real_guidellm_runs_over_https_with_the_ca() {
    let executable = test_prerequisites::var("LLM_BENCH_GUIDELLM");
    let dir = tempfile::tempdir().unwrap();
    let pki = bench_mock::test_pki::Pki::new();
    // Declared after its runtime, so dropped before it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime
        .block_on(bench_mock::MockServer::start(pki.https(
            bench_mock::MockConfig {
                ttft_ms: 5.0,
                itl_ms: 1.0,
                tokenizer: Some(bench_tests::test_tokenizer()),
                ..bench_mock::MockConfig::default()
            },
        )))
        .unwrap();
    let report = dir.path().join("report.json");
    let path = config(
        dir.path(),
        &format!("command = {executable:?}"),
        &format!(
            "[target]\nurl = {:?}\nmodel = \"mock-model\"\n[target.tls]\nca_file = {:?}\n[profile]\nkind = \"concurrent\"\nstreams = [2]\n\
             [constraints]\nmax_requests = 10\n[[output]]\npath = {:?}",
            mock.base_url(),
            pki.ca.display().to_string(),
            report.display().to_string()
        ),
    );
    let out = llm_bench(["run", "--no-progress", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let b = &report.benchmarks[0];
    assert!(
        b.requests.successful >= 10 && b.requests.errored == 0,
        "{:?} {:?}",
        b.requests,
        b.errors
    );
    assert_eq!(mock.stats().tls_handshake_failures, 0);
}
