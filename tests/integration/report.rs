//! Reading results: `llm-bench report` formats, `compare`, and the HTML report in a real
//! browser (headless Chromium).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::llm_bench;

/// A real 6-step sweep report (see crates/bench-core/fixtures/README.md).
fn sweep() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/bench-core/fixtures/report-sweep.json")
}

/// `llm-bench report <sweep> --format html` into `dir`.
fn sweep_as_html(dir: &Path) -> PathBuf {
    let html = dir.join("report.html");
    let out = llm_bench([
        "report",
        sweep().to_str().unwrap(),
        "--format",
        "html",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    html
}

#[test]
fn compare_passes_equal_reports_and_flags_a_planted_difference() {
    let dir = tempfile::tempdir().unwrap();
    let same = llm_bench([
        "compare",
        sweep().to_str().unwrap(),
        sweep().to_str().unwrap(),
    ]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    assert!(same.stdout.contains("0 value(s) differ"), "{}", same.stdout);

    // Plant a TTFT half again as long in benchmark 3 of a copy.
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep()).unwrap()).unwrap();
    let p50 =
        &mut report["benchmarks"][3]["metrics"]["ttft_ms"]["successful"]["percentiles"]["p50"];
    *p50 = serde_json::json!(p50.as_f64().unwrap() * 1.5);
    let planted = dir.path().join("planted.json");
    std::fs::write(&planted, serde_json::to_string(&report).unwrap()).unwrap();
    let html = dir.path().join("cmp.html");
    let json = dir.path().join("cmp.json");
    let out = llm_bench([
        "compare",
        sweep().to_str().unwrap(),
        planted.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("1 value(s) differ"), "{}", out.stdout);
    let flagged: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('!'))
        .collect();
    assert_eq!(flagged.len(), 1, "{}", out.stdout);
    assert!(
        flagged[0].contains("ttft_p50_ms") && flagged[0].contains("+50.0 %"),
        "{}",
        flagged[0]
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written["flagged"], 1);
    assert_eq!(written["benchmarks"].as_array().unwrap().len(), 6);
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("class=\"flag\""));

    let bad = llm_bench(["compare", sweep().to_str().unwrap()]);
    assert_eq!(bad.code, 2, "one report is not a comparison");
}

#[test]
fn a_saved_report_renders_as_html_and_as_the_autotuners_object() {
    let dir = tempfile::tempdir().unwrap();
    let html = sweep_as_html(dir.path());
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .starts_with("<!doctype html>"));
    let out = llm_bench(["report", sweep().to_str().unwrap(), "--format", "autotuner"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["num_result_files"], 6);
}

/// Headless Chromium, started as the machine's probe starts it: no network of its own.
fn chromium(args: &[&str], page: &Path) -> Option<std::process::Output> {
    let binary = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(binary) = binary else {
        assert!(
            std::env::var("LLM_BENCH_SLOW_TESTS").map_or(true, |v| v != "1"),
            "LLM_BENCH_SLOW_TESTS=1 needs Chromium (.ci/run installs Debian's chromium package)"
        );
        eprintln!("skipped: no Chromium on this machine");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    Some(output)
}

/// Console messages Chromium logged for the page (a blocked fetch, a script error).
fn console_errors(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Refused to") || l.contains("Uncaught"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_html_report_renders_in_chromium_with_its_charts_and_no_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let html = sweep_as_html(dir.path());
    let Some(dom) = chromium(&["--dump-dom"], &html) else {
        return;
    };
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    // The parsed document holds every chart as SVG with its drawn series.
    assert_eq!(
        dom_text.matches("<svg class=\"chart\"").count(),
        8,
        "charts in the DOM"
    );
    assert!(dom_text.matches("<polyline").count() >= 10);
    assert!(dom_text.contains("id=\"benchmarks\""));
    assert_eq!(console_errors(&dom.stderr), Vec::<String>::new());

    let png = dir.path().join("report.png");
    let shot = chromium(
        &[
            "--window-size=1360,2200",
            &format!("--screenshot={}", png.display()),
        ],
        &html,
    )
    .unwrap();
    assert!(shot.status.success());
    assert!(
        std::fs::metadata(&png).unwrap().len() > 50_000,
        "a drawn page, not a blank one"
    );

    // The detector works: a page that tries to fetch under the same policy is caught.
    let fetching = dir.path().join("fetching.html");
    std::fs::write(
        &fetching,
        "<!doctype html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\"></head>\
         <body><img src=\"http://127.0.0.1:9/x.png\"></body></html>",
    )
    .unwrap();
    let blocked = chromium(&["--dump-dom"], &fetching).unwrap();
    assert!(
        !console_errors(&blocked.stderr).is_empty(),
        "{}",
        String::from_utf8_lossy(&blocked.stderr)
    );
}

/// `run --engines` runs the same config on each engine, writes each report under its engine's
/// name, and a comparison beside them.
#[test]
fn run_with_several_engines_writes_each_report_and_their_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[profile]\nkind = \"concurrent\"\nstreams = [1, 2]\n[constraints]\nmax_requests = 12\n\
         [target.mock]\nttft_ms = 5\nitl_ms = 1\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 32\noutput_tokens = 16\napproximate = true\n\
         [engines.test-echo]\nttft_ms = 5\nitl_ms = 1\n",
    )
    .unwrap();
    let report = dir.path().join("r.json");
    let out = llm_bench([
        "run",
        "--config",
        config.to_str().unwrap(),
        "--engines",
        "native,test-echo",
        "--no-progress",
        "-o",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for name in [
        "r.native.json",
        "r.test-echo.json",
        "r.compare.json",
        "r.compare.html",
    ] {
        assert!(
            dir.path().join(name).is_file(),
            "{name} was not written: {}",
            out.stdout
        );
    }
    let comparison: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.compare.json")).unwrap())
            .unwrap();
    assert_eq!(comparison["reports"][0]["engine"], "native");
    assert_eq!(comparison["reports"][1]["engine"], "test-echo");
    assert_eq!(comparison["benchmarks"].as_array().unwrap().len(), 2);

    let twice = llm_bench([
        "run",
        "--config",
        config.to_str().unwrap(),
        "--engines",
        "native,native",
    ]);
    assert_eq!(twice.code, 2);
    assert!(twice.stderr.contains("twice"), "{}", twice.stderr);
}
