//! Reading results: `llm-bench report` formats and `compare`; the HTML report in a real
//! browser (headless Chromium) is in `prerequisites/report.rs`.

use std::path::Path;

use bench_tests::cli::{autotuner_of_a_real_run, llm_bench, sweep_report, sweep_report_as_html};

#[test]
fn compare_passes_equal_reports_and_flags_a_planted_difference() {
    let dir = tempfile::tempdir().unwrap();
    let same = llm_bench([
        "compare",
        sweep_report().to_str().unwrap(),
        sweep_report().to_str().unwrap(),
    ]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    assert!(same.stdout.contains("0 value(s) differ"), "{}", same.stdout);

    // Plant a TTFT half again as long in benchmark 3 of a copy.
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep_report()).unwrap()).unwrap();
    let p50 =
        &mut report["benchmarks"][3]["metrics"]["ttft_ms"]["successful"]["percentiles"]["p50"];
    *p50 = serde_json::json!(p50.as_f64().unwrap() * 1.5);
    let planted = dir.path().join("planted.json");
    std::fs::write(&planted, serde_json::to_string(&report).unwrap()).unwrap();
    let html = dir.path().join("cmp.html");
    let json = dir.path().join("cmp.json");
    let out = llm_bench([
        "compare",
        sweep_report().to_str().unwrap(),
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

    let bad = llm_bench(["compare", sweep_report().to_str().unwrap()]);
    assert_eq!(bad.code, 2, "one report is not a comparison");
}

#[test]
fn a_saved_report_renders_as_html_and_as_the_autotuners_object() {
    let dir = tempfile::tempdir().unwrap();
    let html = sweep_report_as_html(dir.path());
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .starts_with("<!doctype html>"));
    let out = llm_bench([
        "report",
        sweep_report().to_str().unwrap(),
        "--format",
        "autotuner",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["num_result_files"], 6);
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
/// sweep, an SLO): genai-bench's names and spelling, numbers with at most 6 decimals, and the
/// CSV's too; `llm-bench schema autotuner` is the committed schema. (Python's jsonschema
/// validates it: `prerequisites/report.rs`.)
#[test]
fn the_autotuner_object_of_a_real_run_has_genai_benchs_fields_and_six_decimals_at_most() {
    let dir = tempfile::tempdir().unwrap();
    let (autotuner, csv) = autotuner_of_a_real_run(dir.path());
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
}

/// Two real runs against the mock whose only difference is a 26 % shorter ITL and TTFT:
/// `streams` concurrent benchmarks of `requests` requests each; returns the reports' paths.
fn runs_with_a_faster_server(
    dir: &Path,
    name: &str,
    streams: &str,
    requests: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let run = |label: &str, ttft_ms: f64, itl_ms: f64| {
        let config = dir.join(format!("{name}-{label}.toml"));
        std::fs::write(
            &config,
            format!(
                "[profile]\nkind = \"concurrent\"\nstreams = {streams}\n[constraints]\nmax_requests = {requests}\n\
                 [target.mock]\nttft_ms = {ttft_ms}\nitl_ms = {itl_ms}\n\
                 [data]\nkind = \"synthetic\"\nprompt_tokens = 32\noutput_tokens = 8\napproximate = true\n"
            ),
        )
        .unwrap();
        let report = dir.join(format!("{name}-{label}.json"));
        let out = llm_bench([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--no-progress",
            "-o",
            report.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        report
    };
    (run("slow", 10.0, 2.0), run("fast", 7.4, 1.48))
}

/// Whether the console table of a comparison marks the row of `metric` with `mark`.
fn marked(table: &str, mark: &str, metric: &str) -> bool {
    table.lines().any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some(mark) && words.next() == Some(metric)
    })
}

/// The metric row `metric` of benchmark `b` of a comparison's JSON.
fn metric_row<'a>(json: &'a serde_json::Value, b: usize, metric: &str) -> &'a serde_json::Value {
    json["benchmarks"][b]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric}"))
}

/// The same 26 % faster server (TTFT and ITL): on 6 requests the p99s cannot tell (their
/// intervals have no upper bound), on 400 requests per benchmark the medians can, and the page
/// overlays the two reports' curves.
#[test]
fn compare_flags_a_real_difference_on_a_big_run_and_not_the_p99_of_a_small_one() {
    let dir = tempfile::tempdir().unwrap();
    let compare = |a: &Path, b: &Path, name: &str| {
        let (html, json) = (
            dir.path().join(format!("{name}.html")),
            dir.path().join(format!("{name}.json")),
        );
        let out = llm_bench([
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
            "-o",
            json.to_str().unwrap(),
        ]);
        assert!(
            out.code == 0 || out.code == 3,
            "{}{}",
            out.stdout,
            out.stderr
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        (out.stdout, json, std::fs::read_to_string(html).unwrap())
    };

    let (a, b) = runs_with_a_faster_server(dir.path(), "small", "[2]", 6);
    let (table, json, _) = compare(&a, &b, "small");
    for metric in ["ttft_p99_ms", "itl_p99_ms", "latency_p99_ms"] {
        let row = metric_row(&json, 0, metric);
        assert_eq!(row["flagged"], false, "{metric}: {table}");
        assert!(row["intervals"][0]["high"].is_null() && row["intervals"][1]["high"].is_null());
    }
    let itl = metric_row(&json, 0, "itl_p99_ms");
    if itl["relative_differences"][1].as_f64().unwrap().abs() > 0.1 {
        assert_eq!(itl["within_noise"], true, "{table}");
        assert!(marked(&table, "~", "itl_p99_ms"), "{table}");
    }

    let (a, b) = runs_with_a_faster_server(dir.path(), "big", "[8, 16]", 400);
    let (table, json, html) = compare(&a, &b, "big");
    for benchmark in 0..2 {
        // (The TTFT at 16 streams is mostly the mock's queue, so it moves less than 26 %.)
        for metric in ["itl_p50_ms", "tpot_p50_ms", "latency_p50_ms"] {
            let row = metric_row(&json, benchmark, metric);
            assert_eq!(row["flagged"], true, "{metric}: {table}");
        }
        let p99 = metric_row(&json, benchmark, "itl_p99_ms");
        assert!(
            p99["intervals"][0]["high"].is_number(),
            "400 requests bound a p99: {p99}"
        );
    }
    assert!(marked(&table, "!", "itl_p50_ms"), "{table}");

    // One curve per report (p50 solid, p99 dashed) on each chart, in the report's colour.
    for id in ["cmp-ttft", "cmp-itl"] {
        let start = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id}"));
        let chart = &html[start..start + html[start..].find("</svg>").unwrap()];
        for (label, colour) in [
            ("big-slow.json (native)", "#0072b2"),
            ("big-fast.json (native)", "#d55e00"),
        ] {
            for p in ["p50", "p99"] {
                let series = format!("<g class=\"series\" data-name=\"{label} {p}\"><polyline fill=\"none\" stroke=\"{colour}\"");
                assert_eq!(chart.matches(&series).count(), 1, "{id} {label} {p}");
            }
        }
        assert_eq!(chart.matches("<g class=\"series\"").count(), 4, "{id}");
        assert!(chart.contains(" ms at 8 streams</title>"), "{id}");
    }
    for id in ["cmp-ttft-cdf-0", "cmp-itl-cdf-1"] {
        let start = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id}"));
        let chart = &html[start..start + html[start..].find("</svg>").unwrap()];
        assert_eq!(chart.matches("<g class=\"series\"").count(), 2, "{id}");
    }
    assert!(html.contains("<tr class=\"flag\">"));
}
