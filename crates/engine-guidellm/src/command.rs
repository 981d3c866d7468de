//! The GuideLLM command line for one benchmark point, and what of a config GuideLLM can do.
//!
//! Every option is passed as a JSON object (GuideLLM parses its `kind=...` options as YAML
//! first), so paths and values never need its `key=value,...` escaping.

use std::path::Path;

use bench_core::config::StrategyKind;
use bench_core::config::{Api, Config, DataKind, ProfileKind, Transient};
use bench_core::schema::Warning;
use bench_core::{Capabilities, ConfigError, Feature, MetricKind};
use bench_subprocess::process::Invocation;
use bench_subprocess::{Point, Tool};
use serde_json::{json, Map, Value};

/// The variable GuideLLM's settings read the backend's API key from (pydantic settings,
/// prefix `GUIDELLM__`, nested by `__`): merged into `--backend`, never on a command line.
const KEY_VARIABLE: &str = "GUIDELLM__SPEC__BACKEND__API_KEY";

/// Columns GuideLLM 0.8.1 reads a row's output length from by default; llm-bench's own names
/// are mapped onto its `output_tokens_count_column`.
const OUTPUT_COLUMNS: [&str; 4] = [
    "output_tokens",
    "max_tokens",
    "output_len",
    "completion_tokens",
];

/// The metrics GuideLLM's report gives per request.
const METRICS: [MetricKind; 10] = [
    MetricKind::RequestLatency,
    MetricKind::Ttft,
    MetricKind::Tpot,
    MetricKind::DecodeTime,
    MetricKind::ScheduleLag,
    MetricKind::LatencyFromIntendedSend,
    MetricKind::PromptTokens,
    MetricKind::OutputTokens,
    MetricKind::Rates,
    MetricKind::Concurrency,
];

pub(crate) fn capabilities() -> Capabilities {
    Capabilities {
        profiles: vec![
            ProfileKind::Synchronous,
            ProfileKind::Concurrent,
            ProfileKind::Throughput,
            ProfileKind::Constant,
            ProfileKind::Poisson,
            ProfileKind::Sweep,
        ],
        data: vec![DataKind::Synthetic, DataKind::File],
        features: vec![
            Feature::CompletionsApi,
            Feature::ConnectTimeout,
            Feature::RequestTimeout,
            Feature::CaFile,
            Feature::InsecureSkipVerify,
            Feature::Http1Only,
            Feature::NoProxyFromEnv,
            Feature::Rampup,
            Feature::MaxConcurrency,
            Feature::SweepPoisson,
            Feature::MaxSeconds,
            Feature::MaxRequests,
            Feature::MaxErrors,
            Feature::MaxErrorRate,
            Feature::ErrorRateWindow,
            Feature::WarmupFraction,
            Feature::WarmupSeconds,
            Feature::WarmupRequests,
            Feature::CooldownFraction,
            Feature::CooldownSeconds,
            Feature::CooldownRequests,
            Feature::Tokenizer,
            Feature::LengthStdev,
            Feature::LengthBounds,
            Feature::Samples,
            Feature::PromptColumn,
            Feature::ServerMetrics,
        ],
        metrics: METRICS.to_vec(),
    }
}

/// Refuses what the capabilities cannot say, naming the key and the fix.
pub(crate) fn validate(config: &Config, tool: &Tool) -> Result<(), ConfigError> {
    let c = &config.constraints;
    let by_requests = |t: Option<Transient>| matches!(t, Some(Transient::Requests(_)));
    if c.max_seconds.is_some() && (by_requests(config.warmup) || by_requests(config.cooldown)) {
        return Err(tool.unsupported(
            "warmup or cooldown in requests with constraints.max_seconds",
            "GuideLLM counts them in requests only without a time limit; give them in seconds or as a fraction",
        ));
    }
    tool.require_limit(config)
}

/// Checks the files GuideLLM will read exist, before it starts.
pub(crate) fn check_files(config: &Config) -> Result<(), ConfigError> {
    let data = &config.data;
    if let Some(tokenizer) = &data.tokenizer {
        let path = Path::new(tokenizer);
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_owned()
        };
        if !file.is_file() {
            return Err(ConfigError::InvalidValue {
                key: "data.tokenizer".to_owned(),
                message: format!("`{tokenizer}` holds no tokenizer.json; give the model directory (relative paths in a config file are relative to its folder)"),
            });
        }
    }
    if let (DataKind::File, Some(path)) = (data.kind, &data.path) {
        if !Path::new(path).is_file() {
            return Err(ConfigError::InvalidValue {
                key: "data.path".to_owned(),
                message: format!("`{path}` does not exist (relative paths in a config file are relative to its folder)"),
            });
        }
    }
    Ok(())
}

/// `guidellm run` arguments for `point`, writing its JSON report to `output`.
pub(crate) fn args(config: &Config, point: &Point, output: &Path, extra: &[String]) -> Vec<String> {
    let mut args = vec!["run".to_owned()];
    let mut push = |flag: &str, value: Value| {
        args.push(flag.to_owned());
        args.push(value.to_string());
    };
    push("--backend", backend(config));
    push("--profile", profile(config, point));
    for constraint in constraints(config) {
        push("--constraint", constraint);
    }
    push("--data", data(config));
    if let Some(mapper) = column_mapper(config) {
        push("--data-column-mapper", mapper);
    }
    if let Some(tokenizer) = &config.data.tokenizer {
        push(
            "--tokenizer",
            json!({"kind": "hf_auto", "model": tokenizer_dir(tokenizer)}),
        );
    }
    if let Some(samples) = config.data.samples {
        push(
            "--data-loader",
            json!({"kind": "pytorch", "samples": samples}),
        );
    }
    // One seed per point, as the native engine seeds each benchmark.
    push(
        "--seed",
        json!({"kind": "static", "value": config.seed.wrapping_add(point.index as u64) % (1 << 53)}),
    );
    push(
        "--output",
        json!({"kind": "json", "path": output.display().to_string()}),
    );
    args.push("--disable-progress".to_owned());
    args.extend(extra.iter().cloned());
    args
}

fn backend(config: &Config) -> Value {
    let target = &config.target;
    let mut backend = Map::new();
    backend.insert("kind".into(), json!("openai_http"));
    backend.insert("target".into(), json!(bench_subprocess::api_base(target)));
    backend.insert("model".into(), json!(target.model()));
    backend.insert(
        "request_format".into(),
        json!(match target.api {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
        }),
    );
    // The preflight has checked the target; GuideLLM's own check asks for /health, which
    // OpenAI-compatible servers need not have.
    backend.insert("validate_backend".into(), json!(false));
    // GuideLLM does not verify certificates unless told to.
    backend.insert("verify".into(), json!(!target.tls.insecure_skip_verify));
    backend.insert("http2".into(), json!(target.http2));
    backend.insert(
        "timeout_connect".into(),
        json!(target.timeouts.connect_seconds),
    );
    if let Some(total) = target.timeouts.request_seconds {
        backend.insert("timeout".into(), json!(total));
    }
    Value::Object(backend)
}

fn profile(config: &Config, point: &Point) -> Value {
    let s = &point.strategy;
    let mut p = Map::new();
    let kind = match s.kind {
        StrategyKind::Synchronous => "synchronous",
        StrategyKind::Concurrent => "concurrent",
        StrategyKind::Throughput => "throughput",
        StrategyKind::Constant => "constant",
        StrategyKind::Poisson => "poisson",
        // GuideLLM has no gamma arrivals: `capabilities` leaves out the gamma profile and
        // `profile.burstiness`, so no such point is ever built.
        StrategyKind::Gamma => "poisson",
        // Refused the same way: `capabilities` leaves out the replay profile and trace data.
        StrategyKind::Replay => "constant",
    };
    p.insert("kind".into(), json!(kind));
    if let Some(streams) = s.streams.filter(|_| s.kind == StrategyKind::Concurrent) {
        p.insert("streams".into(), json!(streams));
    }
    if let Some(rate) = s.target_rate_per_s {
        p.insert("rate".into(), json!(rate));
    }
    if let Some(c) = s.max_concurrency {
        p.insert("max_concurrency".into(), json!(c));
    }
    if let Some(r) = config.profile.rampup_seconds {
        p.insert("rampup_duration".into(), json!(r));
    }
    if let Some(w) = config.warmup {
        p.insert("warmup".into(), transient(w));
    }
    if let Some(c) = config.cooldown {
        p.insert("cooldown".into(), transient(c));
    }
    Value::Object(p)
}

/// A warmup or cooldown as GuideLLM's phase: a fraction of the duration (or of the requests
/// without a time limit), seconds, or requests.
fn transient(t: Transient) -> Value {
    match t {
        Transient::Fraction(f) => json!({"percent": f, "mode": "prefer_duration"}),
        Transient::Seconds(s) => json!({"value": s, "mode": "duration"}),
        Transient::Requests(n) => json!({"value": n, "mode": "requests"}),
    }
}

fn constraints(config: &Config) -> Vec<Value> {
    let c = &config.constraints;
    let mut list = Vec::new();
    if let Some(s) = c.max_seconds {
        list.push(json!({"kind": "max_duration", "seconds": s}));
    }
    if let Some(n) = c.max_requests {
        list.push(json!({"kind": "max_requests", "count": n}));
    }
    if let Some(n) = c.max_errors {
        list.push(json!({"kind": "max_errors", "count": n}));
    }
    if let Some(r) = c.max_error_rate {
        // Over the same sliding window the native engine uses.
        list.push(json!({"kind": "max_error_rate", "rate": r, "window": c.error_rate_window.unwrap_or(30)}));
    }
    list
}

fn data(config: &Config) -> Value {
    let d = &config.data;
    match d.kind {
        DataKind::File => {
            let path = d.path.as_deref().unwrap_or_default();
            let kind = if path.to_ascii_lowercase().ends_with(".csv") {
                "csv_file"
            } else {
                "json_file"
            };
            json!({"kind": kind, "path": bench_subprocess::absolute(path)})
        }
        _ => {
            let mut s = Map::new();
            s.insert("kind".into(), json!("synthetic_text"));
            let fields = [
                ("prompt_tokens", d.prompt_tokens.map(Value::from)),
                (
                    "prompt_tokens_stdev",
                    d.prompt_tokens_stdev.map(Value::from),
                ),
                ("prompt_tokens_min", d.prompt_tokens_min.map(Value::from)),
                ("prompt_tokens_max", d.prompt_tokens_max.map(Value::from)),
                ("output_tokens", d.output_tokens.map(Value::from)),
                (
                    "output_tokens_stdev",
                    d.output_tokens_stdev.map(Value::from),
                ),
                ("output_tokens_min", d.output_tokens_min.map(Value::from)),
                ("output_tokens_max", d.output_tokens_max.map(Value::from)),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    s.insert(key.into(), value);
                }
            }
            Value::Object(s)
        }
    }
}

/// For a data file, the columns llm-bench reads mapped onto GuideLLM's names: the prompt
/// column when the config names one, and every output-length column llm-bench knows.
fn column_mapper(config: &Config) -> Option<Value> {
    if config.data.kind != DataKind::File {
        return None;
    }
    let mut mappings = Map::new();
    if let Some(column) = &config.data.prompt_column {
        mappings.insert("text_column".into(), json!(column));
    }
    mappings.insert("output_tokens_count_column".into(), json!(OUTPUT_COLUMNS));
    Some(json!({"kind": "generative_column_mapper", "column_mappings": mappings}))
}

/// GuideLLM loads tokenizers with `AutoTokenizer.from_pretrained`, which wants the
/// directory, not the `tokenizer.json` inside it, as an absolute path (it runs in its own
/// folder).
fn tokenizer_dir(path: &str) -> String {
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| std::path::PathBuf::from(path));
    let dir = if p.is_file() {
        p.parent().map(Path::to_path_buf).unwrap_or(p)
    } else {
        p
    };
    dir.display().to_string()
}

/// The environment GuideLLM runs in: offline, unbuffered, the API key, and the TLS and proxy
/// settings.
pub(crate) fn with_environment(
    mut invocation: Invocation,
    config: &Config,
    key: Option<&str>,
) -> Invocation {
    let mut env: Vec<(String, String)> = vec![
        // The tokenizer is always local: never reach for a model hub.
        ("HF_HUB_OFFLINE".to_owned(), "1".to_owned()),
        ("TRANSFORMERS_OFFLINE".to_owned(), "1".to_owned()),
        ("TRANSFORMERS_VERBOSITY".to_owned(), "error".to_owned()),
        ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
    ];
    // GuideLLM talks through httpx, which trusts the bundle SSL_CERT_FILE names and reads the
    // proxy variables.
    if let Some(ca_file) = &config.target.tls.ca_file {
        env.push((
            "SSL_CERT_FILE".to_owned(),
            bench_subprocess::absolute(ca_file),
        ));
    }
    if !config.target.proxy_from_env {
        env.push(("NO_PROXY".to_owned(), "*".to_owned()));
        env.push(("no_proxy".to_owned(), "*".to_owned()));
    }
    if let Some(key) = key {
        env.push((KEY_VARIABLE.to_owned(), key.to_owned()));
    }
    invocation.env.extend(env);
    invocation
}

/// Warnings that apply to every point of a run.
pub(crate) fn warnings(config: &Config) -> Vec<Warning> {
    let mut warnings = vec![Warning {
        code: "guidellm_tpot".to_owned(),
        message: "GuideLLM's TPOT includes the TTFT; this report's tpot_ms is (last token - first token) / (output tokens - 1), which GuideLLM calls ITL".to_owned(),
    }];
    if config.profile.kind == ProfileKind::Poisson
        || (config.profile.kind == ProfileKind::Sweep
            && config.profile.strategy == Some(bench_core::config::RateStrategy::Poisson))
    {
        warnings.push(Warning {
            code: "guidellm_poisson_workers".to_owned(),
            message: "GuideLLM 0.8.1 draws the same exponential gaps in each of its worker processes, so its Poisson arrivals repeat in bursts rather than being Poisson (docs/guidellm.md)".to_owned(),
        });
    }
    warnings
}

#[cfg(test)]
mod tests {
    use bench_core::config::{ConfigFormat, Strategy};

    use super::*;

    fn config(extra: &str) -> Config {
        Config::load(
            &format!(
                "benchmark_engine = \"guidellm\"\n[target]\nurl = \"http://127.0.0.1:8000/v1\"\nmodel = \"m\"\n{extra}"
            ),
            ConfigFormat::Toml,
            &[],
        )
        .unwrap()
    }

    fn point(kind: StrategyKind, streams: Option<u32>, rate: Option<f64>) -> Point {
        Point {
            index: 2,
            of: 3,
            strategy: Strategy {
                kind,
                streams,
                target_rate_per_s: rate,
                max_concurrency: None,
                burstiness: None,
                speedup: None,
            },
            workload: "w".to_owned(),
        }
    }

    /// The JSON object that follows `flag` (the last one when repeated).
    fn option(args: &[String], flag: &str) -> Value {
        let at = args
            .iter()
            .rposition(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag}: {args:?}"));
        serde_json::from_str(&args[at + 1]).unwrap()
    }

    #[test]
    fn a_point_becomes_json_options_with_the_base_url_and_no_backend_check() {
        let c = config(
            "[profile]\nkind = \"concurrent\"\nstreams = [4]\n[constraints]\nmax_requests = 20\nmax_seconds = 30\n\
             [warmup]\nseconds = 2\n[cooldown]\nfraction = 0.1\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 32\nprompt_tokens_stdev = 4\noutput_tokens = 16\ntokenizer = \"/tok\"\n",
        );
        let args = args(
            &c,
            &point(StrategyKind::Concurrent, Some(4), None),
            Path::new("/out/r.json"),
            &[],
        );
        assert_eq!(args[0], "run");
        assert!(args.contains(&"--disable-progress".to_owned()));
        let backend = option(&args, "--backend");
        assert_eq!(backend["target"], "http://127.0.0.1:8000");
        assert_eq!(backend["model"], "m");
        assert_eq!(backend["request_format"], "/v1/chat/completions");
        assert_eq!(backend["validate_backend"], false);
        assert_eq!(backend["verify"], true);
        assert!(backend.get("api_key").is_none());
        let profile = option(&args, "--profile");
        assert_eq!(profile["kind"], "concurrent");
        assert_eq!(profile["streams"], 4);
        assert_eq!(profile["warmup"], json!({"value": 2.0, "mode": "duration"}));
        assert_eq!(
            profile["cooldown"],
            json!({"percent": 0.1, "mode": "prefer_duration"})
        );
        let constraints: Vec<Value> = args
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "--constraint")
            .map(|(i, _)| serde_json::from_str(&args[i + 1]).unwrap())
            .collect();
        assert_eq!(
            constraints,
            [
                json!({"kind": "max_duration", "seconds": 30.0}),
                json!({"kind": "max_requests", "count": 20})
            ]
        );
        let data = option(&args, "--data");
        assert_eq!(data["kind"], "synthetic_text");
        assert_eq!(
            (
                data["prompt_tokens"].clone(),
                data["prompt_tokens_stdev"].clone()
            ),
            (json!(32), json!(4.0))
        );
        assert_eq!(option(&args, "--tokenizer")["model"], "/tok");
        // The seed of the point: the run's seed plus its index.
        assert_eq!(option(&args, "--seed")["value"], c.seed + 2);
        assert_eq!(option(&args, "--output")["path"], "/out/r.json");
    }

    #[test]
    fn a_rate_point_and_a_data_file_map_onto_guidellms_names() {
        let c = config(
            "[profile]\nkind = \"constant\"\nrates = [5]\nmax_concurrency = 8\n[constraints]\nmax_seconds = 10\nmax_error_rate = 0.2\n\
             [data]\nkind = \"file\"\npath = \"rows.csv\"\nprompt_column = \"question\"\n",
        );
        let mut p = point(StrategyKind::Constant, None, Some(5.0));
        p.strategy.max_concurrency = Some(8);
        let args = args(&c, &p, Path::new("/r.json"), &["--x".to_owned()]);
        assert_eq!(args.last().map(String::as_str), Some("--x"));
        let profile = option(&args, "--profile");
        assert_eq!(
            (profile["rate"].clone(), profile["max_concurrency"].clone()),
            (json!(5.0), json!(8))
        );
        assert_eq!(
            option(&args, "--constraint"),
            json!({"kind": "max_error_rate", "rate": 0.2, "window": 30})
        );
        let data = option(&args, "--data");
        assert_eq!(data["kind"], "csv_file");
        assert!(
            Path::new(data["path"].as_str().unwrap()).is_absolute(),
            "{data}"
        );
        let mapper = option(&args, "--data-column-mapper");
        assert_eq!(mapper["column_mappings"]["text_column"], "question");
        assert_eq!(
            mapper["column_mappings"]["output_tokens_count_column"][1],
            "max_tokens"
        );
        assert!(!args.contains(&"--tokenizer".to_owned()));
    }

    #[test]
    fn the_key_goes_into_guidellms_setting_variable_never_an_argument() {
        let c = Config::load(
            "benchmark_engine = \"guidellm\"\n[target]\nurl = \"https://127.0.0.1:8443/v1\"\nmodel = \"m\"\n[target.tls]\nca_file = \"ca.pem\"\n[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 8\ntokenizer = \"/tok\"\n",
            ConfigFormat::Toml,
            &[],
        )
        .unwrap();
        let invocation = with_environment(
            Invocation::of(vec!["guidellm".to_owned()], vec!["run".to_owned()]),
            &c,
            Some("sk-secret"),
        );
        assert!(invocation.args.iter().all(|a| !a.contains("sk-secret")));
        let var = |name: &str| {
            invocation
                .env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(var(KEY_VARIABLE).as_deref(), Some("sk-secret"));
        assert!(var("SSL_CERT_FILE").is_some_and(|f| Path::new(&f).is_absolute()));
        assert_eq!(var("HF_HUB_OFFLINE").as_deref(), Some("1"));
        assert_eq!(var("NO_PROXY"), None);
    }
}
