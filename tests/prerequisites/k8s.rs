//! The manifests of `llm-bench k8s job` against the Kubernetes API's own schemas, with
//! kubernetes-validate (PyPI), strict: unknown fields are errors too.

use std::path::Path;
use std::process::Command;

use bench_tests::cli::llm_bench;
use serde::Deserialize as _;
use serde_norway::Value;

/// Runs the validator (strict) on one manifest file; its success and what it said.
fn validate(file: &Path) -> (bool, String) {
    let validator = test_prerequisites::var("LLM_BENCH_K8S_VALIDATE");
    let output = Command::new(&validator)
        .args(["--strict", "--no-warn"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run LLM_BENCH_K8S_VALIDATE={validator}: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

fn write(dir: &Path, name: &str, document: &Value) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_norway::to_string(document).unwrap()).unwrap();
    path
}

pub(crate) fn the_manifests_of_a_sharded_job_pass_the_kubernetes_schema() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        "[target]\nurl = \"http://vllm.inference.svc:8000\"\nmodel = \"llama\"\n\
         [profile]\nkind = \"concurrent\"\nstreams = [8, 32]\n\
         [constraints]\nmax_seconds = 60\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 256\noutput_tokens = 128\napproximate = true\n",
    )
    .unwrap();
    let out = dir.path().join("job.yaml");
    let generated = llm_bench([
        "k8s".as_ref(),
        "job".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--shards".as_ref(),
        "4".as_ref(),
        "--namespace".as_ref(),
        "bench".as_ref(),
        "--api-key-secret".as_ref(),
        "inference-key".as_ref(),
        "--output".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(generated.code, 0, "{}", generated.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let documents: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ConfigMap", "Job"]);

    // The whole file as a user applies it, and every document on its own.
    let (valid, said) = validate(&out);
    assert!(valid, "the manifests fail the schema: {said}\n{text}");
    for (i, document) in documents.iter().enumerate() {
        let file = write(dir.path(), &format!("document-{i}.yaml"), document);
        let (valid, said) = validate(&file);
        assert!(valid, "document {i} fails the schema: {said}");
    }

    // Negative controls: the validator rejects a wrong type and an unknown field in the Job,
    // so a pass above means something.
    let job = &documents[1];
    let mut wrong_type = job.clone();
    wrong_type["spec"]["completions"] = Value::from("four");
    let mut unknown_field = job.clone();
    unknown_field["spec"]["template"]["spec"]["containers"][0]["arguments"] =
        job["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    for (name, broken) in [("wrong-type", wrong_type), ("unknown-field", unknown_field)] {
        let file = write(dir.path(), &format!("{name}.yaml"), &broken);
        let (valid, said) = validate(&file);
        assert!(!valid, "the validator passed a broken Job ({name}): {said}");
    }
}
