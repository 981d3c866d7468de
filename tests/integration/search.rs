//! The SLO search (`profile.kind = "search"`) against a mock whose SLO boundary is known from
//! its load model, and its refusal by the engines that do not run it.

use bench_core::config::{ConfigFormat, StrategyKind};
use bench_core::schema::SearchEnd;
use bench_core::{registry, Config, RunContext};
use bench_mock::{MockConfig, MockServer};

/// The mock's load model: `MAX_BATCH` requests decode at once, later ones wait first-in
/// first-out, and a request holds its slot from admission to its last token, for
/// `TTFT_MS + (OUTPUT_TOKENS - 1) * ITL_MS` = 20 + 7 x 10 = 90 ms (no prefill cost per prompt
/// token, no slowdown with the batch, constant delays). So the server completes at most
/// `MAX_BATCH / 0.090 s` = 44.4 requests per second. Below that rate, evenly spaced arrivals
/// (1 / rate apart, at least 22.5 ms) always find a free slot (`MAX_BATCH` slots each busy
/// 90 ms), so TTFT stays at 20 ms plus the loopback round trip. Above it, the queue grows by
/// (rate - 44.4) requests every second and every request waits longer than the one before:
/// at 4 % above the boundary the wait passes the SLO's 100 ms slack after 100 ms / 4 % =
/// 2.5 s. The boundary for a TTFT SLO of 120 ms is therefore 44.4 req/s, within the few per
/// cent a 2.5 s step can resolve.
const MAX_BATCH: u32 = 4;
const TTFT_MS: f64 = 20.0;
const ITL_MS: f64 = 10.0;
const OUTPUT_TOKENS: u32 = 8;

fn boundary_per_s() -> f64 {
    let slot_s = (TTFT_MS + f64::from(OUTPUT_TOKENS - 1) * ITL_MS) / 1000.0;
    f64::from(MAX_BATCH) / slot_s
}

fn config(url: &str, engine: &str) -> Config {
    let text = format!(
        "benchmark_engine = \"{engine}\"\n[target]\nurl = \"{url}\"\nmodel = \"m\"\n\
         [profile]\nkind = \"search\"\nstrategy = \"constant\"\n\
         [constraints]\nmax_seconds = 2.5\n\
         [slo]\nttft_ms = {}\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = {OUTPUT_TOKENS}\napproximate = true\n",
        TTFT_MS + 100.0
    );
    Config::load(&text, ConfigFormat::Toml, &[]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_lands_within_ten_percent_of_the_mocks_boundary_in_ten_steps() {
    let server = MockServer::start(MockConfig {
        ttft_ms: TTFT_MS,
        itl_ms: ITL_MS,
        max_batch: MAX_BATCH,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let config = config(&server.base_url(), "native");
    let engine = registry::engine_for(&config).unwrap();
    let started = std::time::Instant::now();
    let report = engine.run(&config, &RunContext::default()).await.unwrap();
    let search = report.search.as_ref().expect("a search report");
    let boundary = boundary_per_s();
    let rates: Vec<(f64, bool)> = search
        .steps
        .iter()
        .map(|s| (s.rate_per_s, s.passed))
        .collect();
    eprintln!(
        "known boundary {boundary:.2} req/s; search answer {:?} in {:.1} s; steps {rates:?}; {}",
        search.answer.rate_per_s,
        started.elapsed().as_secs_f64(),
        search.answer.statement
    );
    let answer = search.answer.rate_per_s.expect("a rate that met the SLO");
    assert!(
        (answer - boundary).abs() <= 0.1 * boundary,
        "answer {answer:.2} req/s, boundary {boundary:.2} req/s: {rates:?}"
    );
    assert_eq!(search.answer.ended, SearchEnd::Converged, "{rates:?}");
    // Ten steps at most, the synchronous probe included.
    assert!(search.steps.len() <= 10, "{rates:?}");
    assert_eq!(search.steps[0].kind, StrategyKind::Synchronous);
    // Every step is a benchmark of the report, in order, at the step's rate.
    assert_eq!(report.benchmarks.len(), search.steps.len());
    for step in &search.steps[1..] {
        let b = &report.benchmarks[step.benchmark];
        assert_eq!(b.strategy.kind, StrategyKind::Constant);
        assert_eq!(b.strategy.target_rate_per_s, Some(step.rate_per_s));
        assert!(step.interval.low <= step.attainment && step.attainment <= step.interval.high);
        assert_eq!(step.objectives[0].objective, "ttft_ms");
        // Well away from the boundary the verdict is the load model's.
        if step.rate_per_s < 0.9 * boundary {
            assert!(step.passed, "{step:?}");
        }
        if step.rate_per_s > 1.15 * boundary {
            assert!(!step.passed, "{step:?}");
        }
        // Every step but the first was drained before it.
        assert!(b.drain.is_some(), "step {}", step.benchmark);
    }
}

/// A search may step with gamma arrivals: each step is a gamma benchmark at the step's rate
/// with the config's burstiness (three short steps; the bisection itself is the test above's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gamma_search_steps_with_bursty_arrivals_at_each_rate() {
    let server = MockServer::start(MockConfig {
        ttft_ms: TTFT_MS,
        itl_ms: ITL_MS,
        max_batch: MAX_BATCH,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let text = format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n\
         [profile]\nkind = \"search\"\nstrategy = \"gamma\"\nburstiness = 0.5\n\
         [profile.search]\nmax_steps = 3\n[constraints]\nmax_seconds = 1\n\
         [slo]\nttft_ms = {}\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = {OUTPUT_TOKENS}\napproximate = true\n",
        server.base_url(),
        TTFT_MS + 100.0
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    let report = engine.run(&config, &RunContext::default()).await.unwrap();
    let search = report.search.as_ref().expect("a search report");
    // The synchronous probe, then `max_steps` rate steps.
    assert_eq!(search.steps.len(), 4, "{:?}", search.steps);
    assert_eq!(
        search.answer.ended,
        SearchEnd::MaxSteps,
        "{:?}",
        search.answer
    );
    for step in &search.steps[1..] {
        let b = &report.benchmarks[step.benchmark];
        assert_eq!(b.strategy.kind, StrategyKind::Gamma);
        assert_eq!(b.strategy.burstiness, Some(0.5));
        assert_eq!(b.strategy.target_rate_per_s, Some(step.rate_per_s));
        assert!(b.requests.successful > 0, "{:?}", b.requests);
    }
}

#[test]
fn engines_that_do_not_search_refuse_it() {
    for engine in ["genai-bench", "guidellm"] {
        let config = config("http://127.0.0.1:1", engine);
        let Err(error) = registry::engine_for(&config) else {
            panic!("{engine} accepted a search");
        };
        let error = error.to_string();
        assert!(error.contains("search"), "{engine}: {error}");
    }
}
