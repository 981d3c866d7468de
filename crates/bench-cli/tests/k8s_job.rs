//! `llm-bench k8s job`: what the Job runs is what is tested. The manifests' container command
//! line (read from the generated YAML, not retyped) runs as one local process per shard with
//! the environment the pod gets (`JOB_COMPLETION_INDEX` as the downward API gives it), the
//! ConfigMap's file at a local stand-in for its mount, against the mock server; each process's
//! output (standard output and error in one stream, as `kubectl logs` shows them) goes through
//! the collect command the manifests print, and the reports must be the run's shards.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench_mock::{MockConfig, MockServer};
use serde::Deserialize as _;
use serde_json::Value as Json;
use serde_norway::Value;

const SHARDS: u32 = 2;
/// Each of the two benchmarks sends this many requests in all, at these rates in all.
const REQUESTS: u64 = 16;
const RATES: [f64; 2] = [8.0, 16.0];

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_llm-bench"));
    command.stdin(Stdio::null());
    command
}

/// The documents of a multi-document YAML.
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Waits for `child` at most until `deadline`, killing it then.
fn wait(mut child: Child, deadline: Instant) -> Option<i32> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a shard did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pipe of the collect command the manifests print, after `kubectl logs ... |`.
fn collect_filter(manifests: &str) -> String {
    let line = manifests
        .lines()
        .find(|l| l.starts_with('#') && l.contains("kubectl logs"))
        .expect("the manifests say how to collect the reports");
    let after = line.split_once("\" | ").expect(line).1;
    after.rsplit_once(" > ").expect(line).0.to_owned()
}

#[test]
fn the_jobs_command_line_run_as_local_processes_makes_the_runs_shards() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime
        .block_on(MockServer::start(MockConfig {
            ttft_ms: 5.0,
            itl_ms: 1.0,
            output_tokens: 4,
            ..MockConfig::default()
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bench.toml");
    let config_text = format!(
        "[target]\nurl = \"{}\"\nmodel = \"mock-model\"\n\
         [profile]\nkind = \"constant\"\nrates = [{}, {}]\n\
         [constraints]\nmax_requests = {REQUESTS}\nmax_seconds = 15\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n",
        mock.base_url(),
        RATES[0],
        RATES[1],
    );
    std::fs::write(&config, &config_text).unwrap();

    // The manifests, with a start a few seconds ahead.
    let generated = binary()
        .args([
            "k8s",
            "job",
            "--shards",
            &SHARDS.to_string(),
            "--start-in",
            "3",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    let manifests = String::from_utf8(generated.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&generated.stderr);
    assert_eq!(generated.status.code(), Some(0), "{stderr}");
    let docs = documents(&manifests);
    assert_eq!(docs.len(), 2, "{manifests}");
    let (config_map, job) = (&docs[0], &docs[1]);
    assert_eq!(config_map["kind"].as_str(), Some("ConfigMap"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(spec["completions"].as_u64(), Some(u64::from(SHARDS)));
    assert_eq!(spec["parallelism"].as_u64(), Some(u64::from(SHARDS)));
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];

    // The ConfigMap's files where the pod mounts them, here under the temporary folder.
    let mount = &container["volumeMounts"][0];
    let mount_path = mount["mountPath"].as_str().unwrap();
    let volume = &pod["volumes"][0];
    assert_eq!(volume["name"], mount["name"]);
    assert_eq!(
        volume["configMap"]["name"].as_str(),
        config_map["metadata"]["name"].as_str()
    );
    let local_mount = dir.path().join("mount");
    std::fs::create_dir(&local_mount).unwrap();
    for (file, text) in config_map["data"].as_mapping().unwrap() {
        assert_eq!(
            text.as_str(),
            Some(config_text.as_str()),
            "the config as given"
        );
        std::fs::write(
            local_mount.join(file.as_str().unwrap()),
            text.as_str().unwrap(),
        )
        .unwrap();
    }
    let local = |arg: &str| match arg.strip_prefix(mount_path) {
        Some(rest) => format!("{}{rest}", local_mount.display()),
        None => arg.to_owned(),
    };
    let args: Vec<String> = strings(&container["args"])
        .iter()
        .map(|a| local(a))
        .collect();
    let start_at = args
        .iter()
        .find_map(|a| a.strip_prefix("--start-at="))
        .expect("the pods' start")
        .to_owned();
    let run_id = job["metadata"]["annotations"]["llm-bench/run-id"]
        .as_str()
        .unwrap()
        .to_owned();

    // One process per index, with the container's environment; output and errors in one log.
    let started = Instant::now();
    let mut shards = Vec::new();
    for index in 0..SHARDS {
        let mut command = binary();
        command.args(&args).env_remove("JOB_COMPLETION_INDEX");
        for variable in container["env"].as_sequence().unwrap() {
            let name = variable["name"].as_str().unwrap();
            let value = match (&variable["value"], &variable["valueFrom"]) {
                (Value::String(value), _) => value.clone(),
                (_, from) => {
                    let field = from["fieldRef"]["fieldPath"].as_str().expect(name);
                    assert_eq!(
                        field,
                        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    );
                    index.to_string()
                }
            };
            command.env(name, value);
        }
        let log_path = dir.path().join(format!("pod-{index}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        command.stdout(log.try_clone().unwrap()).stderr(log);
        shards.push((index, log_path, command.spawn().unwrap()));
    }
    let deadline = started + Duration::from_secs(60);
    let filter = collect_filter(&manifests);
    let mut reports = Vec::new();
    for (index, log_path, child) in shards {
        let code = wait(child, deadline);
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert_eq!(code, Some(0), "shard {index}: {log}");
        let collected = Command::new("sh")
            .args(["-c", &filter])
            .stdin(std::fs::File::open(&log_path).unwrap())
            .output()
            .unwrap();
        assert!(collected.status.success());
        let report: Json = serde_json::from_slice(&collected.stdout)
            .unwrap_or_else(|e| panic!("shard {index}: {e}; its log: {log}"));
        reports.push(report);
    }
    let stats = mock.stats();
    runtime.block_on(mock.shutdown());

    let mut seen = Vec::new();
    for report in &reports {
        let shard = &report["shard"];
        assert_eq!(shard["run_id"].as_str(), Some(run_id.as_str()));
        assert_eq!(shard["count"].as_u64(), Some(u64::from(SHARDS)));
        assert_eq!(shard["start_at"].as_str(), Some(start_at.as_str()));
        seen.push(shard["index"].as_u64().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, [0, 1], "every index once");
    // The shards' load adds up to the config's: rates and request counts.
    let mut sent = 0;
    for (b, rate) in RATES.iter().enumerate() {
        let mut rates = 0.0;
        let mut requests = 0;
        for report in &reports {
            let benchmark = &report["benchmarks"][b];
            assert_eq!(benchmark["strategy"]["kind"].as_str(), Some("constant"));
            rates += benchmark["strategy"]["target_rate_per_s"].as_f64().unwrap();
            requests += benchmark["requests"]["successful"].as_u64().unwrap();
        }
        assert!(
            (rates - rate).abs() < 1e-9,
            "benchmark {b}: {rates} != {rate}"
        );
        assert_eq!(requests, REQUESTS, "benchmark {b}");
        sent += requests;
    }
    assert_eq!(stats.requests, sent, "the mock's own count");
}

/// What a pod would refuse is refused before any manifest is printed, naming the key or flag.
#[test]
fn a_config_or_flag_the_pods_would_refuse_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let data = "[constraints]\nmax_seconds = 5\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n";
    let good = write(
        "good.toml",
        &format!("[target]\nurl = \"http://llm.svc:8000\"\n[profile]\nkind = \"concurrent\"\nstreams = [4]\n{data}"),
    );
    let sweep = write(
        "sweep.toml",
        &format!("[profile]\nkind = \"sweep\"\n{data}"),
    );
    let indexed = write(
        "indexed.toml",
        &format!("[shard]\ncount = 2\nindex = 1\n[profile]\nkind = \"concurrent\"\nstreams = [4]\n{data}"),
    );
    let cases: [(&std::path::Path, &[&str], &str); 6] = [
        (&sweep, &["--shards", "2"], "`sweep` cannot be sharded"),
        (&good, &["--shards", "8"], "cannot be split over 8 shards"),
        (&indexed, &["--shards", "2"], "shard.index = 1"),
        (&good, &["--shards", "0"], "invalid --shards 0"),
        (
            &good,
            &["--shards", "2", "--cpu", "two"],
            "invalid --cpu \"two\"",
        ),
        (
            &good,
            &["--shards", "2", "--name", "Bench_1"],
            "invalid --name \"Bench_1\"",
        ),
    ];
    for (config, flags, expected) in cases {
        let output = binary()
            .args(["k8s", "job", "--config"])
            .arg(config)
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{flags:?}: no manifests");
    }
    // A loopback target and data files are warned about, and the manifests still printed.
    let local = write(
        "local.toml",
        &format!("[target]\nurl = \"http://127.0.0.1:8000\"\n[profile]\nkind = \"concurrent\"\nstreams = [4]\n{data}")
            .replace("approximate = true", "tokenizer = \"tok\""),
    );
    let output = binary()
        .args(["k8s", "job", "--shards", "2", "--config"])
        .arg(&local)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is the pod itself"), "{stderr}");
    assert!(stderr.contains("data.tokenizer"), "{stderr}");
    assert!(!output.stdout.is_empty());
}
