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
            &["data=prompt_tokens=9,output_tokens=3,approximate=true".to_owned()],
        )
        .unwrap();
        assert_eq!(
            (config.data.prompt_tokens, config.data.output_tokens),
            (Some(9), Some(3))
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
/// panic.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use crate::config::{Config, ConfigFormat};

    proptest! {
        #[test]
        fn any_document_loads_or_fails_cleanly(text in "\\PC{0,200}") {
            for format in [ConfigFormat::Toml, ConfigFormat::Yaml, ConfigFormat::Json] {
                let _ = Config::load(&text, format, &[]);
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
