//! One benchmark of a sharded run: the shards' benchmarks with the same index, merged.
//!
//! Counts add; distributions merge exactly through their histograms; a rate becomes a count
//! (rate × the shard's window) and the counts are divided by the union window; the server's
//! own metrics are one server's, kept from the lowest shard.

use bench_core::config::{Config, Strategy, StrategyKind};
use bench_core::schema::{
    Benchmark, Concurrency, Distribution, Drain, DrainOutcome, ErrorCount, Goodput, Metrics, Rates,
    Reasoning, RequestTotals, ServerMetrics, Sessions, StatusSplit, Timestamp, TimestampSource,
    Timestamps, Transport, TurnMetrics, Warning, Window,
};
use bench_core::stats::{Histogram, StatsError};

use super::{list, prefixed, MergeError};

/// One shard's benchmark.
pub(super) struct Part<'a> {
    pub(super) shard: u32,
    pub(super) source: &'a str,
    pub(super) benchmark: &'a Benchmark,
}

/// Merges the shards' benchmarks with one index (`parts` in shard order, at least one).
pub(super) fn merge(parts: &[Part<'_>], config: &Config) -> Result<Benchmark, MergeError> {
    let first = parts[0].benchmark;
    let number = first.index + 1;
    for part in parts {
        let b = part.benchmark;
        if b.workload != first.workload || b.strategy.kind != first.strategy.kind {
            return Err(MergeError::BenchmarkDiffers {
                number,
                file: part.source.to_owned(),
                found: describe(b),
                first: parts[0].source.to_owned(),
                expected: describe(first),
            });
        }
    }
    let window = union_window(parts);
    let m = Merger {
        parts,
        number,
        window: window.duration_s,
    };
    let mut warnings: Vec<Warning> = parts
        .iter()
        .flat_map(|p| prefixed(p.shard, &p.benchmark.warnings))
        .collect();
    let stopped_by = first.stopped_by;
    let differing: Vec<u32> = parts
        .iter()
        .filter(|p| p.benchmark.stopped_by != stopped_by)
        .map(|p| p.shard)
        .collect();
    if !differing.is_empty() {
        warnings.push(Warning {
            code: "stopped_by_differs".to_owned(),
            message: format!(
                "the shards ended this benchmark for different reasons: shard {} by {}, shard(s) {} otherwise; `stopped_by` is shard {}'s",
                parts[0].shard,
                stop_name(stopped_by),
                list(&differing),
                parts[0].shard
            ),
        });
    }
    Ok(Benchmark {
        index: first.index,
        strategy: strategy(parts),
        workload: first.workload.clone(),
        window,
        requests: requests(parts),
        errors: errors(parts),
        stopped_by,
        warnings,
        metrics: m.metrics()?,
        goodput: m.goodput(),
        drain: drain(parts),
        transport: m.transport()?,
        timestamps: m.timestamps()?,
        sessions: m.sessions()?,
        server: server(parts, config),
    })
}

fn describe(b: &Benchmark) -> String {
    format!("`{}` on `{}`", b.strategy.kind.name(), b.workload)
}

fn stop_name(reason: Option<bench_core::schema::StopReason>) -> String {
    reason
        .and_then(|r| serde_json::to_value(r).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "running out of work".to_owned())
}

/// The whole run's strategy: the shards' loads added up.
fn strategy(parts: &[Part<'_>]) -> Strategy {
    let mut merged = parts[0].benchmark.strategy.clone();
    let sum_u32 = |pick: fn(&Strategy) -> Option<u32>| -> Option<u32> {
        parts
            .iter()
            .filter_map(|p| pick(&p.benchmark.strategy))
            .reduce(u32::saturating_add)
    };
    merged.streams = match merged.kind {
        StrategyKind::Synchronous => merged.streams,
        _ => sum_u32(|s| s.streams),
    };
    merged.max_concurrency = sum_u32(|s| s.max_concurrency);
    merged.target_rate_per_s = parts
        .iter()
        .filter_map(|p| p.benchmark.strategy.target_rate_per_s)
        .reduce(|a, b| a + b);
    merged
}

/// Earliest start to latest end.
fn union_window(parts: &[Part<'_>]) -> Window {
    let start: Timestamp = parts
        .iter()
        .map(|p| p.benchmark.window.start)
        .min()
        .expect("at least one part");
    let end: Timestamp = parts
        .iter()
        .map(|p| p.benchmark.window.end)
        .max()
        .expect("at least one part");
    Window {
        start,
        end,
        duration_s: end.seconds_since(start).max(0.0),
    }
}

fn requests(parts: &[Part<'_>]) -> RequestTotals {
    let sum = |pick: fn(&RequestTotals) -> u64| {
        parts
            .iter()
            .map(|p| pick(&p.benchmark.requests))
            .sum::<u64>()
    };
    RequestTotals::new(
        sum(|r| r.successful),
        sum(|r| r.incomplete),
        sum(|r| r.errored),
    )
}

/// Errors grouped by kind and status, in order of first appearance, the first example kept.
fn errors(parts: &[Part<'_>]) -> Vec<ErrorCount> {
    let mut merged: Vec<ErrorCount> = Vec::new();
    for error in parts.iter().flat_map(|p| &p.benchmark.errors) {
        match merged
            .iter_mut()
            .find(|e| e.kind == error.kind && e.status_code == error.status_code)
        {
            Some(e) => {
                e.count += error.count;
                if e.example.is_none() {
                    e.example.clone_from(&error.example);
                }
            }
            None => merged.push(error.clone()),
        }
    }
    merged
}

/// The drains ran side by side: the longest wait, and the most telling outcome (a backlog
/// that did not clear matters more than an idle server).
fn drain(parts: &[Part<'_>]) -> Option<Drain> {
    let drains: Vec<Drain> = parts.iter().filter_map(|p| p.benchmark.drain).collect();
    let severity = |o: DrainOutcome| match o {
        DrainOutcome::TimedOut => 4,
        DrainOutcome::Unknown => 3,
        DrainOutcome::Probed => 2,
        DrainOutcome::Idle => 1,
        _ => 0,
    };
    Some(Drain {
        seconds: drains.iter().map(|d| d.seconds).reduce(f64::max)?,
        outcome: drains
            .iter()
            .map(|d| d.outcome)
            .max_by_key(|o| severity(*o))?,
    })
}

/// The server is one server, seen by every shard: the lowest shard's scrape, with the
/// client side of the token check summed over every shard that scraped.
fn server(parts: &[Part<'_>], config: &Config) -> Option<ServerMetrics> {
    let mut server = parts.iter().find_map(|p| p.benchmark.server.clone())?;
    if let Some(check) = &mut server.token_check {
        let checks: Vec<_> = parts
            .iter()
            .filter_map(|p| p.benchmark.server.as_ref()?.token_check)
            .collect();
        check.client_output_tokens = checks.iter().map(|c| c.client_output_tokens).sum();
        check.client_prompt_tokens = checks.iter().map(|c| c.client_prompt_tokens).sum();
        // The same formula as bench-scrape's.
        check.relative_difference =
            check
                .server_generation_tokens
                .map(|s| match check.client_output_tokens {
                    0 if s == 0.0 => 0.0,
                    0 => 1.0,
                    c => (s - c as f64).abs() / c as f64,
                });
        let tolerance = config.target.metrics.as_ref().map(|m| m.token_tolerance);
        check.agrees = check
            .relative_difference
            .zip(tolerance)
            .map(|(d, t)| d <= t);
    }
    Some(server)
}

/// The merging of one benchmark's figures, with what its errors must name.
struct Merger<'a, 'p> {
    parts: &'a [Part<'p>],
    number: usize,
    /// The union window's duration, s: every rate's denominator.
    window: f64,
}

impl<'a, 'p> Merger<'a, 'p> {
    /// The exact merge of one distribution over the shards that have it.
    fn dist(
        &self,
        metric: &str,
        pick: &dyn Fn(&'p Benchmark) -> Option<&'p Distribution>,
    ) -> Result<Option<Distribution>, MergeError> {
        let mut merged: Option<Histogram> = None;
        for part in self.parts {
            let Some(d) = pick(part.benchmark) else {
                continue;
            };
            let bad = |error: StatsError| match error {
                StatsError::NoHistogram => MergeError::NoHistogram {
                    metric: metric.to_owned(),
                    number: self.number,
                    file: part.source.to_owned(),
                },
                other => MergeError::BadHistogram {
                    metric: metric.to_owned(),
                    number: self.number,
                    file: part.source.to_owned(),
                    detail: other.to_string(),
                },
            };
            let h = Histogram::from_distribution(d).map_err(bad)?;
            match &mut merged {
                Some(m) => m.merge(&h).map_err(bad)?,
                None => merged = Some(h),
            }
        }
        Ok(merged.and_then(|h| h.summary()))
    }

    /// The exact merge of a metric split by outcome, part by part.
    fn split(
        &self,
        metric: &str,
        pick: &dyn Fn(&'p Benchmark) -> Option<&'p StatusSplit<Distribution>>,
    ) -> Result<Option<StatusSplit<Distribution>>, MergeError> {
        if self.parts.iter().all(|p| pick(p.benchmark).is_none()) {
            return Ok(None);
        }
        let part = |name: &str, of: fn(&StatusSplit<Distribution>) -> Option<&Distribution>| {
            self.dist(&format!("{metric}.{name}"), &|b| pick(b).and_then(of))
        };
        Ok(Some(StatusSplit {
            successful: part("successful", |s| s.successful.as_ref())?,
            incomplete: part("incomplete", |s| s.incomplete.as_ref())?,
            errored: part("errored", |s| s.errored.as_ref())?,
            total: part("total", |s| s.total.as_ref())?,
        }))
    }

    /// A rate over the union window: each shard's rate times its own window is its count.
    fn rate(&self, pick: &dyn Fn(&'p Benchmark) -> Option<f64>) -> Option<f64> {
        let count = self
            .parts
            .iter()
            .filter_map(|p| pick(p.benchmark).map(|r| r * p.benchmark.window.duration_s))
            .reduce(|a, b| a + b)?;
        Some(if self.window > 0.0 {
            count / self.window
        } else {
            0.0
        })
    }

    fn rate_split(
        &self,
        pick: fn(&Rates) -> Option<&StatusSplit<f64>>,
    ) -> Option<StatusSplit<f64>> {
        if self
            .parts
            .iter()
            .all(|p| pick(&p.benchmark.metrics.rates).is_none())
        {
            return None;
        }
        let part = |of: fn(&StatusSplit<f64>) -> Option<f64>| {
            self.rate(&|b| pick(&b.metrics.rates).and_then(of))
        };
        Some(StatusSplit {
            successful: part(|s| s.successful),
            incomplete: part(|s| s.incomplete),
            errored: part(|s| s.errored),
            total: part(|s| s.total),
        })
    }

    fn metrics(&self) -> Result<Metrics, MergeError> {
        let reasoning = if self
            .parts
            .iter()
            .all(|p| p.benchmark.metrics.reasoning.is_none())
        {
            None
        } else {
            let r = |b: &'p Benchmark| b.metrics.reasoning.as_ref();
            Some(Reasoning {
                time_to_first_answer_token_ms: self
                    .split("metrics.reasoning.time_to_first_answer_token_ms", &|b| {
                        r(b)?.time_to_first_answer_token_ms.as_ref()
                    })?,
                reasoning_tokens: self.split("metrics.reasoning.reasoning_tokens", &|b| {
                    r(b)?.reasoning_tokens.as_ref()
                })?,
                answer_tokens: self.split("metrics.reasoning.answer_tokens", &|b| {
                    r(b)?.answer_tokens.as_ref()
                })?,
                reasoning_itl_ms: self.split("metrics.reasoning.reasoning_itl_ms", &|b| {
                    r(b)?.reasoning_itl_ms.as_ref()
                })?,
                answer_itl_ms: self.split("metrics.reasoning.answer_itl_ms", &|b| {
                    r(b)?.answer_itl_ms.as_ref()
                })?,
            })
        };
        Ok(Metrics {
            request_latency_ms: self.split("metrics.request_latency_ms", &|b| {
                b.metrics.request_latency_ms.as_ref()
            })?,
            ttft_ms: self.split("metrics.ttft_ms", &|b| b.metrics.ttft_ms.as_ref())?,
            itl_ms: self.split("metrics.itl_ms", &|b| b.metrics.itl_ms.as_ref())?,
            tpot_ms: self.split("metrics.tpot_ms", &|b| b.metrics.tpot_ms.as_ref())?,
            decode_time_ms: self.split("metrics.decode_time_ms", &|b| {
                b.metrics.decode_time_ms.as_ref()
            })?,
            schedule_lag_ms: self.split("metrics.schedule_lag_ms", &|b| {
                b.metrics.schedule_lag_ms.as_ref()
            })?,
            latency_from_intended_send_ms: self
                .split("metrics.latency_from_intended_send_ms", &|b| {
                    b.metrics.latency_from_intended_send_ms.as_ref()
                })?,
            prompt_tokens: self.split("metrics.prompt_tokens", &|b| {
                b.metrics.prompt_tokens.as_ref()
            })?,
            output_tokens: self.split("metrics.output_tokens", &|b| {
                b.metrics.output_tokens.as_ref()
            })?,
            reasoning,
            rates: Rates {
                requests_per_s: self.rate_split(|r| r.requests_per_s.as_ref()),
                output_tokens_per_s: self.rate_split(|r| r.output_tokens_per_s.as_ref()),
                total_tokens_per_s: self.rate_split(|r| r.total_tokens_per_s.as_ref()),
                concurrency: self.concurrency(),
            },
        })
    }

    /// Requests in flight over the union window: the shards' request-seconds (mean × own
    /// window) added and divided by the union window, which is the sum of the shards' means
    /// when their windows coincide; the maximum is the sum of the maxima, an upper bound (the
    /// shards' peaks need not coincide).
    fn concurrency(&self) -> Option<Concurrency> {
        let all: Vec<(Concurrency, f64)> = self
            .parts
            .iter()
            .filter_map(|p| {
                let b = p.benchmark;
                b.metrics
                    .rates
                    .concurrency
                    .map(|c| (c, b.window.duration_s))
            })
            .collect();
        if all.is_empty() {
            return None;
        }
        let request_seconds: f64 = all.iter().map(|(c, d)| c.mean * d).sum();
        Some(Concurrency {
            mean: if self.window > 0.0 {
                request_seconds / self.window
            } else {
                all.iter().map(|(c, _)| c.mean).sum()
            },
            max: all.iter().map(|(c, _)| c.max).sum(),
        })
    }

    fn goodput(&self) -> Option<Goodput> {
        let goodputs: Vec<Goodput> = self
            .parts
            .iter()
            .filter_map(|p| p.benchmark.goodput)
            .collect();
        if goodputs.is_empty() {
            return None;
        }
        let judged: u64 = goodputs.iter().map(|g| g.judged).sum();
        let met: u64 = goodputs.iter().map(|g| g.met).sum();
        Some(Goodput {
            judged,
            met,
            slo_attainment: if judged > 0 {
                met as f64 / judged as f64
            } else {
                0.0
            },
            requests_per_s: self
                .rate(&|b| b.goodput.map(|g| g.requests_per_s))
                .unwrap_or(0.0),
        })
    }

    fn transport(&self) -> Result<Option<Transport>, MergeError> {
        let all: Vec<&Transport> = self
            .parts
            .iter()
            .filter_map(|p| p.benchmark.transport.as_ref())
            .collect();
        let Some(first) = all.first() else {
            return Ok(None);
        };
        let mut http_versions = std::collections::BTreeMap::new();
        for t in &all {
            for (version, n) in &t.http_versions {
                *http_versions.entry(version.clone()).or_insert(0) += n;
            }
        }
        Ok(Some(Transport {
            http_versions,
            connections_opened: all.iter().map(|t| t.connections_opened).sum(),
            connection_setup_ms: self.dist("transport.connection_setup_ms", &|b| {
                b.transport.as_ref()?.connection_setup_ms.as_ref()
            })?,
            scheme: first.scheme.clone(),
            // Verified only if every shard verified.
            tls_verified: all
                .iter()
                .filter_map(|t| t.tls_verified)
                .reduce(|a, b| a && b),
            proxy: first.proxy.clone(),
        }))
    }

    fn timestamps(&self) -> Result<Option<Timestamps>, MergeError> {
        let all: Vec<(&Timestamps, &Benchmark)> = self
            .parts
            .iter()
            .filter_map(|p| Some((p.benchmark.timestamps.as_ref()?, p.benchmark)))
            .collect();
        if all.is_empty() {
            return Ok(None);
        }
        // Kernel times only if every shard had them: one user-space shard makes the merged
        // times partly user-space.
        let kernel = all.iter().all(|(t, _)| t.source == TimestampSource::Kernel);
        let client_delay_ms = if kernel {
            self.dist("timestamps.client_delay_ms", &|b| {
                b.timestamps.as_ref()?.client_delay_ms.as_ref()
            })?
        } else {
            None
        };
        // A share of content events: weighted by each shard's content events (first tokens
        // plus the gaps between later ones).
        let events = |b: &Benchmark| -> f64 {
            let count = |s: &Option<StatusSplit<Distribution>>| {
                s.as_ref()
                    .and_then(|s| s.total.as_ref())
                    .map_or(0, |d| d.count)
            };
            (count(&b.metrics.ttft_ms) + count(&b.metrics.itl_ms)) as f64
        };
        let coalesced_share = if kernel {
            let shares: Vec<(f64, f64)> = all
                .iter()
                .filter_map(|(t, b)| t.coalesced_share.map(|s| (s, events(b))))
                .collect();
            let weight: f64 = shares.iter().map(|(_, w)| w).sum();
            if shares.is_empty() {
                None
            } else if weight > 0.0 {
                Some(shares.iter().map(|(s, w)| s * w).sum::<f64>() / weight)
            } else {
                Some(0.0)
            }
        } else {
            None
        };
        Ok(Some(Timestamps {
            source: if kernel {
                TimestampSource::Kernel
            } else {
                TimestampSource::UserSpace
            },
            client_delay_ms,
            coalesced_share,
            reads_without_kernel_time: all.iter().map(|(t, _)| t.reads_without_kernel_time).sum(),
        }))
    }

    fn sessions(&self) -> Result<Option<Sessions>, MergeError> {
        let all: Vec<&Sessions> = self
            .parts
            .iter()
            .filter_map(|p| p.benchmark.sessions.as_ref())
            .collect();
        if all.is_empty() {
            return Ok(None);
        }
        let s = |b: &'p Benchmark| b.sessions.as_ref();
        let mut turns: Vec<(u32, bool)> = all
            .iter()
            .flat_map(|s| s.by_turn.iter().map(|t| (t.turn, t.and_later)))
            .collect();
        turns.sort_unstable();
        turns.dedup_by_key(|t| t.0);
        let mut by_turn = Vec::new();
        for (turn, _) in turns {
            let t = move |b: &'p Benchmark| -> Option<&'p TurnMetrics> {
                s(b)?.by_turn.iter().find(|t| t.turn == turn)
            };
            let name = |field: &str| format!("sessions.by_turn[{turn}].{field}");
            by_turn.push(TurnMetrics {
                turn,
                and_later: all
                    .iter()
                    .flat_map(|s| &s.by_turn)
                    .any(|x| x.turn == turn && x.and_later),
                requests: all
                    .iter()
                    .flat_map(|s| &s.by_turn)
                    .filter(|x| x.turn == turn)
                    .map(|x| x.requests)
                    .sum(),
                ttft_ms: self.dist(&name("ttft_ms"), &|b| t(b)?.ttft_ms.as_ref())?,
                request_latency_ms: self.dist(&name("request_latency_ms"), &|b| {
                    t(b)?.request_latency_ms.as_ref()
                })?,
                prompt_tokens: self
                    .dist(&name("prompt_tokens"), &|b| t(b)?.prompt_tokens.as_ref())?,
                cached_prompt_tokens: self.dist(&name("cached_prompt_tokens"), &|b| {
                    t(b)?.cached_prompt_tokens.as_ref()
                })?,
                output_tokens: self
                    .dist(&name("output_tokens"), &|b| t(b)?.output_tokens.as_ref())?,
            });
        }
        Ok(Some(Sessions {
            started: all.iter().map(|s| s.started).sum(),
            completed: all.iter().map(|s| s.completed).sum(),
            partial: all.iter().map(|s| s.partial).sum(),
            turns_per_session: self.dist("sessions.turns_per_session", &|b| {
                s(b)?.turns_per_session.as_ref()
            })?,
            duration_s: self.dist("sessions.duration_s", &|b| s(b)?.duration_s.as_ref())?,
            output_tokens: self
                .dist("sessions.output_tokens", &|b| s(b)?.output_tokens.as_ref())?,
            by_turn,
        }))
    }
}
