//! The over-saturation detector with its defaults: on for every native benchmark in monitor
//! mode, its times scaled to the benchmark, so a short benchmark far past capacity is flagged.
//! The tests are `timed_*`: they run alone (`.config/nextest.toml`).

use bench_cli::exit_codes;
use bench_core::schema::{Report, StopReason};

use crate::run_cli;

/// Two slots of 20 ms requests (6 ms TTFT, 7 gaps of 2 ms) carry 100 req/s.
const MOCK: &str = "[target.mock]\nttft_ms = 6\nitl_ms = 2\noutput_tokens = 8\nmax_batch = 2\n";

fn run_at(rate: f64) -> Report {
    run_cli(
        &format!("{MOCK}[profile]\nkind = \"constant\"\nrates = [{rate}]\n[constraints]\nmax_seconds = 10\n\
                  [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 8\napproximate = true\n"),
        &[],
        exit_codes::OK,
    )
}

#[test]
fn timed_a_short_run_at_twice_capacity_is_flagged_by_default_and_one_at_half_is_not() {
    let over = run_at(200.0);
    let b = &over.benchmarks[0];
    assert!(
        b.warnings.iter().any(|w| w.code == "over_saturated"),
        "{:?}",
        b.warnings
    );
    // Monitor mode by default: a warning, not a stop.
    assert_eq!(b.stopped_by, Some(StopReason::MaxSeconds));

    let under = run_at(50.0);
    let b = &under.benchmarks[0];
    assert!(
        b.warnings.iter().all(|w| w.code != "over_saturated"),
        "{:?}",
        b.warnings
    );
}
