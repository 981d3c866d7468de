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
        "invalid `profile.sweep_size`: invalid type: string \"\", expected u32"
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
        ("target.modle=x", "unknown key `target.modle` (did you mean `target.model`?); valid keys here: api, api_key_env, headers, kind, mock, model, timeouts, url"),
        ("profile.kind=swep", "`profile.kind` = `swep` is not a valid choice (did you mean `sweep`?); valid choices: concurrent, constant, poisson, sweep, synchronous, throughput"),
        ("target.url=localhost:8000", "invalid `target.url`: `localhost:8000` has no scheme; write `http://localhost:8000`"),
        ("target.url=ftp://h", "invalid `target.url`: `ftp://h` uses an unsupported scheme; use http:// or https://"),
        ("profile.streams=[1, 0]", "invalid `profile.streams`: not used by profile.kind = `sweep` (it reads only sweep_size, strategy, spacing, max_concurrency, rampup_seconds); remove it or change the kind"),
        ("profile.sweep_size=1", "invalid `profile.sweep_size`: 1 is too small: a sweep needs at least 2 benchmarks (synchronous and throughput)"),
        ("constraints.max_seconds=-1", "invalid `constraints.max_seconds`: -1 must be a positive number"),
        ("constraints.max_error_rate=1.5", "invalid `constraints.max_error_rate`: 1.5 is not a share in (0, 1], e.g. 0.1 for 10 %"),
        ("warmup={ fraction = 1.2 }", "invalid `warmup.fraction`: 1.2 is not in [0, 1); for an absolute length use `seconds` or `requests`"),
        ("warmup={ seconds = 40 }", "invalid `warmup.seconds`: 40 s is not shorter than constraints.max_seconds = 30; nothing would be measured"),
        ("data.kind=scenario", "invalid `data.prompt_tokens`: not used by data.kind = `scenario` (it reads only scenario, scenarios, samples, tokenizer, approximate); remove it or change the kind"),
        ("data.output_tokens=0", "invalid `data.output_tokens`: must be at least 1"),
        ("output[0].path=report.txt", "invalid `output.path`: cannot tell the format of `report.txt` from its extension `.txt`; use .json, .yaml, .yml, .csv or .html, or set `format`"),
        ("seed=-3", "invalid `seed`: invalid value: integer `-3`, expected u64"),
        ("benchmark_engine=\"\"", "invalid `benchmark_engine`: must name an engine, e.g. `native`"),
        ("constraints.max_seconds=\"ten\"", "invalid `constraints.max_seconds`: invalid type: string \"ten\", expected f64"),
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
