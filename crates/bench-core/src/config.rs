//! The configuration model: what to benchmark, how, and where the results go.
//!
//! Text in TOML, YAML or JSON becomes a generic tree, the legacy autotuner block (if any) is
//! converted (`legacy`), `--set key=value` overrides are applied (`overrides`), and the tree
//! is deserialized strictly: an unknown key is an error that suggests the intended one
//! (`strict`). [`Config::validate`] then checks what types cannot: ranges, and that each key
//! fits the kind it sits under. The reference is `docs/config.md`.
//!
//! - `model`: the types a config deserializes into, and which kinds read which keys;
//! - `load`: text to a [`Config`] ([`Config::load`]), through `legacy`, `compact` (the
//!   `data = "prompt_tokens=..."` string), `overrides` (with `rate`, the `profile.rate`
//!   shorthand of `--rate`) and `strict`;
//! - `validate`: [`Config::validate`]; [`limits`]: the bounds it checks;
//! - `redact`: [`Config::redacted`], the copy a report holds;
//! - `plan`: [`Config::plan`], the benchmarks a config asks for, and the [`Strategy`] of each;
//!   `scenario`: genai-bench's traffic scenario grammar;
//! - `search`: [`SearchSettings`], the `[profile.search]` table of the SLO search, and its checks.
//!
//! The config module uses nothing of bench-core's but `error`: the report (`schema`) holds a
//! config, so a config cannot know the report.

mod compact;
mod legacy;
pub mod limits;
mod load;
mod model;
mod overrides;
mod plan;
mod rate;
mod redact;
mod scenario;
mod search;
mod server_metrics;
mod shard;
mod sessions;
mod strict;
mod validate;

pub use load::ConfigFormat;
pub use model::{
    Api, Config, Constraints, Data, DataKind, OptionsTable, OutputFormat, OutputSpec,
    OverSaturation, Profile, ProfileKind, RateStrategy, SaturationMode, Slo, Spacing, Target,
    TargetKind, ThinkDistribution, Timeouts, Tls, Transient, DEFAULT_ENGINE,
    DEFAULT_INTERRUPT_GRACE_SECONDS, DEFAULT_MOCK_MODEL,
};
pub use plan::{
    PlannedBenchmark, PlannedStrategy, Strategy, StrategyKind, DEFAULT_MAX_CONCURRENCY,
    DEFAULT_SWEEP_SIZE,
};
pub use redact::REDACTED;
pub use scenario::{Scenario, ScenarioError, VALID_FORMS as SCENARIO_FORMS};
pub use search::{SearchSettings, DEFAULT_SEARCH_MAX_STEPS};
pub use shard::{check_start_at, ShardConfig, MAX_SHARDS, MAX_START_AHEAD_S};
pub use server_metrics::{
    ScrapeMode, ServerMetricsScrape, MAX_SCRAPE_INTERVAL_S, MIN_SCRAPE_INTERVAL_S,
};
pub(crate) use strict::closest_name;
