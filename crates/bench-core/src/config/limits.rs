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
