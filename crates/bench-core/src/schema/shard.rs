//! Sharded runs in the report: what one shard was (`shard`), and what a merged report was
//! made of (`merged`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Timestamp;

/// One shard's place in its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardRun {
    /// The run's id, the same in every shard of the run.
    pub run_id: String,
    /// This shard, from 0.
    pub index: u32,
    /// How many shards the run was split into.
    pub count: u32,
    /// The instant every shard was told to start (`shard.start_at`); absent when each
    /// started when it was ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Timestamp>,
    /// This machine's clock against the target's, measured before the first benchmark;
    /// absent when the target sent no usable `Date` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOffset>,
}

/// How far this machine's clock is from the target's, read from the `Date` header of a
/// response (whole seconds, so the offset is known to within half a second plus half the
/// round trip).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockOffset {
    /// This machine's clock minus the target's, ms (positive: this clock is ahead).
    pub offset_ms: f64,
    /// The offset is within this many ms of the truth.
    pub uncertainty_ms: f64,
}

/// What a merged report (`llm-bench merge`) was made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Merged {
    /// The run's id, shared by every shard.
    pub run_id: String,
    /// How many shards the run was split into.
    pub count: u32,
    /// The shards merged, by index.
    pub shards: Vec<MergedShard>,
    /// Indexes of the run's shards that were not given to `merge`: the merged figures miss
    /// their load (and the report warns `shards_missing`).
    pub missing: Vec<u32>,
}

/// One merged shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergedShard {
    /// The shard's index.
    pub index: u32,
    /// Where its report came from (the path given to `merge`).
    pub source: String,
    /// When the shard's run started.
    pub started_at: Timestamp,
    /// When the shard's run ended.
    pub ended_at: Timestamp,
    /// The shard's clock against the target's, as its report measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOffset>,
}
