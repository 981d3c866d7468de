//! Side-by-side comparison of reports: the same benchmarks, run by different engines (or on
//! different days), metric by metric, with the differences beyond a tolerance flagged.
//!
//! Benchmarks are matched by workload, strategy kind and stream count, and then by their order
//! among those (a sweep's rate steps derive their rates from measurements, so two sweeps'
//! rates differ a little and cannot be matched by value).

use std::fmt::Write as _;

use bench_core::config::StrategyKind;
use bench_core::schema::{Benchmark, Distribution, Report, StatusSplit};
use schemars::JsonSchema;
use serde::Serialize;

use crate::render::svg::escape;
use crate::render::{fixed, strategy_label};

/// Differences below this many units of the metric are never flagged (timer noise on a
/// sub-millisecond figure is not a disagreement).
const ABSOLUTE_FLOOR: f64 = 0.05;

/// The comparison of two or more reports.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Comparison {
    /// Relative difference above which a value is flagged (0.1 = 10 %).
    pub tolerance: f64,
    /// The reports, in the order given; the first is the baseline.
    pub reports: Vec<Source>,
    /// One entry per benchmark found in the baseline and at least one other report.
    pub benchmarks: Vec<BenchmarkComparison>,
    /// Baseline benchmarks that no other report has.
    pub unmatched: Vec<String>,
    /// How many values were flagged.
    pub flagged: usize,
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

/// One benchmark across the reports.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BenchmarkComparison {
    /// Strategy and workload, e.g. `concurrent x4 D(100,100)`.
    pub benchmark: String,
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
    /// Whether any difference exceeds the tolerance.
    pub flagged: bool,
}

type Pick = fn(&Benchmark) -> Option<f64>;

fn rate(split: &Option<StatusSplit<f64>>) -> Option<f64> {
    split.as_ref().and_then(|s| s.successful)
}

fn dist(split: &Option<StatusSplit<Distribution>>) -> Option<&Distribution> {
    split.as_ref().and_then(|s| s.successful.as_ref())
}

/// The metrics compared, in display order.
const METRICS: [(&str, Pick); 16] = [
    ("requests_per_s", |b| rate(&b.metrics.rates.requests_per_s)),
    ("output_tokens_per_s", |b| {
        rate(&b.metrics.rates.output_tokens_per_s)
    }),
    ("ttft_p50_ms", |b| {
        dist(&b.metrics.ttft_ms).map(|d| d.percentiles.p50)
    }),
    ("ttft_p99_ms", |b| {
        dist(&b.metrics.ttft_ms).map(|d| d.percentiles.p99)
    }),
    ("itl_p50_ms", |b| {
        dist(&b.metrics.itl_ms).map(|d| d.percentiles.p50)
    }),
    ("itl_p99_ms", |b| {
        dist(&b.metrics.itl_ms).map(|d| d.percentiles.p99)
    }),
    ("tpot_p50_ms", |b| {
        dist(&b.metrics.tpot_ms).map(|d| d.percentiles.p50)
    }),
    ("latency_p50_ms", |b| {
        dist(&b.metrics.request_latency_ms).map(|d| d.percentiles.p50)
    }),
    ("latency_p99_ms", |b| {
        dist(&b.metrics.request_latency_ms).map(|d| d.percentiles.p99)
    }),
    ("prompt_tokens_mean", |b| {
        dist(&b.metrics.prompt_tokens).map(|d| d.mean)
    }),
    ("output_tokens_mean", |b| {
        dist(&b.metrics.output_tokens).map(|d| d.mean)
    }),
    ("error_rate", |b| {
        let finished = b.requests.successful + b.requests.errored;
        (finished > 0).then(|| b.requests.errored as f64 / finished as f64)
    }),
    // The server's own view, where the reports scraped it (`[target.metrics]`).
    ("server_waiting_peak", |b| {
        b.server.as_ref()?.waiting.map(|g| g.max)
    }),
    ("server_kv_cache_usage_peak", |b| {
        b.server.as_ref()?.kv_cache_usage.map(|g| g.max)
    }),
    ("server_prefix_cache_hit_rate", |b| {
        b.server.as_ref()?.prefix_cache_hit_rate
    }),
    ("server_ttft_p50_ms", |b| {
        b.server.as_ref()?.ttft_ms.map(|h| h.p50)
    }),
];

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
    let mut unmatched = Vec::new();
    let mut flagged = 0;
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
            let metrics: Vec<MetricRow> = METRICS
                .iter()
                .map(|(metric, pick)| {
                    let values: Vec<Option<f64>> =
                        matches.iter().map(|m| m.and_then(pick)).collect();
                    let base = values[0];
                    let relative_differences: Vec<Option<f64>> = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            if i == 0 {
                                return None;
                            }
                            let (b, v) = (base?, (*v)?);
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
                    let row_flagged = relative_differences.iter().zip(&values).any(|(d, v)| {
                        let absolute = base.zip(*v).map_or(0.0, |(b, v)| (v - b).abs());
                        d.is_some_and(|d| d.abs() > tolerance) && absolute > ABSOLUTE_FLOOR
                    });
                    if row_flagged {
                        flagged += 1;
                    }
                    MetricRow {
                        metric,
                        values,
                        relative_differences,
                        flagged: row_flagged,
                    }
                })
                .collect();
            benchmarks.push(BenchmarkComparison {
                benchmark: name,
                metrics,
            });
        }
    }
    Comparison {
        tolerance,
        reports: reports
            .iter()
            .map(|(label, r)| Source {
                label: label.clone(),
                engine: r.engine.clone(),
                started_at: r.started_at.to_string(),
            })
            .collect(),
        benchmarks,
        unmatched,
        flagged,
    }
}

impl Comparison {
    /// A console table: one block per benchmark, one row per metric, `!` on flagged rows.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let heads: Vec<String> = self
            .reports
            .iter()
            .map(|r| format!("{} ({})", r.label, r.engine))
            .collect();
        for b in &self.benchmarks {
            let _ = writeln!(out, "{}", b.benchmark);
            let mut rows: Vec<Vec<String>> = vec![{
                let mut h = vec![String::new(), "metric".to_owned()];
                h.extend(heads.iter().cloned());
                h.push("difference".to_owned());
                h
            }];
            for m in &b.metrics {
                let mut row = vec![
                    if m.flagged { "!" } else { "" }.to_owned(),
                    m.metric.to_owned(),
                ];
                row.extend(m.values.iter().map(|v| v.map_or("-".to_owned(), fixed)));
                row.push(
                    m.relative_differences
                        .iter()
                        .skip(1)
                        .map(|d| d.map_or("-".to_owned(), percent))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
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
        let _ =
            writeln!(
            out,
            "{} value(s) differ from {} by more than {} (and {ABSOLUTE_FLOOR} in absolute terms)",
            self.flagged,
            self.reports.first().map_or("the baseline", |r| r.label.as_str()),
            share(self.tolerance)
        );
        out
    }

    /// A self-contained HTML page of the same table.
    pub fn html(&self) -> String {
        let mut out = String::from(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
             <title>llm-bench comparison</title><style>\
             body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px}\
             table{border-collapse:collapse;margin:6px 0 18px;font-size:.9em}th,td{border-bottom:1px solid #eaeef2;padding:3px 10px;text-align:right}\
             th.t,td.t{text-align:left}tr.flag td{background:#ffebe9}h2{font-size:1.05em;margin:18px 0 4px}\
             </style></head><body><h1>llm-bench comparison</h1>",
        );
        let _ = write!(
            out,
            "<p id=\"summary\">{} value(s) differ from <b>{}</b> by more than {} (rows in red).</p>",
            self.flagged,
            escape(self.reports.first().map_or("", |r| r.label.as_str())),
            share(self.tolerance)
        );
        for b in &self.benchmarks {
            let _ = write!(
                out,
                "<h2>{}</h2><table><tr><th class=\"t\">metric</th>",
                escape(&b.benchmark)
            );
            for r in &self.reports {
                let _ = write!(out, "<th>{} ({})</th>", escape(&r.label), escape(&r.engine));
            }
            out.push_str("<th>difference</th></tr>");
            for m in &b.metrics {
                let _ = write!(
                    out,
                    "<tr{}><td class=\"t\">{}</td>",
                    if m.flagged { " class=\"flag\"" } else { "" },
                    m.metric
                );
                for v in &m.values {
                    let _ = write!(out, "<td>{}</td>", v.map_or("-".to_owned(), fixed));
                }
                let diffs: Vec<String> = m
                    .relative_differences
                    .iter()
                    .skip(1)
                    .map(|d| d.map_or("-".to_owned(), percent))
                    .collect();
                let _ = write!(out, "<td>{}</td></tr>", diffs.join(", "));
            }
            out.push_str("</table>");
        }
        for name in &self.unmatched {
            let _ = write!(out, "<p>not in the other reports: {}</p>", escape(name));
        }
        out.push_str("</body></html>\n");
        out
    }
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
