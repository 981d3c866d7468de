//! One shard of a sharded run (`[shard]`, `run --shard I/N`). The front end has already cut
//! the config down to this shard's share of the load (`ShardConfig::apply`); what is left for
//! the engine: the shard's rows of a data file or trace, the offset of its evenly spaced
//! arrivals within the whole run's schedule, waiting for the agreed start, and the clock.

use std::time::{Duration, Instant, SystemTime};

use bench_core::config::{Config, StrategyKind};
use bench_core::schema::{ClockOffset, ShardRun, Timestamp, Warning};
use bench_core::{CancelToken, ConfigError};

/// This shard's index and the shard count, when the run is sharded.
fn position(config: &Config) -> Option<(u32, u32)> {
    let shard = config.shard.as_ref()?;
    Some((shard.index.unwrap_or(0), shard.count.max(1)))
}

/// This shard's rows of `rows`, a data file's or a trace's: row `k` goes to shard `k % N`, so
/// that no two shards send the same row and together they send every row. A file with fewer
/// rows than shards leaves a shard without any: an error naming `key`.
pub(crate) fn rows<T>(config: &Config, rows: Vec<T>, key: &str) -> Result<Vec<T>, ConfigError> {
    let Some((index, count)) = position(config) else {
        return Ok(rows);
    };
    let total = rows.len();
    let mine: Vec<T> = rows
        .into_iter()
        .enumerate()
        .filter(|(k, _)| *k % count as usize == index as usize)
        .map(|(_, row)| row)
        .collect();
    if mine.is_empty() {
        return Err(ConfigError::InvalidValue {
            key: key.to_owned(),
            message: format!("has {total} usable rows, fewer than the {count} shards (shard {index} would get none); use at least {count} rows, or fewer shards"),
        });
    }
    Ok(mine)
}

/// Seconds before a `constant` benchmark's first arrival: shard `i` of `N` at the shard's rate
/// `r` (the whole run's `N r`) starts `i / (N r)` in, so the shards' arrivals interleave into
/// the whole run's even schedule. Zero for every other strategy and for a whole run.
pub(crate) fn first_arrival_s(config: &Config, kind: StrategyKind, rate: f64) -> f64 {
    match position(config) {
        Some((index, count)) if kind == StrategyKind::Constant && rate > 0.0 => {
            f64::from(index) / (f64::from(count) * rate)
        }
        _ => 0.0,
    }
}

/// Waits for the agreed start (`shard.start_at`) on the wall clock, just before the first
/// benchmark's first request. A shard that is ready after that instant starts at once and
/// warns `shard_started_late`: its load came late to the union.
pub(crate) async fn wait_for_start(config: &Config, cancel: &CancelToken) -> Option<Warning> {
    let start_at = config.shard.as_ref()?.start_at?;
    let ahead = start_at.seconds_since(Timestamp::now());
    if ahead <= 0.0 {
        return Some(Warning {
            code: "shard_started_late".to_owned(),
            message: format!(
                "this shard was ready {:.3} s after the agreed start {start_at}, so its first benchmark began late; start the shards earlier or set a later shard.start_at",
                -ahead
            ),
        });
    }
    let until =
        Instant::now() + Duration::from_secs_f64(ahead.min(bench_core::config::MAX_START_AHEAD_S));
    tokio::select! {
        () = tokio::time::sleep_until(until.into()) => {}
        () = cancel.cancelled() => {}
    }
    None
}

/// This machine's clock against the target's, from the `Date` header of a `GET` to
/// `models_url`: the header names the whole second the server was in, so the offset is known
/// to half a second plus half the round trip. `None` when no answer carries a usable header.
pub(crate) async fn clock_offset(
    client: &reqwest::Client,
    models_url: &str,
) -> Option<ClockOffset> {
    let sent = SystemTime::now();
    let response = client.get(models_url).send().await.ok()?;
    let received = SystemTime::now();
    let date = response
        .headers()
        .get(reqwest::header::DATE)?
        .to_str()
        .ok()
        .and_then(Timestamp::parse_http_date)?;
    let rtt_ms = received.duration_since(sent).ok()?.as_secs_f64() * 1000.0;
    // The middle of the round trip against the middle of the second the server named.
    let local_ms = Timestamp::from(sent).unix_micros() as f64 / 1000.0 + rtt_ms / 2.0;
    let server_ms = date.unix_micros() as f64 / 1000.0 + 500.0;
    Some(ClockOffset {
        offset_ms: local_ms - server_ms,
        uncertainty_ms: 500.0 + rtt_ms / 2.0,
    })
}

/// The report's `shard` block.
pub(crate) fn run(config: &Config, clock: Option<ClockOffset>) -> Option<ShardRun> {
    let shard = config.shard.as_ref()?;
    Some(ShardRun {
        run_id: shard.run_id(config),
        index: shard.index.unwrap_or(0),
        count: shard.count,
        start_at: shard.start_at,
        clock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sharded(index: u32, count: u32) -> Config {
        let text = format!(
            "[profile]\nkind = \"constant\"\nrates = [8.0]\n[constraints]\nmax_seconds = 1\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 4\napproximate = true\n\
             [shard]\nindex = {index}\ncount = {count}\n"
        );
        Config::load(&text, bench_core::config::ConfigFormat::Toml, &[]).unwrap()
    }

    #[test]
    fn every_row_goes_to_exactly_one_shard() {
        let all: Vec<u32> = (0..10).collect();
        let mut seen: Vec<u32> = (0..3)
            .flat_map(|i| rows(&sharded(i, 3), all.clone(), "data.path").unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, all);
        assert_eq!(
            rows(&sharded(1, 3), all.clone(), "data.path").unwrap(),
            [1, 4, 7]
        );
        let error = rows(&sharded(3, 4), vec![1, 2, 3], "data.path")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("3 usable rows, fewer than the 4 shards"),
            "{error}"
        );
    }

    #[test]
    fn constant_arrivals_of_the_shards_interleave_into_the_whole_schedule() {
        // Four shards at 2/s each: the whole run's 8/s has an arrival every 125 ms.
        let mut union: Vec<f64> = (0..4)
            .flat_map(|i| {
                let phase = first_arrival_s(&sharded(i, 4), StrategyKind::Constant, 2.0);
                (0..5).map(move |k| phase + f64::from(k) / 2.0)
            })
            .collect();
        union.sort_by(f64::total_cmp);
        for (k, t) in union.iter().enumerate() {
            assert!((t - k as f64 * 0.125).abs() < 1e-12, "{union:?}");
        }
        assert_eq!(
            first_arrival_s(&sharded(2, 4), StrategyKind::Poisson, 2.0),
            0.0
        );
    }
}
