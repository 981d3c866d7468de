//! Cross-crate tests that need something from outside the repository: each runs when it is
//! there, is skipped when it is not, and fails naming it under `LLM_BENCH_SLOW_TESTS=1` (CI),
//! as `test_prerequisites` decides. Everything else is in `integration/`.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

mod data;
mod genai_bench;
mod guidellm;
mod k8s;
mod live;
mod python_types;
mod real_server;
mod report;

use std::process::ExitCode;

use test_prerequisites::gated;

fn main() -> ExitCode {
    test_prerequisites::main(&[
        gated!(
            data::a_parquet_file_from_pyarrow_gives_the_same_requests_as_its_rows_in_jsonl,
            [PyarrowPython]
        ),
        gated!(
            genai_bench::the_real_genai_bench_runs_against_the_embedded_mock_and_agrees_with_native,
            [GenaiBench]
        ),
        gated!(
            genai_bench::the_real_genai_bench_runs_over_https_with_the_ca,
            [GenaiBench]
        ),
        gated!(genai_bench::genai_bench_keeps_the_engine_contract, [GenaiBench]),
        gated!(guidellm::guidellm_keeps_the_engine_contract, [GuideLlm]),
        gated!(guidellm::the_real_guidellm_runs_over_https_with_the_ca, [GuideLlm]),
        gated!(
            guidellm::the_real_guidellm_runs_concurrent_and_constant_profiles_against_the_embedded_mock,
            [GuideLlm]
        ),
        gated!(
            k8s::the_manifests_of_a_sharded_job_pass_the_kubernetes_schema,
            [K8sValidate]
        ),
        gated!(
            live::prometheus_parses_the_live_export_and_its_final_values_equal_the_report,
            [PrometheusPython]
        ),
        gated!(
            python_types::the_python_types_load_a_real_report_and_its_progress_events,
            [JsonschemaPython]
        ),
        gated!(
            real_server::every_profile_runs_and_its_totals_match_the_servers_counters,
            [RealServer],
            block_on
        ),
        gated!(
            real_server::token_exact_prompts_are_exact_on_the_real_server,
            [RealServer],
            block_on
        ),
        gated!(
            real_server::ttft_and_itl_agree_with_the_servers_own_timings,
            [RealServer],
            block_on
        ),
        gated!(
            real_server::unique_prompt_leads_defeat_the_prompt_cache,
            [RealServer],
            block_on
        ),
        gated!(
            real_server::genai_bench_and_native_agree_on_the_real_server,
            [RealServer, GenaiBench]
        ),
        gated!(
            real_server::a_sweep_measures_every_rate_step_and_repeats,
            [RealServer],
            block_on
        ),
        gated!(
            real_server::later_turns_of_a_session_reuse_the_cached_prefix,
            [RealServer],
            block_on
        ),
        gated!(
            real_server::the_servers_own_metrics_are_scraped_and_match_the_clients_tokens,
            [RealServer],
            block_on
        ),
        gated!(
            report::the_html_report_renders_in_chromium_with_its_charts_and_no_console_errors,
            [Chromium]
        ),
        gated!(
            report::no_element_of_the_html_pages_overflows_its_card_at_1400_or_800_px,
            [Chromium]
        ),
        gated!(
            report::the_autotuner_object_of_a_real_run_validates_against_its_schema,
            [JsonschemaPython]
        ),
    ])
}

/// Runs an async test as `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` would.
fn block_on<F: std::future::Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}
