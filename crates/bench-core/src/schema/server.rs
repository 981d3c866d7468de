//! What the server's own Prometheus `/metrics` said during a benchmark (`[target.metrics]`),
//! in a small common set whatever the server's naming (vLLM, SGLang, llama.cpp, TGI).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The server's metrics over one benchmark: from a scrape just before its first request to one
/// just after its last request ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerMetrics {
    /// The URL scraped.
    pub url: String,
    /// How the scraping went.
    pub status: ScrapeStatus,
    /// Whose metric names the page used: `vllm`, `sglang`, `llamacpp` or `tgi`; `null` when
    /// none of the common set was found.
    pub naming: Option<String>,
    /// Seconds between scrapes, as configured.
    pub interval_s: f64,
    /// Scrapes that returned Prometheus text.
    pub scrapes: u64,
    /// Scrapes that failed (connection, HTTP status, timeout, not Prometheus text).
    pub failed_scrapes: u64,
    /// The last failure's description; `null` without one.
    pub last_error: Option<String>,
    /// When scraping began (just before the benchmark's first request): the time 0 of
    /// `series`.
    pub started_at: super::Timestamp,
    /// Seconds from the first to the last successful scrape.
    pub window_s: f64,
    /// Requests the server was running (in its batch).
    pub running: Option<GaugeSummary>,
    /// Requests waiting in the server's queue.
    pub waiting: Option<GaugeSummary>,
    /// KV-cache usage, 0 to 1.
    pub kv_cache_usage: Option<GaugeSummary>,
    /// Prompt tokens the server took in over the window (its counter's increase), cached ones
    /// included.
    pub prompt_tokens: Option<f64>,
    /// Tokens the server generated over the window.
    pub generation_tokens: Option<f64>,
    /// Requests the server preempted over the window.
    pub preemptions: Option<f64>,
    /// Prefix-cache hits over lookups in the window (tokens), or the mean of the server's own
    /// hit-rate gauge; 0 to 1.
    pub prefix_cache_hit_rate: Option<f64>,
    /// The server's own time to first token over the window, from its histogram.
    pub ttft_ms: Option<ServerHistogram>,
    /// The server's own time between output tokens.
    pub itl_ms: Option<ServerHistogram>,
    /// The server's own end-to-end request latency.
    pub e2e_latency_ms: Option<ServerHistogram>,
    /// Time requests waited in the server's queue.
    pub queue_time_ms: Option<ServerHistogram>,
    /// The common set's values at each scrape, for time lines.
    pub series: Vec<ServerSeries>,
    /// With `keep_unmapped`: every other series, by its own name (summed over label sets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmapped: Vec<UnmappedMetric>,
    /// The client's token counts next to the server's counters.
    pub token_check: Option<TokenCheck>,
    /// The scraper's own CPU time per scrape (request, parse, fold), ms: what watching the
    /// server costs the client's machine.
    pub cpu_ms_per_scrape: Option<f64>,
}

/// How the scraping of a benchmark went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScrapeStatus {
    /// At least two scrapes succeeded: figures over the window.
    Scraped,
    /// Some scrapes succeeded, too few for a window (one).
    Partial,
    /// `mode = "auto"` and the endpoint was not there (or not Prometheus text).
    Absent,
    /// No scrape succeeded.
    Failed,
}

/// A gauge over the window's scrapes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GaugeSummary {
    /// Lowest value scraped.
    pub min: f64,
    /// Mean of the values scraped (scrapes are evenly spaced).
    pub mean: f64,
    /// Highest value scraped.
    pub max: f64,
    /// Value at the last scrape.
    pub last: f64,
}

/// A server-side latency histogram over the window: the increase of its buckets between the
/// first and the last scrape, with quantiles interpolated inside a bucket as Prometheus's
/// `histogram_quantile` does (a quantile in the `+Inf` bucket is the highest finite bound).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerHistogram {
    /// Observations in the window.
    pub count: f64,
    /// Their mean, ms (the increase of `_sum` over that of `_count`).
    pub mean: f64,
    /// Median, ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 99th percentile, ms.
    pub p99: f64,
}

/// One series of the common set over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSeries {
    /// The common name: `running`, `waiting`, `kv_cache_usage`, `prompt_tokens`,
    /// `generation_tokens` (counters as their increase since the first scrape), ...
    pub name: String,
    /// `[seconds since the benchmark started, value]` per scrape; long benchmarks keep every
    /// second, fourth, ... scrape so that a series holds at most 1,024 points.
    pub points: Vec<[f64; 2]>,
}

/// A series outside the common set (`keep_unmapped`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmappedMetric {
    /// The sample name as the server wrote it (`_bucket`, `_sum`, `_count` included).
    pub name: String,
    /// The Prometheus type its family declared (`gauge`, `counter`, ...; `untyped` without one).
    pub kind: String,
    /// Counters: the increase over the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increase: Option<f64>,
    /// Other types: the values scraped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<GaugeSummary>,
}

/// The client's token counts next to the server's over the same benchmark. They differ when
/// other clients use the server, when requests were cancelled after the server generated
/// tokens the client never read, or when the server counts another way (a chat template's
/// tokens in the prompt).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCheck {
    /// Output tokens of every request the benchmark finished, as the client counted them.
    pub client_output_tokens: u64,
    /// The server's generated-token increase; `null` without the counter.
    pub server_generation_tokens: Option<f64>,
    /// Prompt tokens of every request the benchmark finished (the server's usage figure where
    /// it gave one, else the client's count).
    pub client_prompt_tokens: u64,
    /// The server's prompt-token increase; `null` without the counter.
    pub server_prompt_tokens: Option<f64>,
    /// |server generated − client output| / client output; prompt tokens are not judged (a
    /// server counts the prompt of a request it admitted even when the client left before
    /// its first token).
    pub relative_difference: Option<f64>,
    /// Whether it is within `target.metrics.token_tolerance`.
    pub agrees: Option<bool>,
}
