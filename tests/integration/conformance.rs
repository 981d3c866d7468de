//! The engine contract (`bench_tests::conformance`) for the engines that need nothing from
//! outside the repository; genai-bench's and GuideLLM's runs are in `prerequisites/`.

use bench_tests::conformance;

#[test]
fn the_native_engine_keeps_the_engine_contract() {
    conformance::check("native", "", 5.0);
}

/// A new engine cannot go without a conformance test.
#[test]
fn every_registered_engine_has_a_conformance_test() {
    let registered: Vec<&str> = bench_core::registry::names()
        .into_iter()
        .filter(|n| *n != "test-echo")
        .collect();
    assert_eq!(registered, conformance::ENGINES);
}
