//! Config text to a [`Config`]: the syntax (TOML, YAML or JSON), the legacy block, the compact
//! data string, `--set` overrides, strict deserialization, then validation.

use std::path::Path;

use super::model::Config;
use super::{compact, legacy, overrides, strict};
use crate::error::ConfigError;

/// The text formats a config may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// `.toml`
    Toml,
    /// `.yaml`, `.yml`
    Yaml,
    /// `.json`
    Json,
}

impl ConfigFormat {
    /// The format named by a file's extension.
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("toml") => Ok(Self::Toml),
            Some("yaml" | "yml") => Ok(Self::Yaml),
            Some("json") => Ok(Self::Json),
            other => Err(ConfigError::InvalidValue {
                key: "--config".to_owned(),
                message: format!(
                    "cannot tell the format of `{}` from its extension {}; name it .toml, .yaml, \
                     .yml or .json",
                    path.display(),
                    other.map_or("(none)".to_owned(), |e| format!("`.{e}`"))
                ),
            }),
        }
    }

    /// The format of config text read without a file name (`--config -`): JSON when it
    /// starts with `{`, else TOML when it parses as TOML, else YAML when it parses as a YAML
    /// mapping, else TOML again, so that the error quoted is the TOML parser's.
    pub fn detect(text: &str) -> Self {
        if text.trim_start().starts_with('{') {
            return Self::Json;
        }
        if toml::from_str::<toml::Table>(text).is_ok() {
            return Self::Toml;
        }
        match serde_norway::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(_)) => Self::Yaml,
            _ => Self::Toml,
        }
    }

    /// `TOML`, `YAML` or `JSON`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Toml => "TOML",
            Self::Yaml => "YAML",
            Self::Json => "JSON",
        }
    }
}

impl Config {
    /// Parses, converts the legacy block, applies `--set` overrides, and validates.
    pub fn load(
        text: &str,
        format: ConfigFormat,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax {
            format: format.name(),
            message,
        };
        let tree: serde_json::Value = match format {
            ConfigFormat::Toml => toml::from_str(text).map_err(|e| syntax(e.to_string()))?,
            ConfigFormat::Yaml => {
                serde_norway::from_str(text).map_err(|e| syntax(e.to_string()))?
            }
            ConfigFormat::Json => serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?,
        };
        let mut tree = match tree {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => {
                return Err(syntax(
                    "the document is empty; see docs/config.md".to_owned(),
                ))
            }
            _ => return Err(syntax("the top level must be a table of keys".to_owned())),
        };
        legacy::convert(&mut tree)?;
        compact::expand(&mut tree)?;
        let mut tree = serde_json::Value::Object(tree);
        for given in overrides {
            overrides::apply(&mut tree, given)?;
            // After each, so that `--set data=...` (or `--data`) can be followed by
            // `--set data.tokenizer=...`.
            if let serde_json::Value::Object(map) = &mut tree {
                compact::expand(map)?;
            }
        }
        let config: Config = strict::from_value(tree, "")?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_a_file_name_is_told_apart_by_its_content() {
        assert_eq!(ConfigFormat::detect(" {\"seed\": 1}"), ConfigFormat::Json);
        assert_eq!(
            ConfigFormat::detect("seed = 1\n[profile]\nkind = \"sweep\"\n"),
            ConfigFormat::Toml
        );
        assert_eq!(ConfigFormat::detect(""), ConfigFormat::Toml);
        assert_eq!(
            ConfigFormat::detect("seed: 1\nprofile:\n  kind: sweep\n"),
            ConfigFormat::Yaml
        );
        // Neither: TOML, whose parser then says where it went wrong.
        assert_eq!(ConfigFormat::detect("seed = = 1"), ConfigFormat::Toml);
    }
}
