//! `llm-bench` run in-process and what it wrote, for both test binaries (`integration` and
//! `prerequisites`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use bench_core::schema::{Benchmark, Distribution, StatusSplit};

/// What one in-process `llm-bench` invocation produced.
#[derive(Debug)]
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `llm-bench` in-process with `args` (without the program name).
pub fn llm_bench<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut all: Vec<OsString> = vec!["llm-bench".into()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = bench_cli::run(all, &mut stdout, &mut stderr);
    Outcome {
        code,
        stdout: String::from_utf8(stdout).expect("llm-bench writes UTF-8"),
        stderr: String::from_utf8(stderr).expect("llm-bench writes UTF-8"),
    }
}

/// The distribution over successful requests of a metric that must have one.
pub fn ok(split: &Option<StatusSplit<Distribution>>) -> &Distribution {
    split
        .as_ref()
        .and_then(|s| s.successful.as_ref())
        .expect("a distribution over successful requests")
}

/// A benchmark's rate of successful requests per second.
pub fn successful_rate(b: &Benchmark) -> f64 {
    b.metrics
        .rates
        .requests_per_s
        .as_ref()
        .and_then(|r| r.successful)
        .expect("a rate of successful requests")
}

/// A real 6-step sweep report (see crates/bench-report/fixtures/README.md).
pub fn sweep_report() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/bench-report/fixtures/report-sweep.json")
}

/// `llm-bench report <sweep> --format html` into `dir`.
pub fn sweep_report_as_html(dir: &Path) -> PathBuf {
    let html = dir.join("report.html");
    let out = llm_bench([
        "report".as_ref(),
        sweep_report().as_os_str(),
        "--format".as_ref(),
        "html".as_ref(),
        "-o".as_ref(),
        html.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    html
}

/// A genai-bench config in `dir` (scenario D(100,20) on the test tokenizer) with
/// `engine_lines` in `[engines.genai-bench]` and `rest` before the data.
pub fn genai_bench_config(dir: &Path, engine_lines: &str, rest: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "benchmark_engine = \"genai-bench\"\n{rest}\n[data]\nkind = \"scenario\"\nscenario = \"D(100,20)\"\ntokenizer = {:?}\n[engines.genai-bench]\n{engine_lines}\n",
            crate::test_tokenizer().display().to_string()
        ),
    )
    .expect("the config is written");
    path
}

/// A GuideLLM config in `dir` (synthetic 32-token prompts, 16 output tokens, the test
/// tokenizer) with `engine_lines` in `[engines.guidellm]` and `rest` before the data.
pub fn guidellm_config(dir: &Path, engine_lines: &str, rest: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "benchmark_engine = \"guidellm\"\n{rest}\n[data]\nkind = \"synthetic\"\nprompt_tokens = 32\noutput_tokens = 16\ntokenizer = {:?}\n[engines.guidellm]\n{engine_lines}\n",
            crate::test_tokenizer().display().to_string()
        ),
    )
    .expect("the config is written");
    path
}

/// A short run against the embedded mock (a scenario written with leading zeros, a sweep, an
/// SLO) that writes the autotuner's object and a CSV into `dir`; their paths.
pub fn autotuner_of_a_real_run(dir: &Path) -> (PathBuf, PathBuf) {
    let (autotuner, csv) = (dir.join("autotuner.json"), dir.join("r.csv"));
    let config = dir.join("c.toml");
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
    .expect("the config is written");
    let out = llm_bench([
        "run".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--no-progress".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    (autotuner, csv)
}
