//! From per-request measurements to a [`Benchmark`]: every engine that sees its requests one
//! by one (the native engine as they finish, a subprocess engine from the tool's per-request
//! list) folds them through [`BenchmarkBuilder`], so totals, error groups, distributions and
//! rates follow one definition whichever engine measured them.

use crate::config::Strategy;
use crate::schema::{
    Benchmark, Concurrency, ErrorCount, Metrics, Rates, Reasoning, RequestTotals, StatusSplit,
    StopReason, Warning, Window,
};
use crate::stats::{Outcome, SplitHistogram};

/// Histogram resolution of millisecond metrics: kept to the microsecond.
const MS_RESOLUTION: f64 = 0.001;
/// Longest error example kept, in characters.
const EXAMPLE_CHARS: usize = 400;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended<'a> {
    /// Completed with a full response.
    Successful,
    /// Cancelled before completion; not the server's fault.
    Incomplete,
    /// Failed.
    Errored(RequestError<'a>),
}

/// Why a request failed: grouped in the report by `kind` and `status_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestError<'a> {
    /// `http_status`, `connect`, `timeout`, `stream`, ... (see [`ErrorCount::kind`]).
    pub kind: &'a str,
    /// The HTTP status, when the failure had one.
    pub status_code: Option<u16>,
    /// What the failure said; the first of each group becomes its example (one line,
    /// truncated; the engine blanks secrets before).
    pub message: &'a str,
}

/// One finished request as an engine measured it. Times are in milliseconds; `None` (or an
/// empty `itl_ms`) means the engine did not measure that value for this request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestRecord<'a> {
    /// How it ended.
    pub ended: Ended<'a>,
    /// Actual send to the end of the response.
    pub latency_ms: Option<f64>,
    /// Actual send to the first content-bearing chunk.
    pub ttft_ms: Option<f64>,
    /// Gaps between consecutive content-bearing chunks.
    pub itl_ms: &'a [f64],
    /// (last token - first token) / (output tokens - 1).
    pub tpot_ms: Option<f64>,
    /// Last token - first token.
    pub decode_time_ms: Option<f64>,
    /// Actual send - intended send.
    pub schedule_lag_ms: Option<f64>,
    /// End of the response - intended send.
    pub latency_from_intended_send_ms: Option<f64>,
    /// Prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Whether it ended inside the measured window, so it counts toward the rates.
    pub ended_in_window: bool,
    /// Its reasoning against its answer; `None` when the engine does not tell them apart.
    pub reasoning: Option<ReasoningRecord<'a>>,
}

/// One request's reasoning phase against its answer. Times in milliseconds; `None` (or an
/// empty list) means not measured, or nothing to measure (no answer came).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReasoningRecord<'a> {
    /// Actual send to the first answer chunk.
    pub time_to_first_answer_token_ms: Option<f64>,
    /// Reasoning tokens (0 for a response without reasoning).
    pub reasoning_tokens: Option<u64>,
    /// Output tokens less reasoning tokens.
    pub answer_tokens: Option<u64>,
    /// Gaps between consecutive reasoning chunks.
    pub reasoning_itl_ms: &'a [f64],
    /// Gaps between consecutive answer chunks.
    pub answer_itl_ms: &'a [f64],
}

impl<'a> RequestRecord<'a> {
    /// A request that ended as `ended` and measured nothing yet; fill in what was measured.
    pub fn new(ended: Ended<'a>) -> Self {
        Self {
            ended,
            latency_ms: None,
            ttft_ms: None,
            itl_ms: &[],
            tpot_ms: None,
            decode_time_ms: None,
            schedule_lag_ms: None,
            latency_from_intended_send_ms: None,
            prompt_tokens: None,
            output_tokens: None,
            ended_in_window: true,
            reasoning: None,
        }
    }
}

/// What a benchmark is besides its measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// Position in the run, from 0.
    pub index: usize,
    /// How load was generated.
    pub strategy: Strategy,
    /// The workload label.
    pub workload: String,
    /// The measured window; its duration divides every rate.
    pub window: Window,
    /// What ended the benchmark.
    pub stopped_by: Option<StopReason>,
    /// Warnings the engine already has for this benchmark.
    pub warnings: Vec<Warning>,
}

/// Folds [`RequestRecord`]s, in any order, into a [`Benchmark`].
#[derive(Debug, Clone)]
pub struct BenchmarkBuilder {
    /// Requests by outcome: successful, incomplete, errored.
    totals: [u64; 3],
    errors: Vec<ErrorCount>,
    latency: SplitHistogram,
    ttft: SplitHistogram,
    itl: SplitHistogram,
    tpot: SplitHistogram,
    decode: SplitHistogram,
    lag: SplitHistogram,
    from_intended: SplitHistogram,
    prompt_tokens: SplitHistogram,
    output_tokens: SplitHistogram,
    /// Reasoning against answer, once any request carried it.
    reasoning: Option<ReasoningHistograms>,
    /// Ended inside the window, by outcome: requests, output tokens, prompt + output tokens.
    ended: [[f64; 3]; 3],
    /// Whether any request that ended in the window carried token counts.
    token_counts: [bool; 2],
    /// Values no distribution can hold (not finite), left out.
    unrecordable: u64,
}

impl Default for BenchmarkBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BenchmarkBuilder {
    /// Nothing recorded yet.
    pub fn new() -> Self {
        let ms = || SplitHistogram::new(MS_RESOLUTION);
        Self {
            totals: [0; 3],
            errors: Vec::new(),
            latency: ms(),
            ttft: ms(),
            itl: ms(),
            tpot: ms(),
            decode: ms(),
            lag: ms(),
            from_intended: ms(),
            prompt_tokens: SplitHistogram::new(1.0),
            output_tokens: SplitHistogram::new(1.0),
            reasoning: None,
            ended: [[0.0; 3]; 3],
            token_counts: [false; 2],
            unrecordable: 0,
        }
    }

    /// Adds one finished request.
    pub fn add(&mut self, request: &RequestRecord<'_>) {
        let (outcome, part) = match request.ended {
            Ended::Successful => (Outcome::Successful, 0),
            Ended::Incomplete => (Outcome::Incomplete, 1),
            Ended::Errored(error) => {
                self.error(error);
                (Outcome::Errored, 2)
            }
        };
        self.totals[part] += 1;
        let mut unrecordable = 0;
        let mut record = |h: &mut SplitHistogram, value: Option<f64>| {
            if let Some(v) = value {
                if h.record(outcome, v).is_err() {
                    unrecordable += 1;
                }
            }
        };
        record(&mut self.latency, request.latency_ms);
        record(&mut self.ttft, request.ttft_ms);
        record(&mut self.tpot, request.tpot_ms);
        record(&mut self.decode, request.decode_time_ms);
        record(&mut self.lag, request.schedule_lag_ms);
        record(
            &mut self.from_intended,
            request.latency_from_intended_send_ms,
        );
        record(
            &mut self.prompt_tokens,
            request.prompt_tokens.map(|t| t as f64),
        );
        record(
            &mut self.output_tokens,
            request.output_tokens.map(|t| t as f64),
        );
        for &gap in request.itl_ms {
            record(&mut self.itl, Some(gap));
        }
        if let Some(reasoning) = &request.reasoning {
            let h = self
                .reasoning
                .get_or_insert_with(ReasoningHistograms::default);
            record(&mut h.first_answer, reasoning.time_to_first_answer_token_ms);
            record(
                &mut h.reasoning_tokens,
                reasoning.reasoning_tokens.map(|t| t as f64),
            );
            record(
                &mut h.answer_tokens,
                reasoning.answer_tokens.map(|t| t as f64),
            );
            for &gap in reasoning.reasoning_itl_ms {
                record(&mut h.reasoning_itl, Some(gap));
            }
            for &gap in reasoning.answer_itl_ms {
                record(&mut h.answer_itl, Some(gap));
            }
        }
        self.unrecordable += unrecordable;
        if request.ended_in_window {
            let output = request.output_tokens.unwrap_or(0) as f64;
            let prompt = request.prompt_tokens.unwrap_or(0) as f64;
            self.ended[part][0] += 1.0;
            self.ended[part][1] += output;
            self.ended[part][2] += output + prompt;
            self.token_counts[0] |= request.output_tokens.is_some();
            self.token_counts[1] |= request.prompt_tokens.is_some();
        }
    }

    fn error(&mut self, error: RequestError<'_>) {
        let group = self
            .errors
            .iter_mut()
            .find(|e| e.kind == error.kind && e.status_code == error.status_code);
        match group {
            Some(group) => group.count += 1,
            None => self.errors.push(ErrorCount {
                kind: error.kind.to_owned(),
                status_code: error.status_code,
                count: 1,
                example: Some(example(error.message)),
            }),
        }
    }

    /// Requests added so far, by outcome.
    pub fn totals(&self) -> RequestTotals {
        let [successful, incomplete, errored] = self.totals;
        RequestTotals::new(successful, incomplete, errored)
    }

    /// The benchmark. Rates are the window's counts over its duration (absent for an empty
    /// window); concurrency is the caller's to set, as only it knows when requests were in
    /// flight ([`concurrency`] computes it from request spans).
    pub fn finish(self, head: Head) -> Benchmark {
        let duration_s = head.window.duration_s;
        let measured = duration_s > 0.0 && duration_s.is_finite();
        let ended = self.ended;
        let split = |k: usize, parts: bool| -> Option<StatusSplit<f64>> {
            let per_s = |i: usize| Some(ended[i][k] / duration_s);
            measured.then(|| StatusSplit {
                successful: per_s(0),
                incomplete: if parts { per_s(1) } else { None },
                errored: if parts { per_s(2) } else { None },
                total: Some((ended[0][k] + ended[1][k] + ended[2][k]) / duration_s),
            })
        };
        let mut warnings = head.warnings;
        if self.unrecordable > 0 {
            warnings.push(Warning {
                code: "unrecordable_values".to_owned(),
                message: format!(
                    "{} measured values were not finite numbers and were left out of the distributions",
                    self.unrecordable
                ),
            });
        }
        let mut errors = self.errors;
        errors.sort_by(|a, b| (&a.kind, a.status_code).cmp(&(&b.kind, b.status_code)));
        Benchmark {
            index: head.index,
            strategy: head.strategy,
            workload: head.workload,
            window: head.window,
            requests: {
                let [s, i, e] = self.totals;
                RequestTotals::new(s, i, e)
            },
            errors,
            stopped_by: head.stopped_by,
            warnings,
            metrics: Metrics {
                request_latency_ms: self.latency.summary(),
                ttft_ms: self.ttft.summary(),
                itl_ms: self.itl.summary(),
                tpot_ms: self.tpot.summary(),
                decode_time_ms: self.decode.summary(),
                schedule_lag_ms: self.lag.summary(),
                latency_from_intended_send_ms: self.from_intended.summary(),
                prompt_tokens: self.prompt_tokens.summary(),
                output_tokens: self.output_tokens.summary(),
                reasoning: self.reasoning.map(|h| Reasoning {
                    time_to_first_answer_token_ms: h.first_answer.summary(),
                    reasoning_tokens: h.reasoning_tokens.summary(),
                    answer_tokens: h.answer_tokens.summary(),
                    reasoning_itl_ms: h.reasoning_itl.summary(),
                    answer_itl_ms: h.answer_itl.summary(),
                }),
                rates: Rates {
                    requests_per_s: split(0, true),
                    output_tokens_per_s: split(1, true).filter(|_| self.token_counts[0]),
                    total_tokens_per_s: split(2, true)
                        .filter(|_| self.token_counts[0] || self.token_counts[1]),
                    concurrency: None,
                },
            },
            goodput: None,
            drain: None,
            transport: None,
            timestamps: None,
            sessions: None,
            server: None,
        }
    }
}

/// The distributions of [`Reasoning`].
#[derive(Debug, Clone)]
struct ReasoningHistograms {
    first_answer: SplitHistogram,
    reasoning_tokens: SplitHistogram,
    answer_tokens: SplitHistogram,
    reasoning_itl: SplitHistogram,
    answer_itl: SplitHistogram,
}

impl Default for ReasoningHistograms {
    fn default() -> Self {
        let ms = || SplitHistogram::new(MS_RESOLUTION);
        Self {
            first_answer: ms(),
            reasoning_tokens: SplitHistogram::new(1.0),
            answer_tokens: SplitHistogram::new(1.0),
            reasoning_itl: ms(),
            answer_itl: ms(),
        }
    }
}

/// Time-weighted concurrency over the window `[start, end]` (seconds on any one clock) of
/// requests in flight over `spans` (send, end on the same clock): the mean is the spans'
/// overlap with the window over its length, the max the most spans open at one instant of it.
/// `None` for an empty window.
pub fn concurrency(
    spans: impl IntoIterator<Item = (f64, f64)>,
    start: f64,
    end: f64,
) -> Option<Concurrency> {
    if !(end > start && (end - start).is_finite()) {
        return None;
    }
    let mut area = 0.0;
    let mut events: Vec<(f64, i64)> = Vec::new();
    for (sent, ended) in spans {
        let (from, to) = (sent.max(start), ended.min(end));
        if to > from {
            area += to - from;
        }
        if to >= from {
            events.push((from, 1));
            events.push((to, -1));
        }
    }
    // Ends before starts at one instant: a request that ends as another starts never overlaps it.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut max) = (0i64, 0i64);
    for (_, step) in events {
        open += step;
        max = max.max(open);
    }
    Some(Concurrency {
        mean: area / (end - start),
        max: u64::try_from(max).unwrap_or(0),
    })
}

/// An error message fit for a report: one line, truncated.
fn example(message: &str) -> String {
    let text = message.replace(['\n', '\r'], " ");
    if text.chars().count() > EXAMPLE_CHARS {
        text.chars().take(EXAMPLE_CHARS).collect::<String>() + "…"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StrategyKind;
    use crate::schema::Timestamp;

    fn head(duration_s: f64) -> Head {
        let start = Timestamp::from_unix_micros(1_000_000);
        Head {
            index: 2,
            strategy: Strategy {
                kind: StrategyKind::Concurrent,
                streams: Some(2),
                target_rate_per_s: None,
                max_concurrency: None,
                burstiness: None,
                speedup: None,
            },
            workload: "D(10,4)".to_owned(),
            window: Window {
                start,
                end: start.plus(std::time::Duration::from_secs_f64(duration_s)),
                duration_s,
            },
            stopped_by: Some(StopReason::MaxRequests),
            warnings: Vec::new(),
        }
    }

    fn ok(ttft: f64, gaps: &[f64]) -> RequestRecord<'_> {
        RequestRecord {
            latency_ms: Some(ttft + gaps.iter().sum::<f64>()),
            ttft_ms: Some(ttft),
            itl_ms: gaps,
            prompt_tokens: Some(10),
            output_tokens: Some(gaps.len() as u64 + 1),
            ..RequestRecord::new(Ended::Successful)
        }
    }

    #[test]
    fn records_fold_into_totals_split_distributions_and_window_rates() {
        let mut b = BenchmarkBuilder::new();
        b.add(&ok(50.0, &[10.0, 10.0, 10.0]));
        b.add(&ok(70.0, &[20.0, 20.0, 20.0]));
        // Ended after the window: in the distributions, not in the rates.
        b.add(&RequestRecord {
            ended_in_window: false,
            ..ok(60.0, &[10.0, 10.0, 10.0])
        });
        b.add(&RequestRecord {
            output_tokens: Some(2),
            ..RequestRecord::new(Ended::Incomplete)
        });
        for status in [500, 500, 503] {
            b.add(&RequestRecord::new(Ended::Errored(RequestError {
                kind: "http_status",
                status_code: Some(status),
                message: "overloaded\nretry later",
            })));
        }
        assert_eq!(b.totals(), RequestTotals::new(3, 1, 3));
        let bench = b.finish(head(2.0));
        assert_eq!(bench.requests, RequestTotals::new(3, 1, 3));
        assert_eq!(bench.index, 2);
        assert_eq!(bench.stopped_by, Some(StopReason::MaxRequests));
        let errors: Vec<_> = bench
            .errors
            .iter()
            .map(|e| (e.status_code, e.count, e.example.as_deref()))
            .collect();
        assert_eq!(
            errors,
            [
                (Some(500), 2, Some("overloaded retry later")),
                (Some(503), 1, Some("overloaded retry later"))
            ]
        );
        let m = &bench.metrics;
        let ttft = m.ttft_ms.as_ref().unwrap();
        assert_eq!(ttft.successful.as_ref().unwrap().count, 3);
        assert_eq!(ttft.successful.as_ref().unwrap().mean, 60.0);
        assert!(ttft.errored.is_none());
        assert_eq!(m.itl_ms.as_ref().unwrap().total.as_ref().unwrap().count, 9);
        assert!(m.schedule_lag_ms.is_none(), "never measured, so null");
        let requests = m.rates.requests_per_s.as_ref().unwrap();
        // In the window: 2 successful, 1 incomplete, 3 errored over 2 s.
        assert_eq!(requests.successful, Some(1.0));
        assert_eq!(requests.incomplete, Some(0.5));
        assert_eq!(requests.errored, Some(1.5));
        assert_eq!(requests.total, Some(3.0));
        let output = m.rates.output_tokens_per_s.as_ref().unwrap();
        assert_eq!(output.successful, Some(4.0));
        assert_eq!(output.total, Some(5.0));
        assert_eq!(
            m.rates.total_tokens_per_s.as_ref().unwrap().total,
            Some(15.0)
        );
        assert!(bench.warnings.is_empty());
    }

    #[test]
    fn an_empty_window_has_no_rates_and_nothing_measured_is_null() {
        let bench = BenchmarkBuilder::new().finish(head(0.0));
        assert_eq!(bench.requests, RequestTotals::default());
        assert!(bench.metrics.rates.requests_per_s.is_none());
        assert!(bench.metrics.request_latency_ms.is_none());
        assert!(bench.errors.is_empty());
    }

    #[test]
    fn token_rates_are_null_when_no_request_carried_token_counts() {
        let mut b = BenchmarkBuilder::new();
        b.add(&RequestRecord {
            ttft_ms: Some(5.0),
            ..RequestRecord::new(Ended::Successful)
        });
        let bench = b.finish(head(1.0));
        assert_eq!(bench.metrics.rates.requests_per_s.unwrap().total, Some(1.0));
        assert!(bench.metrics.rates.output_tokens_per_s.is_none());
        assert!(bench.metrics.rates.total_tokens_per_s.is_none());
    }

    #[test]
    fn values_no_distribution_holds_are_left_out_and_counted_in_a_warning() {
        let mut b = BenchmarkBuilder::new();
        b.add(&RequestRecord {
            ttft_ms: Some(f64::NAN),
            latency_ms: Some(f64::INFINITY),
            ..RequestRecord::new(Ended::Successful)
        });
        let bench = b.finish(head(1.0));
        assert!(bench.metrics.ttft_ms.is_none());
        assert_eq!(bench.warnings[0].code, "unrecordable_values");
        assert!(bench.warnings[0].message.starts_with("2 measured values"));
    }

    #[test]
    fn long_error_messages_are_cut_to_one_line() {
        let long = "x".repeat(1000);
        let mut b = BenchmarkBuilder::new();
        b.add(&RequestRecord::new(Ended::Errored(RequestError {
            kind: "stream",
            status_code: None,
            message: &long,
        })));
        let example = b.finish(head(1.0)).errors[0].example.clone().unwrap();
        assert_eq!(example.chars().count(), EXAMPLE_CHARS + 1);
    }

    #[test]
    fn concurrency_weights_spans_by_their_time_inside_the_window() {
        // Window 0..10 s; one request over all of it, one over 2..4, one starting before the
        // window and ending at 1, one after it.
        let spans = [(0.0, 10.0), (2.0, 4.0), (-5.0, 1.0), (12.0, 13.0)];
        let c = concurrency(spans, 0.0, 10.0).unwrap();
        assert!((c.mean - 1.3).abs() < 1e-12, "{c:?}");
        assert_eq!(c.max, 2);
        // Back to back: one ends as the next starts, never two at once.
        let c = concurrency([(0.0, 1.0), (1.0, 2.0)], 0.0, 2.0).unwrap();
        assert_eq!((c.mean, c.max), (1.0, 1));
        assert!(concurrency([(0.0, 1.0)], 1.0, 1.0).is_none());
    }
}
