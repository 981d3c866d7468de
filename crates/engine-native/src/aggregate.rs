//! Turns finished requests into one benchmark's figures, online: memory stays constant in the
//! number of requests (histograms, counters), whatever the run's length.
//!
//! The measured window is `[start + warmup, end - cooldown]`; a request counts when its life
//! overlaps the window (GuideLLM's rule), and the rates count the requests that ended inside it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bench_core::config::{Constraints, Slo};
use bench_core::progress::Phase;
use bench_core::schema::{
    Benchmark, Concurrency, ErrorCount, Goodput, Metrics, Rates, RequestTotals, StatusSplit,
    StopReason, Strategy, Timestamp, Warning, Window,
};
use bench_core::stats::{Histogram, Outcome as Part, SplitHistogram};

use crate::client::{Exchange, Outcome};

/// A request's per-request figures, computed once for the histograms and the objectives.
struct Timings {
    latency_ms: f64,
    ttft_ms: Option<f64>,
    decode_ms: Option<f64>,
    /// Only with at least 2 output tokens.
    tpot_ms: Option<f64>,
}

impl Timings {
    fn of(ex: &Exchange, output_tokens: u64) -> Self {
        let tokens = ex.first_token.zip(ex.last_token);
        let decode_ms = tokens.map(|(first, last)| ms(first, last));
        Self {
            latency_ms: ms(ex.sent, ex.end),
            ttft_ms: ex.first_token.map(|first| ms(ex.sent, first)),
            decode_ms,
            tpot_ms: decode_ms
                .filter(|_| output_tokens >= 2)
                .map(|d| d / (output_tokens - 1) as f64),
        }
    }
}

/// Where warmup ends or cooldown begins.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Boundary {
    /// After this long (warmup) or this long before the planned end (cooldown).
    Seconds(f64),
    /// After this many requests were sent (warmup) or once all but this many completed
    /// (cooldown).
    Requests(u64),
}

/// Maps `Instant`s to wall-clock timestamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    instant: Instant,
    wall: Timestamp,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            instant: Instant::now(),
            wall: Timestamp::now(),
        }
    }

    pub(crate) fn at(&self, instant: Instant) -> Timestamp {
        match instant.checked_duration_since(self.instant) {
            Some(after) => self.wall.plus(after),
            None => self.wall,
        }
    }
}

/// Live counts for progress reports and constraints.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Live {
    pub(crate) successful: u64,
    pub(crate) incomplete: u64,
    pub(crate) errored: u64,
    pub(crate) in_flight: u64,
    pub(crate) output_tokens: u64,
}

#[derive(Debug)]
pub(crate) struct Aggregator {
    warmup: Option<Boundary>,
    cooldown: Option<Boundary>,
    /// The planned number of requests, for a cooldown counted in requests.
    planned_requests: Option<u64>,
    window_start: Option<Instant>,
    window_end: Option<Instant>,
    sent: u64,
    sent_in_window: u64,
    completed: u64,
    live: Live,
    error_window: VecDeque<bool>,
    error_window_size: usize,
    // Measured window.
    totals: [u64; 3],
    errors: BTreeMap<(&'static str, Option<u16>), (u64, String)>,
    latency: SplitHistogram,
    ttft: SplitHistogram,
    itl: SplitHistogram,
    tpot: SplitHistogram,
    decode: SplitHistogram,
    lag: SplitHistogram,
    from_intended: SplitHistogram,
    prompt_tokens: SplitHistogram,
    output_tokens: SplitHistogram,
    /// Ended inside the window, by outcome: requests, output tokens, prompt + output tokens.
    ended: [[f64; 3]; 3],
    first_success: Option<Instant>,
    last_success: Option<Instant>,
    successes_in_window: u64,
    // Time-weighted concurrency.
    last_event: Instant,
    area: f64,
    max_in_flight: u64,
    slo: Option<Slo>,
    saturation: Option<crate::saturation::Detector>,
    saturation_warning: Option<String>,
    /// Judged, met, met and ended inside the window.
    slo_counts: [u64; 3],
    /// Median TTFT so far, for progress.
    live_ttft: Histogram,
    live_itl: Histogram,
}

fn part(outcome: &Outcome) -> Part {
    match outcome {
        Outcome::Successful => Part::Successful,
        Outcome::Incomplete => Part::Incomplete,
        Outcome::Errored(_) => Part::Errored,
    }
}

fn ms(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(from - to).as_secs_f64() * 1000.0,
    }
}

impl Aggregator {
    /// Starts aggregating a benchmark that began at `start` under `constraints`.
    pub(crate) fn new(
        start: Instant,
        warmup: Option<Boundary>,
        cooldown: Option<Boundary>,
        constraints: &Constraints,
        slo: Option<Slo>,
    ) -> Self {
        let planned_requests = constraints.max_requests;
        let planned_end = constraints
            .max_seconds
            .map(|s| start + std::time::Duration::from_secs_f64(s));
        let error_window_size = constraints.error_rate_window.unwrap_or(30) as usize;
        let over_saturation = constraints.over_saturation;
        let window_start = match warmup {
            None => Some(start),
            Some(Boundary::Seconds(s)) => Some(start + std::time::Duration::from_secs_f64(s)),
            Some(Boundary::Requests(0)) => Some(start),
            Some(Boundary::Requests(_)) => None,
        };
        let window_end = match (cooldown, planned_end) {
            (Some(Boundary::Seconds(s)), Some(end)) => {
                Some(end - std::time::Duration::from_secs_f64(s))
            }
            _ => None,
        };
        let ms = || SplitHistogram::new(0.001);
        Self {
            warmup,
            cooldown,
            planned_requests,
            window_start,
            window_end,
            sent: 0,
            sent_in_window: 0,
            completed: 0,
            live: Live::default(),
            error_window: VecDeque::new(),
            error_window_size,
            totals: [0; 3],
            errors: BTreeMap::new(),
            latency: ms(),
            ttft: ms(),
            itl: ms(),
            tpot: ms(),
            decode: ms(),
            lag: ms(),
            from_intended: ms(),
            prompt_tokens: SplitHistogram::new(1.0),
            output_tokens: SplitHistogram::new(1.0),
            ended: [[0.0; 3]; 3],
            first_success: None,
            last_success: None,
            successes_in_window: 0,
            last_event: start,
            area: 0.0,
            max_in_flight: 0,
            live_ttft: Histogram::for_milliseconds(),
            live_itl: Histogram::for_milliseconds(),
            slo,
            saturation: over_saturation.map(|o| crate::saturation::Detector::new(o, start)),
            saturation_warning: None,
            slo_counts: [0; 3],
        }
    }

    /// Runs the over-saturation detector; returns its finding the first time it fires.
    pub(crate) fn check_saturation(&mut self, now: Instant) -> Option<String> {
        let finding = self.saturation.as_mut()?.check(now)?;
        self.saturation_warning = Some(finding.clone());
        Some(finding)
    }

    /// Whether a finished request met every objective (None: not judged).
    fn meets(&self, ex: &Exchange, timings: &Timings) -> Option<bool> {
        let slo = self.slo?;
        match ex.outcome {
            Outcome::Incomplete => None,
            Outcome::Errored(_) => Some(false),
            Outcome::Successful => {
                let within = |limit: Option<f64>, value: Option<f64>| {
                    limit.is_none_or(|l| value.is_some_and(|v| v <= l))
                };
                let max_gap = ex.gaps_ms.iter().copied().fold(0.0, f64::max);
                Some(
                    within(slo.ttft_ms, timings.ttft_ms)
                        && within(slo.itl_ms, Some(max_gap))
                        // A request with one token has no TPOT to miss.
                        && within(slo.tpot_ms, Some(timings.tpot_ms.unwrap_or(0.0)))
                        && within(slo.e2e_ms, Some(timings.latency_ms)),
                )
            }
        }
    }

    /// Adds the in-flight count's time inside the window since the last event.
    fn advance(&mut self, now: Instant) {
        if let Some(start) = self.window_start {
            let from = self.last_event.max(start);
            let to = self.window_end.map_or(now, |end| now.min(end));
            if to > from {
                self.area += self.live.in_flight as f64 * (to - from).as_secs_f64();
            }
        }
        self.last_event = now;
    }

    fn in_window(&self, at: Instant) -> bool {
        self.window_start.is_some_and(|s| at >= s) && self.window_end.is_none_or(|e| at <= e)
    }

    /// A request is about to be sent; returns its send index.
    pub(crate) fn on_send(&mut self) -> u64 {
        let now = Instant::now();
        self.advance(now);
        if let Some(Boundary::Requests(k)) = self.warmup {
            if self.sent == k {
                self.window_start = Some(now);
                self.last_event = now;
            }
        }
        self.sent += 1;
        self.live.in_flight += 1;
        if let Some(detector) = &mut self.saturation {
            detector.in_flight(now, self.live.in_flight);
        }
        if self.in_window(now) {
            self.sent_in_window += 1;
            self.max_in_flight = self.max_in_flight.max(self.live.in_flight);
        }
        self.sent - 1
    }

    /// Records a finished request; returns true when `max_error_rate` is exceeded.
    pub(crate) fn on_finish(&mut self, exchange: &Exchange, max_error_rate: Option<f64>) -> bool {
        let now = Instant::now();
        self.advance(now);
        self.live.in_flight -= 1;
        self.completed += 1;
        let errored = matches!(exchange.outcome, Outcome::Errored(_));
        match exchange.outcome {
            Outcome::Successful => self.live.successful += 1,
            Outcome::Incomplete => self.live.incomplete += 1,
            Outcome::Errored(_) => self.live.errored += 1,
        }
        let output_tokens = exchange
            .usage
            .and_then(|u| u.completion_tokens)
            .unwrap_or(u64::from(exchange.content_chunks));
        self.live.output_tokens += output_tokens;
        if let (Some(detector), Some(first)) = (&mut self.saturation, exchange.first_token) {
            detector.ttft(first, ms(exchange.sent, first));
        }
        if let (Some(Boundary::Requests(c)), Some(planned)) = (self.cooldown, self.planned_requests)
        {
            if self.window_end.is_none() && self.completed >= planned.saturating_sub(c) {
                self.window_end = Some(now);
            }
        }
        if !matches!(exchange.outcome, Outcome::Incomplete) {
            self.error_window.push_back(errored);
            if self.error_window.len() > self.error_window_size {
                self.error_window.pop_front();
            }
        }
        // Overlap with the window: ended after it started, and started before it ended.
        let overlaps = self.window_start.is_some_and(|s| exchange.end >= s)
            && self.window_end.is_none_or(|e| exchange.sent <= e);
        if overlaps {
            self.record(exchange, output_tokens);
        }
        max_error_rate.is_some_and(|limit| {
            self.error_window.len() >= self.error_window_size
                && self.error_window.iter().filter(|e| **e).count() as f64
                    / self.error_window.len() as f64
                    >= limit
        })
    }

    fn record(&mut self, ex: &Exchange, output_tokens: u64) {
        let p = part(&ex.outcome);
        let i = p as usize;
        self.totals[i] += 1;
        if let Outcome::Errored(f) = &ex.outcome {
            let entry = self
                .errors
                .entry((f.kind, f.status))
                .or_insert((0, f.message.clone()));
            entry.0 += 1;
        }
        let timings = Timings::of(ex, output_tokens);
        // Values are finite by construction (durations and counts).
        let _ = self.latency.record(p, timings.latency_ms);
        let _ = self.lag.record(p, ms(ex.intended, ex.sent));
        let _ = self.from_intended.record(p, ms(ex.intended, ex.end));
        let prompt = ex
            .usage
            .and_then(|u| u.prompt_tokens)
            .unwrap_or(u64::from(ex.client_prompt_tokens));
        let _ = self.prompt_tokens.record(p, prompt as f64);
        let _ = self.output_tokens.record(p, output_tokens as f64);
        if let Some(ttft) = timings.ttft_ms {
            let _ = self.ttft.record(p, ttft);
            if p == Part::Successful {
                let _ = self.live_ttft.record(ttft);
            }
        }
        if let Some(decode) = timings.decode_ms {
            let _ = self.decode.record(p, decode);
        }
        if let Some(tpot) = timings.tpot_ms {
            let _ = self.tpot.record(p, tpot);
        }
        for &gap in &ex.gaps_ms {
            let _ = self.itl.record(p, gap);
            if p == Part::Successful {
                let _ = self.live_itl.record(gap);
            }
        }
        if let Some(met) = self.meets(ex, &timings) {
            self.slo_counts[0] += 1;
            if met {
                self.slo_counts[1] += 1;
                if self.in_window(ex.end) {
                    self.slo_counts[2] += 1;
                }
            }
        }
        if self.in_window(ex.end) {
            self.ended[i][0] += 1.0;
            self.ended[i][1] += output_tokens as f64;
            self.ended[i][2] += (output_tokens + prompt) as f64;
        }
        if p == Part::Successful {
            self.successes_in_window += 1;
            self.first_success = Some(self.first_success.map_or(ex.end, |t| t.min(ex.end)));
            self.last_success = Some(self.last_success.map_or(ex.end, |t| t.max(ex.end)));
        }
    }

    pub(crate) fn live(&self) -> Live {
        self.live
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    pub(crate) fn live_medians(&self) -> (Option<f64>, Option<f64>) {
        (self.live_ttft.quantile(0.5), self.live_itl.quantile(0.5))
    }

    /// Successful completions per second between the first and the last one: the rate a
    /// server sustains once the start-up and the tail are cut off.
    pub(crate) fn steady_rate(&self) -> Option<f64> {
        let (first, last) = (self.first_success?, self.last_success?);
        let span = (last - first).as_secs_f64();
        (self.successes_in_window >= 2 && span > 0.0)
            .then(|| (self.successes_in_window - 1) as f64 / span)
    }

    /// The benchmark, with the window closed at `end` (or earlier, at the cooldown).
    pub(crate) fn finish(
        mut self,
        index: usize,
        strategy: Strategy,
        workload: &str,
        end: Instant,
        stopped_by: Option<StopReason>,
        clock: &Clock,
    ) -> Benchmark {
        let mut warnings = Vec::new();
        self.advance(end);
        let window_start = self.window_start.unwrap_or(end).min(end);
        let window_end = self
            .window_end
            .map_or(end, |e| e.min(end))
            .max(window_start);
        let duration_s = (window_end - window_start).as_secs_f64();
        let per_s = |i: usize, k: usize| -> Option<f64> {
            (duration_s > 0.0).then(|| self.ended[i][k] / duration_s)
        };
        let split = |k: usize| -> Option<StatusSplit<f64>> {
            (duration_s > 0.0).then(|| StatusSplit {
                successful: per_s(0, k),
                incomplete: per_s(1, k),
                errored: per_s(2, k),
                total: Some((self.ended[0][k] + self.ended[1][k] + self.ended[2][k]) / duration_s),
            })
        };
        let lag = self.lag.summary();
        if let Some(target) = strategy.target_rate_per_s {
            let achieved = (duration_s > 0.0).then(|| self.sent_in_window as f64 / duration_s);
            let lag_p99 = lag
                .as_ref()
                .and_then(|l| l.total.as_ref())
                .map(|d| d.percentiles.p99);
            let behind = achieved.is_some_and(|a| a < 0.99 * target);
            let late = lag_p99.is_some_and(|p99| p99 > 1.0);
            if behind || late {
                warnings.push(Warning {
                    code: "client_bound".to_owned(),
                    message: format!(
                        "the client, not the server, may have limited this benchmark: sent {} req/s of the {target:.2} req/s asked, schedule lag p99 {} ms",
                        achieved.map_or("?".to_owned(), |a| format!("{a:.2}")),
                        lag_p99.map_or("?".to_owned(), |p| format!("{p:.3}"))
                    ),
                });
            }
        }
        if let Some(message) = self.saturation_warning.take() {
            warnings.push(Warning {
                code: "over_saturated".to_owned(),
                message,
            });
        }
        if self.warmup.is_some() && self.window_start.is_none() {
            warnings.push(Warning {
                code: "warmup_not_reached".to_owned(),
                message: "the benchmark ended before its warmup did; nothing was measured"
                    .to_owned(),
            });
        }
        let goodput = self.slo.map(|_| {
            let [judged, met, met_ended] = self.slo_counts;
            Goodput {
                judged,
                met,
                slo_attainment: if judged == 0 {
                    0.0
                } else {
                    met as f64 / judged as f64
                },
                requests_per_s: if duration_s > 0.0 {
                    met_ended as f64 / duration_s
                } else {
                    0.0
                },
            }
        });
        Benchmark {
            goodput,
            index,
            strategy,
            workload: workload.to_owned(),
            window: Window {
                start: clock.at(window_start),
                end: clock.at(window_end),
                duration_s,
            },
            requests: RequestTotals::new(self.totals[0], self.totals[1], self.totals[2]),
            errors: self
                .errors
                .iter()
                .map(|((kind, status), (count, example))| ErrorCount {
                    kind: (*kind).to_owned(),
                    status_code: *status,
                    count: *count,
                    example: Some(example.clone()),
                })
                .collect(),
            stopped_by,
            warnings,
            metrics: Metrics {
                request_latency_ms: self.latency.summary(),
                ttft_ms: self.ttft.summary(),
                itl_ms: self.itl.summary(),
                tpot_ms: self.tpot.summary(),
                decode_time_ms: self.decode.summary(),
                schedule_lag_ms: lag,
                latency_from_intended_send_ms: self.from_intended.summary(),
                prompt_tokens: self.prompt_tokens.summary(),
                output_tokens: self.output_tokens.summary(),
                rates: Rates {
                    requests_per_s: split(0),
                    output_tokens_per_s: split(1),
                    total_tokens_per_s: split(2),
                    concurrency: (duration_s > 0.0).then(|| Concurrency {
                        mean: self.area / duration_s,
                        max: self.max_in_flight,
                    }),
                },
            },
        }
    }

    /// Which part of the benchmark `now` falls in.
    pub(crate) fn phase(&self, now: Instant) -> Phase {
        match (self.window_start, self.window_end) {
            (None, _) => Phase::Warmup,
            (Some(s), _) if now < s => Phase::Warmup,
            (_, Some(e)) if now > e => Phase::Cooldown,
            _ => Phase::Active,
        }
    }
}
