//! The throughput benchmark sized to the server: without an explicit `max_concurrency` it
//! grows its streams while completions rise and holds the smallest best level, so it leaves
//! no backlog for the next benchmark. `timed_*`: runs alone (`.config/nextest.toml`).

use bench_cli::exit_codes;
use bench_core::config::StrategyKind;
use bench_core::schema::{DrainOutcome, Report};
use bench_tests::cli::successful_rate;

use crate::run_cli;

/// Four slots of about 115 ms requests (20 ms TTFT, 19 gaps of 5 ms): about 35 req/s.
const MOCK: &str = "[target.mock]\nttft_ms = 20\nitl_ms = 5\noutput_tokens = 20\nmax_batch = 4\n";
const DATA: &str =
    "[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 20\napproximate = true\n";

fn run(profile: &str, max_seconds: u32) -> Report {
    run_cli(
        &format!("{MOCK}[profile]\n{profile}\n[constraints]\nmax_seconds = {max_seconds}\n{DATA}"),
        &[],
        exit_codes::OK,
    )
}

#[test]
fn timed_a_sweeps_throughput_step_is_sized_to_the_server_and_leaves_no_backlog() {
    // 6 s: levels of 1.5 s, so 1, 2, 4 and 8 streams are measured and 8 shows the plateau.
    let report = run("kind = \"sweep\"\nsweep_size = 3", 6);
    let throughput = &report.benchmarks[1];
    assert_eq!(throughput.strategy.kind, StrategyKind::Throughput);
    let level = throughput.strategy.max_concurrency.unwrap();
    assert!(
        (4..=8).contains(&level),
        "four slots: sized at {level} streams, not the default 512"
    );
    // The sweep builds on the plateau's rate (the only rate step is at it), which the growth
    // at the start of the window does not drag down.
    let plateau = report.benchmarks[2].strategy.target_rate_per_s.unwrap();
    assert!(plateau > 0.7 * 4.0 / 0.115, "{plateau}");
    assert!(plateau >= successful_rate(throughput), "{plateau}");
    // The rate step after it found at most a few requests to wait for.
    let drain = report.benchmarks[2].drain.unwrap();
    assert_eq!(drain.outcome, DrainOutcome::Idle);
    assert!(drain.seconds < 0.5, "{drain:?}");
    assert!(
        report.warnings.iter().all(|w| w.code != "sweep_inverted"),
        "{:?}",
        report.warnings
    );
    // It found its plateau, so nothing says it was still rising.
    assert!(
        throughput
            .warnings
            .iter()
            .all(|w| w.code != "throughput_still_rising"),
        "{:?}",
        throughput.warnings
    );
}

/// A server far bigger than a short benchmark can size: completions still double at every
/// level when the time runs out, and the benchmark says its level understates the server.
#[test]
fn timed_a_throughput_benchmark_still_rising_at_its_end_says_so() {
    // No batch limit: every level doubles the completions, and 2 s allow levels 1, 2, 4.
    let report = run_cli(
        &format!(
            "[target.mock]\nttft_ms = 20\nitl_ms = 5\noutput_tokens = 20\n\
             [profile]\nkind = \"throughput\"\n[constraints]\nmax_seconds = 2\n{DATA}"
        ),
        &[],
        exit_codes::OK,
    );
    let b = &report.benchmarks[0];
    let warning = b
        .warnings
        .iter()
        .find(|w| w.code == "throughput_still_rising")
        .unwrap_or_else(|| panic!("{:?} at {:?}", b.warnings, b.strategy));
    assert!(
        warning
            .message
            .contains("completed requests per second by streams: 1: "),
        "{}",
        warning.message
    );
    assert!(b.strategy.max_concurrency.unwrap() <= 8, "{:?}", b.strategy);
}

#[test]
fn timed_an_explicit_max_concurrency_is_the_throughput_level() {
    let report = run("kind = \"throughput\"\nmax_concurrency = 16", 4);
    assert_eq!(report.benchmarks[0].strategy.max_concurrency, Some(16));
}
