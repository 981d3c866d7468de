//! Turns finished requests into one benchmark's figures, online: memory stays constant in the
//! number of requests (histograms, counters), whatever the run's length.
//!
//! The measured window is `[start + warmup, end - cooldown]`; a request counts when its life
//! overlaps the window (GuideLLM's rule), and the rates count the requests that ended inside it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bench_core::config::limits::duration_from_secs;
use bench_core::config::{Constraints, Slo, Strategy};
use bench_core::measure::{
    BenchmarkBuilder, Ended, Head, ReasoningRecord, RequestError, RequestRecord,
};
use bench_core::progress::Phase;
use bench_core::schema::{
    Benchmark, Concurrency, Goodput, StatusSplit, StopReason, Timestamp, TimestampSource,
    Timestamps, Transport, Warning, Window,
};
use bench_core::stats::Histogram;

use crate::client::{Exchange, Outcome};

/// A request's per-request figures, computed once for the histograms and the objectives.
struct Timings {
    latency_ms: f64,
    ttft_ms: Option<f64>,
    decode_ms: Option<f64>,
    /// Only with at least 2 output tokens.
    tpot_ms: Option<f64>,
    /// From the actual send, as TTFT, to the first answer chunk.
    first_answer_ms: Option<f64>,
    /// Reasoning tokens: the server's `completion_tokens_details.reasoning_tokens` when it
    /// sent them, else one per reasoning chunk (as output tokens are one per chunk without
    /// usage); unknown for a body that was not streamed and whose usage does not say.
    reasoning_tokens: Option<u64>,
}

impl Timings {
    fn of(ex: &Exchange, output_tokens: u64) -> Self {
        let tokens = ex.first_token.zip(ex.last_token);
        let decode_ms = tokens.map(|(first, last)| ms(first, last));
        Self {
            latency_ms: ms(ex.started, ex.end),
            // From when the server could see the request: a connection it had to open first
            // is reported as connection set-up, not as the server's time to first token.
            ttft_ms: ex.first_token.map(|first| ms(ex.sent, first)),
            decode_ms,
            tpot_ms: decode_ms
                .filter(|_| output_tokens >= 2)
                .map(|d| d / (output_tokens - 1) as f64),
            first_answer_ms: ex.phases.first_answer.map(|first| ms(ex.sent, first)),
            reasoning_tokens: match ex.usage.and_then(|u| u.reasoning_tokens()) {
                Some(n) => Some(n),
                None if ex.phases.unstreamed_reasoning => None,
                None => Some(u64::from(ex.phases.reasoning_chunks)),
            },
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

/// `seconds` after `start`, or `None` when that lies past what an `Instant` can hold: a
/// moment that never comes.
pub(crate) fn after(start: Instant, seconds: f64) -> Option<Instant> {
    start.checked_add(duration_from_secs(seconds))
}

/// Without `max_errors` or `max_error_rate`, a benchmark stops (as `max_error_rate`) once
/// this many finished requests in a row failed (incomplete ones left out): enough that a
/// burst of failures on a working server does not end it, few enough that a server failing
/// every request is not hammered for the whole `max_seconds`.
pub(crate) const DEFAULT_FAILURE_STREAK: u64 = 50;

/// `concurrency_capped` when more than this share of a window's arrivals waited for a
/// `max_concurrency` permit: a stray clump of a Poisson schedule stays under it, a server
/// that completes requests more slowly than they arrive soon goes over.
const CAPPED_SHARE: f64 = 0.01;
/// The schedule lag p99 may reach this share of the mean gap between arrivals before the
/// client counts as having distorted the schedule: below it the arrivals keep their spacing.
const LAG_SHARE_OF_GAP: f64 = 0.1;
/// ... and this share of the server's TTFT p50 (latency p50 without TTFT): below it the lag
/// cannot move the figures a server is judged by. Both must be exceeded.
const LAG_SHARE_OF_SERVER: f64 = 0.1;
/// Below this share of the asked pace the client counts as behind its schedule.
const MIN_PACE: f64 = 0.95;
/// ... provided the lag grew by more than this over the window (ms): less is timer and
/// scheduler jitter, which would otherwise decide a window of a few arrivals.
const MIN_LAG_GROWTH_MS: f64 = 1.0;

/// The open-loop schedule inside the measured window.
#[derive(Debug)]
struct Pace {
    /// Arrivals sent inside the window.
    arrivals: u64,
    /// Those that waited for a `max_concurrency` permit, and how long (ms).
    capped: u64,
    capped_wait: Histogram,
    /// The first and the last arrival: (intended, sent).
    first: Option<(Instant, Instant)>,
    last: Option<(Instant, Instant)>,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            arrivals: 0,
            capped: 0,
            capped_wait: Histogram::for_milliseconds(),
            first: None,
            last: None,
        }
    }
}

/// What decides whether a rate benchmark's schedule was kept, as plain numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    pub(crate) target_rate: f64,
    pub(crate) max_concurrency: Option<u32>,
    /// Arrivals sent inside the window, and how many of them waited for a permit.
    pub(crate) arrivals: u64,
    pub(crate) capped: u64,
    pub(crate) capped_wait_p99_ms: Option<f64>,
    /// The schedule lag p99 (all outcomes), as the report gives it.
    pub(crate) lag_p99_ms: Option<f64>,
    /// The lag the client is judged by: the p99, but with fewer than 100 requests the
    /// second-latest one's, so that one late request alone (a prompt built late, a first
    /// connection) is never the evidence.
    pub(crate) lag_judged_ms: Option<f64>,
    /// TTFT p50 of the successful requests, else their latency p50.
    pub(crate) server_p50_ms: Option<f64>,
    /// Seconds from the window's first arrival to its last: as scheduled, and as sent.
    pub(crate) spans_s: Option<(f64, f64)>,
}

/// Milliseconds with the precision a reader needs at that size.
fn ms_text(ms: f64) -> String {
    if ms.abs() >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.3}")
    }
}

impl Pacing {
    /// `concurrency_capped` when the cap held back more than [`CAPPED_SHARE`] of the arrivals
    /// (and then never `client_bound`); else `client_bound` when the schedule lag p99 exceeds
    /// both [`LAG_SHARE_OF_GAP`] of the mean gap and [`LAG_SHARE_OF_SERVER`] of the server's
    /// p50, or when, with no arrival capped, the client sent below [`MIN_PACE`] of the pace
    /// asked; else nothing.
    pub(crate) fn judge(&self) -> Option<Warning> {
        if !(self.target_rate.is_finite() && self.target_rate > 0.0) {
            return None;
        }
        let lag = self.lag_p99_ms.map_or("?".to_owned(), ms_text);
        if let Some(cap) = self.max_concurrency {
            if self.capped as f64 > CAPPED_SHARE * self.arrivals as f64 {
                return Some(Warning {
                    code: "concurrency_capped".to_owned(),
                    message: format!(
                        "max_concurrency = {cap} held back {} of {} arrivals{}: the server completed requests more slowly than they arrived (saturated), so this benchmark measured it at {cap} requests in flight rather than at {:.2} req/s; schedule lag p99 {lag} ms",
                        self.capped,
                        self.arrivals,
                        self.capped_wait_p99_ms
                            .map_or(String::new(), |w| format!(" (wait p99 {} ms)", ms_text(w))),
                        self.target_rate,
                    ),
                });
            }
        }
        let mut evidence = Vec::new();
        let gap_ms = 1000.0 / self.target_rate;
        // The p99 is at least the judged lag, so the message holds whichever it quotes.
        if let Some(judged) = self.lag_judged_ms {
            let over_gap = judged > LAG_SHARE_OF_GAP * gap_ms;
            let over_server = self
                .server_p50_ms
                .is_none_or(|p50| judged > LAG_SHARE_OF_SERVER * p50);
            if over_gap && over_server {
                evidence.push(format!(
                    "schedule lag p99 {lag} ms, over {:.0} % of the {} ms between arrivals{}",
                    LAG_SHARE_OF_GAP * 100.0,
                    ms_text(gap_ms),
                    self.server_p50_ms.map_or(String::new(), |p50| format!(
                        " and over {:.0} % of the server's p50 of {} ms",
                        LAG_SHARE_OF_SERVER * 100.0,
                        ms_text(p50)
                    )),
                ));
            }
        }
        if let Some((scheduled, sent)) = self.spans_s {
            let pace = scheduled / sent;
            let growth_ms = (sent - scheduled) * 1000.0;
            if self.capped == 0 && sent > 0.0 && pace < MIN_PACE && growth_ms > MIN_LAG_GROWTH_MS {
                evidence.push(format!(
                    "sent {:.2} req/s of the {:.2} req/s asked ({:.0} %)",
                    self.target_rate * pace,
                    self.target_rate,
                    pace * 100.0
                ));
            }
        }
        (!evidence.is_empty()).then(|| Warning {
            code: "client_bound".to_owned(),
            message: format!(
                "the client could not keep the schedule, so it may have limited this benchmark: {}",
                evidence.join("; ")
            ),
        })
    }
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
    /// Prompt tokens of the finished requests that saw a first token (the server's usage
    /// figure where it gave one, else the client's count).
    pub(crate) prompt_tokens: u64,
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
    completed: u64,
    live: Live,
    error_window: VecDeque<bool>,
    error_window_size: usize,
    max_error_rate: Option<f64>,
    max_errors: Option<u64>,
    /// Neither error limit was given: stop after [`DEFAULT_FAILURE_STREAK`] failures in a row.
    default_error_stop: bool,
    /// Finished requests that failed in a row, incomplete ones left out.
    failure_streak: u64,
    /// Whether the default error stop ended the benchmark.
    stopped_on_failures: bool,
    /// Requests (all, not only the window's) that failed for want of a file descriptor.
    fd_failures: u64,
    pace: Pace,
    /// The measured window's requests, folded as every engine folds them.
    measured: BenchmarkBuilder,
    /// Their schedule lags, outcomes pooled, for quantiles the summary does not carry.
    pooled_lag: Histogram,
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
    /// Of those judged, the misses of each objective (`bench_core::search::StepCounts`).
    slo_missed: [u64; 4],
    /// Median TTFT so far, for progress.
    live_ttft: Histogram,
    live_itl: Histogram,
    /// Every finished request of the benchmark: responses by HTTP version.
    http_versions: BTreeMap<&'static str, u64>,
    /// How the window's responses were read.
    reads: Reads,
    /// With multi-turn sessions: figures by turn index and per session.
    sessions: Option<crate::session_figures::SessionFigures>,
    /// The caller's live figures, fed the same records as `measured`.
    exported: Option<std::sync::Arc<bench_core::live::LiveBenchmark>>,
}

/// The window's reads of responses: the client's own delay, coalesced events.
#[derive(Debug)]
struct Reads {
    client_delay: Histogram,
    content_events: u64,
    coalesced_events: u64,
    unstamped: u64,
}

impl Default for Reads {
    fn default() -> Self {
        Self {
            client_delay: Histogram::for_milliseconds(),
            content_events: 0,
            coalesced_events: 0,
            unstamped: 0,
        }
    }
}

impl Reads {
    fn add(&mut self, ex: &Exchange) {
        for &delay in &ex.timing.client_delays_ms {
            let _ = self.client_delay.record(delay);
        }
        self.content_events += u64::from(ex.content_chunks);
        self.coalesced_events += u64::from(ex.timing.coalesced_events);
        self.unstamped += u64::from(ex.timing.unstamped_reads);
    }

    fn timestamps(&self, kernel: bool) -> Timestamps {
        Timestamps {
            source: if kernel {
                TimestampSource::Kernel
            } else {
                TimestampSource::UserSpace
            },
            client_delay_ms: kernel.then(|| self.client_delay.summary()).flatten(),
            coalesced_share: (kernel && self.content_events > 0)
                .then(|| self.coalesced_events as f64 / self.content_events as f64),
            reads_without_kernel_time: self.unstamped,
        }
    }
}

/// `client_bound` evidence from the reads: the client's delay p50 above this many ms ...
const MIN_READ_DELAY_MS: f64 = 1.0;
/// ... and above this share of the server's ITL p50 (TTFT p50 without ITL), or more than
/// this share of content events coalesced.
const READ_DELAY_SHARE_OF_SERVER: f64 = 0.5;
const COALESCED_SHARE: f64 = 0.05;

/// Evidence that the client read responses late, from the kernel's receive times.
fn late_reads(timestamps: &Timestamps, server_gap_ms: Option<f64>) -> Option<String> {
    let delay = timestamps.client_delay_ms.as_ref()?;
    let (p50, p99) = (delay.median, delay.percentiles.p99);
    let coalesced = timestamps.coalesced_share.unwrap_or(0.0);
    // The median, not a tail: a few scheduler hiccups delay some reads on any machine, a
    // client that cannot keep up delays most of them.
    let slow = p50 > MIN_READ_DELAY_MS
        && server_gap_ms.is_none_or(|gap| p50 > READ_DELAY_SHARE_OF_SERVER * gap);
    (slow || coalesced > COALESCED_SHARE).then(|| {
        format!(
            "it read responses late (client delay p50 {} ms, p99 {} ms{}; {:.1} % of content events arrived together in one read and share one time), so it was slower than the stream; TTFT and ITL are the kernel's receive times and leave that delay out",
            ms_text(p50),
            ms_text(p99),
            server_gap_ms.map_or(String::new(), |gap| format!(
                " against the server's {} ms between events",
                ms_text(gap)
            )),
            coalesced * 100.0
        )
    })
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
        // An end past what an `Instant` holds never comes.
        let planned_end = constraints.max_seconds.and_then(|s| after(start, s));
        let error_window_size = constraints.error_rate_window.unwrap_or(30) as usize;
        let over_saturation = constraints.saturation();
        let window_start = match warmup {
            None => Some(start),
            Some(Boundary::Seconds(s)) => after(start, s),
            Some(Boundary::Requests(0)) => Some(start),
            Some(Boundary::Requests(_)) => None,
        };
        let window_end = match (cooldown, planned_end) {
            // A cooldown longer than the benchmark leaves an empty window.
            (Some(Boundary::Seconds(s)), Some(end)) => {
                Some(end.checked_sub(duration_from_secs(s)).unwrap_or(start))
            }
            _ => None,
        };
        Self {
            warmup,
            cooldown,
            planned_requests,
            window_start,
            window_end,
            sent: 0,
            completed: 0,
            live: Live::default(),
            error_window: VecDeque::new(),
            error_window_size,
            max_error_rate: constraints.max_error_rate,
            max_errors: constraints.max_errors,
            default_error_stop: constraints.max_error_rate.is_none()
                && constraints.max_errors.is_none(),
            failure_streak: 0,
            stopped_on_failures: false,
            fd_failures: 0,
            pace: Pace::default(),
            measured: BenchmarkBuilder::new(),
            pooled_lag: Histogram::for_milliseconds(),
            first_success: None,
            last_success: None,
            successes_in_window: 0,
            last_event: start,
            area: 0.0,
            max_in_flight: 0,
            live_ttft: Histogram::for_milliseconds(),
            live_itl: Histogram::for_milliseconds(),
            http_versions: BTreeMap::new(),
            reads: Reads::default(),
            slo,
            saturation: over_saturation
                .map(|o| crate::saturation::Detector::new(o, constraints.max_seconds, start)),
            saturation_warning: None,
            slo_counts: [0; 3],
            slo_missed: [0; 4],
            sessions: None,
            exported: None,
        }
    }

    /// Feeds every request the report counts to `live` as well, as it is counted.
    pub(crate) fn feed_live(&mut self, live: std::sync::Arc<bench_core::live::LiveBenchmark>) {
        self.exported = Some(live);
    }

    /// The benchmark runs multi-turn sessions: report them.
    pub(crate) fn enable_sessions(&mut self) {
        self.sessions = Some(crate::session_figures::SessionFigures::new());
    }

    /// A session ended (every session of the benchmark counts, warmup and cooldown included:
    /// a session spans the window's edges).
    pub(crate) fn on_session_end(&mut self, end: &crate::session_figures::SessionEnd) {
        if let Some(figures) = &mut self.sessions {
            figures.session(end);
        }
    }

    /// Runs the over-saturation detector; returns its finding the first time it fires.
    pub(crate) fn check_saturation(&mut self, now: Instant) -> Option<String> {
        let finding = self.saturation.as_mut()?.check(now)?;
        self.saturation_warning = Some(finding.clone());
        Some(finding)
    }

    /// Which objectives a finished request missed, in the order `ttft_ms`, `itl_ms`,
    /// `tpot_ms`, `e2e_ms` (None: not judged); it met them all when it missed none.
    fn misses(&self, ex: &Exchange, timings: &Timings) -> Option<[bool; 4]> {
        let slo = self.slo?;
        match ex.outcome {
            Outcome::Incomplete => None,
            Outcome::Errored(_) => Some([
                slo.ttft_ms.is_some(),
                slo.itl_ms.is_some(),
                slo.tpot_ms.is_some(),
                slo.e2e_ms.is_some(),
            ]),
            Outcome::Successful => {
                let beyond = |limit: Option<f64>, value: Option<f64>| {
                    limit.is_some_and(|l| value.is_none_or(|v| v > l))
                };
                let max_gap = ex.gaps_ms.iter().copied().fold(0.0, f64::max);
                Some([
                    beyond(slo.ttft_ms, timings.ttft_ms),
                    beyond(slo.itl_ms, Some(max_gap)),
                    // A request with one token has no TPOT to miss.
                    beyond(slo.tpot_ms, Some(timings.tpot_ms.unwrap_or(0.0))),
                    beyond(slo.e2e_ms, Some(timings.latency_ms)),
                ])
            }
        }
    }

    /// The `[slo]` counts an SLO search judges a step by.
    pub(crate) fn slo_counts(&self) -> bench_core::search::StepCounts {
        bench_core::search::StepCounts {
            judged: self.slo_counts[0],
            met: self.slo_counts[1],
            missed: self.slo_missed,
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
            self.max_in_flight = self.max_in_flight.max(self.live.in_flight);
        }
        self.sent - 1
    }

    /// An arrival of the open-loop schedule, due at `intended`, was just sent (after
    /// [`Aggregator::on_send`]); `capped_wait` is how long it waited for a `max_concurrency`
    /// permit, if it had to.
    pub(crate) fn on_arrival(&mut self, intended: Instant, capped_wait: Option<Duration>) {
        let now = Instant::now();
        if !self.in_window(now) {
            return;
        }
        let pace = &mut self.pace;
        pace.arrivals += 1;
        if let Some(wait) = capped_wait {
            pace.capped += 1;
            let _ = pace.capped_wait.record(wait.as_secs_f64() * 1000.0);
        }
        pace.first.get_or_insert((intended, now));
        pace.last = Some((intended, now));
    }

    /// Records a finished request; returns the error limit it reached, if any:
    /// `max_errors`, `max_error_rate`, or without either the default stop (the last
    /// [`DEFAULT_FAILURE_STREAK`] finished requests all failed), as `MaxErrorRate`.
    pub(crate) fn on_finish(&mut self, exchange: &Exchange) -> Option<StopReason> {
        let now = Instant::now();
        if let Some(version) = exchange.http_version {
            *self.http_versions.entry(version).or_default() += 1;
        }
        self.advance(now);
        self.live.in_flight = self.live.in_flight.saturating_sub(1);
        self.completed += 1;
        let errored = matches!(exchange.outcome, Outcome::Errored(_));
        match &exchange.outcome {
            Outcome::Successful => {
                self.live.successful += 1;
                self.failure_streak = 0;
            }
            Outcome::Incomplete => self.live.incomplete += 1,
            Outcome::Errored(failure) => {
                self.live.errored += 1;
                self.failure_streak += 1;
                if failure.kind == crate::client::FD_LIMIT {
                    self.fd_failures += 1;
                }
            }
        }
        let output_tokens = exchange
            .usage
            .and_then(|u| u.completion_tokens)
            .unwrap_or(u64::from(exchange.content_chunks));
        self.live.output_tokens += output_tokens;
        // Only a request with a first token was surely prefilled by the server.
        if exchange.first_token.is_some() {
            self.live.prompt_tokens += exchange
                .usage
                .and_then(|u| u.prompt_tokens)
                .unwrap_or(u64::from(exchange.client_prompt_tokens));
        }
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
            && self.window_end.is_none_or(|e| exchange.started <= e);
        if overlaps {
            self.record(exchange, output_tokens);
        }
        if !errored {
            return None;
        }
        let rate_exceeded = self.max_error_rate.is_some_and(|limit| {
            self.error_window.len() >= self.error_window_size
                && self.error_window.iter().filter(|e| **e).count() as f64
                    / self.error_window.len() as f64
                    >= limit
        });
        if self.max_errors.is_some_and(|max| self.live.errored >= max) {
            Some(StopReason::MaxErrors)
        } else if rate_exceeded {
            Some(StopReason::MaxErrorRate)
        } else if self.default_error_stop && self.failure_streak >= DEFAULT_FAILURE_STREAK {
            self.stopped_on_failures = true;
            Some(StopReason::MaxErrorRate)
        } else {
            None
        }
    }

    fn record(&mut self, ex: &Exchange, output_tokens: u64) {
        let timings = Timings::of(ex, output_tokens);
        self.reads.add(ex);
        let lag_ms = ms(ex.intended, ex.started);
        let _ = self.pooled_lag.record(lag_ms);
        let prompt = ex
            .usage
            .and_then(|u| u.prompt_tokens)
            .unwrap_or(u64::from(ex.client_prompt_tokens));
        let successful = matches!(ex.outcome, Outcome::Successful);
        let record = RequestRecord {
            ended: match &ex.outcome {
                Outcome::Successful => Ended::Successful,
                Outcome::Incomplete => Ended::Incomplete,
                Outcome::Errored(f) => Ended::Errored(RequestError {
                    kind: f.kind,
                    status_code: f.status,
                    message: &f.message,
                }),
            },
            latency_ms: Some(timings.latency_ms),
            ttft_ms: timings.ttft_ms,
            itl_ms: &ex.gaps_ms,
            tpot_ms: timings.tpot_ms,
            decode_time_ms: timings.decode_ms,
            schedule_lag_ms: Some(lag_ms),
            latency_from_intended_send_ms: Some(ms(ex.intended, ex.end)),
            prompt_tokens: Some(prompt),
            output_tokens: Some(output_tokens),
            ended_in_window: self.in_window(ex.end),
            reasoning: Some(ReasoningRecord {
                time_to_first_answer_token_ms: timings.first_answer_ms,
                reasoning_tokens: timings.reasoning_tokens,
                answer_tokens: timings
                    .reasoning_tokens
                    .map(|r| output_tokens.saturating_sub(r)),
                reasoning_itl_ms: &ex.phases.reasoning_gaps_ms,
                answer_itl_ms: &ex.phases.answer_gaps_ms,
            }),
        };
        self.measured.add(&record);
        // The same record, so the live counters end equal to the report's totals.
        if let Some(exported) = &self.exported {
            exported.add(&record);
        }
        if let (true, Some(figures), Some(index)) = (successful, &mut self.sessions, ex.turn) {
            figures.turn(&crate::session_figures::Turn {
                index,
                ttft_ms: timings.ttft_ms,
                latency_ms: timings.latency_ms,
                prompt_tokens: prompt,
                cached_prompt_tokens: ex
                    .usage
                    .and_then(|u| u.prompt_tokens_details)
                    .and_then(|d| d.cached_tokens)
                    .or(ex.server_timings.and_then(|t| t.cache_n)),
                output_tokens,
            });
        }
        if successful {
            if let Some(ttft) = timings.ttft_ms {
                let _ = self.live_ttft.record(ttft);
            }
            for &gap in &ex.gaps_ms {
                let _ = self.live_itl.record(gap);
            }
        }
        if let Some(missed) = self.misses(ex, &timings) {
            self.slo_counts[0] += 1;
            for (count, missed) in self.slo_missed.iter_mut().zip(missed) {
                *count += u64::from(missed);
            }
            if !missed.contains(&true) {
                self.slo_counts[1] += 1;
                if self.in_window(ex.end) {
                    self.slo_counts[2] += 1;
                }
            }
        }
        if successful {
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
    #[expect(
        clippy::too_many_arguments,
        reason = "what the runner knows of the benchmark, each used once"
    )]
    pub(crate) fn finish(
        mut self,
        index: usize,
        strategy: Strategy,
        workload: &str,
        end: Instant,
        stopped_by: Option<StopReason>,
        clock: &Clock,
        transport: &Transport,
        connections: &Histogram,
        kernel_timestamps: bool,
    ) -> Benchmark {
        let mut warnings = Vec::new();
        self.advance(end);
        let window_start = self.window_start.unwrap_or(end).min(end);
        let window_end = self
            .window_end
            .map_or(end, |e| e.min(end))
            .max(window_start);
        let duration_s = (window_end - window_start).as_secs_f64();
        if self.stopped_on_failures && stopped_by == Some(StopReason::MaxErrorRate) {
            warnings.push(Warning {
                code: "stopped_on_failures".to_owned(),
                message: format!(
                    "the last {DEFAULT_FAILURE_STREAK} finished requests all failed, so the benchmark stopped early (the default without constraints.max_errors or max_error_rate)"
                ),
            });
        }
        if self.fd_failures > 0 {
            warnings.push(Warning {
                code: "client_fd_limit".to_owned(),
                message: format!(
                    "{} requests failed because the client ran out of file descriptors (limit {}): these are not server errors; raise `ulimit -n`",
                    self.fd_failures,
                    crate::cpu::open_files_limit().map_or("unknown".to_owned(), |l| l.to_string())
                ),
            });
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
        let mut benchmark = self.measured.finish(Head {
            index,
            strategy,
            workload: workload.to_owned(),
            window: Window {
                start: clock.at(window_start),
                end: clock.at(window_end),
                duration_s,
            },
            stopped_by,
            warnings,
        });
        let metrics = &benchmark.metrics;
        if let Some(target_rate) = benchmark.strategy.target_rate_per_s {
            let p50 = |split: &Option<StatusSplit<bench_core::schema::Distribution>>| {
                split
                    .as_ref()
                    .and_then(|s| s.successful.as_ref())
                    .map(|d| d.median)
            };
            let pacing = Pacing {
                target_rate,
                max_concurrency: benchmark.strategy.max_concurrency,
                arrivals: self.pace.arrivals,
                capped: self.pace.capped,
                capped_wait_p99_ms: self.pace.capped_wait.quantile(0.99),
                lag_p99_ms: metrics
                    .schedule_lag_ms
                    .as_ref()
                    .and_then(|l| l.total.as_ref())
                    .map(|d| d.percentiles.p99),
                lag_judged_ms: {
                    let n = self.pooled_lag.count() as f64;
                    (n >= 2.0)
                        .then(|| self.pooled_lag.quantile(0.99f64.min((n - 1.0) / n)))
                        .flatten()
                },
                server_p50_ms: p50(&metrics.ttft_ms).or_else(|| p50(&metrics.request_latency_ms)),
                spans_s: self.pace.first.zip(self.pace.last).and_then(
                    |((first_intended, first_sent), (last_intended, last_sent))| {
                        (self.pace.arrivals >= 2).then(|| {
                            (
                                last_intended
                                    .saturating_duration_since(first_intended)
                                    .as_secs_f64(),
                                last_sent
                                    .saturating_duration_since(first_sent)
                                    .as_secs_f64(),
                            )
                        })
                    },
                ),
            };
            // The client's own pacing first, as before the builder's warnings.
            if let Some(warning) = pacing.judge() {
                benchmark.warnings.insert(0, warning);
            }
        }
        let timestamps = self.reads.timestamps(kernel_timestamps);
        let server_gap_ms = {
            let p50 = |split: &Option<StatusSplit<bench_core::schema::Distribution>>| {
                split
                    .as_ref()
                    .and_then(|s| s.successful.as_ref())
                    .map(|d| d.median)
            };
            p50(&benchmark.metrics.itl_ms).or_else(|| p50(&benchmark.metrics.ttft_ms))
        };
        if let Some(evidence) = late_reads(&timestamps, server_gap_ms) {
            match benchmark
                .warnings
                .iter_mut()
                .find(|w| w.code == "client_bound")
            {
                Some(warning) => {
                    warning.message.push_str("; ");
                    warning.message.push_str(&evidence);
                }
                None => benchmark.warnings.insert(
                    0,
                    Warning {
                        code: "client_bound".to_owned(),
                        message: format!("the client may have limited this benchmark: {evidence}"),
                    },
                ),
            }
        }
        benchmark.timestamps = Some(timestamps);
        benchmark.sessions = self
            .sessions
            .take()
            .map(crate::session_figures::SessionFigures::finish);
        benchmark.metrics.rates.concurrency = (duration_s > 0.0).then(|| Concurrency {
            mean: self.area / duration_s,
            max: self.max_in_flight,
        });
        benchmark.goodput = self.slo.map(|_| {
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
        benchmark.transport = Some(Transport {
            http_versions: self
                .http_versions
                .iter()
                .map(|(version, n)| ((*version).to_owned(), *n))
                .collect(),
            connections_opened: connections.count(),
            connection_setup_ms: connections.summary(),
            ..transport.clone()
        });
        benchmark
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Failure;

    #[test]
    fn any_number_of_seconds_is_a_duration_and_an_end_past_an_instant_is_never() {
        assert_eq!(duration_from_secs(1.5), Duration::from_millis(1500));
        assert_eq!(duration_from_secs(1e300), Duration::MAX);
        assert_eq!(duration_from_secs(f64::INFINITY), Duration::MAX);
        assert_eq!(duration_from_secs(-1.0), Duration::ZERO);
        assert_eq!(duration_from_secs(f64::NAN), Duration::ZERO);
        let now = Instant::now();
        assert_eq!(after(now, 2.0), Some(now + Duration::from_secs(2)));
        assert_eq!(after(now, 1e300), None);
        assert_eq!(after(now, f64::INFINITY), None);
    }

    #[test]
    fn huge_limits_and_transients_build_an_aggregator_without_panicking() {
        let constraints = Constraints {
            max_seconds: Some(1e300),
            ..Constraints::default()
        };
        let start = Instant::now();
        let aggregator = Aggregator::new(
            start,
            Some(Boundary::Seconds(1e300)),
            Some(Boundary::Seconds(1e300)),
            &constraints,
            None,
        );
        assert!(
            aggregator.window_start.is_none(),
            "a warmup that never ends"
        );
        assert_eq!(aggregator.phase(start), Phase::Warmup);
        // A cooldown longer than a benchmark that does end: an empty window, no panic.
        let constraints = Constraints {
            max_seconds: Some(1.0),
            ..Constraints::default()
        };
        let aggregator = Aggregator::new(
            start,
            None,
            Some(Boundary::Seconds(1e300)),
            &constraints,
            None,
        );
        assert_eq!(aggregator.window_end, Some(start));
        let benchmark = aggregator.finish(
            0,
            strategy(10.0, None),
            "w",
            start + Duration::from_millis(10),
            None,
            &Clock::new(),
            &crate::transport_of(&bench_core::config::Target::default()),
            &Histogram::for_milliseconds(),
            false,
        );
        assert_eq!(benchmark.window.duration_s, 0.0);
    }

    fn strategy(rate: f64, max_concurrency: Option<u32>) -> Strategy {
        Strategy {
            kind: bench_core::config::StrategyKind::Constant,
            streams: None,
            target_rate_per_s: Some(rate),
            max_concurrency,
            burstiness: None,
            speedup: None,
        }
    }

    fn exchange(failed: bool) -> Exchange {
        let now = Instant::now();
        Exchange {
            intended: now,
            started: now,
            sent: now,
            first_token: (!failed).then_some(now),
            last_token: (!failed).then_some(now),
            end: now,
            gaps_ms: Vec::new(),
            content_chunks: u32::from(!failed),
            phases: Default::default(),
            usage: None,
            server_timings: None,
            client_prompt_tokens: 4,
            http_version: None,
            connection_setup: None,
            timing: Default::default(),
            outcome: if failed {
                Outcome::Errored(Failure {
                    kind: "http_status",
                    status: Some(500),
                    message: "boom".to_owned(),
                    retry_after: None,
                })
            } else {
                Outcome::Successful
            },
            turn: None,
            answer: None,
        }
    }

    /// Feeds `pattern` (true: failed) through an aggregator; the index at which it asked to
    /// stop, and why.
    fn first_stop(constraints: &Constraints, pattern: &[bool]) -> Option<(usize, StopReason)> {
        let mut aggregator = Aggregator::new(Instant::now(), None, None, constraints, None);
        pattern.iter().enumerate().find_map(|(i, failed)| {
            aggregator.on_send();
            aggregator.on_finish(&exchange(*failed)).map(|r| (i, r))
        })
    }

    #[test]
    fn without_error_limits_fifty_failures_in_a_row_stop_a_benchmark() {
        let none = Constraints::default();
        let all_fail = [true; 60];
        assert_eq!(
            first_stop(&none, &all_fail),
            Some((
                DEFAULT_FAILURE_STREAK as usize - 1,
                StopReason::MaxErrorRate
            ))
        );
        // One success in every 50 keeps it going.
        let mostly: Vec<bool> = (0..500).map(|i| i % 50 != 0).collect();
        assert_eq!(first_stop(&none, &mostly), None);
        // A limit of the user's own replaces the default.
        let own = Constraints {
            max_errors: Some(1000),
            ..Constraints::default()
        };
        assert_eq!(first_stop(&own, &all_fail), None);
        let own = Constraints {
            max_errors: Some(3),
            ..Constraints::default()
        };
        assert_eq!(
            first_stop(&own, &all_fail),
            Some((2, StopReason::MaxErrors))
        );
        let rate = Constraints {
            max_error_rate: Some(0.5),
            error_rate_window: Some(10),
            ..Constraints::default()
        };
        assert_eq!(
            first_stop(&rate, &all_fail),
            Some((9, StopReason::MaxErrorRate))
        );
    }

    /// A run that keeps its schedule at 20 req/s: lag p99 1.7 ms, TTFT p50 37 ms.
    fn kept() -> Pacing {
        Pacing {
            target_rate: 20.0,
            max_concurrency: None,
            arrivals: 60,
            capped: 0,
            capped_wait_p99_ms: None,
            lag_p99_ms: Some(1.7),
            lag_judged_ms: Some(1.7),
            server_p50_ms: Some(37.0),
            spans_s: Some((2.95, 2.95 - 0.001)),
        }
    }

    #[test]
    fn a_kept_schedule_raises_nothing_even_when_it_sent_a_little_more_than_asked() {
        assert_eq!(kept().judge(), None);
        // The report that once said "sent 20.48 req/s of the 20.00 asked": ahead is not behind.
        let ahead = Pacing {
            spans_s: Some((2.95, 2.88)),
            ..kept()
        };
        assert_eq!(ahead.judge(), None);
        // One request of 81 late by 47 ms (its prompt built on the request path): the p99 of
        // so few is that one, the second-latest was on time.
        let one_late = Pacing {
            arrivals: 81,
            lag_p99_ms: Some(47.0),
            lag_judged_ms: Some(0.9),
            ..kept()
        };
        assert_eq!(one_late.judge(), None);
        // Lag over 10 % of the gap (5 ms) but under 10 % of a slow server's TTFT.
        let slow_server = Pacing {
            lag_p99_ms: Some(8.0),
            lag_judged_ms: Some(8.0),
            server_p50_ms: Some(400.0),
            ..kept()
        };
        assert_eq!(slow_server.judge(), None);
        // Lag over 10 % of TTFT but under 10 % of a wide gap.
        let sparse = Pacing {
            target_rate: 1.0,
            lag_p99_ms: Some(8.0),
            lag_judged_ms: Some(8.0),
            server_p50_ms: Some(30.0),
            ..kept()
        };
        assert_eq!(sparse.judge(), None);
        // Behind by less than a millisecond over a short window: jitter.
        let jitter = Pacing {
            target_rate: 10_000.0,
            spans_s: Some((0.0002, 0.0003)),
            lag_p99_ms: Some(0.05),
            lag_judged_ms: Some(0.05),
            ..kept()
        };
        assert_eq!(jitter.judge(), None);
        // No rate to judge against.
        let nonsense = Pacing {
            target_rate: 0.0,
            lag_p99_ms: Some(1e6),
            lag_judged_ms: Some(1e6),
            ..kept()
        };
        assert_eq!(nonsense.judge(), None);
    }

    /// Reads with these client delays (ms), `coalesced` of 100 content events coalesced.
    fn reads(delays: &[f64], coalesced: u64) -> Timestamps {
        let mut reads = Reads::default();
        for &delay in delays {
            reads.client_delay.record(delay).unwrap();
        }
        reads.content_events = 100;
        reads.coalesced_events = coalesced;
        reads.timestamps(true)
    }

    #[test]
    fn a_client_that_reads_late_is_client_bound_one_that_keeps_up_is_not() {
        let keeps_up = reads(&[0.05; 100], 0);
        assert_eq!(keeps_up.source, TimestampSource::Kernel);
        assert_eq!(keeps_up.coalesced_share, Some(0.0));
        assert!(late_reads(&keeps_up, Some(10.0)).is_none());
        // 1.6 ms against 11 ms between tokens: late, but far from merging events.
        assert!(late_reads(&reads(&[1.6; 100], 0), Some(11.0)).is_none());
        // Over half the gap between tokens.
        let late = late_reads(&reads(&[6.0; 100], 0), Some(10.0)).unwrap();
        assert!(
            late.contains("client delay p50 6.000 ms, p99 6.000 ms against the server's 10.0 ms"),
            "{late}"
        );
        // A tail of late reads alone is scheduler noise.
        let mut tail = vec![0.05; 95];
        tail.extend([8.0; 5]);
        assert!(late_reads(&reads(&tail, 0), Some(10.0)).is_none());
        // Under 1 ms is never evidence, even against a fast stream, unless events merged.
        assert!(late_reads(&reads(&[0.9; 100], 0), Some(1.0)).is_none());
        let merged = late_reads(&reads(&[0.9; 100], 6), Some(1.0)).unwrap();
        assert!(merged.contains("6.0 % of content events"), "{merged}");
        assert!(
            late_reads(&reads(&[0.9; 100], 5), Some(1.0)).is_none(),
            "5 % is scheduler noise"
        );
        // User-space times cannot see the delay, and judge nothing here.
        let user = Reads::default().timestamps(false);
        assert_eq!(user.source, TimestampSource::UserSpace);
        assert!(user.client_delay_ms.is_none() && user.coalesced_share.is_none());
        assert!(late_reads(&user, Some(10.0)).is_none());
    }

    #[test]
    fn a_client_that_falls_behind_is_client_bound() {
        let late = Pacing {
            lag_p99_ms: Some(12.0),
            lag_judged_ms: Some(12.0),
            ..kept()
        };
        let warning = late.judge().unwrap();
        assert_eq!(warning.code, "client_bound");
        assert!(
            warning.message.contains("schedule lag p99 12.0 ms")
                && warning.message.contains("50.0 ms between arrivals")
                && warning.message.contains("37.0 ms")
                && !warning.message.contains("req/s of the"),
            "{}",
            warning.message
        );
        // 1e6 req/s asked, arrivals sent over 40 ms instead of 4 ms.
        let flood = Pacing {
            target_rate: 1e6,
            arrivals: 3000,
            lag_p99_ms: Some(35.0),
            lag_judged_ms: Some(35.0),
            server_p50_ms: Some(0.4),
            spans_s: Some((0.004, 0.040)),
            ..kept()
        };
        let warning = flood.judge().unwrap();
        assert_eq!(warning.code, "client_bound");
        assert!(
            warning
                .message
                .contains("sent 100000.00 req/s of the 1000000.00 req/s asked (10 %)"),
            "{}",
            warning.message
        );
        // Behind alone, with a small lag p99, is enough.
        let behind = Pacing {
            spans_s: Some((2.95, 3.3)),
            ..kept()
        };
        assert_eq!(behind.judge().unwrap().code, "client_bound");
        // Without a server figure (every request failed) the gap alone decides the lag.
        let no_server = Pacing {
            lag_p99_ms: Some(6.0),
            lag_judged_ms: Some(6.0),
            server_p50_ms: None,
            ..kept()
        };
        assert_eq!(no_server.judge().unwrap().code, "client_bound");
    }

    #[test]
    fn a_concurrency_cap_that_held_arrivals_back_is_not_the_clients_fault() {
        let capped = Pacing {
            target_rate: 50.0,
            max_concurrency: Some(2),
            arrivals: 100,
            capped: 80,
            capped_wait_p99_ms: Some(900.0),
            lag_p99_ms: Some(950.0),
            lag_judged_ms: Some(950.0),
            server_p50_ms: Some(50.0),
            spans_s: Some((2.0, 6.0)),
        };
        let warning = capped.judge().unwrap();
        assert_eq!(warning.code, "concurrency_capped");
        assert_eq!(
            warning.message,
            "max_concurrency = 2 held back 80 of 100 arrivals (wait p99 900.0 ms): the server completed requests more slowly than they arrived (saturated), so this benchmark measured it at 2 requests in flight rather than at 50.00 req/s; schedule lag p99 950.0 ms"
        );
        // One arrival in a hundred is a clump, not a cap: judged as any other run.
        let clump = Pacing {
            max_concurrency: Some(64),
            arrivals: 100,
            capped: 1,
            ..kept()
        };
        assert_eq!(clump.judge(), None);
        // With an arrival capped the slower pace is not blamed on the client.
        let clump_behind = Pacing {
            spans_s: Some((2.95, 3.3)),
            ..clump
        };
        assert_eq!(clump_behind.judge(), None);
    }
}
