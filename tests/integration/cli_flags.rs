//! Runs described by flags: flags for config keys, their precedence between the file and
//! `--set`, the report on standard output.

use bench_cli::exit_codes;
use bench_core::Report;
use bench_tests::cli::llm_bench;

use super::fixture;

fn report_on_stdout(args: &[&str]) -> Report {
    let out = llm_bench(args);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn flags_alone_run_against_the_embedded_mock_and_the_report_goes_to_stdout() {
    let report = report_on_stdout(&[
        "run",
        "--profile",
        "concurrent",
        "--rate",
        "1,2",
        "--data",
        "prompt_tokens=8,output_tokens=4,approximate=true",
        "--max-requests",
        "4",
        "--max-seconds",
        "20",
        "--no-progress",
        "-o",
        "-",
    ]);
    assert_eq!(report.engine, "native");
    let streams: Vec<_> = report
        .benchmarks
        .iter()
        .map(|b| b.strategy.streams)
        .collect();
    assert_eq!(streams, [Some(1), Some(2)]);
    for b in &report.benchmarks {
        assert_eq!((b.requests.successful, b.requests.total), (4, 4));
    }
    let config = &report.config;
    assert_eq!(config.target.kind(), bench_core::config::TargetKind::Mock);
    assert_eq!(config.profile.streams, Some(vec![1, 2]));
    assert_eq!(config.data.output_tokens, Some(4));
    assert_eq!(config.constraints.max_requests, Some(4));
    assert_eq!(config.constraints.max_seconds, Some(20.0));
}

#[test]
fn flags_override_the_file_and_set_overrides_the_flags() {
    let config = fixture("config/echo.toml");
    let config = config.to_str().unwrap();
    let base = ["run", "-c", config, "--no-progress", "-o", "-"];
    let file_only = report_on_stdout(&base);
    assert_eq!(file_only.config.constraints.max_requests, Some(20));
    assert_eq!(file_only.config.profile.streams, Some(vec![1, 2]));

    let flags = [&base[..], &["--max-requests", "6", "--rate", "3"]].concat();
    let with_flags = report_on_stdout(&flags);
    assert_eq!(with_flags.config.constraints.max_requests, Some(6));
    assert_eq!(with_flags.config.profile.streams, Some(vec![3]));
    assert_eq!(with_flags.benchmarks.len(), 1);
    assert_eq!(with_flags.benchmarks[0].requests.total, 6);

    let sets = [&flags[..], &["--set", "constraints.max_requests=4"]].concat();
    let with_set = report_on_stdout(&sets);
    assert_eq!(with_set.config.constraints.max_requests, Some(4));
    assert_eq!(with_set.benchmarks[0].requests.total, 4);
}

#[test]
fn validate_takes_the_same_flags() {
    let out = llm_bench([
        "validate",
        "--profile",
        "constant",
        "--rate",
        "2,4",
        "--data",
        "D(10,5)",
        "--max-seconds",
        "1",
        "--set",
        "data.approximate=true",
    ]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("config ok: engine `native`, 2 benchmark(s)\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("embedded mock"), "{}", out.stdout);
    let out = llm_bench(["validate", "--help"]);
    assert!(out.stdout.contains("--max-seconds <S>"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("--output"),
        "validate writes no report: {}",
        out.stdout
    );
}

#[test]
fn flag_errors_name_the_flag_and_missing_keys_name_the_flag_to_pass() {
    let out = llm_bench([
        "validate",
        "--profile",
        "synchronous",
        "--rate",
        "5",
        "--data",
        "D(10,5)",
    ]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert!(
        out.stderr.starts_with(
            "error: invalid --rate 5: invalid `profile.rate`: profile.kind = `synchronous` sends one request at a time"
        ),
        "{}",
        out.stderr
    );
    let out = llm_bench(["validate", "--profile", "synchronous", "--max-seconds", "1"]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert_eq!(
        out.stderr,
        "error: invalid config (no --config: the flags are the whole config): missing key `data`; pass --data (or a config file with --config)\n"
    );
    let out = llm_bench(["validate", "--profile", "synchronous", "--data", "D(1,1)"]);
    assert_eq!(
        out.stderr,
        "error: invalid config (no --config: the flags are the whole config): missing key `constraints.max_seconds`; set constraints.max_seconds or constraints.max_requests, or a benchmark never ends; pass --max-seconds or --max-requests (or a config file with --config)\n"
    );
}

#[test]
fn the_report_and_progress_events_cannot_share_stdout() {
    let config = fixture("config/echo.toml");
    let out = llm_bench([
        "run".as_ref(),
        "-c".as_ref(),
        config.as_os_str(),
        "-o".as_ref(),
        "-".as_ref(),
        "--progress-json".as_ref(),
        "-".as_ref(),
    ]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert_eq!(
        out.stderr,
        "error: --output - and --progress-json - both want standard output; send one of them to a file, e.g. --progress-json progress.jsonl\n"
    );
    assert!(out.stdout.is_empty());
    let out = llm_bench([
        "run".as_ref(),
        "-c".as_ref(),
        config.as_os_str(),
        "-o".as_ref(),
        "-".as_ref(),
        "--engines".as_ref(),
        "test-echo,native".as_ref(),
    ]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert!(
        out.stderr
            .starts_with("error: --output - writes one report, but --engines runs 2"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_readmes_first_command_is_flags_only_and_validates() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.lines().next())
        .unwrap();
    let args = first
        .strip_prefix("cargo run --release -p bench-cli -- run ")
        .unwrap_or_else(|| panic!("the first example runs llm-bench: {first}"));
    assert!(!args.contains("--config"), "{first}");
    let tokenizer = root.join("data/tokenizer");
    let args = args.replace(
        "tokenizer=data/tokenizer",
        &format!("tokenizer={}", tokenizer.display()),
    );
    let out = llm_bench(std::iter::once("validate").chain(args.split(' ')));
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("config ok: engine `native`, 5 benchmark(s)\n"),
        "{}",
        out.stdout
    );
}
