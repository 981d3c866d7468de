//! `[profile.search]`: the settings of the SLO search (`profile.kind = "search"`), their
//! defaults, and the checks of a search config (it needs `[slo]` and one workload).
//!
//! The defaults aim at a real run: 5 % precision and ten rate steps bracket a server's SLO
//! boundary from its synchronous rate (doubling) and bisect it to within 5 % in about
//! 8 steps; each step is one benchmark under `[constraints]`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::limits::{shown, MAX_RATE_PER_S, MAX_STEPS, MIN_RATE_PER_S};
use super::model::{Config, DataKind, ProfileKind};
use crate::error::ConfigError;

/// The most rate steps a search runs when `max_steps` is not given (the synchronous probe
/// not counted).
pub const DEFAULT_SEARCH_MAX_STEPS: u32 = 10;

/// How the SLO search brackets and bisects the highest rate that meets `[slo]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    /// The goodput fraction: the share of judged requests that must meet every `[slo]`
    /// objective for a rate to pass (default 0.95). With one objective it is a percentile:
    /// `ttft_ms = 200` with `attainment = 0.99` is "TTFT p99 at most 200 ms".
    #[serde(default = "default_attainment")]
    pub attainment: f64,
    /// Stop when the lowest failing rate is within this fraction above the highest passing
    /// one (default 0.05).
    #[serde(default = "default_precision")]
    pub precision: f64,
    /// The most rate steps (default 10); the synchronous probe is not counted.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// Two-sided confidence of the Wilson interval on each step's attainment (default 0.95).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// The first rate step, requests per second. Without it a synchronous probe runs first
    /// and the first rate step is twice the rate it measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_rate: Option<f64>,
}

fn default_attainment() -> f64 {
    0.95
}

fn default_precision() -> f64 {
    0.05
}

fn default_max_steps() -> u32 {
    DEFAULT_SEARCH_MAX_STEPS
}

fn default_confidence() -> f64 {
    0.95
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            attainment: default_attainment(),
            precision: default_precision(),
            max_steps: default_max_steps(),
            confidence: default_confidence(),
            start_rate: None,
        }
    }
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        message,
    }
}

impl SearchSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let a = self.attainment;
        if !(a > 0.0 && a <= 1.0) {
            return Err(invalid("profile.search.attainment", format!("{} is not a fraction in (0, 1]; give the share of requests that must meet the SLOs, e.g. 0.95", shown(a))));
        }
        let p = self.precision;
        if !(0.001..=1.0).contains(&p) {
            return Err(invalid("profile.search.precision", format!("{} is not in [0.001, 1]; give the relative width at which the search stops, e.g. 0.05 for 5 %", shown(p))));
        }
        if self.max_steps == 0 || self.max_steps > MAX_STEPS {
            return Err(invalid(
                "profile.search.max_steps",
                format!(
                    "{} is not in [1, {MAX_STEPS}]; give the most rate steps to run, e.g. 10",
                    self.max_steps
                ),
            ));
        }
        let c = self.confidence;
        if !(0.5..=0.999).contains(&c) {
            return Err(invalid(
                "profile.search.confidence",
                format!(
                    "{} is not in [0.5, 0.999]; give the confidence of the intervals, e.g. 0.95",
                    shown(c)
                ),
            ));
        }
        if let Some(rate) = self.start_rate {
            if !(MIN_RATE_PER_S..=MAX_RATE_PER_S).contains(&rate) {
                return Err(invalid("profile.search.start_rate", format!("{} requests per second is not in [{MIN_RATE_PER_S}, {MAX_RATE_PER_S}]; give a rate in that range, or leave it out to start from a synchronous probe", shown(rate))));
            }
        }
        Ok(())
    }
}

/// The checks of a search config: its settings, an `[slo]` to search against, one workload.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    if config.profile.kind != ProfileKind::Search {
        return Ok(());
    }
    config.profile.search.unwrap_or_default().validate()?;
    if config.slo.is_none() {
        return Err(ConfigError::MissingKey {
            key: "slo".to_owned(),
            hint: Some("profile.kind = \"search\" looks for the highest rate that meets the service-level objectives; give at least one, e.g. [slo] ttft_ms = 500".to_owned()),
        });
    }
    let data = &config.data;
    let workloads = if data.kind == DataKind::Scenario {
        usize::from(data.scenario.is_some()) + data.scenarios.as_ref().map_or(0, Vec::len)
    } else {
        1
    };
    if workloads > 1 {
        return Err(invalid(
            "data.scenarios",
            format!("gives {workloads} workloads, but profile.kind = \"search\" searches one; run one search per scenario"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigFormat};

    fn load(text: &str) -> Result<Config, String> {
        Config::load(
            &format!("[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n[constraints]\nmax_seconds = 5\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 8\napproximate = true\n{text}"),
            ConfigFormat::Toml,
            &[],
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_search_takes_its_defaults_and_reads_strategy_and_max_concurrency() {
        let config = load("[profile]\nkind = \"search\"\nstrategy = \"poisson\"\nmax_concurrency = 64\n[slo]\nttft_ms = 100").unwrap();
        assert_eq!(config.profile.search.unwrap_or_default().max_steps, 10);
        let config = load("[profile]\nkind = \"search\"\n[profile.search]\nattainment = 0.99\nstart_rate = 5\n[slo]\ne2e_ms = 900").unwrap();
        let search = config.profile.search.unwrap();
        assert_eq!((search.attainment, search.start_rate), (0.99, Some(5.0)));
    }

    #[test]
    fn impossible_searches_are_refused_naming_the_key() {
        for (text, key) in [
            ("[profile]\nkind = \"search\"", "`slo`"),
            ("[profile]\nkind = \"search\"\n[profile.search]\nattainment = 0\n[slo]\nttft_ms = 1", "profile.search.attainment"),
            ("[profile]\nkind = \"search\"\n[profile.search]\nattainment = 1.5\n[slo]\nttft_ms = 1", "profile.search.attainment"),
            ("[profile]\nkind = \"search\"\n[profile.search]\nprecision = 0\n[slo]\nttft_ms = 1", "profile.search.precision"),
            ("[profile]\nkind = \"search\"\n[profile.search]\nmax_steps = 0\n[slo]\nttft_ms = 1", "profile.search.max_steps"),
            ("[profile]\nkind = \"search\"\n[profile.search]\nconfidence = 1\n[slo]\nttft_ms = 1", "profile.search.confidence"),
            ("[profile]\nkind = \"search\"\n[profile.search]\nstart_rate = -1\n[slo]\nttft_ms = 1", "profile.search.start_rate"),
            ("[profile]\nkind = \"search\"\nrates = [1]\n[slo]\nttft_ms = 1", "profile.rates"),
            ("[profile]\nkind = \"sweep\"\n[profile.search]\nmax_steps = 3", "profile.search"),
            ("[profile]\nkind = \"search\"\n[profile.search]\nsteps = 3\n[slo]\nttft_ms = 1", "profile.search.steps"),
        ] {
            let error = load(text).unwrap_err();
            assert!(error.contains(key), "{text}: {error}");
        }
    }
}
