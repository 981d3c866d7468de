//! `llm-bench merge` as a user runs it: shard reports on disk in, the run's report out, and
//! the refusals with exit 2 (the merge rules themselves are tested in bench-report).

use std::path::{Path, PathBuf};

use bench_core::Report;
use bench_tests::cli::{llm_bench, sweep_report};

/// Shard `index` of 2: the real sweep report's constant-rate benchmark, with a `shard` block.
fn shard(dir: &Path, index: u32, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep_report()).unwrap()).unwrap();
    let mut benchmark = report["benchmarks"][2].clone();
    benchmark["index"] = 0.into();
    report["benchmarks"] = serde_json::json!([benchmark]);
    report["shard"] = serde_json::json!({ "run_id": "run-test", "index": index, "count": 2 });
    report["config"]["profile"] = serde_json::json!({ "kind": "constant", "rates": [20.0] });
    report["config"]["shard"] = serde_json::json!({ "index": index, "count": 2 });
    report["config"]["output"] = serde_json::json!([{ "path": format!("shard-{index}.json") }]);
    edit(&mut report);
    let path = dir.join(format!("shard-{index}.json"));
    std::fs::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
    path
}

#[test]
fn merge_writes_the_runs_report_and_refuses_what_is_not_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let a = shard(dir.path(), 0, |_| {});
    let b = shard(dir.path(), 1, |_| {});
    let (json, html) = (dir.path().join("run.json"), dir.path().join("run.html"));
    let out = llm_bench([
        "merge",
        b.to_str().unwrap(),
        a.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("merged from 2 of 2 shards of run run-test"),
        "{}",
        out.stdout
    );
    let merged: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let one: Report = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let (m, s) = (&merged.benchmarks[0], &one.benchmarks[0]);
    assert_eq!(m.requests.total, 2 * s.requests.total);
    let ttft = |b: &bench_core::schema::Benchmark| {
        b.metrics.ttft_ms.as_ref().unwrap().total.clone().unwrap()
    };
    // The same values twice: the same percentiles, twice the count.
    assert_eq!(ttft(m).count, 2 * ttft(s).count);
    assert_eq!(ttft(m).percentiles, ttft(s).percentiles);
    assert!(merged.shard.is_none());
    assert_eq!(merged.merged.as_ref().unwrap().shards.len(), 2);
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .starts_with("<!doctype html>"));

    // Refusals, each with exit 2 and the file named.
    let other_seed = shard(dir.path(), 1, |r| r["config"]["seed"] = 8.into());
    let out = llm_bench([
        "merge",
        a.to_str().unwrap(),
        other_seed.to_str().unwrap(),
        "-o",
        "-",
    ]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("configs differ in `seed`") && out.stderr.contains("shard-1.json"),
        "{}",
        out.stderr
    );
    let whole = sweep_report();
    let out = llm_bench(["merge", whole.to_str().unwrap(), "-o", "-"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "report-sweep.json is not a shard's report (no `shard` block); run with --shard I/N"
        ),
        "{}",
        out.stderr
    );
    let out = llm_bench(["merge", a.to_str().unwrap(), "-o", "run.txt"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("invalid --output run.txt"),
        "{}",
        out.stderr
    );

    // One shard alone merges, loudly, to standard output.
    let out = llm_bench(["merge", a.to_str().unwrap(), "-o", "-"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let alone: Report = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(alone.merged.unwrap().missing, vec![1]);
    assert!(alone.warnings.iter().any(|w| w.code == "shards_missing"));
}
