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

    fn name(self) -> &'static str {
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
        }
        // Again, for `--set data=...`.
        if let serde_json::Value::Object(map) = &mut tree {
            compact::expand(map)?;
        }
        let config: Config = strict::from_value(tree, "")?;
        config.validate()?;
        Ok(config)
    }
}
