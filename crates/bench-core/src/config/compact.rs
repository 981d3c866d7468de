//! The compact data string: `data = "prompt_tokens=256,output_tokens=128"` (GuideLLM's
//! synthetic spec) or `data = "D(100,100)"` (a genai-bench traffic scenario), expanded into the
//! `[data]` table before the config is read, so the table's checks and messages apply to both.

use serde_json::{Map, Number, Value};

use super::Scenario;
use crate::error::ConfigError;

/// Replaces a string `data` by the table it stands for.
pub(super) fn expand(tree: &mut Map<String, Value>) -> Result<(), ConfigError> {
    let Some(Value::String(spec)) = tree.get("data") else {
        return Ok(());
    };
    let table = parse(spec)?;
    tree.insert("data".to_owned(), Value::Object(table));
    Ok(())
}

fn parse(spec: &str) -> Result<Map<String, Value>, ConfigError> {
    let mut table = Map::new();
    if Scenario::parse(spec).is_ok() {
        table.insert("kind".to_owned(), Value::from("scenario"));
        table.insert("scenario".to_owned(), Value::from(spec));
        return Ok(table);
    }
    let invalid = |message: String| ConfigError::InvalidValue {
        key: "data".to_owned(),
        message,
    };
    for pair in spec.split(',') {
        let pair = pair.trim();
        let Some((key, value)) = pair.split_once('=') else {
            return Err(invalid(format!(
                "`{pair}` in {spec:?} is not key=value; write for example \"prompt_tokens=256,output_tokens=128\", a traffic scenario such as \"D(100,100)\", or a [data] table"
            )));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || value.is_empty() {
            return Err(invalid(format!(
                "`{pair}` in {spec:?} needs both a key and a value"
            )));
        }
        if table.insert(key.to_owned(), scalar(value)).is_some() {
            return Err(invalid(format!("`{key}` is given twice in {spec:?}")));
        }
    }
    table
        .entry("kind")
        .or_insert_with(|| Value::from("synthetic"));
    Ok(table)
}

/// A whole number, a decimal, a boolean, or else text (a path, a kind).
fn scalar(value: &str) -> Value {
    if let Ok(n) = value.parse::<u64>() {
        return Value::from(n);
    }
    if let Some(n) = value.parse::<f64>().ok().and_then(Number::from_f64) {
        return Value::Number(n);
    }
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::from(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigFormat, DataKind};

    fn load(data: &str) -> Result<Config, ConfigError> {
        load_with(data, "")
    }

    /// With `--set data.<extra>` applied after the string was expanded.
    fn load_with(data: &str, extra: &str) -> Result<Config, ConfigError> {
        let sets: Vec<String> = extra
            .split_terminator('\n')
            .map(|s| format!("data.{}", s.replace(" = ", "=")))
            .collect();
        Config::load(
            &format!("data = {data:?}\n[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n"),
            ConfigFormat::Toml,
            &sets,
        )
    }

    #[test]
    fn a_synthetic_spec_string_reads_like_the_table() {
        let config = load("prompt_tokens=256, output_tokens=128,prompt_tokens_stdev=12.5,samples=10,tokenizer=data/tokenizer").unwrap();
        let data = &config.data;
        assert_eq!(data.kind, DataKind::Synthetic);
        assert_eq!(
            (data.prompt_tokens, data.output_tokens),
            (Some(256), Some(128))
        );
        assert_eq!(data.prompt_tokens_stdev, Some(12.5));
        assert_eq!(data.samples, Some(10));
        assert_eq!(data.tokenizer.as_deref(), Some("data/tokenizer"));
    }

    #[test]
    fn set_can_replace_the_data_by_a_string() {
        let config = Config::load(
            "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n[data]\nkind = \"scenario\"\nscenario = \"D(1,1)\"\n",
            ConfigFormat::Toml,
            &[
                "data=prompt_tokens=9,output_tokens=3".to_owned(),
                "data.approximate=true".to_owned(),
            ],
        )
        .unwrap();
        assert_eq!(
            (config.data.prompt_tokens, config.data.output_tokens),
            (Some(9), Some(3))
        );
        assert_eq!(
            config.data.approximate,
            Some(true),
            "a later --set reaches into the string"
        );
    }

    #[test]
    fn a_scenario_string_is_a_scenario() {
        let config = load_with("N(480,240)/(300,150)", "approximate = true").unwrap();
        assert_eq!(config.data.kind, DataKind::Scenario);
        assert_eq!(
            config.data.scenario.as_deref(),
            Some("N(480,240)/(300,150)")
        );
    }

    #[test]
    fn bad_strings_name_the_piece_and_the_key() {
        let error = load("prompt_tokens=256,output_tokens")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`output_tokens`") && error.contains("key=value"),
            "{error}"
        );
        let error = load("prompt_tokens=1,prompt_tokens=2,output_tokens=3")
            .unwrap_err()
            .to_string();
        assert!(error.contains("given twice"), "{error}");
        let error = load("prompt_tokns=256,output_tokens=128")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("data.prompt_tokns") && error.contains("data.prompt_tokens"),
            "{error}"
        );
        let error = load("prompt_tokens=256").unwrap_err().to_string();
        assert!(error.contains("output_tokens"), "{error}");
    }
}

/// Property tests: whatever the document, loading it returns a config or an error, never a
/// panic; and a config that loads holds only values an engine can turn into durations and
/// counts.
#[cfg(test)]
mod properties {
    use std::time::Duration;

    use proptest::prelude::*;

    use crate::config::limits::{
        MAX_ERROR_RATE_WINDOW, MAX_RATE_PER_S, MAX_REQUESTS, MAX_SAMPLES, MAX_SECONDS, MAX_STEPS,
        MAX_STREAMS, MAX_TOKENS, MIN_RATE_PER_S,
    };
    use crate::config::{Config, ConfigFormat, PlannedStrategy, Transient};

    /// A float as TOML spells it: everyday values, any bit pattern, and the edges of the limits.
    fn float() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (0.0f64..1.0).prop_map(toml_float),
            6 => (1.0f64..200.0).prop_map(toml_float),
            1 => any::<f64>().prop_map(toml_float),
            1 => prop::sample::select(vec![
                "nan", "inf", "-inf", "0.0", "-0.0", "5e-324", "1e-300", "1e300",
                "1.7976931348623157e308", "2592000.0", "2592000.0000001", "1e6", "1000000.1",
                "0.001", "0.000999", "1e7", "10000000.5", "2592000000.0", "2592000000.1",
            ])
            .prop_map(str::to_owned),
        ]
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

    /// A whole number: everyday, any i64, and the edges of the limits and of the types.
    fn int() -> impl Strategy<Value = String> {
        prop_oneof![
            12 => (1u64..50).prop_map(|n| n.to_string()),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            1 => prop::sample::select(vec![
                "0", "1", "-1", "1000", "1001", "1000000", "1000001", "10000000", "10000001",
                "1000000000", "1000000001", "4294967295", "4294967296", "9223372036854775807",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn list(item: BoxedStrategy<String>) -> impl Strategy<Value = String> {
        prop::collection::vec(item, 1..4).prop_map(|v| format!("[{}]", v.join(", ")))
    }

    fn maybe(s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<String>> {
        proptest::option::weighted(0.25, s).boxed()
    }

    /// Keys a config needs (when its kind reads them) are there most of the time.
    fn mostly(s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<String>> {
        proptest::option::weighted(0.9, s).boxed()
    }

    /// The keys that hold durations, counts and rates, by table.
    fn keys() -> Vec<(&'static str, &'static str, BoxedStrategy<Option<String>>)> {
        let f = || maybe(float());
        let i = || maybe(int());
        vec![
            ("target.timeouts", "connect_seconds", f()),
            ("target.timeouts", "read_seconds", f()),
            ("target.timeouts", "request_seconds", f()),
            ("profile", "streams", mostly(list(int().boxed()))),
            ("profile", "rates", mostly(list(float().boxed()))),
            ("profile", "sweep_size", i()),
            ("profile", "max_concurrency", i()),
            ("profile", "rampup_seconds", f()),
            (
                "constraints",
                "max_seconds",
                proptest::option::weighted(0.7, float()).boxed(),
            ),
            (
                "constraints",
                "max_requests",
                proptest::option::weighted(0.7, int()).boxed(),
            ),
            ("constraints", "max_errors", i()),
            ("constraints", "", maybe(error_rate())),
            ("constraints", "interrupt_grace_seconds", f()),
            ("constraints.over_saturation", "min_seconds", f()),
            ("constraints.over_saturation", "window_seconds", f()),
            ("warmup", "", maybe(transient())),
            ("cooldown", "", maybe(transient())),
            ("data", "prompt_tokens", mostly(int())),
            ("data", "prompt_tokens_stdev", f()),
            ("data", "prompt_tokens_min", i()),
            ("data", "prompt_tokens_max", i()),
            ("data", "output_tokens", mostly(int())),
            ("data", "output_tokens_stdev", f()),
            ("data", "output_tokens_min", i()),
            ("data", "output_tokens_max", i()),
            ("data", "prefix_tokens", i()),
            ("data", "samples", i()),
            ("slo", "ttft_ms", f()),
            ("slo", "e2e_ms", f()),
        ]
    }

    /// `max_error_rate`, mostly a share, with or without its window.
    fn error_rate() -> impl Strategy<Value = String> {
        let share = prop_oneof![4 => (0.0f64..1.0).prop_map(toml_float), 1 => float()];
        (share, proptest::option::of(int())).prop_map(|(rate, window)| match window {
            Some(n) => format!("max_error_rate = {rate}\nerror_rate_window = {n}"),
            None => format!("max_error_rate = {rate}"),
        })
    }

    fn transient() -> impl Strategy<Value = String> {
        prop_oneof![
            float().prop_map(|v| format!("fraction = {v}")),
            float().prop_map(|v| format!("seconds = {v}")),
            int().prop_map(|v| format!("requests = {v}")),
        ]
    }

    /// Profile keys each kind reads, so that most documents get past the kind checks.
    fn reads(kind: &str, key: &str) -> bool {
        match kind {
            "synchronous" => false,
            "concurrent" => matches!(key, "streams" | "rampup_seconds"),
            "throughput" => matches!(key, "max_concurrency" | "rampup_seconds"),
            "constant" | "poisson" => matches!(key, "rates" | "max_concurrency" | "rampup_seconds"),
            _ => matches!(key, "sweep_size" | "max_concurrency" | "rampup_seconds"),
        }
    }

    /// A TOML config with arbitrary numbers in every duration, count and rate key.
    fn document() -> impl Strategy<Value = String> {
        let keys = keys();
        let names: Vec<(&str, &str)> = keys.iter().map(|(t, k, _)| (*t, *k)).collect();
        let values: Vec<_> = keys.into_iter().map(|(_, _, v)| v).collect();
        let kinds = prop::sample::select(vec![
            "synchronous",
            "concurrent",
            "throughput",
            "constant",
            "poisson",
            "sweep",
        ]);
        let scenario = proptest::option::weighted(
            0.3,
            (int(), int()).prop_map(|(a, b)| format!("\"D({a},{b})\"")),
        );
        (kinds, scenario, values).prop_map(move |(kind, scenario, values)| {
            // Tables in first-seen order, each written once.
            let mut tables: Vec<(&str, Vec<String>)> = vec![
                ("profile", vec![format!("kind = \"{kind}\"")]),
                ("data", vec!["approximate = true".to_owned()]),
            ];
            match &scenario {
                Some(s) => tables[1]
                    .1
                    .extend(["kind = \"scenario\"".to_owned(), format!("scenario = {s}")]),
                None => tables[1].1.push("kind = \"synthetic\"".to_owned()),
            }
            for ((table, key), value) in names.iter().zip(values) {
                let Some(value) = value else { continue };
                if *table == "profile" && !reads(kind, key) {
                    continue;
                }
                if *table == "data" && scenario.is_some() && *key != "samples" {
                    continue;
                }
                let line = if key.is_empty() {
                    value
                } else {
                    format!("{key} = {value}")
                };
                match tables.iter_mut().find(|(t, _)| t == table) {
                    Some((_, lines)) => lines.push(line),
                    None => tables.push((table, vec![line])),
                }
            }
            tables
                .iter()
                .map(|(table, lines)| format!("[{table}]\n{}\n", lines.join("\n")))
                .collect::<String>()
        })
    }

    /// Every seconds value of a loaded config, by key.
    fn seconds_of(config: &Config) -> Vec<(&'static str, f64)> {
        let c = &config.constraints;
        let t = &config.target.timeouts;
        let mut all = vec![
            ("connect_seconds", t.connect_seconds),
            ("read_seconds", t.read_seconds),
        ];
        let optional = [
            ("request_seconds", t.request_seconds),
            ("max_seconds", c.max_seconds),
            ("interrupt_grace_seconds", c.interrupt_grace_seconds),
            ("rampup_seconds", config.profile.rampup_seconds),
            ("min_seconds", c.over_saturation.and_then(|o| o.min_seconds)),
            (
                "window_seconds",
                c.over_saturation.and_then(|o| o.window_seconds),
            ),
        ];
        all.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        for (key, transient) in [("warmup", config.warmup), ("cooldown", config.cooldown)] {
            if let Some(Transient::Seconds(s)) = transient {
                all.push((key, s));
            }
        }
        all
    }

    proptest! {
        #[test]
        fn any_document_loads_or_fails_cleanly(text in "\\PC{0,200}") {
            for format in [ConfigFormat::Toml, ConfigFormat::Yaml, ConfigFormat::Json] {
                let _ = Config::load(&text, format, &[]);
            }
        }

        /// Huge, tiny, negative and non-finite numbers in every duration, count and rate key:
        /// a config that loads has only values within the limits, each duration converts to a
        /// `Duration`, and it plans.
        #[test]
        fn any_numbers_in_a_structured_config_load_within_the_limits_and_plan(text in document()) {
            let Ok(config) = Config::load(&text, ConfigFormat::Toml, &[]) else {
                return Ok(());
            };
            for (key, s) in seconds_of(&config) {
                prop_assert!((0.0..=MAX_SECONDS).contains(&s), "{} = {} in\n{}", key, s, text);
                prop_assert!(Duration::try_from_secs_f64(s).is_ok(), "{} = {}", key, s);
            }
            prop_assert!(config.constraints.interrupt_grace() <= Duration::from_secs_f64(MAX_SECONDS));
            let c = &config.constraints;
            for n in [c.max_requests, c.max_errors].into_iter().flatten() {
                prop_assert!((1..=MAX_REQUESTS).contains(&n), "{}", text);
            }
            prop_assert!(c.error_rate_window.is_none_or(|n| (1..=MAX_ERROR_RATE_WINDOW).contains(&n)));
            let d = &config.data;
            for n in [d.prompt_tokens, d.prompt_tokens_min, d.prompt_tokens_max, d.output_tokens,
                      d.output_tokens_min, d.output_tokens_max, d.prefix_tokens].into_iter().flatten() {
                prop_assert!(n <= MAX_TOKENS, "{}", text);
            }
            prop_assert!(d.samples.is_none_or(|n| (1..=MAX_SAMPLES).contains(&n)));
            let plan = config.plan();
            prop_assert!(!plan.is_empty() && plan.len() <= MAX_STEPS as usize, "{} benchmarks", plan.len());
            for planned in &plan {
                let PlannedStrategy::Fixed(s) = &planned.strategy else { continue };
                for n in [s.streams, s.max_concurrency].into_iter().flatten() {
                    prop_assert!((1..=MAX_STREAMS).contains(&n), "{}", text);
                }
                if let Some(rate) = s.target_rate_per_s {
                    prop_assert!((MIN_RATE_PER_S..=MAX_RATE_PER_S).contains(&rate), "{}", text);
                    // The gap between two arrivals is a duration too.
                    prop_assert!(Duration::try_from_secs_f64(1.0 / rate).is_ok());
                }
            }
        }

        #[test]
        fn any_data_string_or_override_fails_cleanly(data in "[a-z_=,0-9.()/ ]{0,60}", set in "[a-z_.=\\[\\]{}0-9\" ]{0,40}") {
            let text = format!("data = {data:?}\n[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n");
            let _ = Config::load(&text, ConfigFormat::Toml, &[]);
            let _ = Config::load(&text, ConfigFormat::Toml, &[set]);
        }
    }
}
