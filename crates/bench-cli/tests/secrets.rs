//! The secret scan: an API key in the environment and secret-looking headers, planted, must not
//! appear in anything llm-bench writes: standard output, standard error at the most verbose log
//! level, the progress JSON lines, or any report file.

use std::process::{Command, Stdio};

const PLANTED: [&str; 3] = [
    "sk-PLANTED-env-key",
    "hdr-PLANTED-api-key",
    "PLANTED-bearer",
];

#[test]
fn planted_secrets_appear_in_no_output_at_any_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[target]\napi_key_env = \"LLM_BENCH_TEST_KEY\"\nheaders = {{ \"X-Api-Key\" = \"{}\", Authorization = \"Bearer {}\" }}\n\
             [target.mock]\nttft_ms = 2\nitl_ms = 1\nfaults = [{{ kind = \"http_500\", every = 3 }}]\n\
             [profile]\nkind = \"concurrent\"\nstreams = [2]\n[constraints]\nmax_requests = 9\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n",
            PLANTED[1], PLANTED[2]
        ),
    )
    .unwrap();
    let outputs: Vec<_> = ["r.json", "r.yaml", "r.csv", "r.html"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let progress = dir.path().join("progress.jsonl");
    let mut command = Command::new(env!("CARGO_BIN_EXE_llm-bench"));
    command
        .args(["run", "--config"])
        .arg(&config)
        .arg("--progress-json")
        .arg(&progress)
        .env("LLM_BENCH_TEST_KEY", PLANTED[0])
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null());
    for output in &outputs {
        command.arg("--output").arg(output);
    }
    let run = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "the log ran at its most verbose"
    );
    let mut texts = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&run.stdout).into_owned(),
        ),
        ("stderr".to_owned(), stderr),
        (
            "progress".to_owned(),
            std::fs::read_to_string(&progress).unwrap(),
        ),
    ];
    for output in &outputs {
        texts.push((
            output.display().to_string(),
            std::fs::read_to_string(output).unwrap(),
        ));
    }
    // The run did use them: the errors were recorded and the header names kept.
    assert!(texts[3].1.contains("http_status"), "{}", texts[3].1);
    assert!(
        texts[3].1.contains("X-Api-Key"),
        "the header is kept, its value redacted"
    );
    for (name, text) in &texts {
        for secret in PLANTED {
            assert!(!text.contains(secret), "{secret} leaked into {name}");
        }
    }
}
