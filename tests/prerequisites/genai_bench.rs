//! The real genai-bench end to end against the embedded mock (`LLM_BENCH_GENAI_BENCH` names
//! its executable; `.ci/run` installs it).

use bench_cli::exit_codes;
use bench_core::Report;
use bench_mock::{MockConfig, MockServer};
use bench_tests::cli::{genai_bench_config as config, llm_bench, ok};
use bench_tests::CmdlineScan;

/// The real genai-bench against the embedded mock (TTFT 20 ms, ITL 5 ms), then the native
/// engine on the same config: the same schema, figures that agree where both measure.
pub(crate) fn the_real_genai_bench_runs_against_the_embedded_mock_and_agrees_with_native() {
    let executable = test_prerequisites::var("LLM_BENCH_GENAI_BENCH");
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.jsonl");
    let report = dir.path().join("report.json");
    let path = config(
        dir.path(),
        &format!("command = {executable:?}"),
        &format!(
            "[target.mock]\nttft_ms = 20\nitl_ms = 5\nlog = {:?}\n[profile]\nkind = \"concurrent\"\nstreams = [1, 4]\n\
             [constraints]\nmax_seconds = 60\nmax_requests = 20\n[[output]]\npath = {:?}",
            truth.display().to_string(),
            report.display().to_string()
        ),
    );
    let out = llm_bench(["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let genai: Report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(genai.engine, "genai-bench");
    assert_eq!(genai.benchmarks.len(), 2);
    let seen = std::fs::read_to_string(&truth).unwrap().lines().count() as u64;
    let counted: u64 = genai.benchmarks.iter().map(|b| b.requests.total).sum();
    // genai-bench drops what is in flight when a run stops: at most one per stream.
    assert!(
        counted <= seen && seen <= counted + 1 + 4,
        "the mock saw {seen} requests, the report counts {counted}"
    );
    for b in &genai.benchmarks {
        assert!(b.requests.successful >= 20, "{:?}", b.requests);
        let m = &b.metrics;
        let ttft = ok(&m.ttft_ms);
        // 20 ms served; genai-bench adds a new connection per request and its own Python
        // loop: a few ms on an idle machine, tens on a busy one.
        assert!(
            ttft.median >= 20.0 && ttft.median < 100.0,
            "TTFT p50 {} ms",
            ttft.median
        );
        let output = ok(&m.output_tokens);
        assert_eq!((output.min, output.max), (20.0, 20.0), "ignore_eos sent");
        assert!(
            m.itl_ms.is_none(),
            "genai-bench records no per-chunk timing"
        );
    }
    assert!(!out.stdout.contains("Traceback"));

    // The same config on the native engine.
    let native_report = dir.path().join("native.json");
    let out = llm_bench([
        "run",
        "--config",
        path.to_str().unwrap(),
        "--set",
        "benchmark_engine=native",
        "--set",
        "engines={}",
        "--set",
        &format!(
            "output=[{{path={:?}}}]",
            native_report.display().to_string()
        ),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let native: Report = serde_json::from_slice(&std::fs::read(&native_report).unwrap()).unwrap();
    assert_eq!(native.benchmarks.len(), genai.benchmarks.len());
    for (n, g) in native.benchmarks.iter().zip(&genai.benchmarks) {
        assert_eq!(n.strategy, g.strategy);
        let p50 = |b: &bench_core::schema::Benchmark| ok(&b.metrics.ttft_ms).median;
        // The native client keeps connections alive and times more tightly.
        assert!(
            p50(n) <= p50(g) + 1.0,
            "native {} vs genai-bench {}",
            p50(n),
            p50(g)
        );
        assert!(
            p50(n) >= 20.0 && p50(n) < 30.0,
            "native TTFT p50 {}",
            p50(n)
        );
    }
}

/// The real genai-bench (Python's requests) trusts the CA of `target.tls.ca_file`; without it
/// the preflight refuses the certificate before genai-bench starts.
pub(crate) fn the_real_genai_bench_runs_over_https_with_the_ca() {
    let executable = test_prerequisites::var("LLM_BENCH_GENAI_BENCH");
    let dir = tempfile::tempdir().unwrap();
    let pki = bench_mock::test_pki::Pki::new();
    let ca = pki.ca.clone();
    // Declared after its runtime, so dropped before it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime
        .block_on(MockServer::start(pki.https(MockConfig {
            ttft_ms: 5.0,
            itl_ms: 1.0,
            ..MockConfig::default()
        })))
        .unwrap();
    let report = dir.path().join("report.json");
    // A planted key: it must reach genai-bench without ever being on a command line.
    let planted = "sk-planted-cmdline-7c1e";
    std::env::set_var("LLM_BENCH_PLANTED_KEY", planted);
    let with_tls = |tls: &str| {
        let rest = format!(
            "[target]\nurl = {:?}\nmodel = \"mock-model\"\napi_key_env = \"LLM_BENCH_PLANTED_KEY\"\n{tls}\n[profile]\nkind = \"concurrent\"\nstreams = [2]\n\
             [constraints]\nmax_requests = 10\n[[output]]\npath = {:?}",
            mock.base_url(),
            report.display().to_string()
        );
        config(dir.path(), &format!("command = {executable:?}"), &rest)
    };
    let path = with_tls(&format!(
        "[target.tls]\nca_file = {:?}",
        ca.display().to_string()
    ));
    let scan = CmdlineScan::start(planted, "genai_bench");
    let out = llm_bench(["run", "--no-progress", "--config", path.to_str().unwrap()]);
    let (leaks, saw_genai_bench) = scan.stop();
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    assert!(saw_genai_bench, "the scan never saw genai-bench running");
    assert!(
        leaks.is_empty(),
        "the API key was on these command lines: {leaks:?}"
    );
    let genai: Report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let b = &genai.benchmarks[0];
    assert!(
        b.requests.successful >= 10 && b.requests.errored == 0,
        "{:?} {:?}",
        b.requests,
        b.warnings
    );
    assert!(mock.stats().requests >= b.requests.successful);

    std::fs::remove_file(&report).unwrap();
    let seen = mock.stats().requests;
    let path = with_tls("");
    let out = llm_bench(["run", "--no-progress", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, exit_codes::TARGET_FAILED, "{}", out.stderr);
    assert!(
        out.stderr.contains("not signed by a trusted authority"),
        "{}",
        out.stderr
    );
    assert!(!report.exists());
    assert_eq!(mock.stats().requests, seen, "genai-bench did not start");
}

/// The engine contract on the real genai-bench (`bench_tests::conformance`).
pub(crate) fn genai_bench_keeps_the_engine_contract() {
    let executable = test_prerequisites::var("LLM_BENCH_GENAI_BENCH");
    bench_tests::conformance::check("genai-bench", &format!("command = {executable:?}"), 60.0);
}
