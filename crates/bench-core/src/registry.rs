//! Engines register themselves at link time with `inventory`; this module looks them up.
//!
//! An engine crate submits one [`EngineRegistration`]:
//! ```ignore
//! bench_core::inventory::submit! {
//!     bench_core::EngineRegistration { name: "native", summary: "...", build: build_engine }
//! }
//! ```
//! An engine crate that no code names is not linked, and its registration vanishes silently;
//! bench-runner therefore names every engine crate once (`bench-runner/src/engines.rs`) and a test
//! asserts the exact set.

use crate::config::{Config, OptionsTable};
use crate::engine::BenchmarkEngine;
use crate::error::ConfigError;

/// Builds an engine from its options table (`[engines.<name>]`, empty when absent).
pub type BuildFn = fn(&OptionsTable) -> Result<Box<dyn BenchmarkEngine>, ConfigError>;

/// One engine's entry in the registry.
#[derive(Debug)]
pub struct EngineRegistration {
    /// The name `benchmark_engine` selects it by: short, lower-case, stable.
    pub name: &'static str,
    /// One line for `llm-bench engines`.
    pub summary: &'static str,
    /// Builds an instance; the real work happens here, after `main` starts.
    pub build: BuildFn,
}

inventory::collect!(EngineRegistration);

/// Every registered engine, sorted by name.
///
/// # Panics
/// If two engines registered the same name: a build defect that must not ship.
pub fn registrations() -> Vec<&'static EngineRegistration> {
    let mut all: Vec<&'static EngineRegistration> =
        inventory::iter::<EngineRegistration>.into_iter().collect();
    all.sort_by_key(|r| r.name);
    if let Some(name) = first_duplicate(all.iter().map(|r| r.name)) {
        panic!("engine `{name}` is registered twice; engine names must be unique");
    }
    all
}

/// The first name that appears twice in a sorted sequence.
fn first_duplicate<'a>(sorted: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut previous = None;
    for name in sorted {
        if previous == Some(name) {
            return Some(name);
        }
        previous = Some(name);
    }
    None
}

/// The registered engine names, sorted.
pub fn names() -> Vec<&'static str> {
    registrations().into_iter().map(|r| r.name).collect()
}

/// The registration named `name`, or an error listing the available engines.
pub fn find(name: &str) -> Result<&'static EngineRegistration, ConfigError> {
    registrations()
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ConfigError::UnknownEngine {
            name: name.to_owned(),
            available: names().into_iter().map(str::to_owned).collect(),
        })
}

/// Builds the engine `config.benchmark_engine` names, with its options table, and lets it
/// validate the config. Options tables for engines that are not compiled in are rejected, so a
/// misspelled `[engines.<name>]` is not silently ignored.
pub fn engine_for(config: &Config) -> Result<Box<dyn BenchmarkEngine>, ConfigError> {
    let available: Vec<String> = names().into_iter().map(str::to_owned).collect();
    for name in config.engines.keys() {
        if !available.contains(name) {
            return Err(ConfigError::UnknownKey {
                key: format!("engines.{name}"),
                suggestion: crate::config::closest_name(name, &available)
                    .map(|s| format!("engines.{s}")),
                valid: available,
            });
        }
    }
    let registration = find(&config.benchmark_engine)?;
    let options = config
        .engines
        .get(registration.name)
        .cloned()
        .unwrap_or_default();
    let engine = (registration.build)(&options)?;
    engine
        .validate(config)
        .map_err(|error| with_alternatives(error, config))?;
    Ok(engine)
}

/// An engine's refusal of `config`, with the registered engines that would run it.
fn with_alternatives(error: ConfigError, config: &Config) -> ConfigError {
    let ConfigError::Unsupported { engine, what, hint } = error else {
        return error;
    };
    let others: Vec<&str> = registrations()
        .into_iter()
        .filter(|r| r.name != engine)
        .filter(|r| {
            let options = config.engines.get(r.name).cloned().unwrap_or_default();
            (r.build)(&options).is_ok_and(|other| other.validate(config).is_ok())
        })
        .map(|r| r.name)
        .collect();
    let instead = match others.as_slice() {
        [] => None,
        [one] => Some(format!("use benchmark_engine = \"{one}\"")),
        many => Some(format!(
            "engines that can run this config: {}",
            many.join(", ")
        )),
    };
    let hint = match (hint, instead) {
        (Some(hint), Some(instead)) => Some(format!("{hint}; {instead}")),
        (hint, instead) => hint.or(instead),
    };
    ConfigError::Unsupported { engine, what, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_in_sorted_names() {
        assert_eq!(first_duplicate(["a", "b", "b", "c"].into_iter()), Some("b"));
        assert_eq!(first_duplicate(["a", "b", "c"].into_iter()), None);
        assert_eq!(first_duplicate(std::iter::empty()), None);
    }

    #[test]
    fn an_unknown_engine_lists_the_available_ones() {
        // No engine is linked into bench-core's own test binary.
        let error = find("nope").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown engine `nope` in `benchmark_engine`; available engines: (none)"
        );
    }
}
