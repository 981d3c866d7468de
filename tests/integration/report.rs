//! Reading results: `llm-bench report` formats, `compare`, and the HTML report in a real
//! browser (headless Chromium).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::llm_bench;

/// A real 6-step sweep report (see crates/bench-report/fixtures/README.md).
fn sweep() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/bench-report/fixtures/report-sweep.json")
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

/// Validates each document against the schema with Python's `jsonschema`, by the draft the
/// schema names.
fn validate_with_python(python: &str, schema: &Path, documents: &[&Path]) {
    let script = "import json, sys\n\
        import jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        cls = jsonschema.validators.validator_for(schema)\n\
        cls.check_schema(schema)\n\
        for path in sys.argv[2:]:\n\
        \x20   cls(schema).validate(json.load(open(path)))\n\
        \x20   print('valid:', path)\n";
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(schema)
        .args(documents)
        .output()
        .unwrap_or_else(|e| panic!("cannot run LLM_BENCH_PYTHON={python}: {e}"));
    assert!(
        output.status.success(),
        "{python} says the autotuner object does not match its schema (or lacks jsonschema):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .matches("valid: ")
            .count(),
        documents.len()
    );
}

/// Decimals a JSON number is written with (`8.508` 3, `2.0` none, `1e-6` 6).
fn decimals(number: &str) -> i64 {
    let (mantissa, exponent) = number
        .split_once(['e', 'E'])
        .map_or((number, 0), |(m, e)| (m, e.parse::<i64>().unwrap()));
    let fraction = mantissa
        .split_once('.')
        .map_or("", |(_, f)| f)
        .trim_end_matches('0');
    (fraction.len() as i64 - exponent).max(0)
}

/// Every number in `value`, as serde_json writes it.
fn numbers(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| numbers(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| numbers(v, out)),
        _ => {}
    }
}

/// The autotuner's object of a real short run (a scenario written with leading zeros, a
/// sweep, an SLO) and of the sweep fixture both validate against `llm-bench schema
/// autotuner`, which is the committed schema; their numbers carry at most 6 decimals, and the
/// CSV's too.
#[test]
fn the_autotuner_object_of_a_real_run_validates_against_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (autotuner, csv) = (dir.path().join("autotuner.json"), dir.path().join("r.csv"));
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[target.mock]\nttft_ms = 3\nitl_ms = 0.5\n\
             [profile]\nkind = \"sweep\"\nsweep_size = 3\nmax_concurrency = 4\n\
             [constraints]\nmax_requests = 12\nmax_seconds = 2\n\
             [data]\nkind = \"scenario\"\nscenario = \"D(0016,04)\"\napproximate = true\n\
             [slo]\nttft_ms = 50\n\
             [[output]]\npath = {:?}\nformat = \"autotuner\"\n[[output]]\npath = {:?}\n",
            autotuner.display().to_string(),
            csv.display().to_string()
        ),
    )
    .unwrap();
    let out = llm_bench(["run", "--config", config.to_str().unwrap(), "--no-progress"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let object: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&autotuner).unwrap()).unwrap();
    let results = object["raw_results"].as_array().unwrap();
    let strategies: Vec<&str> = results
        .iter()
        .map(|r| r["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(strategies, ["synchronous", "throughput", "constant"]);
    for r in results {
        assert_eq!(r["scenario"], "D(16,4)", "genai-bench's spelling");
        assert!(r["goodput"]["slo_attainment"].is_number(), "{r}");
    }
    assert_eq!(results[1]["num_concurrency"], 4);
    assert_eq!(object["interrupted"], false);
    let mut all = Vec::new();
    numbers(&object, &mut all);
    assert!(all.len() > 100);
    for n in &all {
        assert!(decimals(n) <= 6, "{n} in the autotuner object");
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    for cell in text.lines().skip(1).flat_map(|l| l.split(',')) {
        if cell.parse::<f64>().is_ok() {
            assert!(decimals(cell) <= 6, "{cell} in the CSV");
        }
    }

    let schema = llm_bench(["schema", "autotuner"]);
    assert_eq!(schema.code, 0, "{}", schema.stderr);
    let committed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema/autotuner.schema.json");
    assert_eq!(schema.stdout, std::fs::read_to_string(committed).unwrap());
    let Some(python) = crate::python_from_env() else {
        return;
    };
    let schema_path = dir.path().join("autotuner.schema.json");
    std::fs::write(&schema_path, &schema.stdout).unwrap();
    let fixture = dir.path().join("sweep-autotuner.json");
    let rendered = llm_bench(["report", sweep().to_str().unwrap(), "--format", "autotuner"]);
    assert_eq!(rendered.code, 0, "{}", rendered.stderr);
    std::fs::write(&fixture, &rendered.stdout).unwrap();
    validate_with_python(&python, &schema_path, &[&autotuner, &fixture]);

    // The validator is not a rubber stamp: a wrong iteration type is refused.
    let mut broken = object.clone();
    broken["raw_results"][0]["iteration_type"] = serde_json::json!("rate");
    let broken_path = dir.path().join("broken.json");
    std::fs::write(&broken_path, broken.to_string()).unwrap();
    let refused = Command::new(&python)
        .arg("-c")
        .arg("import json, sys, jsonschema\nschema = json.load(open(sys.argv[1]))\njsonschema.validators.validator_for(schema)(schema).validate(json.load(open(sys.argv[2])))")
        .arg(&schema_path)
        .arg(&broken_path)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a wrong iteration_type passed");
}
