//! Open files: every request in flight holds a socket, and the embedded mock holds the other
//! end in this process too. Many desktops start programs with a soft limit of 1,024 open
//! files, far below what 2,000 streams need, and a run that hits the limit fails requests with
//! `EMFILE`, which would read as server errors. So the soft limit is raised to the hard limit
//! at start, and a plan that still cannot fit is refused (or, where its need is an estimate,
//! warned about) before the first request.

use bench_core::config::{PlannedStrategy, StrategyKind, TargetKind};
use bench_core::Config;

/// Descriptors kept free for everything that is not a request: the runtime, the timer, log
/// and report files, the mock's listener.
const RESERVED: u64 = 64;

/// The latency assumed when estimating an open-loop benchmark's requests in flight (rate x
/// latency): a rough upper guess for short generations; longer ones need more.
const ASSUMED_LATENCY_S: f64 = 1.0;

/// The open-file limits after [`raise`]: (soft, hard), for [`crate::preflight`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub(crate) soft: u64,
    pub(crate) hard: Option<u64>,
}

/// Raises the soft open-file limit to the hard limit (as vLLM's clients do); returns the
/// limits in force afterwards, or None where they cannot be read.
pub fn raise() -> Option<Limits> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => limit = raised,
                Err(error) => {
                    tracing::debug!("cannot raise the open-file limit: {error}");
                }
            }
        }
        Some(Limits {
            soft: limit.current.unwrap_or(u64::MAX),
            hard: limit.maximum,
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Descriptors this process has open now (Linux), else the reserve.
fn open_now() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// What a plan needs: a certain count (closed-loop streams, the throughput level) is a hard
/// requirement; an estimate (an open-loop rate x the assumed latency) only a warning.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Need {
    in_flight: u64,
    certain: bool,
    what: &'static str,
}

fn need(config: &Config) -> Option<Need> {
    let mut worst: Option<Need> = None;
    for step in config.plan() {
        let need = match &step.strategy {
            PlannedStrategy::Fixed(s) => match s.kind {
                StrategyKind::Synchronous | StrategyKind::Concurrent => Need {
                    in_flight: u64::from(s.streams.unwrap_or(1)),
                    certain: true,
                    what: "profile.streams",
                },
                StrategyKind::Throughput => Need {
                    in_flight: u64::from(s.max_concurrency.unwrap_or(1)),
                    certain: true,
                    what: "profile.max_concurrency (the throughput level)",
                },
                StrategyKind::Constant
                | StrategyKind::Poisson
                | StrategyKind::Gamma
                | StrategyKind::Replay => {
                    let estimate =
                        (s.target_rate_per_s.unwrap_or(0.0) * ASSUMED_LATENCY_S).ceil() as u64;
                    Need {
                        in_flight: s
                            .max_concurrency
                            .map_or(estimate, |cap| estimate.min(u64::from(cap))),
                        certain: false,
                        what: "profile.rates",
                    }
                }
            },
            PlannedStrategy::SweepRate {
                max_concurrency, ..
            }
            | PlannedStrategy::SearchRates {
                max_concurrency, ..
            } => Need {
                in_flight: u64::from(*max_concurrency),
                certain: false,
                what: "profile.max_concurrency",
            },
        };
        // No more requests are in flight than a benchmark may send.
        let need = Need {
            in_flight: config
                .constraints
                .max_requests
                .map_or(need.in_flight, |max| need.in_flight.min(max)),
            ..need
        };
        if worst.is_none_or(|w| need.in_flight > w.in_flight) {
            worst = Some(need);
        }
    }
    worst
}

/// The verdict on a plan under `limits`.
#[derive(Debug, PartialEq)]
pub(crate) enum Fit {
    Fits,
    /// The plan may exceed the limit: say so, and go on.
    Warn(String),
    /// The plan will exceed the limit: refuse before the first request.
    Refuse(String),
}

/// Whether `config`'s plan fits under `limits`; the embedded mock doubles the need.
pub(crate) fn fit(config: &Config, limits: Limits) -> Fit {
    let Some(need) = need(config) else {
        return Fit::Fits;
    };
    let per_request = if config.target.kind() == TargetKind::Mock {
        2
    } else {
        1
    };
    let wanted = need
        .in_flight
        .saturating_mul(per_request)
        .saturating_add(RESERVED.max(open_now()));
    if wanted <= limits.soft {
        return Fit::Fits;
    }
    let hard = limits
        .hard
        .map_or("unlimited".to_owned(), |h| h.to_string());
    let suggestion = wanted.next_power_of_two();
    let mock = if per_request == 2 {
        " (two per request: the embedded mock holds the server's end in this process)"
    } else {
        ""
    };
    let message = format!(
        "{} needs about {wanted} open files{mock} with {} requests in flight, but the open-file limit is {} (hard limit {hard}); raise it with `ulimit -n {suggestion}` (above the hard limit as root, or in /etc/security/limits.conf), or lower the concurrency",
        need.what, need.in_flight, limits.soft
    );
    if need.certain {
        Fit::Refuse(message)
    } else {
        Fit::Warn(format!(
            "{message}; the estimate assumes {ASSUMED_LATENCY_S} s per request"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(profile: &str) -> Config {
        let text = format!(
            "[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n[profile]\n{profile}\n[constraints]\nmax_seconds = 1\n[data]\nkind = \"synthetic\"\nprompt_tokens = 1\noutput_tokens = 1\napproximate = true\n"
        );
        Config::load(&text, bench_core::config::ConfigFormat::Toml, &[])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn streams_beyond_the_limit_are_refused_and_rates_warned() {
        let limits = Limits {
            soft: 1024,
            hard: Some(1024),
        };
        let streams = config("kind = \"concurrent\"\nstreams = [10, 2000]");
        assert!(
            matches!(fit(&streams, limits), Fit::Refuse(ref m) if m.contains("ulimit -n") && m.contains("2000 requests")),
            "{:?}",
            fit(&streams, limits)
        );
        assert_eq!(
            fit(&config("kind = \"concurrent\"\nstreams = [10]"), limits),
            Fit::Fits
        );
        assert!(matches!(
            fit(&config("kind = \"constant\"\nrates = [5000]"), limits),
            Fit::Warn(_)
        ));
        assert_eq!(
            fit(
                &config("kind = \"constant\"\nrates = [5000]\nmax_concurrency = 100"),
                limits
            ),
            Fit::Fits
        );
        let few = config("kind = \"concurrent\"\nstreams = [2000]");
        let few = Config {
            constraints: bench_core::config::Constraints {
                max_requests: Some(100),
                ..few.constraints.clone()
            },
            ..few
        };
        assert_eq!(
            fit(&few, limits),
            Fit::Fits,
            "at most 100 requests are sent"
        );
    }
}
