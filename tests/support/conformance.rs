//! The engine contract, checked the same way for every registered engine against a mock whose
//! timings are known: the declared metrics are present and agree with the mock's ground truth,
//! the undeclared ones are null, the totals add up to what the server saw, and a cancelled run
//! stops soon and returns its partial report marked interrupted.
//!
//! Each engine has one conformance test (`ENGINES`); the registry test checks no registered
//! engine is without one.

use std::time::{Duration, Instant};

use bench_core::config::{ConfigFormat, ProfileKind};
use bench_core::schema::{Distribution, DrainOutcome, Metrics, StatusSplit};
use bench_core::{CancelToken, Feature, MetricKind, RunContext};
use bench_mock::{MockConfig, MockServer};

/// The engines with a conformance test: every registered engine but `test-echo`, which never
/// talks to a server.
pub const ENGINES: [&str; 3] = ["genai-bench", "guidellm", "native"];

/// The mock's time to first token and gap between tokens, in ms.
const TTFT_MS: f64 = 20.0;
const ITL_MS: f64 = 5.0;
/// Prompt and output tokens of every request.
const PROMPT_TOKENS: u32 = 32;
const OUTPUT_TOKENS: u32 = 8;
/// Requests per conformance run.
const REQUESTS: u64 = 12;

/// Runs the contract for engine `name`, with `engine_lines` in its `[engines.<name>]` table
/// (the tool's command for a subprocess engine). `client_ms` is what the engine's client may
/// add to the served TTFT (the native engine: a few ms; a Python tool: tens).
pub fn check(name: &str, engine_lines: &str, client_ms: f64) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mock = runtime
        .block_on(MockServer::start(MockConfig {
            ttft_ms: TTFT_MS,
            itl_ms: ITL_MS,
            // Counting prompts as the engines' tokenizer does.
            tokenizer: Some(crate::test_tokenizer()),
            ..MockConfig::default()
        }))
        .expect("the mock starts");
    let config = |profile: &str, constraints: &str, target: &str| {
        let text = format!(
            "benchmark_engine = {name:?}\n[target]\nurl = {:?}\nmodel = \"mock-model\"\n{target}[profile]\n{profile}\n\
             [constraints]\n{constraints}\n[data]\nkind = \"synthetic\"\nprompt_tokens = {PROMPT_TOKENS}\n\
             output_tokens = {OUTPUT_TOKENS}\ntokenizer = {:?}\n[engines.{name}]\n{engine_lines}\n",
            format!("{}/v1", mock.base_url()),
            crate::test_tokenizer().display().to_string()
        );
        bench_runner::load_config(&text, ConfigFormat::Toml, &[], None).expect("the config loads")
    };
    let probe = config("kind = \"synchronous\"", "max_requests = 1", "");
    let engine = bench_core::registry::engine_for(&probe).expect("the engine builds");
    let capabilities = engine.capabilities();
    // Open loop where the engine has it, so every metric it declares is defined.
    let profile = if capabilities.profiles.contains(&ProfileKind::Constant) {
        "kind = \"constant\"\nrates = [8]"
    } else {
        "kind = \"concurrent\"\nstreams = [2]"
    };
    // The server's metrics where the engine declares it scrapes them.
    let scrapes = capabilities.features.contains(&Feature::ServerMetrics);
    let metrics = if scrapes {
        "[target.metrics]\nmode = \"on\"\ninterval_seconds = 0.2\n"
    } else {
        ""
    };
    let config = config(profile, &format!("max_requests = {REQUESTS}"), metrics);
    bench_runner::preflight(&config, engine.as_ref(), false, None).expect("the preflight passes");
    let before = mock.stats().requests;
    let live = std::sync::Arc::new(bench_core::live::LiveMetrics::new());
    let ctx = RunContext::default().with_live(live.clone());
    let report = bench_runner::execute(&config, engine.as_ref(), &ctx).expect("it runs");
    let served = mock.stats().requests - before;

    assert_eq!(report.engine, name);
    assert!(!report.interrupted);
    assert_eq!(
        report.benchmarks.len(),
        config.plan().len(),
        "{name}: one benchmark per step"
    );
    let b = &report.benchmarks[0];
    // Every engine waits for the server to be idle before a benchmark (the mock's gauges).
    let drain = b
        .drain
        .unwrap_or_else(|| panic!("{name}: no drain before the benchmark"));
    assert_eq!(drain.outcome, DrainOutcome::Idle, "{name}: {drain:?}");
    if scrapes {
        let server = b.server.as_ref().expect("the server's metrics");
        assert!(
            server.scrapes >= 2 && server.failed_scrapes == 0,
            "{name}: {server:?}"
        );
        let generated = server.generation_tokens;
        assert!(
            generated.is_some_and(|g| g >= (REQUESTS * u64::from(OUTPUT_TOKENS)) as f64),
            "{name}: the server's generated tokens over the benchmark: {generated:?}"
        );
    }
    let r = b.requests;
    // The live export counts what the report counts, for every engine, and ends the benchmark.
    let exported = live.render();
    let labels = format!(
        "engine=\"{name}\",benchmark=\"1\",strategy=\"{}\"",
        b.strategy.kind.name()
    );
    for (outcome, n) in [
        ("successful", r.successful),
        ("incomplete", r.incomplete),
        ("errored", r.errored),
    ] {
        let line = format!("llm_bench_requests_total{{{labels},outcome=\"{outcome}\"}} {n}\n");
        assert!(
            exported.contains(&line),
            "{name}: no `{line}` in\n{exported}"
        );
    }
    let running = format!("llm_bench_benchmark_running{{{labels}}} 0\n");
    assert!(
        exported.contains(&running),
        "{name}: no `{running}` in\n{exported}"
    );
    assert_eq!(
        r.total,
        r.successful + r.incomplete + r.errored,
        "{name}: {r:?}"
    );
    assert_eq!(
        b.errors.iter().map(|e| e.count).sum::<u64>(),
        r.errored,
        "{name}: every failure is in an error group"
    );
    assert_eq!(r.errored, 0, "{name}: {:?}", b.errors);
    assert!(r.successful >= REQUESTS, "{name}: {r:?}");
    // The server saw every counted request; a tool may send a few more than it counts (one
    // per stream in flight at the end) and the target check sends one.
    assert!(
        r.total <= served && served <= r.total + 3,
        "{name}: the mock served {served} requests, the report counts {}",
        r.total
    );

    let declared = &capabilities.metrics;
    for (kind, present) in presence(&b.metrics) {
        assert_eq!(
            present,
            declared.contains(&kind),
            "{name}: {} is {} but {}declared",
            kind.field(),
            if present { "present" } else { "null" },
            if declared.contains(&kind) { "" } else { "not " }
        );
    }
    let truth = mock.ground_truth();
    let served_ttft: Vec<f64> = truth
        .iter()
        .filter_map(|t| Some((t.first_token_unix_us? - t.arrival_unix_us) as f64 / 1000.0))
        .collect();
    let served_mean = served_ttft.iter().sum::<f64>() / served_ttft.len() as f64;
    if let Some(ttft) = ok(&b.metrics.ttft_ms) {
        let bias = ttft.mean - served_mean;
        assert!(
            (-0.5..client_ms).contains(&bias),
            "{name}: TTFT mean {:.2} ms, served {served_mean:.2} ms",
            ttft.mean
        );
    }
    if let Some(tpot) = ok(&b.metrics.tpot_ms) {
        assert!((tpot.median - ITL_MS).abs() < 1.0, "{name}: TPOT {tpot:?}");
    }
    if let Some(itl) = ok(&b.metrics.itl_ms) {
        assert!((itl.median - ITL_MS).abs() < 1.0, "{name}: ITL {itl:?}");
    }
    if let Some(out) = ok(&b.metrics.output_tokens) {
        assert_eq!(
            (out.min, out.max),
            (f64::from(OUTPUT_TOKENS), f64::from(OUTPUT_TOKENS)),
            "{name}"
        );
    }
    if let Some(reasoning) = &b.metrics.reasoning {
        // The mock streams no reasoning: the whole output is the answer, which starts with
        // the first token.
        let tokens = |split: &Option<StatusSplit<Distribution>>| ok(split).map(|d| (d.min, d.max));
        assert_eq!(
            tokens(&reasoning.reasoning_tokens),
            Some((0.0, 0.0)),
            "{name}"
        );
        assert_eq!(
            tokens(&reasoning.answer_tokens),
            Some((f64::from(OUTPUT_TOKENS), f64::from(OUTPUT_TOKENS))),
            "{name}"
        );
        assert!(ok(&reasoning.reasoning_itl_ms).is_none(), "{name}");
        let first_answer = ok(&reasoning.time_to_first_answer_token_ms).expect("an answer");
        let ttft = ok(&b.metrics.ttft_ms).expect("a TTFT");
        assert_eq!(first_answer.mean, ttft.mean, "{name}");
        let answer_itl = ok(&reasoning.answer_itl_ms).expect("answer gaps");
        assert!(
            (answer_itl.median - ITL_MS).abs() < 1.0,
            "{name}: {answer_itl:?}"
        );
    }
    if let Some(prompt) = ok(&b.metrics.prompt_tokens) {
        // The mock applies no chat template: the prompt is as long as asked.
        assert_eq!(
            prompt.median,
            f64::from(PROMPT_TOKENS),
            "{name}: {prompt:?}"
        );
    }
    if let Some(rates) = &b.metrics.rates.requests_per_s {
        assert!(
            rates.successful.is_some_and(|s| s > 0.0),
            "{name}: {rates:?}"
        );
    }
    cancellation(name, &config, engine.as_ref());
    drop(runtime);
}

/// A run with a long time limit, cancelled after a few seconds, stops soon and says so.
fn cancellation(name: &str, config: &bench_core::Config, engine: &dyn bench_core::BenchmarkEngine) {
    let mut long = config.clone();
    long.constraints.max_requests = None;
    long.constraints.max_seconds = Some(600.0);
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let fire = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        trigger.cancel();
    });
    let started = Instant::now();
    let context = RunContext::new(
        std::sync::Arc::new(bench_core::progress::NoProgress),
        cancel,
    );
    let report =
        bench_runner::execute(&long, engine, &context).expect("a cancelled run is no error");
    let took = started.elapsed();
    fire.join().expect("the trigger thread");
    assert!(
        report.interrupted,
        "{name}: the report says it was interrupted"
    );
    // The tool's process group gets 5 s after SIGTERM.
    assert!(
        took < Duration::from_secs(20),
        "{name}: a cancelled run took {took:?}"
    );
}

fn ok(split: &Option<StatusSplit<Distribution>>) -> Option<&Distribution> {
    split.as_ref().and_then(|s| s.successful.as_ref())
}

/// Whether each metric of the schema is present, by its kind.
fn presence(m: &Metrics) -> Vec<(MetricKind, bool)> {
    vec![
        (MetricKind::RequestLatency, m.request_latency_ms.is_some()),
        (MetricKind::Ttft, m.ttft_ms.is_some()),
        (MetricKind::Itl, m.itl_ms.is_some()),
        (MetricKind::Tpot, m.tpot_ms.is_some()),
        (MetricKind::DecodeTime, m.decode_time_ms.is_some()),
        (MetricKind::ScheduleLag, m.schedule_lag_ms.is_some()),
        (
            MetricKind::LatencyFromIntendedSend,
            m.latency_from_intended_send_ms.is_some(),
        ),
        (MetricKind::PromptTokens, m.prompt_tokens.is_some()),
        (MetricKind::OutputTokens, m.output_tokens.is_some()),
        (MetricKind::Reasoning, m.reasoning.is_some()),
        (MetricKind::Rates, m.rates.requests_per_s.is_some()),
        (MetricKind::Concurrency, m.rates.concurrency.is_some()),
    ]
}
