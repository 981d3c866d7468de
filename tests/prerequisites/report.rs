//! The HTML report in a real browser (headless Chromium), and the autotuner's object checked
//! by Python's jsonschema.

use std::path::Path;
use std::process::Command;

use bench_tests::cli::{autotuner_of_a_real_run, llm_bench, sweep_report, sweep_report_as_html};

/// Headless Chromium, started as the machine's probe starts it: no network of its own.
fn chromium(args: &[&str], page: &Path) -> std::process::Output {
    let binary = test_prerequisites::chromium().expect("chromium is on PATH");
    let profile = tempfile::tempdir().unwrap();
    Command::new(binary)
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
        .unwrap()
}

/// Console messages Chromium logged for the page (a blocked fetch, a script error).
fn console_errors(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Refused to") || l.contains("Uncaught"))
        .map(str::to_owned)
        .collect()
}

pub(crate) fn the_html_report_renders_in_chromium_with_its_charts_and_no_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let html = sweep_report_as_html(dir.path());
    let dom = chromium(&["--dump-dom"], &html);
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
    );
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
    let blocked = chromium(&["--dump-dom"], &fetching);
    assert!(
        !console_errors(&blocked.stderr).is_empty(),
        "{}",
        String::from_utf8_lossy(&blocked.stderr)
    );
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

/// The autotuner's object of a real short run and of the sweep fixture both validate against
/// `llm-bench schema autotuner` (the committed schema) with Python's jsonschema
/// (`LLM_BENCH_PYTHON`), which refuses a wrong iteration type.
pub(crate) fn the_autotuner_object_of_a_real_run_validates_against_its_schema() {
    let python = test_prerequisites::var("LLM_BENCH_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    let (autotuner, _) = autotuner_of_a_real_run(dir.path());
    let schema = llm_bench(["schema", "autotuner"]);
    assert_eq!(schema.code, 0, "{}", schema.stderr);
    let schema_path = dir.path().join("autotuner.schema.json");
    std::fs::write(&schema_path, &schema.stdout).unwrap();
    let fixture = dir.path().join("sweep-autotuner.json");
    let rendered = llm_bench([
        "report",
        sweep_report().to_str().unwrap(),
        "--format",
        "autotuner",
    ]);
    assert_eq!(rendered.code, 0, "{}", rendered.stderr);
    std::fs::write(&fixture, &rendered.stdout).unwrap();
    validate_with_python(&python, &schema_path, &[&autotuner, &fixture]);

    // The validator is not a rubber stamp: a wrong iteration type is refused.
    let mut broken: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&autotuner).unwrap()).unwrap();
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
