//! The autotuner's existing task block, `{"benchmark": {...}}`, converted to native keys.
//!
//! The block may sit beside native keys (for example `target.url`, which it has no key for).
//! A legacy key and the native key it maps to may not both be given.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::strict;
use crate::error::ConfigError;

/// The legacy block's keys. Times are in seconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyBenchmark {
    benchmark_engine: Option<String>,
    traffic_scenarios: Option<Vec<String>>,
    num_concurrency: Option<Vec<u32>>,
    max_time_per_iteration: Option<f64>,
    max_requests_per_iteration: Option<u64>,
    model_name: Option<String>,
    model_tokenizer: Option<String>,
    profile: Option<String>,
    rates: Option<Vec<f64>>,
    num_benchmarks: Option<u32>,
    max_error_rate: Option<f64>,
}

/// Replaces a top-level `benchmark` block, if present, by the native keys it stands for.
pub(super) fn convert(tree: &mut Map<String, Value>) -> Result<(), ConfigError> {
    let Some(block) = tree.remove("benchmark") else {
        return Ok(());
    };
    let legacy: LegacyBenchmark = strict::from_value(block, "benchmark")?;
    for (legacy_key, native_key, value) in native_entries(legacy)? {
        insert(tree, legacy_key, native_key, value)?;
    }
    Ok(())
}

type Entry = (&'static str, &'static str, Value);

fn native_entries(legacy: LegacyBenchmark) -> Result<Vec<Entry>, ConfigError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut push = |legacy_key, native_key, value: Option<Value>| {
        if let Some(value) = value {
            entries.push((legacy_key, native_key, value));
        }
    };
    push(
        "benchmark_engine",
        "benchmark_engine",
        legacy.benchmark_engine.map(Value::from),
    );
    push(
        "model_name",
        "target.model",
        legacy.model_name.map(Value::from),
    );
    push(
        "max_time_per_iteration",
        "constraints.max_seconds",
        legacy.max_time_per_iteration.map(Value::from),
    );
    push(
        "max_requests_per_iteration",
        "constraints.max_requests",
        legacy.max_requests_per_iteration.map(Value::from),
    );
    push(
        "max_error_rate",
        "constraints.max_error_rate",
        legacy.max_error_rate.map(Value::from),
    );

    if let Some(scenarios) = legacy.traffic_scenarios {
        push("traffic_scenarios", "data.kind", Some(json!("scenario")));
        let (key, value) = match scenarios.as_slice() {
            [one] => ("data.scenario", json!(one)),
            _ => ("data.scenarios", json!(scenarios)),
        };
        push("traffic_scenarios", key, Some(value));
    }
    push(
        "model_tokenizer",
        "data.tokenizer",
        legacy.model_tokenizer.map(Value::from),
    );

    // genai-bench, the engine the block was written for, only knows concurrency levels.
    let profile = match (&legacy.profile, &legacy.num_concurrency) {
        (Some(p), _) => p.clone(),
        (None, Some(_)) => "concurrent".to_owned(),
        (None, None) => {
            if legacy.rates.is_some() || legacy.num_benchmarks.is_some() {
                return Err(ConfigError::MissingKey {
                    key: "benchmark.profile".to_owned(),
                    hint: Some(
                        "`rates` and `num_benchmarks` need a profile such as `constant` or `sweep`"
                            .to_owned(),
                    ),
                });
            }
            String::new()
        }
    };
    if !profile.is_empty() {
        push(
            "profile",
            "profile.kind",
            Some(Value::from(profile.clone())),
        );
    }
    let only_for = |key: &str, kinds: &str| ConfigError::InvalidValue {
        key: format!("benchmark.{key}"),
        message: format!("is only read with profile {kinds}, but profile is `{profile}`"),
    };
    if let Some(levels) = legacy.num_concurrency {
        if profile != "concurrent" {
            return Err(only_for("num_concurrency", "`concurrent`"));
        }
        push("num_concurrency", "profile.streams", Some(json!(levels)));
    }
    if let Some(rates) = legacy.rates {
        if profile != "constant" && profile != "poisson" {
            return Err(only_for("rates", "`constant` or `poisson`"));
        }
        push("rates", "profile.rates", Some(json!(rates)));
    }
    if let Some(n) = legacy.num_benchmarks {
        if profile != "sweep" {
            return Err(only_for("num_benchmarks", "`sweep`"));
        }
        push("num_benchmarks", "profile.sweep_size", Some(json!(n)));
    }
    Ok(entries)
}

/// Sets the dotted `native_key` unless the document already has it.
fn insert(
    tree: &mut Map<String, Value>,
    legacy_key: &str,
    native_key: &str,
    value: Value,
) -> Result<(), ConfigError> {
    let conflict = || ConfigError::LegacyConflict {
        legacy_key: format!("benchmark.{legacy_key}"),
        key: native_key.to_owned(),
    };
    let mut node = tree;
    let mut parts = native_key.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return match node.get(part) {
                // Two legacy keys may imply the same native value (data.kind).
                Some(existing) if *existing == value => Ok(()),
                Some(_) => Err(conflict()),
                None => {
                    node.insert(part.to_owned(), value);
                    Ok(())
                }
            };
        }
        node = node
            .entry(part)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(conflict)?;
    }
    Ok(())
}
