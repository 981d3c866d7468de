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

/// Measures, in the browser's own layout, what overflows on `page` at `width` px: every element
/// that sticks out of its card (`.card`) without a scrolling box between them, a page that
/// scrolls sideways, a legend over its plot. Also names the scrolling boxes that do scroll. The
/// page forbids scripts, so a copy with the check appended and scripts allowed is measured.
fn overflow_at(page: &Path, width: u32) -> (Vec<String>, Vec<String>) {
    let html = std::fs::read_to_string(page).unwrap();
    let policy = "default-src 'none'; style-src 'unsafe-inline'";
    assert!(html.contains(policy), "the page's policy changed: {page:?}");
    let measured = html
        .replace(policy, &format!("{policy}; script-src 'unsafe-inline'"))
        .replace(
            "</body>",
            &format!("<script>{OVERFLOW_CHECK}</script></body>"),
        );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("measured.html");
    std::fs::write(&copy, measured).unwrap();
    let dom = chromium(
        &["--dump-dom", &format!("--window-size={width},2000")],
        &copy,
    );
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert_eq!(console_errors(&dom.stderr), Vec::<String>::new());
    let text = String::from_utf8_lossy(&dom.stdout);
    let attribute = |name: &str| -> Vec<String> {
        let start = text
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("the check did not run: no {name} in the DOM"))
            + name.len()
            + 2;
        let end = start + text[start..].find('"').unwrap();
        let json = text[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        serde_json::from_str(&json).unwrap()
    };
    (attribute("data-overflow"), attribute("data-scrolled"))
}

const OVERFLOW_CHECK: &str = r#"(function () {
  const width = document.documentElement.clientWidth;
  const overflow = [];
  const name = (el) => el.id || (el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? '.' + el.className : ''));
  const scrollsInside = (el, card) => {
    for (let a = el.parentElement; a && a !== card.parentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  };
  if (document.documentElement.scrollWidth > width + 1) overflow.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' px in ' + width);
  for (const card of document.querySelectorAll('.card')) {
    const c = card.getBoundingClientRect();
    if (c.right > width + 1) overflow.push('card ' + name(card) + ' ends at ' + c.right + ' px in ' + width);
    for (const el of card.querySelectorAll('*')) {
      if (scrollsInside(el, card)) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right > c.right + 1 || r.left < c.left - 1) overflow.push(name(el) + ' in card ' + name(card) + ': ' + Math.round(r.left) + '..' + Math.round(r.right) + ' px outside ' + Math.round(c.left) + '..' + Math.round(c.right));
    }
  }
  for (const legend of document.querySelectorAll('ul.legend')) {
    const plot = legend.parentElement.querySelector('svg');
    if (plot && legend.getBoundingClientRect().top < plot.getBoundingClientRect().bottom - 1) overflow.push('the legend of ' + name(plot) + ' overlaps its plot');
  }
  const scrolled = [...document.querySelectorAll('.scroll')].filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => name(e.querySelector('table') || e) + ' ' + e.scrollWidth + '>' + e.clientWidth);
  document.body.setAttribute('data-overflow', JSON.stringify(overflow));
  document.body.setAttribute('data-scrolled', JSON.stringify(scrolled));
})();"#;

/// The sweep fixture made hard to lay out: a long target URL and model name, a different long
/// workload per benchmark (so the table gets its workload column), twice the benchmarks, and
/// a warning with a long unbroken word.
fn awkward_report(dir: &Path) -> std::path::PathBuf {
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep_report()).unwrap()).unwrap();
    report["config"]["target"]["url"] =
        "http://127.0.0.1:8000/a/gateway/path/that/goes/on/and/on/for/quite/a/while/v1".into();
    report["config"]["target"]["kind"] = "server".into();
    report["config"]["target"]["model"] =
        "meta-llama/Llama-3.1-70B-Instruct-FP8-dynamic-with-a-long-served-name".into();
    let benchmarks = report["benchmarks"].as_array().unwrap().clone();
    let mut doubled = benchmarks.clone();
    doubled.extend(benchmarks);
    for (i, b) in doubled.iter_mut().enumerate() {
        b["index"] = i.into();
        b["workload"] = format!(
            "prompt_tokens={},prompt_tokens_stdev=16,output_tokens=24,output_tokens_stdev=4",
            128 + i
        )
        .into();
    }
    report["benchmarks"] = doubled.into();
    report["warnings"] = serde_json::json!([{
        "code": "server_metrics_unavailable",
        "message": format!("http://127.0.0.1:8000/{}", "x".repeat(300))
    }]);
    let path = dir.join("awkward.json");
    std::fs::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
    path
}

pub(crate) fn no_element_of_the_html_pages_overflows_its_card_at_1400_or_800_px() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_report_as_html(dir.path());
    let awkward = awkward_report(dir.path());
    let awkward_html = dir.path().join("awkward.html");
    let out = llm_bench([
        "report".as_ref(),
        awkward.as_os_str(),
        "--format".as_ref(),
        "html".as_ref(),
        "-o".as_ref(),
        awkward_html.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The comparison page of the two, whose tables differ in their workloads.
    let compared = dir.path().join("compared.html");
    let out = llm_bench([
        "compare".as_ref(),
        sweep_report().as_os_str(),
        awkward.as_os_str(),
        "-o".as_ref(),
        compared.as_os_str(),
    ]);
    assert!(out.code == 0 || out.code == 3, "{}", out.stderr);
    for page in [&sweep, &awkward_html, &compared] {
        for width in [1400, 800] {
            let (overflow, scrolled) = overflow_at(page, width);
            assert_eq!(overflow, Vec::<String>::new(), "{page:?} at {width} px");
            // The sweep's table fits a wide window; narrower, it scrolls inside its card.
            if page == &sweep && width == 1400 {
                assert_eq!(scrolled, Vec::<String>::new(), "{page:?} at {width} px");
            }
        }
    }

    // The check sees what it is for: a card with a box wider than itself.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!doctype html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"></head>\
         <body><div class=\"card\" id=\"narrow\" style=\"width:300px\"><div style=\"width:600px\">wide</div></div></body></html>",
    )
    .unwrap();
    let (overflow, _) = overflow_at(&bad, 800);
    assert_eq!(overflow.len(), 1, "{overflow:?}");
    assert!(overflow[0].contains("in card narrow"), "{overflow:?}");
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
