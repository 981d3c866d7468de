//! `[shard]`: one process's share of a run split over several (`run --shard I/N`, or one pod
//! of a Kubernetes Indexed Job), so that the union of the shards is the run the config
//! describes. `llm-bench merge` joins the shards' reports into that run's report.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Config, ProfileKind};
use crate::error::ConfigError;
use crate::schema::Timestamp;

/// Most shards one run may be split into.
pub const MAX_SHARDS: u32 = 1024;
/// Furthest ahead `start_at` may lie: a start a day away is a typo, not a plan.
pub const MAX_START_AHEAD_S: f64 = 86_400.0;

/// This process's share of a sharded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// This shard, from 0 to `count - 1`. Usually not written here: `--shard I/N` sets it, or
    /// Kubernetes' `JOB_COMPLETION_INDEX` in an Indexed Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// How many shards share the run's load (1 to 1024).
    pub count: u32,
    /// The instant (RFC 3339, UTC) every shard starts its first benchmark, so that their
    /// load adds up; absent: each starts when it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Timestamp>,
    /// Names the run, the same in every shard; `merge` refuses reports of different runs.
    /// Default: derived from the config (without `index`), which includes `start_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl ShardConfig {
    /// The shard index, once `--shard` or `JOB_COMPLETION_INDEX` has set it.
    pub fn index(&self) -> Result<u32, ConfigError> {
        self.index.ok_or_else(|| {
            invalid(
                "shard.index",
                "is not set: give `--shard I/N`, set `shard.index`, or run in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)",
            )
        })
    }

    pub(crate) fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        if !(1..=MAX_SHARDS).contains(&self.count) {
            return Err(invalid(
                "shard.count",
                format!(
                    "{} is not a shard count; give 1 to {MAX_SHARDS}",
                    self.count
                ),
            ));
        }
        if let Some(index) = self.index {
            if index >= self.count {
                return Err(invalid(
                    "shard.index",
                    format!(
                        "{index} is not a shard of {}; give 0 to {}",
                        self.count,
                        self.count - 1
                    ),
                ));
            }
        }
        if let Some(id) = &self.run_id {
            if id.is_empty()
                || id.len() > 128
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(invalid(
                    "shard.run_id",
                    format!("{id:?} is not a run id; use 1 to 128 letters, digits, `-`, `_` or `.`"),
                ));
            }
        }
        // A decision taken on the whole run's measurements cannot be taken by one share.
        let global = match config.profile.kind {
            ProfileKind::Sweep => Some("a sweep chooses its rates from the whole run's synchronous and throughput steps"),
            ProfileKind::Search => Some("an SLO search chooses each step's rate from the whole run's last step"),
            ProfileKind::Synchronous => Some("a synchronous benchmark is one request at a time, which cannot be shared"),
            _ => None,
        };
        if let Some(why) = global {
            return Err(invalid(
                "profile.kind",
                format!("`{}` cannot be sharded: {why}; run each step as its own sharded job (e.g. `concurrent` or `constant` at the step's load), or run it unsharded", config.profile.kind.name()),
            ));
        }
        Ok(())
    }

    /// The run id: the given one, or one derived from everything the shards share.
    pub fn run_id(&self, config: &Config) -> String {
        if let Some(id) = &self.run_id {
            return id.clone();
        }
        let mut shared = config.clone();
        if let Some(shard) = &mut shared.shard {
            shard.index = None;
        }
        shared.outputs.clear();
        let text = serde_json::to_string(&shared).unwrap_or_default();
        format!("run-{:016x}", fnv1a(text.as_bytes()))
    }
}

/// Checks a start instant against now: not past, not more than a day ahead.
pub fn check_start_at(start_at: Timestamp, now: Timestamp) -> Result<(), ConfigError> {
    let ahead = start_at.seconds_since(now);
    if ahead < 0.0 {
        return Err(invalid(
            "shard.start_at",
            format!(
                "{start_at} is {:.1} s in the past; give a time ahead of now (every shard must start on it), e.g. `--start-at {}`",
                -ahead,
                now.plus(std::time::Duration::from_secs(60))
            ),
        ));
    }
    if ahead > MAX_START_AHEAD_S {
        return Err(invalid(
            "shard.start_at",
            format!(
                "{start_at} is {:.0} s ahead, more than the limit of {MAX_START_AHEAD_S:.0} s (a day); give a nearer time",
                ahead
            ),
        ));
    }
    Ok(())
}

/// FNV-1a, 64 bits: a stable hash for run ids (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        message: message.into(),
    }
}
