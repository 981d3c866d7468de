//! Data files written by outside tools: a Parquet file written by Python's pyarrow
//! (`LLM_BENCH_PYARROW_PYTHON`) gives the same requests as the same rows in JSON lines.

use std::process::Command;

use bench_core::config::ConfigFormat;
use bench_core::{registry, Config, RunContext};
use bench_mock::{MockConfig, MockServer};
use bench_tests::test_tokenizer;

/// Writes `rows.parquet` (pyarrow's defaults: snappy) and `rows.jsonl` with the same rows:
/// a `question` column and an `output_len` column, with a row of an empty question, one of a
/// null question and one of a null length among them.
const WRITE: &str = r#"
import json, sys
import pyarrow as pa
import pyarrow.parquet as pq

words = "the quick brown fox jumps over the lazy dog while a model streams tokens".split()
rows = []
for i in range(24):
    rows.append({"question": " ".join(words[: 2 + i % 11]) + f" number {i}?", "output_len": 2 + i % 5})
rows[3]["question"] = ""
rows[7]["question"] = None
rows[11]["output_len"] = None
table = pa.table({
    "question": pa.array([r["question"] for r in rows], pa.string()),
    "output_len": pa.array([r["output_len"] for r in rows], pa.int64()),
})
folder = sys.argv[1]
pq.write_table(table, folder + "/rows.parquet")
with open(folder + "/rows.jsonl", "w") as out:
    for r in rows:
        out.write(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n")
"#;

pub(crate) fn a_parquet_file_from_pyarrow_gives_the_same_requests_as_its_rows_in_jsonl() {
    let python = test_prerequisites::var("LLM_BENCH_PYARROW_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(&python)
        .args(["-c", WRITE])
        .arg(dir.path())
        .status()
        .unwrap_or_else(|e| panic!("cannot run LLM_BENCH_PYARROW_PYTHON={python}: {e}"));
    assert!(status.success(), "pyarrow could not write the files");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Per file: what the server was asked, request by request (prompt tokens as the
    // mock counts them with the test tokenizer, and the output length asked), and the
    // rows skipped as the report says.
    let requests = |name: &str| {
        runtime.block_on(async {
            let server = MockServer::start(MockConfig {
                ttft_ms: 1.0,
                itl_ms: 0.5,
                tokenizer: Some(test_tokenizer()),
                ..MockConfig::default()
            })
            .await
            .unwrap();
            let text = format!(
                "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n\
                 [profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 21\n\
                 [data]\nkind = \"file\"\npath = \"{}\"\ntokenizer = \"{}\"\n",
                server.base_url(),
                dir.path().join(name).display(),
                test_tokenizer().display()
            );
            let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
            let engine = registry::engine_for(&config).unwrap();
            let report = engine.run(&config, &RunContext::default()).await.unwrap();
            let warnings: Vec<String> = report
                .warnings
                .iter()
                .chain(&report.benchmarks[0].warnings)
                .filter(|w| w.code == "data_rows_skipped")
                .map(|w| w.message.replace(name, "FILE"))
                .collect();
            let sent: Vec<(u32, u32)> = server
                .ground_truth()
                .iter()
                .map(|t| (t.prompt_tokens, t.output_tokens_planned))
                .collect();
            server.shutdown().await;
            (sent, warnings)
        })
    };
    let (parquet, parquet_skipped) = requests("rows.parquet");
    let (jsonl, jsonl_skipped) = requests("rows.jsonl");
    assert_eq!(
        parquet.len(),
        21,
        "22 usable rows, 21 asked for: {parquet:?}"
    );
    assert_eq!(parquet, jsonl);
    // The lengths came from the file (2 to 6 tokens), but for the row without one.
    let from_file = parquet
        .iter()
        .filter(|(_, out)| (2..=6).contains(out))
        .count();
    assert_eq!(from_file, 20, "{parquet:?}");
    // One warning naming the two rows skipped (an empty and a null question).
    assert_eq!(parquet_skipped.len(), 1, "{parquet_skipped:?}");
    assert_eq!(parquet_skipped, jsonl_skipped);
}
