//! Developer commands. `cargo xtask ci` is exactly what CI runs.

mod real_server;
mod startup;
#[cfg(test)]
mod tidy;
mod wire_check;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

const HELP: &str = "\
usage: cargo xtask <command>

commands:
  ci        fmt --check, clippy -D warnings, the tests (nextest), docs with -D warnings
  codegen   regenerate the committed JSON Schemas (docs/schema/), the Python types generated from
            them (crates/bench-python/python/llm_bench/_schema.py), the man pages (docs/man/) and
            the test tokenizer (data/tokenizer/)
  bench [mock|native|data|streams|startup] [--quick] [--runs N] [--binary PATH]
            the mock server's precision and cost; the native engine's capacity;
            token-exact prompts per second; closed-loop streams, the client's timestamps
            against the mock's; the release llm-bench's start-up to its first request
  real-server setup | start [--port 8090] [--slots 4] | stop | status
            llama.cpp's own server (xllamacpp from PyPI) with a random-weight Llama, on 127.0.0.1
  soak [--seconds N] [--quick]
            the native engine at 200 req/s for 10 minutes (or N s): RSS and fds stay flat
  wire-check [--streams 500,1000] [--seconds 15] [--keep] | --analyze DIR
            llm-bench's sent and first-token stamps against a loopback capture (tcpdump, root)
";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("codegen") => codegen(&root),
        Some("bench") => bench(&root, &args[1..]),
        Some("real-server") => real_server::command(&root, &args[1..]),
        Some("wire-check") => wire_check::command(&root, &args[1..]),
        Some("soak") => {
            let mut cmd = vec![
                "bench",
                "--quiet",
                "-p",
                "engine-native",
                "--bench",
                "soak",
                "--",
            ];
            cmd.extend(args[1..].iter().map(String::as_str));
            cargo(&root, &cmd, &[])
        }
        Some("-h" | "--help" | "help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown xtask command `{other}`\n\n{HELP}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits one level below the workspace root")
        .to_path_buf()
}

fn ci(root: &Path) -> anyhow::Result<()> {
    cargo(root, &["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    let slow = std::env::var("LLM_BENCH_SLOW_TESTS").unwrap_or_default();
    println!(
        "xtask: LLM_BENCH_SLOW_TESTS={slow:?} (with 1, a test whose prerequisite is missing fails instead of being skipped)"
    );
    cargo(
        root,
        &[
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
            // Names the tests skipped for a missing prerequisite after the summary's count.
            "--final-status-level",
            "skip",
        ],
        &[],
    )?;
    cargo(
        root,
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    println!("xtask: ci passed");
    Ok(())
}

fn codegen(root: &Path) -> anyhow::Result<()> {
    // The report's, the config's and the progress events' schemas, then bench-report's own.
    for package in ["bench-core", "bench-report"] {
        cargo(
            root,
            &[
                "test",
                "--quiet",
                "-p",
                package,
                "--lib",
                "committed_json_schemas_are_fresh",
            ],
            &[("UPDATE_SCHEMAS", "1")],
        )?;
    }
    // After the schemas: the Python types are generated from them.
    cargo(
        root,
        &[
            "test",
            "--quiet",
            "-p",
            "bench-tests",
            "--test",
            "integration",
            "python_types::committed_python_types_are_fresh",
        ],
        &[("UPDATE_PYTHON_TYPES", "1")],
    )?;
    cargo(
        root,
        &[
            "test",
            "--quiet",
            "-p",
            "bench-cli",
            "--lib",
            "committed_man_pages_are_fresh",
        ],
        &[("UPDATE_MAN_PAGES", "1")],
    )?;
    cargo(
        root,
        &[
            "test",
            "--quiet",
            "-p",
            "bench-data",
            "--lib",
            "committed_test_tokenizer_is_fresh",
        ],
        &[("UPDATE_TOKENIZER", "1")],
    )?;
    println!(
        "xtask: docs/schema/, the Python types (crates/bench-python/python/llm_bench/_schema.py), \
         the man pages (docs/man/) and data/tokenizer/ regenerated; commit the changes"
    );
    Ok(())
}

fn bench(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let which: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .enumerate()
        // Skip the flags and the values of `--runs` and `--binary`.
        .filter(|&(i, a)| {
            let value_of_flag = i > 0 && ["--runs", "--binary"].contains(&args[i - 1].as_str());
            !a.starts_with("--") && !value_of_flag
        })
        .map(|(_, a)| a)
        .collect();
    let all = ["mock", "native", "data", "streams", "startup"];
    for name in if which.is_empty() {
        all.to_vec()
    } else {
        which
    } {
        if name == "startup" {
            startup::command(root, args)?;
            continue;
        }
        let (package, bench) = match name {
            "mock" => ("bench-mock", "mock"),
            "native" => ("engine-native", "capacity"),
            "data" => ("bench-data", "prompts"),
            "streams" => ("engine-native", "streams"),
            other => bail!(
                "unknown benchmark `{other}`; benchmarks: {}",
                all.join(", ")
            ),
        };
        let mut cmd = vec!["bench", "--quiet", "-p", package, "--bench", bench];
        if quick {
            cmd.extend(["--", "--quick"]);
        }
        cargo(root, &cmd, &[])?;
    }
    Ok(())
}

fn cargo(root: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root)
        .status()
        .with_context(|| format!("cannot run `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
