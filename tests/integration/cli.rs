//! `llm-bench` end to end, in-process: exit codes, messages, written files.

use bench_cli::exit_codes;
use bench_core::Report;
use bench_tests::cli::{llm_bench, ok};

use super::fixture;

#[test]
fn engines_lists_every_compiled_in_engine_with_capabilities() {
    let out = llm_bench(["engines"]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(names, bench_core::registry::names());
    assert!(
        out.stdout
            .contains("  profiles: synchronous, concurrent, constant\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn run_writes_every_output_atomically_and_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ["r.json", "r.yaml", "r.csv"].map(|name| dir.path().join(name));
    let config = fixture("config/echo.toml");
    let mut args = vec![
        "run".into(),
        "--config".into(),
        config.into_os_string(),
        "--no-progress".into(),
    ];
    for p in &paths {
        args.push("--output".into());
        args.push(p.clone().into_os_string());
    }
    let out = llm_bench(args);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);

    let json: Report = serde_json::from_str(&std::fs::read_to_string(&paths[0]).unwrap()).unwrap();
    let yaml: Report =
        serde_norway::from_str(&std::fs::read_to_string(&paths[1]).unwrap()).unwrap();
    assert_eq!(json, yaml);
    assert_eq!(json.schema_version, bench_core::schema::SCHEMA_VERSION);
    assert_eq!(json.engine, "test-echo");
    assert!(!json.interrupted);
    assert_eq!(json.benchmarks.len(), 2);
    let b = &json.benchmarks[1];
    assert_eq!(
        (b.requests.successful, b.requests.errored, b.requests.total),
        (18, 2, 20)
    );
    assert_eq!(b.strategy.streams, Some(2));
    let ttft = ok(&b.metrics.ttft_ms);
    assert_eq!((ttft.count, ttft.percentiles.p50), (18, 5.0));
    assert!(
        b.metrics.schedule_lag_ms.is_none(),
        "unmeasured metrics stay null"
    );

    // Read back with an independent CSV parser.
    let mut reader = csv::Reader::from_path(&paths[2]).unwrap();
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "one row per benchmark");
    let row = &rows[1];
    let column = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
    assert_eq!(column("workload"), "prompt_tokens=32,output_tokens=16");
    assert_eq!(column("ttft_ms_p50"), "5");
    assert_eq!(column("requests_errored"), "2");
    assert_eq!(column("schedule_lag_ms_p50"), "");

    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !text.contains("sk-planted-secret"),
            "secret leaked into {}",
            path.display()
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    assert!(out.stdout.contains("TTFT p50/p95/p99 ms"), "{}", out.stdout);
    assert!(out.stdout.contains("concurrent x2"), "{}", out.stdout);
    assert!(out.stdout.contains("18/0/2"), "{}", out.stdout);
    assert!(!out.stdout.contains("sk-planted-secret"));
}

#[test]
fn an_unknown_engine_exits_2_naming_the_available_engines() {
    let config = fixture("config/echo.toml");
    let out = llm_bench([
        "run".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--engine".as_ref(),
        "nope".as_ref(),
    ]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    let available = bench_core::registry::names().join(", ");
    assert_eq!(
        out.stderr,
        format!(
            "error: unknown engine `nope` in `benchmark_engine`; available engines: {available}\n"
        )
    );
}

#[test]
fn a_misspelled_key_exits_2_naming_the_key_and_the_intended_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(fixture("config/echo.toml")).unwrap();
    std::fs::write(&path, text.replace("max_requests", "max_request")).unwrap();
    let out = llm_bench(["validate".as_ref(), "--config".as_ref(), path.as_os_str()]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert!(
        out.stderr.contains(
            "unknown key `constraints.max_request` (did you mean `constraints.max_requests`?)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .starts_with(&format!("error: invalid config {}: ", path.display())),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_prints_the_plan() {
    let config = fixture("config/legacy.json");
    let out = llm_bench(["validate".as_ref(), "-c".as_ref(), config.as_os_str()]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "config ok: engine `test-echo`, 3 benchmark(s)\npreflight passed\n  1. concurrent streams=1 [D(100,100)]\n  \
         2. concurrent streams=4 [D(100,100)]\n  3. concurrent streams=8 [D(100,100)]\n"
    );
}

#[test]
fn input_problems_exit_2_with_the_path() {
    let out = llm_bench(["validate", "--config", "/nonexistent/x.toml"]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert!(
        out.stderr
            .starts_with("error: cannot read config file /nonexistent/x.toml: "),
        "{}",
        out.stderr
    );
    let out = llm_bench(["validate", "--config", "config.ini"]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert!(
        out.stderr
            .contains("cannot tell the format of `config.ini`"),
        "{}",
        out.stderr
    );
    let out = llm_bench(["run"]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert_eq!(
        out.stderr,
        "error: invalid config (no --config: the flags are the whole config): missing key `profile`; pass --profile (or a config file with --config)\n"
    );
    let config = fixture("config/echo.toml");
    let out = llm_bench([
        "run".as_ref(),
        "-c".as_ref(),
        config.as_os_str(),
        "-o".as_ref(),
        "x.txt".as_ref(),
    ]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert_eq!(
        out.stderr,
        "error: invalid --output x.txt: cannot tell the report's format from the extension `.txt`; name the file .json, .yaml, .yml, .csv or .html, or give `-` for JSON on standard output\n"
    );
}

#[test]
fn help_and_schemas_print_to_stdout() {
    let out = llm_bench(["--help"]);
    assert_eq!(out.code, exit_codes::OK);
    assert!(
        out.stdout.contains("Usage: llm-bench <COMMAND>"),
        "{}",
        out.stdout
    );
    for which in ["config", "report"] {
        let out = llm_bench(["schema", which]);
        assert_eq!(out.code, exit_codes::OK);
        let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(schema["type"], "object");
    }
}

#[test]
fn the_embedded_mock_is_the_default_target_and_its_knobs_are_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mock.toml");
    let text = "benchmark_engine = \"test-echo\"\n[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 3\n\
                [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n";
    std::fs::write(&path, text).unwrap();
    let report = dir.path().join("r.json");
    let out = llm_bench([
        "run".as_ref(),
        "-c".as_ref(),
        path.as_os_str(),
        "-o".as_ref(),
        report.as_os_str(),
        "--no-progress".as_ref(),
    ]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let written: Report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        written.config.target.kind(),
        bench_core::config::TargetKind::Mock
    );
    assert_eq!(
        written.config.target.url, None,
        "the report keeps the config as given"
    );

    for (extra, expected) in [
        (
            "[target.mock]\nitl_sm = 1\n",
            "unknown key `target.mock.itl_sm` (did you mean `target.mock.itl_ms`?)",
        ),
        (
            "[target.mock]\nmax_batch = 0\n",
            "invalid mock setting `max_batch`: 0 would serve nothing",
        ),
        (
            "[target]\nkind = \"mock\"\nurl = \"http://h\"\n",
            "cannot be used with target.kind = `mock`",
        ),
    ] {
        std::fs::write(&path, format!("{text}{extra}")).unwrap();
        let out = llm_bench(["validate".as_ref(), "-c".as_ref(), path.as_os_str()]);
        assert_eq!(out.code, exit_codes::BAD_INPUT, "{extra}");
        assert!(out.stderr.contains(expected), "{extra}: {}", out.stderr);
    }
}

#[test]
fn mock_server_help_documents_every_knob() {
    let out = llm_bench(["mock-server", "--help"]);
    assert_eq!(out.code, exit_codes::OK);
    let knobs = serde_json::to_value(bench_mock::MockConfig::default()).unwrap();
    for knob in knobs.as_object().unwrap().keys() {
        let flag = format!(
            "--{}",
            if knob == "faults" { "fault" } else { knob }.replace('_', "-")
        );
        assert!(
            out.stdout.contains(&flag),
            "{flag} is missing from mock-server --help"
        );
    }
    let out = llm_bench(["mock-server", "--fault", "http_501:p=1"]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert!(
        out.stderr.contains("unknown fault `http_501`"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unreachable_target_exits_5_before_sending_load() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = fixture("config/echo.toml");
    let url = format!("target.url=http://127.0.0.1:{port}");
    let out = llm_bench([
        "run".as_ref(),
        "-c".as_ref(),
        config.as_os_str(),
        "--engine".as_ref(),
        "native".as_ref(),
        "--set".as_ref(),
        url.as_ref(),
        "--set".as_ref(),
        "engines={}".as_ref(),
        "--no-progress".as_ref(),
    ]);
    assert_eq!(out.code, exit_codes::TARGET_FAILED, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("error: cannot reach `http://127.0.0.1:{port}`")),
        "{}",
        out.stderr
    );
}

#[test]
fn the_readme_quickstart_config_validates() {
    let config =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.toml");
    let out = llm_bench(["validate".as_ref(), "-c".as_ref(), config.as_os_str()]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("config ok: engine `native`, 5 benchmark(s)\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn progress_events_stream_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("progress.jsonl");
    let report = dir.path().join("r.json");
    let config = fixture("config/echo.toml");
    let out = llm_bench([
        "run".as_ref(),
        "-c".as_ref(),
        config.as_os_str(),
        "-o".as_ref(),
        report.as_os_str(),
        "--no-progress".as_ref(),
        "--progress-json".as_ref(),
        events.as_os_str(),
    ]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let lines: Vec<serde_json::Value> = bench_tests::json_lines(&events);
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "benchmark_started",
            "update",
            "benchmark_finished",
            "benchmark_started",
            "update",
            "benchmark_finished"
        ]
    );
    assert_eq!(lines[2]["benchmark"]["requests"]["total"], 20);
    assert!(!std::fs::read_to_string(&events)
        .unwrap()
        .contains("sk-planted-secret"));
}

#[test]
fn a_saved_report_re_renders_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let config = fixture("config/echo.toml");
    let out = llm_bench([
        "run".as_ref(),
        "-c".as_ref(),
        config.as_os_str(),
        "-o".as_ref(),
        json.as_os_str(),
        "--no-progress".as_ref(),
    ]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let yaml = dir.path().join("r.yaml");
    let out = llm_bench([
        "report".as_ref(),
        json.as_os_str(),
        "--format".as_ref(),
        "yaml".as_ref(),
        "-o".as_ref(),
        yaml.as_os_str(),
    ]);
    assert_eq!(out.code, exit_codes::OK, "{}", out.stderr);
    let out = llm_bench([
        "report".as_ref(),
        yaml.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let back: Report = serde_json::from_str(&out.stdout).unwrap();
    let original: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(back, original, "JSON -> YAML -> JSON loses nothing");
    let out = llm_bench(["report".as_ref(), json.as_os_str()]);
    assert!(out.stdout.contains("TTFT p50/p95/p99 ms"), "{}", out.stdout);
    let out = llm_bench([
        "report".as_ref(),
        json.as_os_str(),
        "--format".as_ref(),
        "csv".as_ref(),
    ]);
    assert_eq!(out.stdout.lines().count(), 3);
    let out = llm_bench(["report".as_ref(), config.as_os_str()]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert!(
        out.stderr.contains("is a config, not a report"),
        "{}",
        out.stderr
    );
}
