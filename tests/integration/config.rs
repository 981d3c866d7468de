//! Loading configs: formats, the legacy block, overrides, and the errors users see.

use bench_core::config::{ConfigFormat, PlannedStrategy};
use bench_core::Config;

use super::fixture;

fn load(relative: &str, overrides: &[&str]) -> Result<Config, bench_core::ConfigError> {
    let path = fixture(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::load(&text, ConfigFormat::from_path(&path).unwrap(), &overrides)
}

#[test]
fn toml_yaml_and_json_spellings_load_to_the_same_config() {
    let toml = load("config/sweep.toml", &[]).unwrap();
    assert_eq!(load("config/sweep.yaml", &[]).unwrap(), toml);
    assert_eq!(load("config/sweep.json", &[]).unwrap(), toml);
    let plan = toml.plan();
    assert_eq!(plan.len(), 5, "synchronous, throughput and 3 rate steps");
    assert!(matches!(
        plan[4].strategy,
        PlannedStrategy::SweepRate {
            step: 3,
            steps: 3,
            max_concurrency: 64,
            ..
        }
    ));
}

#[test]
fn the_legacy_autotuner_block_converts_to_the_same_plan_as_its_native_spelling() {
    let legacy = load("config/legacy.json", &[]).unwrap();
    let native = load("config/legacy-native.toml", &[]).unwrap();
    assert_eq!(legacy, native);
    assert_eq!(legacy.plan(), native.plan());
    let streams: Vec<_> = legacy
        .plan()
        .iter()
        .map(|b| match &b.strategy {
            PlannedStrategy::Fixed(s) => (b.workload.clone(), s.streams),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        streams,
        [
            ("D(100,100)".to_owned(), Some(1)),
            ("D(100,100)".to_owned(), Some(4)),
            ("D(100,100)".to_owned(), Some(8))
        ]
    );
}

#[test]
fn legacy_errors_name_the_legacy_key() {
    let text = r#"{"benchmark": {"model_name": "m", "num_concurency": [1]}, "target": {"url": "http://h"}}"#;
    let error = Config::load(text, ConfigFormat::Json, &[])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(
            "unknown key `benchmark.num_concurency` (did you mean `benchmark.num_concurrency`?)"
        ),
        "{error}"
    );
    let text = r#"{"benchmark": {"model_name": "m"}, "target": {"url": "http://h", "model": "n"}}"#;
    let error = Config::load(text, ConfigFormat::Json, &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "`benchmark.model_name` in the legacy `benchmark` block conflicts with `target.model`; give only one of them"
    );
    let text = r#"{"benchmark": {"profile": "sweep", "num_concurrency": [1]}}"#;
    let error = Config::load(text, ConfigFormat::Json, &[])
        .unwrap_err()
        .to_string();
    assert_eq!(error, "invalid `benchmark.num_concurrency`: is only read with profile `concurrent`, but profile is `sweep`");
}

#[test]
fn overrides_use_the_same_dotted_names() {
    let config = load(
        "config/sweep.toml",
        &[
            "profile.kind=constant",
            "profile.rates=[5,10]",
            "profile.sweep_size=",
            "target.model=llama",
        ],
    );
    // `profile.sweep_size=` sets an empty string: a wrong type, named precisely.
    assert_eq!(
        config.unwrap_err().to_string(),
        "invalid `profile.sweep_size`: got the string \"\", expected a whole number, 0 or more"
    );
    let config = load(
        "config/legacy-native.toml",
        &[
            "profile={ kind = \"constant\", rates = [5, 10] }",
            "target.model=llama",
        ],
    )
    .unwrap();
    assert_eq!(config.profile.rates, Some(vec![5.0, 10.0]));
    assert_eq!(config.target.model(), "llama");
}

/// Each bad config gives one precise message; the table is the contract users see.
#[test]
fn bad_configs_name_the_key_the_value_and_the_fix() {
    let cases: &[(&str, &str)] = &[
        ("target.modle=x", "unknown key `target.modle` (did you mean `target.model`?); valid keys here: api, api_key_env, headers, http2, kind, metrics, mock, model, proxy_from_env, timeouts, tls, url"),
        ("target.tls={ client_cert = \"c.pem\" }", "missing key `target.tls.client_key`; target.tls.client_cert needs the PEM private key that goes with it"),
        ("target.tls={ ca_file = \"ca.pem\" }", "invalid `target.tls`: is only used with an https:// target.url; remove it or use https"),
        ("target.tls={ verify = false }", "unknown key `target.tls.verify`; valid keys here: ca_file, client_cert, client_key, insecure_skip_verify, server_name"),
        ("profile.kind=swep", "`profile.kind` = `swep` is not a valid choice (did you mean `sweep`?); valid choices: concurrent, constant, gamma, poisson, replay, search, sweep, synchronous, throughput"),
        ("target.url=localhost:8000", "invalid `target.url`: `localhost:8000` has no scheme; write `http://localhost:8000`"),
        ("target.url=ftp://h", "invalid `target.url`: `ftp://h` uses an unsupported scheme; use http:// or https://"),
        ("profile.streams=[1, 0]", "invalid `profile.streams`: not used by profile.kind = `sweep` (it reads only sweep_size, spacing, strategy, burstiness, max_concurrency, rampup_seconds); remove it or change the kind"),
        ("profile.sweep_size=1", "invalid `profile.sweep_size`: 1 is too small: a sweep needs at least 2 benchmarks (synchronous and throughput)"),
        ("constraints.max_seconds=-1", "invalid `constraints.max_seconds`: -1 must be a positive number"),
        ("constraints.max_error_rate=1.5", "invalid `constraints.max_error_rate`: 1.5 is not a share in (0, 1], e.g. 0.1 for 10 %"),
        ("warmup={ fraction = 1.2 }", "invalid `warmup.fraction`: 1.2 is not in [0, 1); for an absolute length use `seconds` or `requests`"),
        ("warmup={ seconds = 40 }", "invalid `warmup.seconds`: 40 s is not shorter than constraints.max_seconds = 30; nothing would be measured"),
        ("data.kind=scenario", "invalid `data.prompt_tokens`: not used by data.kind = `scenario` (it reads only scenario, scenarios, samples, approximate, tokenizer); remove it or change the kind"),
        ("data.output_tokens=0", "invalid `data.output_tokens`: must be at least 1"),
        ("output[0].path=report.txt", "invalid `output.path`: cannot tell the format of `report.txt` from its extension `.txt`; use .json, .yaml, .yml, .csv or .html, or set `format`"),
        ("seed=-3", "invalid `seed`: got integer `-3`, expected a whole number, 0 or more"),
        ("benchmark_engine=\"\"", "invalid `benchmark_engine`: must name an engine, e.g. `native`"),
        ("constraints.max_seconds=\"ten\"", "invalid `constraints.max_seconds`: got the string \"ten\", expected a number"),
        ("profile={ kind = \"constant\", rates = [-5] }", "invalid `profile.rates[0]`: -5 must be a positive number"),
        ("profile={ kind = \"constant\", rates = [] }", "invalid `profile.rates`: is empty; give at least one rate in requests per second, e.g. [5.0]"),
        ("profile={ kind = \"concurrent\", streams = [0] }", "invalid `profile.streams[0]`: 0 streams send nothing; use 1 or more"),
    ];
    for (given, expected) in cases {
        let error = load("config/sweep.toml", &[given]).unwrap_err().to_string();
        assert_eq!(&error, expected, "for --set {given}");
    }
}

#[test]
fn a_config_without_limits_or_required_sections_is_refused() {
    let error = Config::load(
        "[target]\nurl = \"http://h\"\nmodel = \"m\"\n",
        ConfigFormat::Toml,
        &[],
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "missing key `profile`");
    let text = "[target]\nurl = \"http://h\"\nmodel = \"m\"\n[profile]\nkind = \"synchronous\"\n[data]\nkind = \"synthetic\"\nprompt_tokens = 1\noutput_tokens = 1\napproximate = true\n";
    let error = Config::load(text, ConfigFormat::Toml, &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "missing key `constraints.max_seconds`; set constraints.max_seconds or constraints.max_requests, or a benchmark never ends"
    );
    let error = Config::load("", ConfigFormat::Yaml, &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot parse the config as YAML: the document is empty; see docs/config.md"
    );
    let error = Config::load("target = [", ConfigFormat::Toml, &[])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cannot parse the config as TOML: "),
        "{error}"
    );
}

#[test]
fn secrets_are_redacted_in_the_replayable_config() {
    let config = load(
        "config/echo.toml",
        &["engines.test-echo.api_token=\"sk-1\""],
    )
    .unwrap();
    let redacted = config.redacted();
    assert_eq!(redacted.target.headers["Authorization"], "<redacted>");
    let text = serde_json::to_string(&redacted).unwrap();
    assert!(!text.contains("sk-"), "{text}");
    assert!(
        text.contains("\"api_key_env\":\"OPENAI_API_KEY\""),
        "the variable name is kept"
    );
}

#[test]
fn traffic_scenarios_are_checked_with_genai_benchs_grammar() {
    let error = load("config/legacy-native.toml", &["data.scenario=D(100, 100)"])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("invalid `data.scenario`: traffic scenario `D(100, 100)`, character 7: spaces are not allowed; valid forms: D(in,out)"),
        "{error}"
    );
    let text = r#"{"benchmark": {"model_name": "m", "num_concurrency": [1], "max_requests_per_iteration": 5, "traffic_scenarios": ["D(1,2)", "N(10,2)/(5,1)", "U(3,4)", "R(1,2)"]}, "target": {"url": "http://h"}}"#;
    let error = Config::load(text, ConfigFormat::Json, &[])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("invalid `data.scenarios[3]`: traffic scenario `R(1,2)`, character 1"),
        "{error}"
    );
}

/// Configs with arbitrary numbers in their duration, count and rate keys: every one that
/// loads also plans and starts. The native engine runs it against the embedded mock, cut short
/// (below), and it exits with a documented code, never panics.
mod any_config_starts {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Once;

    use bench_core::config::{ConfigFormat, Transient};
    use bench_core::Config;
    use bench_tests::cli::llm_bench;
    use proptest::prelude::*;

    /// Each case is a real run (about 0.1 to 0.5 s), so this test tries at most 32 cases
    /// whatever `PROPTEST_CASES` says (CI's 2048 would take many minutes), and 8 by default.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8)
            .min(32)
    }

    /// Panics anywhere in the process, the runtime's worker threads included (where a
    /// panicking request task would otherwise go unnoticed). nextest runs each test in its own
    /// process, so the count is this test's.
    fn panics() -> usize {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                COUNT.fetch_add(1, Ordering::SeqCst);
                previous(info);
            }));
        });
        COUNT.load(Ordering::SeqCst)
    }

    fn toml_float(v: f64) -> String {
        if v.is_nan() {
            "nan".to_owned()
        } else if v.is_infinite() {
            if v > 0.0 { "inf" } else { "-inf" }.to_owned()
        } else {
            format!("{v:?}")
        }
    }

    /// Everyday values, the edges of the limits (docs/config.md) mostly from inside, and
    /// any bit pattern.
    fn float() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0.0f64..1.0).prop_map(toml_float),
            4 => (1.0f64..100.0).prop_map(toml_float),
            3 => prop::sample::select(vec!["5e-324", "1e-300", "2592000.0", "0.001", "1e6"])
                .prop_map(str::to_owned),
            1 => prop::sample::select(vec![
                "nan", "inf", "0.0", "1e300", "2592000.1", "0.0009", "1000000.5",
            ])
            .prop_map(str::to_owned),
            1 => any::<f64>().prop_map(toml_float),
        ]
    }

    fn int() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => (1u64..20).prop_map(|n| n.to_string()),
            3 => prop::sample::select(vec!["1", "1000", "1000000", "1000000000"])
                .prop_map(str::to_owned),
            1 => prop::sample::select(vec![
                "0", "-1", "1001", "1000001", "1000000001", "4294967296",
            ])
            .prop_map(str::to_owned),
            1 => any::<i64>().prop_map(|n| n.to_string()),
        ]
    }

    fn some(p: f64, s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<String>> {
        proptest::option::weighted(p, s).boxed()
    }

    fn list(item: impl Strategy<Value = String> + 'static) -> impl Strategy<Value = String> {
        prop::collection::vec(item, 1..3).prop_map(|v| format!("[{}]", v.join(", ")))
    }

    fn transient() -> impl Strategy<Value = String> {
        prop_oneof![
            float().prop_map(|v| format!("{{ fraction = {v} }}")),
            float().prop_map(|v| format!("{{ seconds = {v} }}")),
            int().prop_map(|v| format!("{{ requests = {v} }}")),
        ]
    }

    /// A TOML config: one profile kind, and each duration, count and rate key present or not.
    fn document() -> impl Strategy<Value = String> {
        let kind = prop::sample::select(vec![
            "synchronous",
            "concurrent",
            "throughput",
            "constant",
            "poisson",
            "sweep",
        ]);
        let profile = (
            some(0.9, list(int())),
            some(0.9, list(float())),
            some(0.3, int()),
            some(0.3, int()),
            some(0.3, float()),
        );
        let constraints = (
            some(0.8, float()),
            some(0.6, int()),
            some(0.2, int()),
            some(
                0.2,
                (0.0f64..1.0, proptest::option::of(int())).prop_map(|(r, w)| {
                    format!(
                        "max_error_rate = {r}{}",
                        w.map(|w| format!("\nerror_rate_window = {w}"))
                            .unwrap_or_default()
                    )
                }),
            ),
            some(0.2, float()),
            some(
                0.2,
                (float(), float()).prop_map(|(m, w)| {
                    format!("{{ mode = \"monitor\", min_seconds = {m}, window_seconds = {w} }}")
                }),
            ),
        );
        let rest = (
            some(0.3, transient()),
            some(0.3, transient()),
            some(0.2, float()),
            some(0.2, float()),
            some(0.2, float()),
            some(0.2, float()),
            some(0.2, int()),
        );
        (kind, profile, constraints, rest).prop_map(|(kind, p, c, r)| {
            let mut text = "seed = 3\n".to_owned();
            let reads = |key: &str| match kind {
                "synchronous" => false,
                "concurrent" => matches!(key, "streams" | "rampup_seconds"),
                "throughput" => matches!(key, "max_concurrency" | "rampup_seconds"),
                "constant" | "poisson" => matches!(key, "rates" | "max_concurrency" | "rampup_seconds"),
                _ => matches!(key, "sweep_size" | "max_concurrency" | "rampup_seconds"),
            };
            let put = |text: &mut String, key: &str, value: Option<String>| {
                if let Some(v) = value {
                    text.push_str(&format!("{key} = {v}\n"));
                }
            };
            put(&mut text, "warmup", r.0);
            put(&mut text, "cooldown", r.1);
            text.push_str(&format!("[target.mock]\nttft_ms = 1\nitl_ms = 0.2\n[profile]\nkind = \"{kind}\"\n"));
            for (key, value) in [("streams", p.0), ("rates", p.1), ("sweep_size", p.2), ("max_concurrency", p.3), ("rampup_seconds", p.4)] {
                if reads(key) {
                    put(&mut text, key, value);
                }
            }
            text.push_str("[constraints]\n");
            put(&mut text, "max_seconds", c.0);
            put(&mut text, "max_requests", c.1);
            put(&mut text, "max_errors", c.2);
            if let Some(lines) = c.3 {
                text.push_str(&format!("{lines}\n"));
            }
            put(&mut text, "interrupt_grace_seconds", c.4);
            put(&mut text, "over_saturation", c.5);
            text.push_str("[target.timeouts]\n");
            put(&mut text, "connect_seconds", r.2);
            put(&mut text, "read_seconds", r.3);
            put(&mut text, "request_seconds", r.4);
            // Token counts stay small: a run builds and sends every prompt (huge ones are
            // covered by bench-core's load-and-plan property test).
            text.push_str("[data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 4\napproximate = true\n");
            put(&mut text, "prompt_tokens_stdev", r.5);
            put(&mut text, "samples", r.6);
            text
        })
    }

    /// The run's budget: no benchmark longer than this, no more requests than `REQUESTS`.
    const SECONDS: f64 = 0.1;
    const REQUESTS: u64 = 3;

    /// The same config, cut short: `max_seconds` at most [`SECONDS`] (set when absent, or an
    /// open loop at 0.001 req/s would wait 1000 s for its second request), `max_requests` at
    /// most [`REQUESTS`], warmup and cooldown scaled into that budget, at most 3 benchmarks of
    /// at most 16 streams (a million would take seconds to spawn), and at most 8 samples.
    /// Every other value (rates, ramp-up, timeouts, error limits, grace, the detector) is
    /// kept as generated.
    fn cut_short(mut config: Config) -> Config {
        let c = &mut config.constraints;
        let scale = c.max_seconds.map(|m| (SECONDS / m).min(1.0));
        c.max_seconds = Some(c.max_seconds.map_or(SECONDS, |m| m.min(SECONDS)));
        let cut_requests = c.max_requests.is_some_and(|n| n > REQUESTS);
        c.max_requests = c.max_requests.map(|n| n.min(REQUESTS));
        for transient in [&mut config.warmup, &mut config.cooldown]
            .into_iter()
            .flatten()
        {
            match (transient, scale) {
                (Transient::Seconds(s), Some(scale)) => *s *= scale,
                (Transient::Seconds(s), None) => *s = s.min(SECONDS / 4.0),
                (Transient::Requests(n), _) if cut_requests => *n = (*n).min(REQUESTS - 1),
                _ => {}
            }
        }
        let p = &mut config.profile;
        p.sweep_size = p.sweep_size.map(|n| n.min(3));
        p.max_concurrency = p.max_concurrency.map(|n| n.min(16));
        if let Some(streams) = &mut p.streams {
            streams.truncate(3);
            streams.iter_mut().for_each(|n| *n = (*n).min(16));
        }
        if let Some(rates) = &mut p.rates {
            rates.truncate(3);
        }
        config.data.samples = config.data.samples.map(|n| n.min(8));
        config
    }

    /// Generated configs that load (about a third of them do; the others are refused
    /// cleanly, which bench-core's property tests cover).
    fn loading() -> impl Strategy<Value = (String, Config)> {
        document().prop_filter_map("the config does not load", |text| {
            Config::load(&text, ConfigFormat::Toml, &[])
                .ok()
                .map(|config| (text, config))
        })
    }

    #[test]
    fn every_config_that_loads_plans_and_starts_without_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("generated.json");
        let report = dir.path().join("report.json");
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: cases(),
            max_shrink_iters: 16,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        runner
            .run(&loading(), |(text, config)| {
                prop_assert!(!config.plan().is_empty());
                let short = cut_short(config);
                let json = serde_json::to_string(&short).unwrap();
                let reloaded = Config::load(&json, ConfigFormat::Json, &[]);
                prop_assert!(
                    reloaded.is_ok(),
                    "the cut-short copy of\n{}\ndoes not load: {:?}",
                    text,
                    reloaded.err()
                );
                std::fs::write(&path, &json).unwrap();
                let before = panics();
                // `-o` keeps the report in the temporary directory.
                let out = llm_bench([
                    "run",
                    "--config",
                    path.to_str().unwrap(),
                    "--no-progress",
                    "-o",
                    report.to_str().unwrap(),
                ]);
                prop_assert_eq!(
                    panics(),
                    before,
                    "a panic while running\n{}\n{}",
                    json,
                    out.stderr
                );
                // 0 done, 2 refused by the engine, 4 no request succeeded (a 1e-300 s
                // timeout), 5 the target check failed (the same timeout on the probe).
                prop_assert!(
                    [0, 2, 4, 5].contains(&out.code),
                    "exit {} for\n{}\n{}{}",
                    out.code,
                    json,
                    out.stdout,
                    out.stderr
                );
                Ok(())
            })
            .unwrap();
    }
}
