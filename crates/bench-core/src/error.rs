//! The two error types of the engine boundary.
//!
//! A failed request is a measurement, not an error: it is counted in the report. These errors
//! mean that a run could not be configured ([`ConfigError`]) or could not happen at all
//! ([`EngineError`]).

/// The configuration cannot be used as given. Every message names the key or value that is
/// wrong and, where one exists, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `benchmark_engine` names an engine that is not compiled in.
    #[error(
        "unknown engine `{name}` in `benchmark_engine`; available engines: {}",
        list(available)
    )]
    UnknownEngine {
        /// The name given.
        name: String,
        /// The engines compiled into this binary, sorted.
        available: Vec<String>,
    },
    /// A key that the schema does not know.
    #[error(
        "unknown key `{key}`{}; valid keys here: {}",
        suggest(suggestion),
        list(valid)
    )]
    UnknownKey {
        /// The full dotted path of the key.
        key: String,
        /// The closest valid key, when one is close.
        suggestion: Option<String>,
        /// The keys that are valid at that place.
        valid: Vec<String>,
    },
    /// A value that is not one of a fixed set of names.
    #[error(
        "`{key}` = `{value}` is not a valid choice{}; valid choices: {}",
        suggest(suggestion),
        list(valid)
    )]
    UnknownVariant {
        /// The full dotted path of the key.
        key: String,
        /// The value given.
        value: String,
        /// The closest valid value, when one is close.
        suggestion: Option<String>,
        /// The valid values.
        valid: Vec<String>,
    },
    /// A required key is missing.
    #[error("missing key `{key}`{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    MissingKey {
        /// The full dotted path of the key.
        key: String,
        /// What to write, when there is something to say.
        hint: Option<String>,
    },
    /// A value that has the right key but is wrong: bad type, out of range, inconsistent.
    #[error("invalid `{key}`: {message}")]
    InvalidValue {
        /// The full dotted path of the key.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The text could not be parsed in its format at all.
    #[error("cannot parse the config as {format}: {message}")]
    Syntax {
        /// `TOML`, `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message, with its position.
        message: String,
    },
    /// A `--set key=value` override that cannot be applied.
    #[error("invalid override `{given}`: {message}")]
    Override {
        /// The override as given.
        given: String,
        /// What is wrong.
        message: String,
    },
    /// The legacy `benchmark` block and the native keys say different things.
    #[error("`{legacy_key}` in the legacy `benchmark` block conflicts with `{key}`; give only one of them")]
    LegacyConflict {
        /// The legacy key.
        legacy_key: String,
        /// The native key it maps to.
        key: String,
    },
    /// The chosen engine cannot do what the config asks.
    #[error("engine `{engine}` does not support {what}{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Unsupported {
        /// The engine name.
        engine: String,
        /// What is not supported, naming the key and value.
        what: String,
        /// The alternatives.
        hint: Option<String>,
    },
}

impl ConfigError {
    /// The dotted config key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::UnknownEngine { .. } => Some("benchmark_engine"),
            Self::UnknownKey { key, .. }
            | Self::UnknownVariant { key, .. }
            | Self::MissingKey { key, .. }
            | Self::InvalidValue { key, .. }
            | Self::LegacyConflict { key, .. } => Some(key),
            Self::Syntax { .. } | Self::Override { .. } | Self::Unsupported { .. } => None,
        }
    }

    /// The closest valid key or value, when one is close to what was given.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            Self::UnknownKey { suggestion, .. } | Self::UnknownVariant { suggestion, .. } => {
                suggestion.as_deref()
            }
            _ => None,
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

fn suggest(suggestion: &Option<String>) -> String {
    suggestion
        .as_deref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// A run could not happen. Requests that fail during a run are not errors; they are counted in
/// the report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration is not usable by this engine.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The target cannot be benchmarked: it is unreachable, or it does not answer as an
    /// OpenAI-compatible server (the message says what came back). Nothing was measured.
    #[error("{message}")]
    Target {
        /// What was asked, what came back, and what to check.
        message: String,
    },
    /// A local prerequisite is missing or unusable: an external command, its version, a
    /// system limit. The message names it and the fix.
    #[error("{message}")]
    Prerequisite {
        /// What is missing and how to provide it.
        message: String,
    },
    /// The engine failed before it could measure anything.
    #[error("engine `{engine}` failed")]
    Failed {
        /// The engine name.
        engine: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
