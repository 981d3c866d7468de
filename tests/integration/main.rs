//! Cross-crate tests: one binary, one link step. Those that need something from outside the
//! repository are in `prerequisites/`.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

mod cli;
mod cli_flags;
mod config;
mod conformance;
mod data;
mod drain;
mod faults;
mod genai_bench;
mod guidellm;
mod live;
mod merge;
mod mock;
mod model_discovery;
mod native;
mod preflight;
mod python_types;
mod reasoning;
mod registry;
mod replay;
mod report;
mod saturation;
mod search;
mod server_metrics;
mod sessions;
mod sharding;
mod sizing;
mod tls;
mod trust_native;
mod wording;

use std::path::PathBuf;

// Also links the test engine (and through it every engine of the binary).
use bench_tests::cli::llm_bench;

/// A file under `tests/fixtures/`.
fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

/// Runs `llm-bench run` in-process on `config` (TOML) with `--set` overrides, expecting exit
/// `code`; the report.
pub(crate) fn run_cli(config: &str, sets: &[&str], code: u8) -> bench_core::Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let report = dir.path().join("report.json");
    let mut args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        "--config".into(),
        path.into_os_string(),
        "--no-progress".into(),
        "--output".into(),
        report.clone().into_os_string(),
    ];
    for set in sets {
        args.push("--set".into());
        args.push(set.into());
    }
    let out = llm_bench(args);
    assert_eq!(out.code, code, "{}", out.stderr);
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}
