//! `[shard]`: one process's share of a run split over several (`run --shard I/N`, or one pod
//! of a Kubernetes Indexed Job), so that the union of the shards is the run the config
//! describes. `llm-bench merge` joins the shards' reports into that run's report.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Config, ProfileKind, Transient};
use crate::error::ConfigError;
use crate::time::Timestamp;

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
                    format!(
                        "{id:?} is not a run id; use 1 to 128 letters, digits, `-`, `_` or `.`"
                    ),
                ));
            }
        }
        // A decision taken on the whole run's measurements cannot be taken by one share.
        let global = match config.profile.kind {
            ProfileKind::Sweep => Some(
                "a sweep chooses its rates from the whole run's synchronous and throughput steps",
            ),
            ProfileKind::Search => {
                Some("an SLO search chooses each step's rate from the whole run's last step")
            }
            ProfileKind::Synchronous => {
                Some("a synchronous benchmark is one request at a time, which cannot be shared")
            }
            _ => None,
        };
        if config.profile.kind == ProfileKind::Throughput
            && config.profile.max_concurrency.is_none()
        {
            return Err(invalid(
                "profile.max_concurrency",
                "is not set: a throughput benchmark sizes its concurrency to the server, a decision on the whole run's measurements that one shard cannot take; give the whole run's `profile.max_concurrency` (each shard runs its share)",
            ));
        }
        if let Some(why) = global {
            return Err(invalid(
                "profile.kind",
                format!("`{}` cannot be sharded: {why}; run each step as its own sharded job (e.g. `concurrent` or `constant` at the step's load), or run it unsharded", config.profile.kind.name()),
            ));
        }
        // Every shard must get some of each level: the last shard gets the least.
        self.apply(config, self.index.unwrap_or(self.count - 1))?;
        Ok(())
    }

    /// The config shard `index` runs: its share of every level of load, with a seed of its
    /// own. The union of the shards' loads is the whole config's: streams, concurrency caps
    /// and request counts are split as evenly as whole numbers allow (the first shards get
    /// one more), rates are divided by `count`, and every random choice is seeded from the
    /// run's seed and the index, so no two shards draw the same arrivals or lengths.
    pub fn apply(&self, config: &Config, index: u32) -> Result<Config, ConfigError> {
        let count = self.count;
        let split = |key: &str, total: u64| -> Result<u64, ConfigError> {
            let part = share(total, index, count);
            if part == 0 {
                return Err(invalid(
                    key,
                    format!("{total} cannot be split over {count} shards (shard {index} would get none); give at least {count}, or use fewer shards"),
                ));
            }
            Ok(part)
        };
        let mut out = config.clone();
        out.seed = derive_seed(config.seed, index);
        let profile = &mut out.profile;
        if let Some(levels) = &mut profile.streams {
            for level in levels.iter_mut() {
                *level = split("profile.streams", u64::from(*level))? as u32;
            }
        }
        if let Some(rates) = &mut profile.rates {
            for rate in rates.iter_mut() {
                *rate /= f64::from(count);
            }
        }
        if let Some(cap) = &mut profile.max_concurrency {
            *cap = split("profile.max_concurrency", u64::from(*cap))? as u32;
        }
        if let Some(n) = &mut out.constraints.max_requests {
            *n = split("constraints.max_requests", *n)?;
        }
        for (key, transient) in [
            ("warmup.requests", &mut out.warmup),
            ("cooldown.requests", &mut out.cooldown),
        ] {
            if let Some(Transient::Requests(n)) = transient {
                *n = split(key, *n)?;
            }
        }
        if let Some(samples) = &mut out.data.samples {
            *samples = split("data.samples", u64::from(*samples))? as u32;
        }
        if let Some(shard) = &mut out.shard {
            shard.index = Some(index);
        }
        Ok(out)
    }

    /// The run id: the given one, or one derived from everything the shards share.
    pub fn run_id(&self, config: &Config) -> String {
        if let Some(id) = &self.run_id {
            return id.clone();
        }
        let text = serde_json::to_string(&shared_part(config)).unwrap_or_default();
        format!("run-{:016x}", fnv1a(text.as_bytes()))
    }
}

/// What every shard of a run shares: the config without the shard's index and without where
/// this process writes (`output`, the native engine's `request_records`), which may differ
/// between shards on one machine. Shards whose shared parts differ belong to different runs.
pub fn shared_part(config: &Config) -> Config {
    let mut shared = config.clone();
    if let Some(shard) = &mut shared.shard {
        shard.index = None;
    }
    shared.outputs.clear();
    if let Some(native) = shared.engines.get_mut("native") {
        if let Some(table) = native.0.as_object_mut() {
            table.remove("request_records");
        }
        if native.0.as_object().is_some_and(serde_json::Map::is_empty) {
            shared.engines.remove("native");
        }
    }
    shared
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

/// Shard `index`'s part of `total` things split over `count` shards: the first
/// `total % count` shards get one more.
pub(crate) fn share(total: u64, index: u32, count: u32) -> u64 {
    let count = u64::from(count.max(1));
    total / count + u64::from(u64::from(index) < total % count)
}

/// A shard's seed: the run's seed and the index mixed (SplitMix64's finalizer), so that
/// neighbouring indexes get unrelated generators.
fn derive_seed(seed: u64, index: u32) -> u64 {
    let mut z = seed ^ (u64::from(index) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::load(text, crate::config::ConfigFormat::Toml, &[]).unwrap()
    }

    #[test]
    fn shares_add_up_to_the_whole_and_differ_by_at_most_one() {
        for total in 0..50u64 {
            for count in 1..9u32 {
                let parts: Vec<u64> = (0..count).map(|i| share(total, i, count)).collect();
                assert_eq!(parts.iter().sum::<u64>(), total);
                assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn a_shard_runs_its_share_with_its_own_seed() {
        let whole = config(
            "seed = 7\n[profile]\nkind = \"concurrent\"\nstreams = [10, 4]\n[constraints]\nmax_requests = 9\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n[shard]\ncount = 4\n",
        );
        let shard = whole.shard.clone().unwrap();
        let parts: Vec<Config> = (0..4).map(|i| shard.apply(&whole, i).unwrap()).collect();
        let streams: Vec<Vec<u32>> = parts
            .iter()
            .map(|c| c.profile.streams.clone().unwrap())
            .collect();
        assert_eq!(streams, [vec![3, 1], vec![3, 1], vec![2, 1], vec![2, 1]]);
        let requests: Vec<u64> = parts
            .iter()
            .map(|c| c.constraints.max_requests.unwrap())
            .collect();
        assert_eq!(requests, [3, 2, 2, 2]);
        let mut seeds: Vec<u64> = parts.iter().map(|c| c.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        assert_eq!(seeds.len(), 4, "every shard draws from its own generator");
        assert_eq!(parts[2].shard.as_ref().unwrap().index, Some(2));
        // The run id, from the config as given, is the same for every shard's index, and
        // another config has another.
        let ids: Vec<String> = (0..4)
            .map(|i| {
                let mut given = whole.clone();
                given.shard.as_mut().unwrap().index = Some(i);
                shard.run_id(&given)
            })
            .collect();
        assert!(ids.iter().all(|id| *id == shard.run_id(&whole)), "{ids:?}");
        let other = config(&format!("seed = 8\n{}", "[profile]\nkind = \"concurrent\"\nstreams = [10, 4]\n[constraints]\nmax_requests = 9\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n[shard]\ncount = 4\n"));
        assert_ne!(shard.run_id(&other), shard.run_id(&whole));
    }

    #[test]
    fn rates_divide_and_levels_too_small_to_split_are_refused() {
        let base = "[constraints]\nmax_seconds = 5\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n";
        let rated = config(&format!(
            "[profile]\nkind = \"constant\"\nrates = [10.0]\n{base}[shard]\ncount = 4\n"
        ));
        let part = rated.shard.clone().unwrap().apply(&rated, 3).unwrap();
        assert_eq!(part.profile.rates, Some(vec![2.5]));
        let text =
            format!("[profile]\nkind = \"concurrent\"\nstreams = [3]\n{base}[shard]\ncount = 4\n");
        let error = Config::load(&text, crate::config::ConfigFormat::Toml, &[])
            .and_then(|c| c.validate().map(|()| c))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("profile.streams") && error.contains("3 cannot be split over 4 shards"),
            "{error}"
        );
        for (kind, key) in [
            ("sweep", "a sweep"),
            ("synchronous", "one request at a time"),
        ] {
            let text = format!("[profile]\nkind = \"{kind}\"\n{base}[shard]\ncount = 2\n");
            let error = Config::load(&text, crate::config::ConfigFormat::Toml, &[])
                .and_then(|c| c.validate().map(|()| c))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("cannot be sharded") && error.contains(key),
                "{error}"
            );
        }
    }

    #[test]
    fn a_start_in_the_past_or_more_than_a_day_ahead_is_refused() {
        let now = Timestamp::parse("2026-11-29T12:00:00Z").unwrap();
        let at = |text: &str| check_start_at(Timestamp::parse(text).unwrap(), now);
        assert!(at("2026-11-29T12:01:00Z").is_ok());
        let past = at("2026-11-29T11:59:00Z").unwrap_err().to_string();
        assert!(past.contains("60.0 s in the past"), "{past}");
        let far = at("2026-12-01T12:00:00Z").unwrap_err().to_string();
        assert!(far.contains("more than the limit"), "{far}");
    }
}
