//! The largest (and smallest) values a config may hold. They are far beyond any real
//! benchmark, and they keep every value an engine derives from a config (a `Duration`, an
//! arrival time, a count) representable, so no config can make an engine panic. They do not
//! bound memory: `samples` x `prompt_tokens` is built up front.
//! `docs/config.md` lists them.

use crate::error::ConfigError;

/// Every duration in seconds (`max_seconds`, timeouts, ramp-up, warmup, grace, ...): 30 days.
pub const MAX_SECONDS: f64 = 30.0 * 24.0 * 3600.0;

/// Requests and errors per benchmark (`max_requests`, `max_errors`, warmup and cooldown
/// `requests`).
pub const MAX_REQUESTS: u64 = 1_000_000_000;

/// Concurrent streams and the concurrency cap (`profile.streams[i]`, `max_concurrency`).
pub const MAX_STREAMS: u32 = 1_000_000;

/// Entries of `profile.streams` and `profile.rates`, and `profile.sweep_size`.
pub const MAX_STEPS: u32 = 1_000;

/// Highest arrival rate, requests per second.
pub const MAX_RATE_PER_S: f64 = 1_000_000.0;

/// Lowest arrival rate, requests per second (one request every 1000 s): a benchmark at a
/// lower rate would send nothing in any sensible `max_seconds`, so such a rate is a typo.
pub const MIN_RATE_PER_S: f64 = 0.001;

/// Range of `profile.burstiness`, the shape of gamma-distributed gaps: a CV from 10 (0.01) to
/// 0.01 (10,000); beyond them the gaps are all but zero or all but even, which `constant` says.
pub const MIN_BURSTINESS: f64 = 0.01;
/// See [`MIN_BURSTINESS`].
pub const MAX_BURSTINESS: f64 = 10_000.0;

/// Range of `profile.speedup`, the replay's time scale.
pub const MIN_SPEEDUP: f64 = 0.001;
/// See [`MIN_SPEEDUP`].
pub const MAX_SPEEDUP: f64 = 1_000_000.0;

/// Size of the `max_error_rate` window, requests.
pub const MAX_ERROR_RATE_WINDOW: u32 = 1_000_000;

/// Prepared requests (`data.samples`).
pub const MAX_SAMPLES: u32 = 1_000_000;

/// Every token count, its bounds and its standard deviation (`prompt_tokens`,
/// `output_tokens`, `prefix_tokens`, the numbers of a traffic scenario).
pub const MAX_TOKENS: u32 = 10_000_000;

/// Turns per session (`data.turns`): far more than any conversation, few enough that a
/// session's history stays a prompt a server can take.
pub const MAX_TURNS: u32 = 1_000;

/// Seconds as a `Duration`, for any float: negative and NaN are zero, and anything past what a
/// `Duration` holds is `Duration::MAX`. Engines convert every configured or measured number of
/// seconds through it, so no value, validated or not, can make them panic.
pub fn duration_from_secs(seconds: f64) -> std::time::Duration {
    match std::time::Duration::try_from_secs_f64(seconds) {
        Ok(duration) => duration,
        Err(_) if seconds > 0.0 => std::time::Duration::MAX,
        Err(_) => std::time::Duration::ZERO,
    }
}

/// A float as people read it: no 300-digit expansions of huge values.
pub(crate) fn shown(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_finite() && magnitude != 0.0 && !(1e-6..1e15).contains(&magnitude) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        message,
    }
}

/// Seconds that must be finite, at least `min` (`> 0` when `positive`) and at most
/// [`MAX_SECONDS`].
pub(crate) fn seconds(key: &str, value: f64, positive: bool) -> Result<(), ConfigError> {
    let low_ok = if positive { value > 0.0 } else { value >= 0.0 };
    if !(value.is_finite() && low_ok) {
        let what = if positive {
            "a positive number"
        } else {
            "zero or more seconds"
        };
        return Err(invalid(key, format!("{} must be {what}", shown(value))));
    }
    if value > MAX_SECONDS {
        return Err(invalid(
            key,
            format!(
                "{} s is more than the limit of {MAX_SECONDS} s (30 days); give at most that",
                shown(value)
            ),
        ));
    }
    Ok(())
}

/// A whole number of at most `max`; `what` names the unit (`requests`, `tokens`).
pub(crate) fn at_most<T>(key: &str, value: T, max: T, what: &str) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if value > max {
        return Err(invalid(
            key,
            format!("{value} {what} is more than the limit of {max}; give at most {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigFormat};

    const BASE: &str = "[profile]\nkind = \"sweep\"\n[constraints]\nmax_seconds = 60\n\
        [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 8\napproximate = true\n";

    fn load(sets: &[&str]) -> Result<Config, ConfigError> {
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        Config::load(BASE, ConfigFormat::Toml, &sets)
    }

    /// Even a value `validate` refuses (the struct is public) gives a duration, not a panic.
    #[test]
    fn the_interrupt_grace_never_panics() {
        for (given, expected) in [
            (None, 2.0),
            (Some(0.5), 0.5),
            (Some(1e300), MAX_SECONDS),
            (Some(f64::INFINITY), MAX_SECONDS),
            (Some(f64::NAN), 0.0),
            (Some(-5.0), 0.0),
        ] {
            let constraints = crate::config::Constraints {
                interrupt_grace_seconds: given,
                ..Default::default()
            };
            assert_eq!(
                constraints.interrupt_grace().as_secs_f64(),
                expected,
                "{given:?}"
            );
        }
    }

    /// Each limit: its value loads, the next one is refused naming the key, the value and the
    /// limit.
    #[test]
    fn every_limit_accepts_its_value_and_refuses_beyond_it() {
        let cases: &[(&[&str], &[&str], &str)] = &[
            (&["constraints.max_seconds=2592000"], &["constraints.max_seconds=2592000.5"],
             "invalid `constraints.max_seconds`: 2592000.5 s is more than the limit of 2592000 s (30 days); give at most that"),
            (&["constraints.interrupt_grace_seconds=2592000"], &["constraints.interrupt_grace_seconds=1e300"],
             "invalid `constraints.interrupt_grace_seconds`: 1e300 s is more than the limit of 2592000 s (30 days); give at most that"),
            (&["constraints.max_requests=1000000000"], &["constraints.max_requests=1000000001"],
             "invalid `constraints.max_requests`: 1000000001 requests is more than the limit of 1000000000; give at most 1000000000"),
            (&["constraints.max_errors=1000000000"], &["constraints.max_errors=1000000001"],
             "invalid `constraints.max_errors`: 1000000001 errors is more than the limit of 1000000000; give at most 1000000000"),
            (&["constraints.max_error_rate=0.5", "constraints.error_rate_window=1000000"],
             &["constraints.max_error_rate=0.5", "constraints.error_rate_window=1000001"],
             "invalid `constraints.error_rate_window`: 1000001 requests is more than the limit of 1000000; give at most 1000000"),
            (&["constraints.over_saturation={ min_seconds = 2592000, window_seconds = 2592000 }"],
             &["constraints.over_saturation={ window_seconds = 1e10 }"],
             "invalid `constraints.over_saturation.window_seconds`: 10000000000 s is more than the limit of 2592000 s (30 days); give at most that"),
            (&["profile.sweep_size=1000"], &["profile.sweep_size=1001"],
             "invalid `profile.sweep_size`: 1001 benchmarks is more than the limit of 1000; give at most 1000"),
            (&["profile.max_concurrency=1000000", "profile.rampup_seconds=2592000"], &["profile.max_concurrency=1000001"],
             "invalid `profile.max_concurrency`: 1000001 requests is more than the limit of 1000000; give at most 1000000"),
            (&["profile={ kind = \"concurrent\", streams = [1000000] }"], &["profile={ kind = \"concurrent\", streams = [1, 1000001] }"],
             "invalid `profile.streams[1]`: 1000001 streams is more than the limit of 1000000; give at most 1000000"),
            (&["profile={ kind = \"constant\", rates = [0.001, 1e6] }"], &["profile={ kind = \"poisson\", rates = [1e300] }"],
             "invalid `profile.rates[0]`: 1e300 requests per second is more than the limit of 1000000; give at most 1000000"),
            (&["profile={ kind = \"constant\", rates = [1] }"], &["profile={ kind = \"constant\", rates = [1e-300] }"],
             "invalid `profile.rates[0]`: 1e-300 requests per second is less than the minimum of 0.001 (one request every 1000 s); give at least 0.001"),
            (&["target.timeouts={ connect_seconds = 2592000, read_seconds = 2592000, request_seconds = 2592000 }"],
             &["target.timeouts.read_seconds=1e300"],
             "invalid `target.timeouts.read_seconds`: 1e300 s is more than the limit of 2592000 s (30 days); give at most that"),
            (&["warmup={ seconds = 59 }"], &["cooldown={ seconds = 1e300 }"],
             "invalid `cooldown.seconds`: 1e300 s is more than the limit of 2592000 s (30 days); give at most that"),
            (&["warmup={ requests = 1000000000 }"], &["warmup={ requests = 1000000001 }"],
             "invalid `warmup.requests`: 1000000001 requests is more than the limit of 1000000000; give at most 1000000000"),
            (&["data.prompt_tokens=10000000", "data.prompt_tokens_stdev=1e7", "data.prefix_tokens=10000000"],
             &["data.output_tokens_max=10000001"],
             "invalid `data.output_tokens_max`: 10000001 tokens is more than the limit of 10000000; give at most 10000000"),
            (&["data.samples=1000000"], &["data.samples=1000001"],
             "invalid `data.samples`: 1000001 samples is more than the limit of 1000000; give at most 1000000"),
            (&["data={ kind = \"scenario\", scenario = \"N(10000000,10000000)/(1,1)\", approximate = true }"],
             &["data={ kind = \"scenario\", scenario = \"U(1,10000001)\", approximate = true }"],
             "invalid `data.scenario`: `U(1,10000001)` asks for 10000001 tokens, more than the limit of 10000000; give at most 10000000"),
            (&["slo.ttft_ms=2592000000"], &["slo.e2e_ms=2592000001"],
             "invalid `slo.e2e_ms`: 2592000001 ms is more than the limit of 2592000000 ms (30 days); give at most that"),
        ];
        for (within, beyond, expected) in cases {
            if let Err(e) = load(within) {
                panic!("{within:?} is within the limits but refused: {e}");
            }
            match load(beyond) {
                Ok(_) => panic!("{beyond:?} is beyond the limits but loads"),
                Err(e) => assert_eq!(&e.to_string(), expected, "{beyond:?}"),
            }
        }
    }

    /// `burstiness`: in range, needed by `gamma` and by a sweep of gamma steps, refused
    /// elsewhere; a gamma profile plans gamma benchmarks that carry it.
    #[test]
    fn burstiness_is_bounded_and_read_only_with_gamma_arrivals() {
        let gamma = |b: &str| format!("profile={{ kind = \"gamma\", rates = [2, 4]{b} }}");
        let config = load(&[&gamma(", burstiness = 0.01")]).unwrap();
        let plan = config.plan();
        assert_eq!(plan.len(), 2);
        match &plan[1].strategy {
            crate::config::PlannedStrategy::Fixed(s) => {
                assert_eq!(s.kind, crate::config::StrategyKind::Gamma);
                assert_eq!((s.target_rate_per_s, s.burstiness), (Some(4.0), Some(0.01)));
            }
            other => panic!("{other:?}"),
        }
        assert!(load(&[&gamma(", burstiness = 10000")]).is_ok());
        let sweep = "profile={ kind = \"sweep\", strategy = \"gamma\", burstiness = 2 }";
        assert!(load(&[sweep]).is_ok());
        for (sets, expected) in [
            (gamma(", burstiness = 0.005"), "invalid `profile.burstiness`: 0.005 is outside [0.01, 10000]; 1 is Poisson, below 1 burstier, above 1 more even"),
            (gamma(", burstiness = -1"), "invalid `profile.burstiness`: -1 is outside [0.01, 10000]; 1 is Poisson, below 1 burstier, above 1 more even"),
            (gamma(""), "missing key `profile.burstiness`; profile.kind = `gamma` needs it"),
            ("profile={ kind = \"sweep\", strategy = \"gamma\" }".to_owned(), "missing key `profile.burstiness`; profile.strategy = `gamma` needs the gaps' shape, e.g. 0.5 (burstier than Poisson) or 4 (more even)"),
            ("profile={ kind = \"sweep\", burstiness = 2 }".to_owned(), "invalid `profile.burstiness`: is only read by a sweep with profile.strategy = `gamma`; set that or remove it"),
            ("profile={ kind = \"poisson\", rates = [1], burstiness = 2 }".to_owned(), "invalid `profile.burstiness`: not used by profile.kind = `poisson` (it reads only rates, max_concurrency, rampup_seconds); remove it or change the kind"),
        ] {
            match load(&[&sets]) {
                Ok(_) => panic!("{sets} loads"),
                Err(e) => assert_eq!(e.to_string(), expected, "{sets}"),
            }
        }
    }

    /// A replay sends a trace and a trace is only replayed; `speedup`, `start_seconds` and
    /// `block_tokens` are bounded; the plan is one replay benchmark with its speedup.
    #[test]
    fn replay_and_trace_go_together_within_their_bounds() {
        let replay = |profile: &str, data: &str| {
            load(&[
                &format!("profile={{ kind = \"replay\"{profile} }}"),
                &format!("data={{ kind = \"trace\", path = \"t.jsonl\"{data} }}"),
            ])
        };
        let config = replay(", speedup = 4, start_seconds = 10", ", block_tokens = 16").unwrap();
        match &config.plan()[..] {
            [step] => match &step.strategy {
                crate::config::PlannedStrategy::Fixed(s) => {
                    assert_eq!(
                        (s.kind, s.speedup),
                        (crate::config::StrategyKind::Replay, Some(4.0))
                    );
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        for (result, expected) in [
            (replay(", speedup = 0", ""), "invalid `profile.speedup`: 0 is outside [0.001, 1000000]; 1 replays the trace as recorded, 4 four times faster"),
            (replay(", start_seconds = -1", ""), "invalid `profile.start_seconds`: -1 must be zero or more seconds"),
            (replay("", ", block_tokens = 0"), "invalid `data.block_tokens`: 0 tokens per block; use 1 or more, e.g. 512 (Mooncake's)"),
            (replay("", ", samples = 3"), "invalid `data.samples`: not used by data.kind = `trace` (it reads only block_tokens, path, output_tokens, tokenizer); remove it or change the kind"),
            (load(&["profile={ kind = \"replay\" }"]), "invalid `data.kind`: `synthetic` has no recorded times to replay; profile.kind = `replay` needs data.kind = `trace` with data.path"),
            (load(&["data={ kind = \"trace\", path = \"t.jsonl\" }"]), "invalid `profile.kind`: `sweep` cannot send a trace; data.kind = `trace` is replayed with profile.kind = `replay` (use data.kind = `file` for prompts without times)"),
        ] {
            match result {
                Ok(_) => panic!("{expected}: loads"),
                Err(e) => assert_eq!(e.to_string(), expected),
            }
        }
    }

    #[test]
    fn huge_and_tiny_values_are_shown_without_a_wall_of_digits() {
        assert_eq!(shown(1e300), "1e300");
        assert_eq!(shown(-2.5e-9), "-2.5e-9");
        assert_eq!(shown(30.0), "30");
        assert_eq!(shown(0.0), "0");
        assert_eq!(shown(f64::NAN), "NaN");
        assert_eq!(shown(f64::INFINITY), "inf");
    }

    #[test]
    fn seconds_name_the_value_and_the_limit() {
        assert!(seconds("k", MAX_SECONDS, true).is_ok());
        assert!(seconds("k", 0.0, false).is_ok());
        assert_eq!(
            seconds("k", 1e300, true).unwrap_err().to_string(),
            "invalid `k`: 1e300 s is more than the limit of 2592000 s (30 days); give at most that"
        );
        assert_eq!(
            seconds("k", 0.0, true).unwrap_err().to_string(),
            "invalid `k`: 0 must be a positive number"
        );
        assert_eq!(
            seconds("k", -1.0, false).unwrap_err().to_string(),
            "invalid `k`: -1 must be zero or more seconds"
        );
    }
}
