//! The genai-bench command line for one benchmark point (one traffic scenario at one
//! concurrency), with the flags in the order genai-bench's option callbacks need them.

use std::path::{Path, PathBuf};

use bench_core::config::{Config, Data, DataKind, Transient};
use bench_core::schema::Warning;

use bench_subprocess::process::Invocation;
use bench_subprocess::secrets::{python_launcher, PythonEntry, KEY_MARKER};

use crate::Options;

/// `--max-time-per-run` when the config sets no time limit, in minutes (a day): the request
/// limit ends the run.
const NO_TIME_LIMIT_MIN: u64 = 24 * 60;
/// `--max-requests-per-run` when the config sets no request limit.
const NO_REQUEST_LIMIT: u64 = 1_000_000_000;
/// Sent as the API key when the config names none: genai-bench requires one for `openai`.
pub(crate) const PLACEHOLDER_KEY: &str = "unused";

/// `--max-time-per-run` for a time limit: whole minutes, rounded up, at least one; a day
/// without a limit.
pub(crate) fn minutes(max_seconds: Option<f64>) -> u64 {
    max_seconds.map_or(NO_TIME_LIMIT_MIN, |s| (s / 60.0).ceil().max(1.0) as u64)
}

/// One benchmark point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub(crate) scenario: String,
    pub(crate) concurrency: u32,
}

/// genai-bench's console entry point, which the key's launcher imports.
const ENTRY: PythonEntry = PythonEntry {
    module: "genai_bench.cli.cli",
    function: "cli",
    program: "genai-bench",
};

/// How the API key reaches genai-bench.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'a> {
    /// No key: a placeholder, which the backends require.
    None,
    /// Through the environment and a launcher run by this Python (genai-bench's own).
    Handed { key: &'a str, python: &'a Path },
}

/// The command for `point`; results go to `run_dir/<folder>`.
///
/// genai-bench 0.0.5 takes the key of its `openai`, `vllm` and `sglang` backends only as
/// `--api-key` (its `MODEL_API_KEY` variable feeds another option), so a key is never put
/// there: a launcher sets the option inside genai-bench's Python from the environment.
pub(crate) fn build(
    config: &Config,
    options: &Options,
    point: &Point,
    folder: &str,
    run_dir: &Path,
    key: Key<'_>,
) -> Invocation {
    let mut args = Vec::new();
    let limits = &config.constraints;
    let minutes = minutes(limits.max_seconds);
    args.push("benchmark".to_owned());
    // Order matters: --api-backend, then --api-key, then --task, then the rest.
    let mut push = |flag: &str, value: String| {
        args.push(flag.to_owned());
        args.push(value);
    };
    push("--api-backend", options.api_backend.clone());
    push(
        "--api-key",
        match key {
            Key::None => PLACEHOLDER_KEY,
            Key::Handed { .. } => KEY_MARKER,
        }
        .to_owned(),
    );
    push("--task", "text-to-text".to_owned());
    push("--api-base", bench_subprocess::api_base(&config.target));
    push("--api-model-name", config.target.model().to_owned());
    push(
        "--model-tokenizer",
        tokenizer_dir(config.data.tokenizer.as_deref().unwrap_or_default()),
    );
    push("--traffic-scenario", point.scenario.clone());
    push("--num-concurrency", point.concurrency.to_string());
    push("--max-time-per-run", minutes.to_string());
    push(
        "--max-requests-per-run",
        limits.max_requests.unwrap_or(NO_REQUEST_LIMIT).to_string(),
    );
    if let Some(Transient::Fraction(f)) = config.warmup {
        push("--warmup-ratio", f.to_string());
    }
    if let Some(Transient::Fraction(f)) = config.cooldown {
        push("--cooldown-ratio", f.to_string());
    }
    if let Some(prefix) = config.data.prefix_tokens {
        push("--prefix-len", prefix.to_string());
    }
    if !options.additional_request_params.is_empty() {
        push(
            "--additional-request-params",
            serde_json::Value::Object(options.additional_request_params.clone()).to_string(),
        );
    }
    push("--experiment-base-dir", run_dir.display().to_string());
    push("--experiment-folder-name", folder.to_owned());
    push("--log-dir", run_dir.join("logs").display().to_string());
    push("--metrics-time-unit", "ms".to_owned());
    args.extend(options.extra_args.iter().cloned());

    let mut env: Vec<(String, String)> = vec![
        ("ENABLE_UI".to_owned(), "false".to_owned()),
        ("TRANSFORMERS_VERBOSITY".to_owned(), "error".to_owned()),
        // The tokenizer is always local: never reach for a model hub.
        ("HF_HUB_OFFLINE".to_owned(), "1".to_owned()),
        ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
    ];
    // genai-bench talks through Python's requests, which trusts the bundle these name and
    // reads the proxy variables; client certificates and the other TLS keys are refused by
    // `validate`.
    if let Some(ca_file) = &config.target.tls.ca_file {
        let ca_file = bench_subprocess::absolute(ca_file);
        env.push(("REQUESTS_CA_BUNDLE".to_owned(), ca_file.clone()));
        env.push(("SSL_CERT_FILE".to_owned(), ca_file));
    }
    if !config.target.proxy_from_env {
        env.push(("NO_PROXY".to_owned(), "*".to_owned()));
        env.push(("no_proxy".to_owned(), "*".to_owned()));
    }
    let mut invocation = match key {
        // The launcher imports genai-bench itself: the command's own program and arguments
        // (a console script, or `python -m genai_bench.cli.cli`) are replaced by it.
        Key::Handed { key, python } => python_launcher(python, ENTRY, args, key),
        Key::None => {
            let mut command = options.command();
            Invocation {
                program: command.remove(0),
                args: command.into_iter().chain(args).collect(),
                env: Vec::new(),
            }
        }
    };
    invocation.env.extend(env);
    invocation
}

/// genai-bench loads tokenizers with `AutoTokenizer.from_pretrained`, which wants the
/// directory, not the `tokenizer.json` inside it; and it runs in the run directory, so a
/// relative path is made absolute (a path that does not resolve is passed as given, and a
/// name that is no path would be a model hub id, which fails offline with genai-bench's own
/// message).
fn tokenizer_dir(path: &str) -> String {
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
    let dir = if p.is_file() {
        p.parent().map(Path::to_path_buf).unwrap_or(p)
    } else {
        p
    };
    dir.display().to_string()
}

/// The traffic scenario genai-bench runs for `label`: a scenario as it is, or the synthetic
/// spec written as one. `None` when the spec has no scenario form.
pub(crate) fn scenario_for(label: &str, data: &Data) -> Option<String> {
    if data.kind == DataKind::Scenario {
        return Some(label.to_owned());
    }
    if data.kind != DataKind::Synthetic {
        return None;
    }
    let bounded = |min: Option<u32>, max: Option<u32>| min.is_some() || max.is_some();
    let prompt_bounds = bounded(data.prompt_tokens_min, data.prompt_tokens_max);
    let output_bounds = bounded(data.output_tokens_min, data.output_tokens_max);
    let (prompt, output) = (data.prompt_tokens?, data.output_tokens?);
    if prompt_bounds || output_bounds {
        return None;
    }
    match (data.prompt_tokens_stdev, data.output_tokens_stdev) {
        (None, None) => Some(format!("D({prompt},{output})")),
        (p, o) => {
            let whole = |s: Option<f64>| s.unwrap_or(0.0).round() as u64;
            Some(format!("N({prompt},{})/({output},{})", whole(p), whole(o)))
        }
    }
}

/// Warnings that apply to every point of a run.
pub(crate) fn warnings(config: &Config) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if let Some(s) = config.constraints.max_seconds {
        let minutes = minutes(Some(s)) as f64;
        if minutes * 60.0 > s {
            warnings.push(Warning {
                code: "rounded_duration".to_owned(),
                message: format!("genai-bench takes whole minutes: constraints.max_seconds = {s} ran as --max-time-per-run {minutes} ({} s); set max_requests to end runs sooner", minutes * 60.0),
            });
        }
    }
    if config.constraints.max_requests.is_some() {
        warnings.push(Warning {
            code: "soft_request_limit".to_owned(),
            message: "genai-bench checks --max-requests-per-run once a second, so a run may send more requests than the limit".to_owned(),
        });
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_core::config::ConfigFormat;
    use bench_subprocess::secrets::KEY_VARIABLE;

    fn config(extra: &str) -> Config {
        Config::load(
            &format!(
                "benchmark_engine = \"genai-bench\"\n[target]\nurl = \"http://127.0.0.1:8000/v1\"\nmodel = \"m\"\n\
                 [profile]\nkind = \"concurrent\"\nstreams = [1, 4]\n{extra}"
            ),
            ConfigFormat::Toml,
            &[],
        )
        .unwrap()
    }

    #[test]
    fn flags_come_in_the_order_genai_bench_needs_and_seconds_become_whole_minutes() {
        let c = config("[constraints]\nmax_seconds = 90\n[warmup]\nfraction = 0.1\n[data]\nkind = \"scenario\"\nscenario = \"D(100,50)\"\ntokenizer = \"/tok\"\n");
        let options = Options::default();
        let point = Point {
            scenario: "D(100,50)".to_owned(),
            concurrency: 4,
        };
        let i = build(&c, &options, &point, "p0", Path::new("/runs"), Key::None);
        assert_eq!(i.program, "genai-bench");
        let position = |flag: &str| i.args.iter().position(|a| a == flag).unwrap();
        assert_eq!(i.args[0], "benchmark");
        assert!(position("--api-backend") < position("--api-key"));
        assert!(position("--api-key") < position("--task"));
        assert!(position("--task") < position("--traffic-scenario"));
        let value = |flag: &str| i.args[position(flag) + 1].as_str();
        assert_eq!(value("--api-key"), PLACEHOLDER_KEY);
        assert_eq!(value("--api-base"), "http://127.0.0.1:8000");
        assert_eq!(value("--max-time-per-run"), "2");
        assert_eq!(
            value("--max-requests-per-run"),
            NO_REQUEST_LIMIT.to_string()
        );
        assert_eq!(value("--num-concurrency"), "4");
        assert_eq!(value("--warmup-ratio"), "0.1");
        assert_eq!(value("--experiment-folder-name"), "p0");
        assert!(i
            .env
            .contains(&("ENABLE_UI".to_owned(), "false".to_owned())));
        let w = warnings(&c);
        assert!(
            w[0].message.contains("--max-time-per-run 2 (120 s)"),
            "{w:?}"
        );
    }

    #[test]
    fn the_key_goes_through_the_environment_never_the_command_line_and_a_missing_time_limit_becomes_a_day(
    ) {
        let c = config("[constraints]\nmax_requests = 5\n[data]\nkind = \"scenario\"\nscenario = \"D(1,1)\"\ntokenizer = \"/tok\"\n");
        let point = Point {
            scenario: "D(1,1)".to_owned(),
            concurrency: 1,
        };
        let i = build(
            &c,
            &Options::default(),
            &point,
            "p",
            Path::new("/r"),
            Key::Handed {
                key: "sk-secret",
                python: Path::new("/venv/bin/python3"),
            },
        );
        assert_eq!(i.program, "/venv/bin/python3");
        assert_eq!(i.args[0], "-c");
        assert!(
            i.args[1].contains("from genai_bench.cli.cli import cli as main"),
            "{}",
            i.args[1]
        );
        assert!(
            i.args.iter().all(|a| !a.contains("sk-secret")),
            "{:?}",
            i.args
        );
        let key = i.args.iter().position(|a| a == "--api-key").unwrap();
        assert_eq!(i.args[key + 1], KEY_MARKER);
        assert!(i
            .env
            .contains(&(KEY_VARIABLE.to_owned(), "sk-secret".to_owned())));
        assert_eq!(
            i.args[i
                .args
                .iter()
                .position(|a| a == "--max-time-per-run")
                .unwrap()
                + 1],
            NO_TIME_LIMIT_MIN.to_string()
        );
    }

    /// The command for one point of an https target: `target` lines go under `[target]`,
    /// `tls` lines under `[target.tls]`.
    fn https(target: &str, tls: &str) -> Invocation {
        let c = Config::load(
            &format!(
                "benchmark_engine = \"genai-bench\"\n[target]\nurl = \"https://127.0.0.1:8443/v1\"\nmodel = \"m\"\n{target}\n\
                 [target.tls]\n{tls}\n[profile]\nkind = \"concurrent\"\nstreams = [1]\n\
                 [constraints]\nmax_requests = 5\n[data]\nkind = \"scenario\"\nscenario = \"D(1,1)\"\ntokenizer = \"/tok\"\n"
            ),
            ConfigFormat::Toml,
            &[],
        )
        .unwrap();
        let point = Point {
            scenario: "D(1,1)".to_owned(),
            concurrency: 1,
        };
        build(
            &c,
            &Options::default(),
            &point,
            "p",
            Path::new("/r"),
            Key::None,
        )
    }

    fn var<'a>(i: &'a Invocation, name: &str) -> Option<&'a str> {
        i.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_ca_file_reaches_genai_bench_as_an_absolute_bundle_path_and_the_url_stays_https() {
        for (ca_file, ends_with) in [
            ("/etc/ca/private.pem", "/etc/ca/private.pem"),
            ("certs/ca.pem", "/certs/ca.pem"),
        ] {
            let i = https("", &format!("ca_file = {ca_file:?}"));
            let api_base = i.args.iter().position(|a| a == "--api-base").unwrap();
            assert_eq!(i.args[api_base + 1], "https://127.0.0.1:8443");
            for name in ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"] {
                let value = var(&i, name).unwrap_or_else(|| panic!("{name}: {:?}", i.env));
                assert!(Path::new(value).is_absolute(), "{name} = {value}");
                assert!(value.ends_with(ends_with), "{name} = {value}");
            }
            // Proxies from the environment are used by default.
            assert_eq!(var(&i, "NO_PROXY"), None, "{:?}", i.env);
            assert_eq!(var(&i, "no_proxy"), None, "{:?}", i.env);
        }
    }

    #[test]
    fn proxy_from_env_false_sets_no_proxy_for_every_host_and_nothing_is_set_by_default() {
        let i = https("proxy_from_env = false", "");
        assert_eq!(var(&i, "NO_PROXY"), Some("*"), "{:?}", i.env);
        assert_eq!(var(&i, "no_proxy"), Some("*"), "{:?}", i.env);
        assert_eq!(var(&i, "REQUESTS_CA_BUNDLE"), None, "{:?}", i.env);
        assert_eq!(var(&i, "SSL_CERT_FILE"), None, "{:?}", i.env);

        let plain = config("[constraints]\nmax_requests = 5\n[data]\nkind = \"scenario\"\nscenario = \"D(1,1)\"\ntokenizer = \"/tok\"\n");
        let point = Point {
            scenario: "D(1,1)".to_owned(),
            concurrency: 1,
        };
        let i = build(
            &plain,
            &Options::default(),
            &point,
            "p",
            Path::new("/r"),
            Key::None,
        );
        for name in [
            "REQUESTS_CA_BUNDLE",
            "SSL_CERT_FILE",
            "NO_PROXY",
            "no_proxy",
        ] {
            assert_eq!(var(&i, name), None, "{:?}", i.env);
        }
    }

    #[test]
    fn synthetic_specs_map_onto_scenarios_when_they_can() {
        let data = |text: &str| {
            config(&format!(
                "[constraints]\nmax_requests = 1\n[data]\n{text}\ntokenizer = \"/t\"\n"
            ))
            .data
        };
        let fixed = data("kind = \"synthetic\"\nprompt_tokens = 100\noutput_tokens = 20");
        assert_eq!(scenario_for("x", &fixed).as_deref(), Some("D(100,20)"));
        let normal = data("kind = \"synthetic\"\nprompt_tokens = 100\nprompt_tokens_stdev = 9.6\noutput_tokens = 20");
        assert_eq!(
            scenario_for("x", &normal).as_deref(),
            Some("N(100,10)/(20,0)")
        );
        let bounded = data("kind = \"synthetic\"\nprompt_tokens = 100\nprompt_tokens_max = 200\noutput_tokens = 20");
        assert_eq!(scenario_for("x", &bounded), None);
    }
}
