//! `llm-bench merge`: the reports of a sharded run's shards joined into the one report the
//! whole run would have written. Distributions merge exactly through their histograms, counts
//! add, rates are counts over the union of the shards' windows (`docs/merge.md`).
//!
//! The checks come first (`check`): every report must be a shard of the same run and config;
//! then each benchmark is merged on its own (`merge/benchmark.rs`).

mod benchmark;

use std::collections::BTreeMap;

use bench_core::schema::{Merged, MergedShard, Report, Warning};
use bench_core::Config;

/// Why shards cannot be merged. Each message names the file (and the metric) at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// `merge` was given nothing.
    #[error("no shard reports given; pass the reports of a sharded run's shards")]
    NoShards,
    /// A report of a whole run.
    #[error("{file} is not a shard's report (no `shard` block); run with --shard I/N")]
    NotAShard { file: String },
    /// Reports by different engines.
    #[error("{file} was measured by engine `{engine}` but {first} by `{first_engine}`; merge the shards of one run")]
    EngineDiffers {
        file: String,
        engine: String,
        first: String,
        first_engine: String,
    },
    /// Shards of runs split differently.
    #[error("{file} is shard {index} of {count} but {first} is of {first_count}; merge the shards of one run")]
    CountDiffers {
        file: String,
        index: u32,
        count: u32,
        first: String,
        first_count: u32,
    },
    /// An index that is not a shard of the run.
    #[error("{file} says it is shard {index} of {count}, which does not exist (0 to {last}); the report is damaged")]
    IndexOutOfRange {
        file: String,
        index: u32,
        count: u32,
        last: u32,
    },
    /// Shards whose configs differ beyond `shard.index` and `output`.
    #[error("{file} and {first} are not shards of one run: their configs differ in `{key}`; merge only the shards of one run (one config, one `shard.run_id`)")]
    ConfigDiffers {
        file: String,
        first: String,
        key: String,
    },
    /// Shards of different runs (same config, different run ids).
    #[error("{file} belongs to run `{run_id}` but {first} to run `{first_run_id}`; merge only the shards of one run")]
    RunIdDiffers {
        file: String,
        run_id: String,
        first: String,
        first_run_id: String,
    },
    /// One shard given twice.
    #[error("shard {index} is given twice: {first} and {file}; give each shard's report once")]
    DuplicateIndex {
        index: u32,
        first: String,
        file: String,
    },
    /// The shards ran different benchmarks under one number.
    #[error("benchmark {number}: {file} ran {found} but {first} ran {expected}; the shards did not run the same plan")]
    BenchmarkDiffers {
        number: usize,
        file: String,
        found: String,
        first: String,
        expected: String,
    },
    /// A distribution that cannot be merged exactly (genai-bench's and GuideLLM's reports
    /// carry no histograms).
    #[error("`{metric}` of benchmark {number} in {file} carries no histogram, so it cannot be merged exactly (only reports by the native engine carry them); merge shards of the native engine")]
    NoHistogram {
        metric: String,
        number: usize,
        file: String,
    },
    /// A histogram that does not decode or does not fit the others.
    #[error("`{metric}` of benchmark {number} in {file} cannot be merged: {detail}")]
    BadHistogram {
        metric: String,
        number: usize,
        file: String,
        detail: String,
    },
}

/// One shard's report and where it came from (the path given to `merge`).
#[derive(Debug, Clone)]
pub struct ShardReport {
    /// The path given, as the merged report's `merged.shards[].source`.
    pub source: String,
    /// Its report.
    pub report: Report,
}

/// Joins the shards of one run into its report; see `docs/merge.md` for every rule.
pub fn merge(shards: Vec<ShardReport>) -> Result<Report, MergeError> {
    let (run_id, count, shards) = check(shards)?;
    let first = &shards[0].report;
    let config = bench_core::config::shared_part(&first.config);
    let mut merged = Report::new(&first.engine, &config);
    merged.started_at = shards
        .iter()
        .map(|s| s.report.started_at)
        .min()
        .unwrap_or(first.started_at);
    merged.ended_at = shards
        .iter()
        .map(|s| s.report.ended_at)
        .max()
        .unwrap_or(first.ended_at);
    merged.interrupted = shards.iter().any(|s| s.report.interrupted);

    let present: Vec<u32> = shards.iter().map(|s| index_of(&s.report)).collect();
    let missing: Vec<u32> = (0..count).filter(|i| !present.contains(i)).collect();
    for shard in &shards {
        merged
            .warnings
            .extend(prefixed(index_of(&shard.report), &shard.report.warnings));
    }
    if !missing.is_empty() {
        merged.warnings.push(Warning {
            code: "shards_missing".to_owned(),
            message: format!(
                "{} of {count} shards were merged: shard(s) {} missing, so every count, rate and distribution lacks their share of the load",
                shards.len(),
                list(&missing)
            ),
        });
    }

    // Benchmarks by their index, in order; a shard that stopped early lacks the later ones.
    let mut numbers: Vec<usize> = shards
        .iter()
        .flat_map(|s| s.report.benchmarks.iter().map(|b| b.index))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    for index in numbers {
        let parts: Vec<benchmark::Part<'_>> = shards
            .iter()
            .filter_map(|s| {
                let b = s.report.benchmarks.iter().find(|b| b.index == index)?;
                Some(benchmark::Part {
                    shard: index_of(&s.report),
                    source: &s.source,
                    benchmark: b,
                })
            })
            .collect();
        let absent: Vec<u32> = present
            .iter()
            .copied()
            .filter(|i| !parts.iter().any(|p| p.shard == *i))
            .collect();
        let mut b = benchmark::merge(&parts, &config)?;
        if !absent.is_empty() {
            b.warnings.push(Warning {
                code: "shards_missing".to_owned(),
                message: format!(
                    "benchmark {}: shard(s) {} have no results for it (they stopped before it), so its figures lack their share of the load",
                    index + 1,
                    list(&absent)
                ),
            });
        }
        merged.benchmarks.push(b);
    }

    merged.merged = Some(Merged {
        run_id,
        count,
        shards: shards
            .iter()
            .map(|s| MergedShard {
                index: index_of(&s.report),
                source: s.source.clone(),
                started_at: s.report.started_at,
                ended_at: s.report.ended_at,
                clock: s.report.shard.as_ref().and_then(|r| r.clock),
            })
            .collect(),
        missing,
    });
    Ok(merged)
}

/// Checks that the reports are distinct shards of one run, and returns the run id, the shard
/// count and the shards in index order.
fn check(shards: Vec<ShardReport>) -> Result<(String, u32, Vec<ShardReport>), MergeError> {
    let Some(first) = shards.first() else {
        return Err(MergeError::NoShards);
    };
    for shard in &shards {
        if shard.report.shard.is_none() {
            return Err(MergeError::NotAShard {
                file: shard.source.clone(),
            });
        }
    }
    let first_run = first.report.shard.clone().expect("checked above");
    let first_config = shared_config(&first.report.config);
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for shard in &shards {
        let run = shard.report.shard.as_ref().expect("checked above");
        if shard.report.engine != first.report.engine {
            return Err(MergeError::EngineDiffers {
                file: shard.source.clone(),
                engine: shard.report.engine.clone(),
                first: first.source.clone(),
                first_engine: first.report.engine.clone(),
            });
        }
        if run.count != first_run.count {
            return Err(MergeError::CountDiffers {
                file: shard.source.clone(),
                index: run.index,
                count: run.count,
                first: first.source.clone(),
                first_count: first_run.count,
            });
        }
        if run.index >= run.count {
            return Err(MergeError::IndexOutOfRange {
                file: shard.source.clone(),
                index: run.index,
                count: run.count,
                last: run.count.saturating_sub(1),
            });
        }
        if let Some(key) = first_difference(&first_config, &shared_config(&shard.report.config)) {
            return Err(MergeError::ConfigDiffers {
                file: shard.source.clone(),
                first: first.source.clone(),
                key,
            });
        }
        if run.run_id != first_run.run_id {
            return Err(MergeError::RunIdDiffers {
                file: shard.source.clone(),
                run_id: run.run_id.clone(),
                first: first.source.clone(),
                first_run_id: first_run.run_id.clone(),
            });
        }
        if let Some(earlier) = seen.insert(run.index, &shard.source) {
            return Err(MergeError::DuplicateIndex {
                index: run.index,
                first: earlier.to_owned(),
                file: shard.source.clone(),
            });
        }
    }
    let mut shards = shards;
    shards.sort_by_key(|s| index_of(&s.report));
    Ok((first_run.run_id, first_run.count, shards))
}

/// What every shard's config must share (`bench_core::config::shared_part`): all of it but
/// `shard.index` and where each process writes (`output`, `engines.native.request_records`).
fn shared_config(config: &Config) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(bench_core::config::shared_part(config)) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// The first top-level key (in name order) whose value differs.
fn first_difference(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().find(|k| a.get(*k) != b.get(*k)).cloned()
}

/// One line for people: what a merged report joined, e.g. `merged from 3 of 4 shards of run
/// run-1a2b (missing: 2)`.
pub(crate) fn in_words(merged: &Merged) -> String {
    let mut line = format!(
        "merged from {} of {} shards of run {}",
        merged.shards.len(),
        merged.count,
        merged.run_id
    );
    if !merged.missing.is_empty() {
        line.push_str(&format!(" (missing: {})", list(&merged.missing)));
    }
    line
}

fn index_of(report: &Report) -> u32 {
    report.shard.as_ref().map_or(0, |s| s.index)
}

/// A shard's warnings, each message starting `shard I: `.
fn prefixed(index: u32, warnings: &[Warning]) -> impl Iterator<Item = Warning> + '_ {
    warnings.iter().map(move |w| Warning {
        code: w.code.clone(),
        message: format!("shard {index}: {}", w.message),
    })
}

fn list(indexes: &[u32]) -> String {
    indexes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
