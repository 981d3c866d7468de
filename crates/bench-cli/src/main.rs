//! The `llm-bench` binary; everything lives in the library so tests can run it in-process.

fn main() -> std::process::ExitCode {
    bench_cli::main()
}
