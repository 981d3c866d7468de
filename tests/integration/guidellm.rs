//! The GuideLLM engine's refusals; the real GuideLLM end to end is in
//! `prerequisites/guidellm.rs`.

use bench_tests::cli::{guidellm_config as config, llm_bench};

#[test]
fn what_guidellm_cannot_do_is_refused_naming_the_field_and_the_native_engine() {
    let dir = tempfile::tempdir().unwrap();
    for (rest, expected) in [
        ("[profile]\nkind = \"concurrent\"\nstreams = [2]\n[constraints]\nmax_requests = 5\n[slo]\nttft_ms = 100", "slo"),
        ("[profile]\nkind = \"sweep\"\nspacing = \"geometric\"\n[constraints]\nmax_seconds = 5", "profile.spacing"),
        ("[target]\nurl = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\nheaders = { x-team = \"a\" }\n[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 5", "target.headers"),
    ] {
        let path = config(dir.path(), "", rest);
        let out = llm_bench(["validate", "--offline", "--config", path.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{rest}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
        assert!(out.stderr.contains("native"), "{}", out.stderr);
    }
}

#[test]
fn a_missing_guidellm_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "command = \"/nonexistent/bin/guidellm\"",
        "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 2",
    );
    let out = llm_bench(["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("pip install guidellm==0.8.1"),
        "{}",
        out.stderr
    );
}
