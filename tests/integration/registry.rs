//! The engine registry as the binary and the tests see it.

use bench_core::registry;

#[test]
fn the_registry_holds_the_binarys_engines_plus_the_test_engine_sorted() {
    let mut expected: Vec<&str> = bench_cli::EXPECTED_ENGINES.to_vec();
    expected.push(bench_tests::TEST_ENGINE);
    expected.sort_unstable();
    assert_eq!(registry::names(), expected);
}

#[test]
fn engines_are_built_with_their_strict_options() {
    let config = bench_core::Config::load(
        &std::fs::read_to_string(super::fixture("config/echo.toml")).unwrap(),
        bench_core::config::ConfigFormat::Toml,
        &["engines.test-echo.itl_sm=1".to_owned()],
    )
    .unwrap();
    let error = registry::engine_for(&config).err().unwrap();
    assert_eq!(
        error.to_string(),
        "unknown key `engines.test-echo.itl_sm` (did you mean `engines.test-echo.itl_ms`?); \
         valid keys here: error_every, itl_ms, ttft_ms, wait_for_cancel"
    );
}

#[test]
fn an_options_table_for_an_engine_that_is_not_compiled_in_is_rejected() {
    let config = bench_core::Config::load(
        &std::fs::read_to_string(super::fixture("config/echo.toml")).unwrap(),
        bench_core::config::ConfigFormat::Toml,
        &["engines.test-ecko.ttft_ms=1".to_owned()],
    )
    .unwrap();
    let error = registry::engine_for(&config).err().unwrap().to_string();
    assert!(
        error.starts_with("unknown key `engines.test-ecko` (did you mean `engines.test-echo`?)"),
        "{error}"
    );
}

#[test]
fn an_engine_rejects_a_profile_it_cannot_run_and_names_the_alternatives() {
    let config = bench_core::Config::load(
        &std::fs::read_to_string(super::fixture("config/echo.toml")).unwrap(),
        bench_core::config::ConfigFormat::Toml,
        &["profile={ kind = \"poisson\", rates = [5] }".to_owned()],
    )
    .unwrap();
    let error = registry::engine_for(&config).err().unwrap().to_string();
    assert_eq!(
        error,
        "engine `test-echo` does not support profile.kind = `poisson`; it supports synchronous, \
         concurrent, constant; use benchmark_engine = \"native\""
    );
}

#[test]
fn a_cancelled_run_returns_the_partial_report() {
    let config = bench_core::Config::load(
        &std::fs::read_to_string(super::fixture("config/echo.toml")).unwrap(),
        bench_core::config::ConfigFormat::Toml,
        &["engines.test-echo.wait_for_cancel=true".to_owned()],
    )
    .unwrap();
    let engine = registry::engine_for(&config).unwrap();
    let context = bench_core::RunContext::default();
    let cancel = context.cancel.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let run = engine.run(&config, &context);
        let stop = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            cancel.cancel();
        };
        let (report, ()) = tokio::join!(run, stop);
        report.unwrap()
    });
    assert!(report.interrupted);
    assert_eq!(
        report.benchmarks.len(),
        1,
        "the first of two benchmarks is kept"
    );
}
