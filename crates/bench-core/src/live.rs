//! The running benchmark's own figures, for a Prometheus scrape while it runs (`llm-bench run
//! --metrics-listen`): counters, gauges and fixed-bucket histograms, rendered in Prometheus's
//! text exposition format 0.0.4. The front end serves [`LiveMetrics::render`]; engines feed
//! the [`LiveBenchmark`] of each benchmark through [`crate::RunContext::live`].
//!
//! Requests are counted from the same [`RequestRecord`]s the report is folded from, so a
//! benchmark's final counters equal its report's totals. Feeding a finished request takes one
//! uncontended mutex (a scrape is the only other taker); the gauges are atomics. Nothing here
//! is on a request's send path. Every series is described in `docs/metrics.md` ("Live export").

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::config::{Strategy, StrategyKind};
use crate::measure::{Ended, RequestRecord};

/// The content type of [`LiveMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the TTFT and request latency buckets: 1, 2.5, 5 per decade from
/// 1 ms to 500 s.
const SLOW_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0,
    100.0, 250.0, 500.0,
];
/// Upper bounds (seconds) of the ITL and schedule lag buckets: 1, 2.5, 5 per decade from
/// 100 µs to 10 s.
const FAST_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The outcomes, in the order of every per-outcome array here, with their label values.
const OUTCOMES: [&str; 3] = ["successful", "incomplete", "errored"];

/// How a family's value is read from a benchmark: a gauge (absent when `None`), a counter by
/// outcome, a histogram by outcome.
type GaugeOf = fn(&LiveBenchmark) -> Option<f64>;
type CounterOf = fn(&Figures) -> &[u64; 3];
type HistogramOf = fn(&Figures) -> &[Buckets; 3];

/// Every benchmark's live figures, and the run's.
#[derive(Debug)]
pub struct LiveMetrics {
    started: SystemTime,
    /// Every benchmark started, those replaced included.
    benchmarks_started: AtomicU64,
    benchmarks: Mutex<Vec<Arc<LiveBenchmark>>>,
}

impl Default for LiveMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveMetrics {
    /// No benchmark yet; the run's start time is now.
    pub fn new() -> Self {
        Self {
            started: SystemTime::now(),
            benchmarks_started: AtomicU64::new(0),
            benchmarks: Mutex::new(Vec::new()),
        }
    }

    /// The series of benchmark `index` (from 0, as the report counts; labelled from 1, as the
    /// console shows it) run by `engine` with `strategy`, running from now. A benchmark that
    /// starts again under the same engine and index replaces the earlier one's series (a
    /// counter reset, which Prometheus's `rate` and `increase` handle).
    pub fn benchmark(&self, engine: &str, index: usize, strategy: &Strategy) -> Arc<LiveBenchmark> {
        let series = Arc::new(LiveBenchmark::new(engine, index, strategy));
        self.benchmarks_started.fetch_add(1, Ordering::Relaxed);
        let mut benchmarks = lock(&self.benchmarks);
        benchmarks.retain(|b| !(b.engine == engine && b.index == index));
        benchmarks.push(series.clone());
        series
    }

    /// Every series in Prometheus's text exposition format 0.0.4 ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let benchmarks: Vec<Arc<LiveBenchmark>> = lock(&self.benchmarks).clone();
        // One consistent copy of each benchmark's request figures.
        let figures: Vec<(String, Figures)> = benchmarks
            .iter()
            .map(|b| (b.labels(), lock(&b.figures).clone()))
            .collect();
        let mut out = String::new();
        family(
            &mut out,
            "llm_bench_build_info",
            "gauge",
            "Always 1; the llm-bench version as a label.",
        );
        sample(
            &mut out,
            "llm_bench_build_info",
            &format!("version=\"{}\"", escape(env!("CARGO_PKG_VERSION"))),
            1.0,
        );
        family(
            &mut out,
            "llm_bench_start_time_seconds",
            "gauge",
            "When the run began, in seconds since the Unix epoch.",
        );
        let started = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        sample(&mut out, "llm_bench_start_time_seconds", "", started);
        family(
            &mut out,
            "llm_bench_benchmarks_started_total",
            "counter",
            "Benchmarks started so far in this run (all engines).",
        );
        sample(
            &mut out,
            "llm_bench_benchmarks_started_total",
            "",
            self.benchmarks_started.load(Ordering::Relaxed) as f64,
        );

        let gauges: [(&str, &str, GaugeOf); 4] = [
            (
                "llm_bench_benchmark_running",
                "1 while the benchmark sends requests or waits for them, 0 once its figures are final.",
                |b| Some(if b.running.load(Ordering::Relaxed) { 1.0 } else { 0.0 }),
            ),
            (
                "llm_bench_requests_in_flight",
                "Requests sent and not finished, warmup and cooldown included (updated every second).",
                |b| Some(b.in_flight.load(Ordering::Relaxed) as f64),
            ),
            (
                "llm_bench_achieved_requests_per_second",
                "Requests finished in the last second, warmup and cooldown included (updated every second).",
                |b| Some(f64::from_bits(b.achieved_rate.load(Ordering::Relaxed))),
            ),
            (
                "llm_bench_target_requests_per_second",
                "The rate an open-loop benchmark asks for; absent for closed-loop ones.",
                |b| b.target_rate,
            ),
        ];
        for (name, help, value) in gauges {
            family(&mut out, name, "gauge", help);
            for b in &benchmarks {
                if let Some(v) = value(b) {
                    sample(&mut out, name, &b.labels(), v);
                }
            }
        }

        let counters: [(&str, &str, CounterOf); 3] = [
            (
                "llm_bench_requests_total",
                "Finished requests the report counts (those whose life overlaps the measured window), by outcome.",
                |f| &f.requests,
            ),
            (
                "llm_bench_prompt_tokens_total",
                "Prompt tokens of the requests llm_bench_requests_total counts, by outcome.",
                |f| &f.prompt_tokens,
            ),
            (
                "llm_bench_output_tokens_total",
                "Output tokens of the requests llm_bench_requests_total counts, by outcome.",
                |f| &f.output_tokens,
            ),
        ];
        for (name, help, values) in counters {
            family(&mut out, name, "counter", help);
            for (labels, f) in &figures {
                for (outcome, value) in OUTCOMES.iter().zip(values(f)) {
                    sample(
                        &mut out,
                        name,
                        &format!("{labels},outcome=\"{outcome}\""),
                        *value as f64,
                    );
                }
            }
        }

        let histograms: [(&str, &str, HistogramOf); 4] = [
            (
                "llm_bench_ttft_seconds",
                "Time to first token of the requests llm_bench_requests_total counts, by outcome.",
                |f| &f.ttft,
            ),
            (
                "llm_bench_itl_seconds",
                "Gaps between consecutive content chunks (inter-token latency) of the requests llm_bench_requests_total counts, by outcome.",
                |f| &f.itl,
            ),
            (
                "llm_bench_request_latency_seconds",
                "Request latency, send to last byte, of the requests llm_bench_requests_total counts, by outcome.",
                |f| &f.latency,
            ),
            (
                "llm_bench_schedule_lag_seconds",
                "Actual send minus intended send of the requests llm_bench_requests_total counts, by outcome.",
                |f| &f.lag,
            ),
        ];
        for (name, help, values) in histograms {
            family(&mut out, name, "histogram", help);
            for (labels, f) in &figures {
                for (outcome, buckets) in OUTCOMES.iter().zip(values(f)) {
                    buckets.render(&mut out, name, &format!("{labels},outcome=\"{outcome}\""));
                }
            }
        }
        out
    }
}

/// One benchmark's live figures.
#[derive(Debug)]
pub struct LiveBenchmark {
    engine: String,
    index: usize,
    strategy: StrategyKind,
    target_rate: Option<f64>,
    running: AtomicBool,
    in_flight: AtomicU64,
    /// An `f64`'s bits.
    achieved_rate: AtomicU64,
    figures: Mutex<Figures>,
}

impl LiveBenchmark {
    fn new(engine: &str, index: usize, strategy: &Strategy) -> Self {
        Self {
            engine: engine.to_owned(),
            index,
            strategy: strategy.kind,
            target_rate: strategy.target_rate_per_s.filter(|r| r.is_finite()),
            running: AtomicBool::new(true),
            in_flight: AtomicU64::new(0),
            achieved_rate: AtomicU64::new(0.0f64.to_bits()),
            figures: Mutex::new(Figures::default()),
        }
    }

    /// Counts a finished request the report counts: call it with the record the report's
    /// [`crate::measure::BenchmarkBuilder`] gets.
    pub fn add(&self, request: &RequestRecord<'_>) {
        let part = match request.ended {
            Ended::Successful => 0,
            Ended::Incomplete => 1,
            Ended::Errored(_) => 2,
        };
        let mut figures = lock(&self.figures);
        let f = &mut *figures;
        f.requests[part] += 1;
        f.prompt_tokens[part] += request.prompt_tokens.unwrap_or(0);
        f.output_tokens[part] += request.output_tokens.unwrap_or(0);
        f.ttft[part].observe_ms(request.ttft_ms);
        f.latency[part].observe_ms(request.latency_ms);
        f.lag[part].observe_ms(request.schedule_lag_ms);
        for &gap in request.itl_ms {
            f.itl[part].observe_ms(Some(gap));
        }
    }

    /// Requests sent and not yet finished.
    pub fn set_in_flight(&self, requests: u64) {
        self.in_flight.store(requests, Ordering::Relaxed);
    }

    /// Requests finished per second, lately.
    pub fn set_achieved_rate(&self, per_s: f64) {
        let per_s = if per_s.is_finite() { per_s } else { 0.0 };
        self.achieved_rate.store(per_s.to_bits(), Ordering::Relaxed);
    }

    /// Every request has finished: the figures are final, nothing is in flight.
    pub fn finish(&self) {
        self.set_in_flight(0);
        self.set_achieved_rate(0.0);
        self.running.store(false, Ordering::Relaxed);
    }

    fn labels(&self) -> String {
        format!(
            "engine=\"{}\",benchmark=\"{}\",strategy=\"{}\"",
            escape(&self.engine),
            self.index + 1,
            self.strategy.name()
        )
    }
}

/// The request figures, by outcome (in the order of [`OUTCOMES`]).
#[derive(Debug, Clone)]
struct Figures {
    requests: [u64; 3],
    prompt_tokens: [u64; 3],
    output_tokens: [u64; 3],
    ttft: [Buckets; 3],
    itl: [Buckets; 3],
    latency: [Buckets; 3],
    lag: [Buckets; 3],
}

impl Default for Figures {
    fn default() -> Self {
        let slow = || std::array::from_fn(|_| Buckets::new(SLOW_BUCKETS));
        let fast = || std::array::from_fn(|_| Buckets::new(FAST_BUCKETS));
        Self {
            requests: [0; 3],
            prompt_tokens: [0; 3],
            output_tokens: [0; 3],
            ttft: slow(),
            itl: fast(),
            latency: slow(),
            lag: fast(),
        }
    }
}

/// A histogram with fixed upper bounds, in seconds.
#[derive(Debug, Clone)]
struct Buckets {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is above every bound.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Buckets {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds a value measured in milliseconds. A value the report's distributions cannot hold
    /// (not finite) is left out here too.
    fn observe_ms(&mut self, ms: Option<f64>) {
        let Some(ms) = ms.filter(|v| v.is_finite()) else {
            return;
        };
        let seconds = ms / 1000.0;
        let bucket = self.bounds.partition_point(|&bound| bound < seconds);
        self.counts[bucket] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            sample(
                out,
                &format!("{name}_bucket"),
                &format!("{labels},le=\"{}\"", number(*bound)),
                cumulative as f64,
            );
        }
        sample(
            out,
            &format!("{name}_bucket"),
            &format!("{labels},le=\"+Inf\""),
            self.count as f64,
        );
        sample(out, &format!("{name}_sum"), labels, self.sum);
        sample(out, &format!("{name}_count"), labels, self.count as f64);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help.replace('\\', "\\\\"));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {}", number(value));
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {}", number(value));
    }
}

/// A sample value as the format writes it.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A lock that a panicking holder did not spoil: the figures stay countable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::RequestError;

    fn strategy(kind: StrategyKind, rate: Option<f64>) -> Strategy {
        Strategy {
            kind,
            streams: None,
            target_rate_per_s: rate,
            max_concurrency: None,
            burstiness: None,
            speedup: None,
        }
    }

    /// The sample lines of `text` named exactly `name` with all of `labels`.
    fn value(text: &str, name: &str, labels: &[&str]) -> Vec<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or(f64::NAN)
            })
            .collect()
    }

    #[test]
    fn finished_requests_show_as_counters_and_cumulative_histograms_with_seconds() {
        let live = LiveMetrics::new();
        let b = live.benchmark("native", 0, &strategy(StrategyKind::Constant, Some(5.0)));
        let mut ok = RequestRecord::new(Ended::Successful);
        ok.ttft_ms = Some(3.0);
        ok.latency_ms = Some(30.0);
        ok.itl_ms = &[0.5, 2.0, 20.0];
        ok.schedule_lag_ms = Some(0.2);
        ok.prompt_tokens = Some(16);
        ok.output_tokens = Some(4);
        b.add(&ok);
        b.add(&ok);
        let mut failed = RequestRecord::new(Ended::Errored(RequestError {
            kind: "http_status",
            status_code: Some(500),
            message: "boom",
        }));
        failed.latency_ms = Some(f64::NAN);
        failed.prompt_tokens = Some(16);
        b.add(&failed);
        b.set_in_flight(7);
        b.set_achieved_rate(4.5);
        let text = live.render();
        let one = r#"engine="native",benchmark="1",strategy="constant""#;
        assert_eq!(
            value(
                &text,
                "llm_bench_requests_total",
                &[one, r#"outcome="successful""#]
            ),
            [2.0]
        );
        assert_eq!(
            value(&text, "llm_bench_requests_total", &[r#"outcome="errored""#]),
            [1.0]
        );
        assert_eq!(
            value(
                &text,
                "llm_bench_requests_total",
                &[r#"outcome="incomplete""#]
            ),
            [0.0]
        );
        assert_eq!(
            value(
                &text,
                "llm_bench_prompt_tokens_total",
                &[r#"outcome="errored""#]
            ),
            [16.0]
        );
        assert_eq!(
            value(
                &text,
                "llm_bench_output_tokens_total",
                &[r#"outcome="successful""#]
            ),
            [8.0]
        );
        // 3 ms falls in the 5 ms bucket, not in the 2.5 ms one; buckets are cumulative.
        let ok_ = r#"outcome="successful""#;
        assert_eq!(
            value(
                &text,
                "llm_bench_ttft_seconds_bucket",
                &[ok_, r#"le="0.0025""#]
            ),
            [0.0]
        );
        assert_eq!(
            value(
                &text,
                "llm_bench_ttft_seconds_bucket",
                &[ok_, r#"le="0.005""#]
            ),
            [2.0]
        );
        assert_eq!(
            value(
                &text,
                "llm_bench_ttft_seconds_bucket",
                &[ok_, r#"le="+Inf""#]
            ),
            [2.0]
        );
        assert_eq!(value(&text, "llm_bench_ttft_seconds_sum", &[ok_]), [0.006]);
        // A bound is inclusive: 0.5 ms is in le="0.0005".
        assert_eq!(
            value(
                &text,
                "llm_bench_itl_seconds_bucket",
                &[ok_, r#"le="0.0005""#]
            ),
            [2.0]
        );
        assert_eq!(value(&text, "llm_bench_itl_seconds_count", &[ok_]), [6.0]);
        // A value the report cannot hold is left out here too.
        assert_eq!(
            value(
                &text,
                "llm_bench_request_latency_seconds_count",
                &[r#"outcome="errored""#]
            ),
            [0.0]
        );
        assert_eq!(value(&text, "llm_bench_requests_in_flight", &[one]), [7.0]);
        assert_eq!(
            value(&text, "llm_bench_achieved_requests_per_second", &[one]),
            [4.5]
        );
        assert_eq!(
            value(&text, "llm_bench_target_requests_per_second", &[one]),
            [5.0]
        );
        assert_eq!(value(&text, "llm_bench_benchmark_running", &[one]), [1.0]);
        b.finish();
        let text = live.render();
        assert_eq!(value(&text, "llm_bench_benchmark_running", &[one]), [0.0]);
        assert_eq!(value(&text, "llm_bench_requests_in_flight", &[one]), [0.0]);
    }

    #[test]
    fn every_family_is_declared_once_before_its_samples_and_benchmarks_share_it() {
        let live = LiveMetrics::new();
        live.benchmark("native", 0, &strategy(StrategyKind::Synchronous, None));
        live.benchmark("native", 1, &strategy(StrategyKind::Throughput, None));
        let text = live.render();
        let mut declared: Vec<&str> = Vec::new();
        let mut current = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or("");
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name);
                current = name;
            } else if !line.starts_with('#') {
                let sample = line.split(['{', ' ']).next().unwrap_or("");
                assert!(
                    sample
                        .strip_prefix(current)
                        .is_some_and(|suffix| ["", "_bucket", "_sum", "_count"].contains(&suffix)),
                    "{sample} outside its family {current}"
                );
            }
        }
        assert!(declared.iter().all(|n| n.starts_with("llm_bench_")));
        // Closed-loop benchmarks have no target rate.
        assert!(value(&text, "llm_bench_target_requests_per_second", &[]).is_empty());
        assert_eq!(
            value(
                &text,
                "llm_bench_requests_total",
                &[r#"benchmark="2",strategy="throughput""#]
            )
            .len(),
            3
        );
        assert_eq!(
            value(&text, "llm_bench_benchmarks_started_total", &[]),
            [2.0]
        );
    }

    #[test]
    fn a_benchmark_started_again_replaces_its_series() {
        let live = LiveMetrics::new();
        let s = strategy(StrategyKind::Synchronous, None);
        live.benchmark("native", 0, &s)
            .add(&RequestRecord::new(Ended::Successful));
        live.benchmark("native", 0, &s);
        live.benchmark("other", 0, &s)
            .add(&RequestRecord::new(Ended::Incomplete));
        let text = live.render();
        assert_eq!(
            value(
                &text,
                "llm_bench_requests_total",
                &[r#"engine="native""#, r#"outcome="successful""#]
            ),
            [0.0]
        );
        assert_eq!(
            value(
                &text,
                "llm_bench_requests_total",
                &[r#"engine="other""#, r#"outcome="incomplete""#]
            ),
            [1.0]
        );
    }

    #[test]
    fn label_values_and_numbers_are_written_as_the_format_asks() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(0.0001), "0.0001");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
