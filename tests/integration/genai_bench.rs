//! The genai-bench engine's refusals; the real genai-bench end to end is in
//! `prerequisites/genai_bench.rs`.

use bench_tests::cli::{genai_bench_config as config, llm_bench};

#[test]
fn what_genai_bench_cannot_do_is_refused_naming_the_field_and_the_native_engine() {
    let dir = tempfile::tempdir().unwrap();
    for (rest, expected) in [
        ("[profile]\nkind = \"constant\"\nrates = [5]\n[constraints]\nmax_requests = 5", "constant"),
        ("[profile]\nkind = \"concurrent\"\nstreams = [2]\n[constraints]\nmax_requests = 5\nmax_error_rate = 0.1", "constraints.max_error_rate"),
        ("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_seconds = 60\n[warmup]\nseconds = 5", "warmup in seconds"),
    ] {
        let path = config(dir.path(), "", rest);
        let out = llm_bench(["validate", "--config", path.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{rest}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
        assert!(out.stderr.contains("native"), "{}", out.stderr);
    }
}

#[test]
fn a_missing_genai_bench_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "command = \"/nonexistent/bin/genai-bench\"",
        "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 2",
    );
    let out = llm_bench(["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("pip install genai-bench==0.0.5"),
        "{}",
        out.stderr
    );
}
