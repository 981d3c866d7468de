//! Side-by-side comparison of reports: the same benchmarks, run by different engines (or on
//! different days), metric by metric, with the differences flagged that exceed both a tolerance
//! and the noise of the values compared (`compare/noise.rs`).
//!
//! Benchmarks are matched by workload, strategy kind and stream count, and then by their order
//! among those (a sweep's rate steps derive their rates from measurements, so two sweeps'
//! rates differ a little and cannot be matched by value). The HTML page, with the reports'
//! curves overlaid, is drawn by `render::comparison`.

mod noise;

use std::fmt::Write as _;

use bench_core::config::StrategyKind;
use bench_core::schema::{Benchmark, Distribution, Report, StatusSplit};
use schemars::JsonSchema;
use serde::Serialize;

pub use self::noise::Interval;
use self::noise::Noise;
use crate::render::comparison::Figures;
use crate::render::{fixed, percentile, strategy_label};

/// Differences below this many units of the metric are never flagged (timer noise on a
/// sub-millisecond figure is not a disagreement).
const ABSOLUTE_FLOOR: f64 = 0.05;

/// The comparison of two or more reports.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Comparison {
    /// Relative difference above which a value is flagged (0.1 = 10 %), when it is also beyond
    /// the noise.
    pub tolerance: f64,
    /// The confidence of the values' intervals.
    #[serde(default = "noise::confidence")]
    pub confidence: f64,
    /// The reports, in the order given; the first is the baseline.
    pub reports: Vec<Source>,
    /// One entry per benchmark found in the baseline and at least one other report.
    pub benchmarks: Vec<BenchmarkComparison>,
    /// Baseline benchmarks that no other report has.
    pub unmatched: Vec<String>,
    /// How many values were flagged: beyond the tolerance and beyond the noise.
    pub flagged: usize,
    /// How many more values differ beyond the tolerance but within the noise (not flagged).
    #[serde(default)]
    pub within_noise: usize,
    /// What the HTML page draws (not part of the JSON).
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) figures: Figures,
}

/// One compared report.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Source {
    /// What the caller called it (a file name).
    pub label: String,
    /// The engine that wrote it.
    pub engine: String,
    /// When its run started (RFC 3339).
    pub started_at: String,
}

impl Source {
    /// Its name in tables and legends: the label, with the engine unless the label is the
    /// engine's name (`run --engines` labels each report by its engine).
    pub(crate) fn name(&self) -> String {
        if self.label == self.engine {
            self.label.clone()
        } else {
            format!("{} ({})", self.label, self.engine)
        }
    }
}

/// One benchmark across the reports.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BenchmarkComparison {
    /// Strategy and workload, e.g. `concurrent x4 D(100,100)`.
    pub benchmark: String,
    /// Successful requests in each report, in report order (`null` where the report lacks the
    /// benchmark): what the noise of its values rests on.
    #[serde(default)]
    pub requests: Vec<Option<u64>>,
    /// One row per metric.
    pub metrics: Vec<MetricRow>,
}

/// One metric of one benchmark across the reports.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MetricRow {
    /// The metric, with its unit, e.g. `ttft_p50_ms`.
    pub metric: &'static str,
    /// The value in each report, in report order; `null` where it is absent.
    pub values: Vec<Option<f64>>,
    /// Each value's relative difference from the baseline's (`null` for the baseline, or when
    /// either value is absent).
    pub relative_differences: Vec<Option<f64>>,
    /// Each value's 95 % confidence interval, in report order; `null` where none can be
    /// computed (no histogram, or a figure with no noise model), and the count rule decides.
    #[serde(default)]
    pub intervals: Vec<Option<Interval>>,
    /// Whether any difference exceeds the tolerance and the noise.
    pub flagged: bool,
    /// Whether a difference exceeds the tolerance but not the noise (the intervals overlap, or
    /// too few requests), so the row is not flagged.
    #[serde(default)]
    pub within_noise: bool,
}

/// What a compared value is, which says how it is read and how noisy it is.
#[derive(Clone, Copy)]
enum Measure {
    /// A per-second rate of the successful requests (Poisson noise on their count).
    Rate(fn(&Benchmark) -> Option<f64>),
    /// The percentile `p` (50 or 99) of a distribution (order-statistic interval).
    Percentile(fn(&Benchmark) -> Option<&Distribution>, u8),
    /// The mean of a distribution (standard error).
    Mean(fn(&Benchmark) -> Option<&Distribution>),
    /// Errored of finished requests (Wilson interval).
    ErrorRate,
    /// A figure from the server's metrics, with no noise model: the count rule decides; the
    /// share is set for a percentile.
    Server(fn(&Benchmark) -> Option<f64>, Option<f64>),
}

fn rate(split: &Option<StatusSplit<f64>>) -> Option<f64> {
    split.as_ref().and_then(|s| s.successful)
}

fn dist(split: &Option<StatusSplit<Distribution>>) -> Option<&Distribution> {
    split.as_ref().and_then(|s| s.successful.as_ref())
}

/// The metrics compared, in display order.
const METRICS: [(&str, Measure); 16] = [
    (
        "requests_per_s",
        Measure::Rate(|b| rate(&b.metrics.rates.requests_per_s)),
    ),
    (
        "output_tokens_per_s",
        Measure::Rate(|b| rate(&b.metrics.rates.output_tokens_per_s)),
    ),
    (
        "ttft_p50_ms",
        Measure::Percentile(|b| dist(&b.metrics.ttft_ms), 50),
    ),
    (
        "ttft_p99_ms",
        Measure::Percentile(|b| dist(&b.metrics.ttft_ms), 99),
    ),
    (
        "itl_p50_ms",
        Measure::Percentile(|b| dist(&b.metrics.itl_ms), 50),
    ),
    (
        "itl_p99_ms",
        Measure::Percentile(|b| dist(&b.metrics.itl_ms), 99),
    ),
    (
        "tpot_p50_ms",
        Measure::Percentile(|b| dist(&b.metrics.tpot_ms), 50),
    ),
    (
        "latency_p50_ms",
        Measure::Percentile(|b| dist(&b.metrics.request_latency_ms), 50),
    ),
    (
        "latency_p99_ms",
        Measure::Percentile(|b| dist(&b.metrics.request_latency_ms), 99),
    ),
    (
        "prompt_tokens_mean",
        Measure::Mean(|b| dist(&b.metrics.prompt_tokens)),
    ),
    (
        "output_tokens_mean",
        Measure::Mean(|b| dist(&b.metrics.output_tokens)),
    ),
    ("error_rate", Measure::ErrorRate),
    // The server's own view, where the reports scraped it (`[target.metrics]`).
    (
        "server_waiting_peak",
        Measure::Server(|b| b.server.as_ref()?.waiting.map(|g| g.max), None),
    ),
    (
        "server_kv_cache_usage_peak",
        Measure::Server(|b| b.server.as_ref()?.kv_cache_usage.map(|g| g.max), None),
    ),
    (
        "server_prefix_cache_hit_rate",
        Measure::Server(|b| b.server.as_ref()?.prefix_cache_hit_rate, None),
    ),
    (
        "server_ttft_p50_ms",
        Measure::Server(|b| b.server.as_ref()?.ttft_ms.map(|h| h.p50), Some(0.5)),
    ),
];

impl Measure {
    /// The value in `b` and its noise.
    fn read(self, b: &Benchmark) -> Option<(f64, Noise)> {
        let requests = b.requests.successful;
        match self {
            Measure::Rate(pick) => pick(b).map(|v| (v, noise::rate(v, requests))),
            Measure::Percentile(pick, p) => {
                let d = pick(b)?;
                let value = percentile(d, p);
                Some((
                    value,
                    noise::percentile(d, f64::from(p) / 100.0, value, requests),
                ))
            }
            Measure::Mean(pick) => pick(b).map(|d| (d.mean, noise::mean(d))),
            Measure::ErrorRate => {
                let finished = b.requests.successful + b.requests.errored;
                (finished > 0).then(|| {
                    let share = b.requests.errored as f64 / finished as f64;
                    (share, noise::share(share, finished))
                })
            }
            Measure::Server(pick, p) => pick(b).map(|v| (v, Noise::unknown(requests, p))),
        }
    }
}

/// The matching key of each benchmark: workload, kind, streams, and its position among the
/// benchmarks with that same triple.
fn keys(report: &Report) -> Vec<(String, StrategyKind, Option<u32>, usize)> {
    let mut seen: Vec<(String, StrategyKind, Option<u32>)> = Vec::new();
    report
        .benchmarks
        .iter()
        .map(|b| {
            let triple = (b.workload.clone(), b.strategy.kind, b.strategy.streams);
            let n = seen.iter().filter(|t| **t == triple).count();
            seen.push(triple.clone());
            (triple.0, triple.1, triple.2, n)
        })
        .collect()
}

/// Compares `reports` (label, report) against the first.
pub fn compare(reports: &[(String, Report)], tolerance: f64) -> Comparison {
    let all_keys: Vec<_> = reports.iter().map(|(_, r)| keys(r)).collect();
    let mut benchmarks = Vec::new();
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    if let Some(((_, baseline), base_keys)) = reports.first().zip(all_keys.first()) {
        for (b, key) in baseline.benchmarks.iter().zip(base_keys) {
            let matches: Vec<Option<&Benchmark>> = reports
                .iter()
                .zip(&all_keys)
                .map(|((_, r), ks)| ks.iter().position(|k| k == key).map(|i| &r.benchmarks[i]))
                .collect();
            let name = format!("{} {}", strategy_label(&b.strategy), b.workload);
            if matches.iter().skip(1).all(Option::is_none) {
                unmatched.push(name);
                continue;
            }
            benchmarks.push(BenchmarkComparison {
                benchmark: name,
                requests: matches
                    .iter()
                    .map(|m| m.map(|b| b.requests.successful))
                    .collect(),
                metrics: METRICS
                    .iter()
                    .map(|(metric, measure)| row(metric, *measure, &matches, tolerance))
                    .collect(),
            });
            matched.push(matches);
        }
    }
    let count = |f: fn(&MetricRow) -> bool| {
        benchmarks
            .iter()
            .flat_map(|b| &b.metrics)
            .filter(|m| f(m))
            .count()
    };
    Comparison {
        tolerance,
        confidence: noise::CONFIDENCE,
        reports: reports
            .iter()
            .map(|(label, r)| Source {
                label: label.clone(),
                engine: r.engine.clone(),
                started_at: r.started_at.to_string(),
            })
            .collect(),
        flagged: count(|m| m.flagged),
        within_noise: count(|m| m.within_noise),
        figures: Figures::new(reports, &benchmarks, &matched),
        benchmarks,
        unmatched,
    }
}

/// One metric across the matched benchmarks: values, differences, intervals and the verdict.
fn row(
    metric: &'static str,
    measure: Measure,
    matches: &[Option<&Benchmark>],
    tolerance: f64,
) -> MetricRow {
    let read: Vec<Option<(f64, Noise)>> = matches
        .iter()
        .map(|m| m.and_then(|b| measure.read(b)))
        .collect();
    let values: Vec<Option<f64>> = read.iter().map(|r| r.map(|(v, _)| v)).collect();
    let base = read.first().copied().flatten();
    let relative_differences: Vec<Option<f64>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if i == 0 {
                return None;
            }
            let (b, v) = (base?.0, (*v)?);
            Some(if b == 0.0 {
                if v == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                (v - b) / b.abs()
            })
        })
        .collect();
    // Per other value: (beyond the tolerance, beyond the noise).
    let verdicts: Vec<(bool, bool)> = read
        .iter()
        .zip(&relative_differences)
        .skip(1)
        .filter_map(|(r, d)| {
            let ((b, base_noise), (v, noise), d) = (base?, (*r)?, (*d)?);
            let beyond_tolerance = d.abs() > tolerance && (v - b).abs() > ABSOLUTE_FLOOR;
            Some((beyond_tolerance, base_noise.separates(&noise)))
        })
        .collect();
    let flagged = verdicts.iter().any(|&(t, n)| t && n);
    MetricRow {
        metric,
        values,
        relative_differences,
        intervals: read
            .iter()
            .map(|r| r.and_then(|(_, n)| n.interval))
            .collect(),
        flagged,
        within_noise: !flagged && verdicts.iter().any(|&(t, _)| t),
    }
}

impl Comparison {
    /// A console table: one block per benchmark, one row per metric, `!` on flagged rows and
    /// `~` on rows that differ beyond the tolerance but within the noise.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let heads: Vec<String> = self.reports.iter().map(Source::name).collect();
        for b in &self.benchmarks {
            let requests: Vec<String> = b
                .requests
                .iter()
                .map(|n| n.map_or("-".to_owned(), |n| n.to_string()))
                .collect();
            let _ = writeln!(
                out,
                "{} ({} successful requests)",
                b.benchmark,
                requests.join(" / ")
            );
            let mut rows: Vec<Vec<String>> = vec![{
                let mut h = vec![String::new(), "metric".to_owned()];
                h.extend(heads.iter().cloned());
                h.push("difference".to_owned());
                h
            }];
            for m in &b.metrics {
                let mut row = vec![mark(m).to_owned(), m.metric.to_owned()];
                row.extend(m.values.iter().map(|v| v.map_or("-".to_owned(), fixed)));
                row.push(differences(m));
                rows.push(row);
            }
            let widths: Vec<usize> = (0..rows[0].len())
                .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
                .collect();
            for row in &rows {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, (c, w))| {
                        if i < 2 {
                            format!("{c:<w$}")
                        } else {
                            format!("{c:>w$}")
                        }
                    })
                    .collect();
                let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
            }
        }
        for name in &self.unmatched {
            let _ = writeln!(out, "not in the other reports: {name}");
        }
        let _ = writeln!(out, "{}", self.verdict());
        if self.within_noise > 0 {
            let _ = writeln!(
                out,
                "{} more value(s) (~) differ by that much but within the noise: their {:.0} % intervals overlap, or too few requests (docs/report.md)",
                self.within_noise,
                self.confidence * 100.0
            );
        }
        out
    }

    /// One sentence: how many values were flagged, against what.
    pub(crate) fn verdict(&self) -> String {
        format!(
            "{} value(s) differ from {} by more than {} (and {ABSOLUTE_FLOOR} in absolute terms) and beyond the noise",
            self.flagged,
            self.reports.first().map_or("the baseline", |r| r.label.as_str()),
            share(self.tolerance)
        )
    }

    /// A self-contained HTML page: the reports' curves overlaid, one colour per report, and
    /// the table.
    pub fn html(&self) -> String {
        crate::render::comparison::page(self)
    }
}

/// The console's mark of a row: `!` flagged, `~` beyond the tolerance but within the noise.
pub(crate) fn mark(m: &MetricRow) -> &'static str {
    if m.flagged {
        "!"
    } else if m.within_noise {
        "~"
    } else {
        ""
    }
}

/// The differences from the baseline, `+12.5 %, -3.0 %`.
pub(crate) fn differences(m: &MetricRow) -> String {
    m.relative_differences
        .iter()
        .skip(1)
        .map(|d| d.map_or("-".to_owned(), percent))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A tolerance as a share: `10 %`.
fn share(fraction: f64) -> String {
    format!("{} %", fixed(fraction * 100.0))
}

/// A signed relative difference: `+12.5 %`.
fn percent(fraction: f64) -> String {
    if fraction.is_infinite() {
        return "new".to_owned();
    }
    format!("{:+.1} %", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use bench_core::stats::Histogram;

    use super::*;

    #[test]
    fn a_report_labelled_by_its_engine_is_named_once() {
        let source = |label: &str| Source {
            label: label.to_owned(),
            engine: "native".to_owned(),
            started_at: String::new(),
        };
        // `run --engines` labels each report by its engine; `compare` by its file name.
        assert_eq!(source("native").name(), "native");
        assert_eq!(source("a.json").name(), "a.json (native)");
    }

    /// The real sweep report of the fixtures.
    fn sweep() -> Report {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/report-sweep.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// `n` values spread evenly over [low, 2·low), times `scale`, in a shuffled order.
    fn spread(n: u64, low: f64, scale: f64) -> Distribution {
        let mut h = Histogram::for_milliseconds();
        for i in 0..n {
            let j = (i * 7919) % n;
            h.record(scale * low * (1.0 + j as f64 / n as f64)).unwrap();
        }
        h.summary().unwrap()
    }

    /// The sweep's first benchmark alone, as if `requests` requests of 24 tokens had measured
    /// a TTFT around 30 ms and an ITL around 8 ms, the ITL times `itl_scale`.
    fn run_of(requests: u64, itl_scale: f64) -> Report {
        let mut r = sweep();
        r.benchmarks.truncate(1);
        let b = &mut r.benchmarks[0];
        b.requests.successful = requests;
        b.metrics.ttft_ms.as_mut().unwrap().successful = Some(spread(requests, 30.0, 1.0));
        b.metrics.itl_ms.as_mut().unwrap().successful = Some(spread(requests * 23, 8.0, itl_scale));
        r
    }

    fn row<'a>(c: &'a Comparison, metric: &str) -> &'a MetricRow {
        c.benchmarks[0]
            .metrics
            .iter()
            .find(|m| m.metric == metric)
            .unwrap()
    }

    /// Whether the console table marks the row of `metric` with `mark`.
    fn marked(table: &str, mark: char, metric: &str) -> bool {
        table.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(&*mark.to_string()) && words.next() == Some(metric)
        })
    }

    fn pair(a: Report, b: Report) -> Comparison {
        compare(&[("a".to_owned(), a), ("b".to_owned(), b)], 0.1)
    }

    #[test]
    fn equal_reports_are_never_flagged() {
        for c in [
            pair(sweep(), sweep()),
            pair(run_of(6, 1.0), run_of(6, 1.0)),
            pair(run_of(5000, 1.0), run_of(5000, 1.0)),
        ] {
            assert_eq!((c.flagged, c.within_noise), (0, 0), "{}", c.table());
        }
    }

    #[test]
    fn a_26_percent_lower_itl_p99_on_6_requests_is_within_the_noise() {
        let c = pair(run_of(6, 1.0), run_of(6, 0.74));
        let itl = row(&c, "itl_p99_ms");
        assert!((itl.relative_differences[1].unwrap() + 0.26).abs() < 0.01);
        assert!(!itl.flagged && itl.within_noise, "{itl:?}");
        assert_eq!(
            itl.intervals[1].unwrap().high,
            None,
            "6 requests bound no p99"
        );
        assert_eq!(c.flagged, 0, "{}", c.table());
        let table = c.table();
        assert!(marked(&table, '~', "itl_p99_ms"), "{table}");
        assert!(table.contains("within the noise"), "{table}");
    }

    #[test]
    fn a_26_percent_lower_itl_on_5000_requests_is_flagged() {
        let c = pair(run_of(5000, 1.0), run_of(5000, 0.74));
        for metric in ["itl_p50_ms", "itl_p99_ms"] {
            let m = row(&c, metric);
            assert!(m.flagged && !m.within_noise, "{m:?}");
            let (a, b) = (m.intervals[0].unwrap(), m.intervals[1].unwrap());
            assert!(b.high.unwrap() < a.low.unwrap(), "{a:?} {b:?}");
        }
        assert!(!row(&c, "ttft_p50_ms").flagged);
        assert_eq!(c.flagged, 2, "{}", c.table());
        assert!(marked(&c.table(), '!', "itl_p99_ms"), "{}", c.table());
    }

    #[test]
    fn a_percentile_edited_away_from_its_histogram_falls_back_on_the_count() {
        // The sweep's benchmark 3 has 42 successful requests: enough for a p50 by the count
        // rule, not for a p99 (which needs 500).
        let mut edited = sweep();
        let ttft = edited.benchmarks[3].metrics.ttft_ms.as_mut().unwrap();
        let d = ttft.successful.as_mut().unwrap();
        d.percentiles.p50 *= 1.5;
        d.percentiles.p99 *= 1.5;
        let c = pair(sweep(), edited);
        let rows = &c.benchmarks[3].metrics;
        let p50 = rows.iter().find(|m| m.metric == "ttft_p50_ms").unwrap();
        let p99 = rows.iter().find(|m| m.metric == "ttft_p99_ms").unwrap();
        assert_eq!(
            p50.intervals[1], None,
            "the histogram no longer gives the value"
        );
        assert!(p50.flagged, "{p50:?}");
        assert!(!p99.flagged && p99.within_noise, "{p99:?}");
    }

    #[test]
    fn the_json_says_why_a_row_is_not_flagged() {
        let c = pair(run_of(6, 1.0), run_of(6, 0.74));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["confidence"], 0.95);
        assert_eq!(json["within_noise"], c.within_noise);
        let itl = json["benchmarks"][0]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == "itl_p99_ms")
            .unwrap();
        assert_eq!(itl["within_noise"], true);
        assert!(itl["intervals"][1]["low"].is_number());
        assert!(itl["intervals"][1]["high"].is_null());
        assert_eq!(json["benchmarks"][0]["requests"], serde_json::json!([6, 6]));
    }
}
