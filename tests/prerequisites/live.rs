//! `llm-bench run --metrics-listen` read by Prometheus's own text parser (Python's
//! `prometheus_client`, `LLM_BENCH_PROMETHEUS_PYTHON`): scraped during a run against the
//! embedded mock, every scrape parses, each family has the type it declares, the counters rise
//! and end equal to the report's.

use std::collections::BTreeMap;
use std::process::Command;

use bench_tests::live::{check_scrapes, scrape_a_run, Sample};

/// Parses every file named on the command line; prints, per file, its samples as JSON, and
/// fails on a family of an unexpected type or a sample outside its family's suffixes.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families

suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
out = []
for path in sys.argv[1:]:
    with open(path) as f:
        text = f.read()
    samples = []
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("llm_bench_"), family.name
        assert family.type in suffixes, (family.name, family.type)
        assert family.documentation, family.name
        for s in family.samples:
            assert s.name in [family.name + x for x in suffixes[family.type]], (family.type, s.name)
            samples.append({"name": s.name, "labels": s.labels, "value": s.value})
    out.append(samples)
print(json.dumps(out))
"#;

pub(crate) fn prometheus_parses_the_live_export_and_its_final_values_equal_the_report() {
    let python = test_prerequisites::var("LLM_BENCH_PROMETHEUS_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    let run = scrape_a_run(dir.path());
    let mut files = Vec::new();
    for (i, text) in run.scrapes.iter().enumerate() {
        let path = dir.path().join(format!("scrape-{i}.txt"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let output = Command::new(&python)
        .args(["-c", PARSE])
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run LLM_BENCH_PROMETHEUS_PYTHON={python}: {e}"));
    assert!(
        output.status.success(),
        "prometheus_client refused a scrape: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    #[derive(serde::Deserialize)]
    struct Parsed {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }
    let parsed: Vec<Vec<Parsed>> = serde_json::from_slice(&output.stdout).unwrap();
    let scrapes: Vec<Vec<Sample>> = parsed
        .into_iter()
        .map(|scrape| {
            scrape
                .into_iter()
                .map(|p| Sample {
                    name: p.name,
                    labels: p.labels,
                    value: p.value,
                })
                .collect()
        })
        .collect();
    check_scrapes(&scrapes, &run.report);
}
