//! `llm-bench k8s job`: the Kubernetes manifests of a sharded run (docs/kubernetes.md). A
//! ConfigMap holds the config as given; an Indexed Job runs one `llm-bench run` per shard, all
//! with one command line, each taking its index from `JOB_COMPLETION_INDEX`, all starting on one
//! instant. Each pod prints its shard report on standard output, so `kubectl logs` collects it
//! on any cluster (no shared volume needed), and `llm-bench merge` joins them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use bench_core::config::ConfigFormat;
use bench_core::schema::Timestamp;
use bench_core::Config;
use serde_norway::{Mapping, Value};

use crate::config_flags::JOB_INDEX_VAR;
use crate::{exit_codes, Failure};

#[derive(Debug, clap::Args)]
pub(crate) struct K8sArgs {
    #[command(subcommand)]
    pub(crate) command: K8sCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum K8sCommand {
    /// Print the manifests of a sharded run as a Kubernetes Indexed Job (a ConfigMap with the
    /// config and the Job), with the commands to apply them, wait, collect the shard reports
    /// and merge them (docs/kubernetes.md).
    Job(JobArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct JobArgs {
    /// The run's config file (.toml, .yaml, .yml or .json), put as it is into the ConfigMap.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// How many shards (pods) share the load: the Job's completions and parallelism.
    #[arg(long, value_name = "N")]
    pub(crate) shards: u32,
    /// The container image with the llm-bench binary at /usr/local/bin/llm-bench (see
    /// Containerfile).
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    pub(crate) image: String,
    /// The namespace of the ConfigMap and the Job.
    #[arg(long, value_name = "NS", default_value = "default")]
    pub(crate) namespace: String,
    /// The name of the ConfigMap and the Job (a DNS label of at most 52 characters); default:
    /// `llm-bench-` and the run id.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Every shard starts its load this many seconds from now (`--start-at` of the pods): apply
    /// the manifests well before then, or generate them again.
    #[arg(
        long,
        value_name = "S",
        default_value_t = 120,
        conflicts_with = "start_at"
    )]
    pub(crate) start_in: u64,
    /// Every shard starts its load on this instant instead: RFC 3339 in UTC or Unix seconds.
    #[arg(long, value_name = "TIME")]
    pub(crate) start_at: Option<String>,
    /// The run id every shard reports (`--run-id` of the pods); default: derived from the config,
    /// the shard count and the start.
    #[arg(long, value_name = "ID")]
    pub(crate) run_id: Option<String>,
    /// CPU of each pod, request and limit alike (a Kubernetes quantity: `2`, `500m`).
    #[arg(long, value_name = "CPU", default_value = "2")]
    pub(crate) cpu: String,
    /// Memory of each pod, request and limit alike (a Kubernetes quantity: `1Gi`, `512Mi`).
    #[arg(long, value_name = "BYTES", default_value = "1Gi")]
    pub(crate) memory: String,
    /// A Secret with the target's API key under the key `api-key`, given to each pod as the
    /// variable the config's `target.api_key_env` names.
    #[arg(long, value_name = "SECRET")]
    pub(crate) api_key_secret: Option<String>,
    /// Write the manifests here (atomically) instead of to standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
}

/// The default image: the one Containerfile builds, tagged with this version.
const DEFAULT_IMAGE: &str = concat!("ghcr.io/llm-bench/llm-bench:", env!("CARGO_PKG_VERSION"));
/// Where the binary is in the image (Containerfile).
const BINARY_IN_IMAGE: &str = "/usr/local/bin/llm-bench";
/// Where the ConfigMap is mounted in each pod.
const CONFIG_DIR: &str = "/etc/llm-bench";
/// Longest name: the Job's pods add `-INDEX-xxxxx`, and a label value holds 63 characters.
const MAX_NAME: usize = 52;
/// A ConfigMap holds at most 1 MiB.
const MAX_CONFIG_BYTES: usize = 1_000_000;
/// The finished Job and its pods (and so their logs) are kept this long.
const KEEP_FINISHED_S: u64 = 86_400;
/// The filter that cuts a shard report out of its pod's log: from the line `{` to the line `}`
/// (the report is pretty JSON; log lines before it and the summary table after it are left out).
pub(crate) const REPORT_FROM_LOG: &str = "sed -n '/^{$/,/^}$/p'";

/// Everything the manifests are made of, checked.
struct JobPlan {
    name: String,
    namespace: String,
    image: String,
    shards: u32,
    start_at: Timestamp,
    run_id: String,
    config_key: String,
    config_text: String,
    cpu: String,
    memory: String,
    api_key: Option<(String, String)>,
    /// How long `kubectl wait` should wait, in seconds.
    wait_s: u64,
}

pub(crate) fn command(
    args: &K8sArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, Failure> {
    let K8sCommand::Job(job) = &args.command;
    let plan = plan(job, stderr)?;
    let text = render(&plan).map_err(Failure::run_failed)?;
    match &job.output {
        Some(path) => {
            bench_runner::write_atomically(path, text.as_bytes()).map_err(Failure::run_failed)?;
            let _ = writeln!(stderr, "wrote {}", path.display());
        }
        None => {
            let _ = write!(stdout, "{text}");
        }
    }
    Ok(exit_codes::OK)
}

fn bad(message: String) -> Failure {
    Failure::bad_input(anyhow::anyhow!(message))
}

/// Reads and checks the config as each pod will run it, and the flags.
fn plan(args: &JobArgs, stderr: &mut dyn Write) -> Result<JobPlan, Failure> {
    let path = &args.config;
    if path.as_os_str() == "-" {
        return Err(bad(
            "invalid --config -: the manifests carry the config file, so give its path".to_owned(),
        ));
    }
    let format = ConfigFormat::from_path(path).map_err(Failure::bad_input)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))
        .map_err(Failure::bad_input)?;
    if text.len() > MAX_CONFIG_BYTES {
        return Err(bad(format!(
            "config file {} has {} bytes, more than a ConfigMap holds ({MAX_CONFIG_BYTES}); move its data to a file in the image or a volume",
            path.display(),
            text.len()
        )));
    }
    if !(1..=bench_core::config::MAX_SHARDS).contains(&args.shards) {
        return Err(bad(format!(
            "invalid --shards {}: give 1 to {}",
            args.shards,
            bench_core::config::MAX_SHARDS
        )));
    }
    let start_at = match &args.start_at {
        Some(given) => crate::config_flags::start_instant(given).ok_or_else(|| {
            bad(format!("invalid --start-at {given}: give an instant in UTC as RFC 3339 (2026-11-29T12:00:00Z) or as Unix seconds (1795953600)"))
        })?,
        None => {
            // Whole seconds: the instant reads well in the manifest and on every pod.
            let now = Timestamp::now();
            let ahead = now.plus(std::time::Duration::from_secs(args.start_in));
            let micros = ahead.unix_micros();
            Timestamp::from_unix_micros(micros - micros.rem_euclid(1_000_000) + 1_000_000)
        }
    };
    bench_core::config::check_start_at(start_at, Timestamp::now())
        .map_err(|e| bad(format!("invalid start: {e}")))?;
    // The config as the pods load it: the file, then `--shard-count`, `--start-at`, `--run-id`.
    let mut overrides = vec![
        format!("shard.count={}", args.shards),
        format!("shard.start_at=\"{start_at}\""),
    ];
    if let Some(id) = &args.run_id {
        overrides.push(format!(
            "shard.run_id={}",
            serde_json::Value::from(id.as_str())
        ));
    }
    let context = || {
        format!(
            "invalid config {} for {} shards",
            path.display(),
            args.shards
        )
    };
    let config = bench_runner::load_config(&text, format, &overrides, None)
        .map_err(|e| Failure::bad_input(anyhow::Error::new(e).context(context())))?;
    let shard = config.shard.as_ref().ok_or_else(|| bad(context()))?.clone();
    if let Some(index) = shard.index {
        return Err(bad(format!(
            "{}: it sets shard.index = {index}, so every pod would run shard {index}; remove it (each pod takes its index from {JOB_INDEX_VAR})",
            context()
        )));
    }
    // The engine is chosen and checks the config as `run` does (only `native` runs shards).
    bench_core::registry::engine_for(&config)
        .map_err(|e| Failure::bad_input(anyhow::Error::new(e).context(context())))?;
    let run_id = shard.run_id(&config);
    let name = match &args.name {
        Some(name) => {
            check_name(name).map_err(|why| bad(format!("invalid --name {name:?}: {why}")))?;
            name.clone()
        }
        None => name_from(&run_id),
    };
    check_name(&args.namespace)
        .map_err(|why| bad(format!("invalid --namespace {:?}: {why}", args.namespace)))?;
    for (flag, value) in [("--cpu", &args.cpu), ("--memory", &args.memory)] {
        if !is_quantity(value) {
            return Err(bad(format!(
                "invalid {flag} {value:?}: give a Kubernetes quantity, e.g. `2` or `500m` for CPU, `1Gi` or `512Mi` for memory"
            )));
        }
    }
    if args.image.trim().is_empty() || args.image.chars().any(char::is_whitespace) {
        return Err(bad(format!(
            "invalid --image {:?}: give an image reference, e.g. {DEFAULT_IMAGE}",
            args.image
        )));
    }
    let api_key = match &args.api_key_secret {
        Some(secret) => {
            check_name(secret)
                .map_err(|why| bad(format!("invalid --api-key-secret {secret:?}: {why}")))?;
            if config.target.api_key_env.is_empty() {
                return Err(bad(format!("invalid --api-key-secret {secret}: the config sends no key (target.api_key_env is empty); name the variable in target.api_key_env")));
            }
            Some((config.target.api_key_env.clone(), secret.clone()))
        }
        None => None,
    };
    warn_about_the_pods(&config, stderr);
    let config_key = format!(
        "config.{}",
        path.extension()
            .map_or("toml".into(), |e| e.to_string_lossy().to_ascii_lowercase())
    );
    let wait_s = wait_seconds(&config, start_at);
    Ok(JobPlan {
        name,
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        shards: args.shards,
        start_at,
        run_id,
        config_key,
        config_text: text,
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
        api_key,
        wait_s,
    })
}

/// What a pod will not find that the config needs, said before anyone applies the manifests.
fn warn_about_the_pods(config: &Config, stderr: &mut dyn Write) {
    if config.target.kind() == bench_core::config::TargetKind::Mock {
        let _ = writeln!(
            stderr,
            "warning: the config has no target.url, so each pod benchmarks its own embedded mock server (a trial of the Job, not of a server)"
        );
    }
    if let Some(url) = &config.target.url {
        if ["://127.", "://localhost", "://[::1]", "://0.0.0.0"]
            .iter()
            .any(|local| url.contains(local))
        {
            let _ = writeln!(
                stderr,
                "warning: target.url {url} is the pod itself inside the cluster; give the server's Service address (e.g. http://NAME.NAMESPACE.svc:8000)"
            );
        }
    }
    let data = &config.data;
    let tls = &config.target.tls;
    for (key, value) in [
        ("data.path", &data.path),
        ("data.tokenizer", &data.tokenizer),
        ("target.tls.ca_file", &tls.ca_file),
        ("target.tls.client_cert", &tls.client_cert),
        ("target.tls.client_key", &tls.client_key),
    ] {
        if let Some(file) = value {
            let _ = writeln!(
                stderr,
                "warning: {key} = {file:?} is read by each pod, where only the config is mounted ({CONFIG_DIR}); put it in the image or a volume at that path (docs/kubernetes.md)"
            );
        }
    }
}

/// Seconds until the start, plus every benchmark's time limit, plus ten minutes; a day when a
/// benchmark has no time limit.
fn wait_seconds(config: &Config, start_at: Timestamp) -> u64 {
    let until_start = start_at.seconds_since(Timestamp::now()).max(0.0);
    match config.constraints.max_seconds {
        Some(limit) => {
            let benchmarks = config.plan().len().max(1) as f64;
            (until_start + benchmarks * limit + 600.0).ceil() as u64
        }
        None => KEEP_FINISHED_S,
    }
}

/// `llm-bench-` and the run id as a DNS label: lower case, `-` for anything else, at most
/// [`MAX_NAME`] characters.
fn name_from(run_id: &str) -> String {
    let raw: String = format!("llm-bench-{run_id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(MAX_NAME)
        .collect();
    raw.trim_end_matches('-').to_owned()
}

/// A DNS-1123 label of at most [`MAX_NAME`] characters, or why not.
fn check_name(name: &str) -> Result<(), &'static str> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("give 1 to 52 characters");
    }
    if !ok_chars || name.starts_with('-') || name.ends_with('-') {
        return Err("use lower-case letters, digits and `-`, starting and ending with a letter or digit (a DNS label)");
    }
    // YAML 1.1 readers (kubectl's among them) take these plain words for booleans.
    if ["y", "n", "yes", "no", "on", "off", "true", "false"].contains(&name) {
        return Err("a YAML reader takes it for a boolean; choose another name");
    }
    Ok(())
}

/// Whether `value` is a Kubernetes quantity: a positive decimal number and an optional suffix.
fn is_quantity(value: &str) -> bool {
    const SUFFIXES: [&str; 13] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi",
    ];
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    number.parse::<f64>().is_ok_and(|n| n > 0.0)
        && !number.starts_with('.')
        && !number.ends_with('.')
        && SUFFIXES.contains(&suffix)
}

/// The command line of every pod, after the binary: the index comes from the environment.
fn container_args(plan: &JobPlan) -> Vec<String> {
    [
        "run",
        "--config",
        &format!("{CONFIG_DIR}/{}", plan.config_key),
        "--shard-count",
        &plan.shards.to_string(),
        // One argument: a plain `2026-…Z` is a timestamp, not a string, to YAML 1.1 readers.
        &format!("--start-at={}", plan.start_at),
        "--run-id",
        &plan.run_id,
        "--output",
        crate::outputs::STDOUT,
        "--no-progress",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A YAML mapping with its keys in the order given.
fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut mapping = Mapping::new();
    for (key, value) in pairs {
        mapping.insert(Value::from(key), value);
    }
    Value::Mapping(mapping)
}

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

fn list<const N: usize>(items: [Value; N]) -> Value {
    Value::Sequence(items.to_vec())
}

fn labels(plan: &JobPlan) -> Value {
    map([
        ("app.kubernetes.io/name", text("llm-bench")),
        ("app.kubernetes.io/instance", text(&plan.name)),
    ])
}

fn metadata(plan: &JobPlan) -> Value {
    map([
        ("name", text(&plan.name)),
        ("namespace", text(&plan.namespace)),
        ("labels", labels(plan)),
        (
            "annotations",
            map([("llm-bench/run-id", text(&plan.run_id))]),
        ),
    ])
}

fn config_map(plan: &JobPlan) -> Value {
    map([
        ("apiVersion", text("v1")),
        ("kind", text("ConfigMap")),
        ("metadata", metadata(plan)),
        (
            "data",
            map([(plan.config_key.as_str(), text(&plan.config_text))]),
        ),
    ])
}

fn job(plan: &JobPlan) -> Value {
    let mut env = vec![
        // Kubernetes sets it in an Indexed Job; given here from the pod's own annotation too,
        // so the command line does not depend on that.
        map([
            ("name", text(JOB_INDEX_VAR)),
            (
                "valueFrom",
                map([(
                    "fieldRef",
                    map([(
                        "fieldPath",
                        text("metadata.annotations['batch.kubernetes.io/job-completion-index']"),
                    )]),
                )]),
            ),
        ]),
        // Warnings only: the log is the report's way out.
        map([("name", text("RUST_LOG")), ("value", text("warn"))]),
    ];
    if let Some((variable, secret)) = &plan.api_key {
        env.push(map([
            ("name", text(variable)),
            (
                "valueFrom",
                map([(
                    "secretKeyRef",
                    map([("name", text(secret)), ("key", text("api-key"))]),
                )]),
            ),
        ]));
    }
    let resources = map([("cpu", text(&plan.cpu)), ("memory", text(&plan.memory))]);
    let container = map([
        ("name", text("llm-bench")),
        ("image", text(&plan.image)),
        ("command", list([text(BINARY_IN_IMAGE)])),
        (
            "args",
            Value::Sequence(container_args(plan).into_iter().map(text).collect()),
        ),
        ("env", Value::Sequence(env)),
        (
            "resources",
            // Requests equal to limits: a Guaranteed pod, not throttled below what it asked.
            map([("requests", resources.clone()), ("limits", resources)]),
        ),
        (
            "volumeMounts",
            list([map([
                ("name", text("config")),
                ("mountPath", text(CONFIG_DIR)),
                ("readOnly", Value::Bool(true)),
            ])]),
        ),
    ]);
    let shards = Value::from(plan.shards);
    map([
        ("apiVersion", text("batch/v1")),
        ("kind", text("Job")),
        ("metadata", metadata(plan)),
        (
            "spec",
            map([
                ("completionMode", text("Indexed")),
                ("completions", shards.clone()),
                ("parallelism", shards),
                // A retried pod would start after the agreed instant, which `run` refuses.
                ("backoffLimit", Value::from(0)),
                ("ttlSecondsAfterFinished", Value::from(KEEP_FINISHED_S)),
                (
                    "template",
                    map([
                        ("metadata", map([("labels", labels(plan))])),
                        (
                            "spec",
                            map([
                                ("restartPolicy", text("Never")),
                                ("containers", list([container])),
                                (
                                    "volumes",
                                    list([map([
                                        ("name", text("config")),
                                        ("configMap", map([("name", text(&plan.name))])),
                                    ])]),
                                ),
                            ]),
                        ),
                    ]),
                ),
            ]),
        ),
    ])
}

/// The commands that take the manifests to a merged report, as YAML comments.
fn instructions(plan: &JobPlan) -> String {
    let ns = &plan.namespace;
    let name = &plan.name;
    let mut lines = vec![
        format!(
            "llm-bench k8s job: {} shards of run {}, every shard starting at {}.",
            plan.shards, plan.run_id, plan.start_at
        ),
        "Apply well before that instant, leaving time to pull the image and schedule the pods (a pod created after it is refused), or generate again.".to_owned(),
        "Save this output as job.yaml, then:".to_owned(),
        "  kubectl apply -f job.yaml".to_owned(),
        format!(
            "  kubectl wait -n {ns} --for=condition=complete --timeout={}s job/{name}",
            plan.wait_s
        ),
        format!(
            "  for pod in $(kubectl get pods -n {ns} -l job-name={name} --field-selector=status.phase=Succeeded -o name); do kubectl logs -n {ns} \"$pod\" | {REPORT_FROM_LOG} > \"shard-${{pod##*/}}.json\"; done"
        ),
        "  llm-bench merge shard-*.json -o merged.json".to_owned(),
        "  llm-bench report merged.json".to_owned(),
        format!("  kubectl delete -n {ns} job/{name} configmap/{name}"),
    ];
    if let Some((_, secret)) = &plan.api_key {
        lines.insert(
            3,
            format!("  kubectl create secret generic -n {ns} {secret} --from-literal=api-key=\"$KEY\"   # once"),
        );
    }
    lines.iter().map(|l| format!("# {l}\n")).collect()
}

/// The manifests as one multi-document YAML, with the commands on top.
fn render(plan: &JobPlan) -> anyhow::Result<String> {
    let mut out = instructions(plan);
    for document in [config_map(plan), job(plan)] {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&document).context("cannot render the manifests")?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_name_is_a_dns_label_from_the_run_id() {
        assert_eq!(name_from("run-00ab"), "llm-bench-run-00ab");
        assert_eq!(name_from("My_Run.2"), "llm-bench-my-run-2");
        let long = name_from(&"x".repeat(128));
        assert_eq!(long.len(), MAX_NAME);
        assert!(check_name(&long).is_ok());
        assert_eq!(name_from(&format!("{}_y", "a".repeat(41))).len(), 51);
    }

    #[test]
    fn names_and_quantities_are_checked() {
        assert!(check_name("bench-1").is_ok());
        for wrong in ["", "Bench", "-a", "a-", "a.b", "on", "no", &"a".repeat(53)] {
            assert!(check_name(wrong).is_err(), "{wrong}");
        }
        for right in ["2", "500m", "1Gi", "0.5", "512Mi", "1G"] {
            assert!(is_quantity(right), "{right}");
        }
        for wrong in ["", "two", "1 Gi", "1gb", "-1", "0", ".5", "1.", "m"] {
            assert!(!is_quantity(wrong), "{wrong}");
        }
    }
}
