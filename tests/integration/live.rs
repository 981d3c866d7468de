//! `llm-bench run --metrics-listen`: the live figures scraped during a run against the
//! embedded mock end equal to the report's; a bad or busy address stops the run before it
//! starts. (The `prerequisites` binary reads the same scrapes with Prometheus's own parser.)

use bench_cli::exit_codes;
use bench_tests::live::{check_scrapes, read_samples, scrape_a_run};

use crate::{fixture, llm_bench};

#[test]
fn live_counters_rise_during_a_run_and_end_equal_to_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let run = scrape_a_run(dir.path());
    let scrapes: Vec<_> = run.scrapes.iter().map(|t| read_samples(t)).collect();
    check_scrapes(&scrapes, &run.report);
}

#[test]
fn a_busy_or_bad_metrics_address_exits_2_before_the_run() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let config = fixture("config/echo.toml");
    for (address, says) in [
        (busy.as_str(), format!("cannot listen on `{busy}`")),
        ("nonsense", "`nonsense` is not an address".to_owned()),
    ] {
        let out = llm_bench([
            "run".as_ref(),
            "-c".as_ref(),
            config.as_os_str(),
            "-o".as_ref(),
            report.as_os_str(),
            "--no-progress".as_ref(),
            "--metrics-listen".as_ref(),
            address.as_ref(),
        ]);
        assert_eq!(out.code, exit_codes::BAD_INPUT, "{}", out.stderr);
        assert!(out.stderr.contains(&says), "{}", out.stderr);
        assert!(!report.exists(), "nothing ran");
    }
}
