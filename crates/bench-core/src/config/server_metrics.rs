//! `[target.metrics]`: scraping the server's own Prometheus `/metrics` during each benchmark,
//! so the report holds what the server saw (its queue, batch, KV cache, token counters, its
//! own latency histograms) next to what the client measured.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::limits::shown;
use crate::error::ConfigError;

/// Shortest scrape interval, s: a server renders its whole metrics page for each scrape.
pub const MIN_SCRAPE_INTERVAL_S: f64 = 0.1;
/// Longest scrape interval, s.
pub const MAX_SCRAPE_INTERVAL_S: f64 = 3600.0;

/// How the server's metrics are scraped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerMetricsScrape {
    /// `on` (default): scrape, and warn (`server_metrics_unavailable`) when no scrape of a
    /// benchmark succeeded; `auto`: scrape when the endpoint answers with Prometheus text, and
    /// carry on quietly when it is absent; `off`: no scraping.
    #[serde(default)]
    pub mode: ScrapeMode,
    /// The metrics URL; default: the target's `/metrics` (same scheme, host and port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Seconds between scrapes (default 1); a scrape still unanswered after this long is
    /// abandoned and counted as failed.
    #[serde(default = "default_interval")]
    pub interval_seconds: f64,
    /// Also keep every series outside the common set, under its own name (summed over its
    /// label sets).
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_unmapped: bool,
    /// Relative difference between the client's and the server's token counts above which the
    /// benchmark warns `server_tokens_disagree` (default 0.05).
    #[serde(default = "default_tolerance")]
    pub token_tolerance: f64,
}

/// Whether and how quietly to scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScrapeMode {
    /// Scrape; warn when nothing could be read.
    #[default]
    On,
    /// Scrape when the endpoint is there; no warning when it is absent.
    Auto,
    /// Do not scrape.
    Off,
}

fn default_interval() -> f64 {
    1.0
}

fn default_tolerance() -> f64 {
    0.05
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Default for ServerMetricsScrape {
    fn default() -> Self {
        Self {
            mode: ScrapeMode::On,
            url: None,
            interval_seconds: default_interval(),
            keep_unmapped: false,
            token_tolerance: default_tolerance(),
        }
    }
}

impl ServerMetricsScrape {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::InvalidValue {
            key: format!("target.metrics.{key}"),
            message,
        };
        let s = self.interval_seconds;
        if !(s.is_finite() && (MIN_SCRAPE_INTERVAL_S..=MAX_SCRAPE_INTERVAL_S).contains(&s)) {
            return Err(invalid(
                "interval_seconds",
                format!(
                    "{} is outside [{MIN_SCRAPE_INTERVAL_S}, {MAX_SCRAPE_INTERVAL_S}] seconds",
                    shown(s)
                ),
            ));
        }
        let t = self.token_tolerance;
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            return Err(invalid(
                "token_tolerance",
                format!(
                    "{} is outside [0, 1]; it is a fraction, e.g. 0.05 for 5 %",
                    shown(t)
                ),
            ));
        }
        if let Some(url) = &self.url {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            let host = url.split_once("://").map_or("", |(_, rest)| rest);
            if !scheme_ok || host.is_empty() || host.starts_with('/') {
                return Err(invalid(
                    "url",
                    format!(
                        "`{url}` is not an http(s) URL; give e.g. `http://127.0.0.1:8000/metrics`"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_the_key_and_the_range() {
        let bad = [
            (
                ServerMetricsScrape {
                    interval_seconds: 0.0,
                    ..Default::default()
                },
                "invalid `target.metrics.interval_seconds`: 0 is outside [0.1, 3600] seconds",
            ),
            (
                ServerMetricsScrape {
                    token_tolerance: 5.0,
                    ..Default::default()
                },
                "invalid `target.metrics.token_tolerance`: 5 is outside [0, 1]; it is a fraction, e.g. 0.05 for 5 %",
            ),
            (
                ServerMetricsScrape {
                    url: Some("127.0.0.1:8000/metrics".to_owned()),
                    ..Default::default()
                },
                "invalid `target.metrics.url`: `127.0.0.1:8000/metrics` is not an http(s) URL; give e.g. `http://127.0.0.1:8000/metrics`",
            ),
        ];
        for (settings, expected) in bad {
            assert_eq!(settings.validate().unwrap_err().to_string(), expected);
        }
        assert!(ServerMetricsScrape::default().validate().is_ok());
    }
}
