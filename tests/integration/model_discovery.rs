//! `target.model` left out: the one model the server lists is used and named; several or none
//! are an error that says what to pass.

use bench_cli::exit_codes;
use bench_core::Report;
use bench_mock::MockConfig;
use bench_runner::Embedded;
use bench_tests::cli::llm_bench;

/// A mock whose `GET /v1/models` lists `model`, then `extra` (a list of none is
/// `bench_target`'s unit test: the mock always lists its model).
fn mock_listing(model: &str, extra: &[&str]) -> Embedded {
    Embedded::start(MockConfig {
        model: model.to_owned(),
        extra_models: extra.iter().map(|m| (*m).to_owned()).collect(),
        ttft_ms: 1.0,
        itl_ms: 1.0,
        ..MockConfig::default()
    })
    .unwrap()
}

fn run_against(url: &str, extra: &[&str]) -> bench_tests::cli::Outcome {
    let mut args = vec![
        "run",
        "--target",
        url,
        "--profile",
        "synchronous",
        "--data",
        "prompt_tokens=8,output_tokens=2,approximate=true",
        "--max-requests",
        "3",
        "--no-progress",
        "-o",
        "-",
    ];
    args.extend_from_slice(extra);
    llm_bench(args)
}

#[test]
fn the_one_served_model_is_used_and_named_in_the_report() {
    let mock = mock_listing("served-one", &[]);
    let url = mock.server().base_url();
    let out = run_against(&url, &[]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let report: Report = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report.config.target.model.as_deref(), Some("served-one"));
    assert_eq!(report.benchmarks[0].requests.successful, 3);
    assert!(
        !report.warnings.iter().any(|w| w.code == "model_not_listed"),
        "{:?}",
        report.warnings
    );

    let out = llm_bench([
        "validate",
        "--target",
        &url,
        "--profile",
        "synchronous",
        "--data",
        "D(8,2)",
        "--max-requests",
        "1",
        "--set",
        "data.approximate=true",
    ]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("target.model: `served-one`, the one model the server lists\n"),
        "{}",
        out.stdout
    );
    mock.stop();
}

#[test]
fn several_served_models_are_listed_in_the_error_and_model_chooses_one() {
    let mock = mock_listing("a-model", &["b-model", "c-lora"]);
    let url = mock.server().base_url();
    let out = run_against(&url, &[]);
    assert_eq!(out.code, exit_codes::BAD_INPUT, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!("error: missing key `target.model`; GET /v1/models at `{url}` lists 3 models, so which one to benchmark must be said: a-model, b-model, c-lora; pass --model NAME or set target.model to the served model's name\n")
    );
    assert!(out.stdout.is_empty());
    let out = run_against(&url, &["--model", "c-lora"]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let report: Report = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report.config.target.model.as_deref(), Some("c-lora"));
    mock.stop();
}
