//! Report writers: the full report as JSON or YAML, a flat CSV row per benchmark, the console
//! summary table, a self-contained HTML page (`html`, drawing with `svg`), and the autotuner's
//! metrics object (`autotuner`). They render to strings; writing files (atomically) is the
//! caller's job.

pub mod autotuner;
mod html;
pub(crate) mod svg;

use std::fmt::Write as _;

use crate::config::OutputFormat;
use crate::schema::{Benchmark, Distribution, Report, StatusSplit, StrategyKind};

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The serializer failed (a report value it cannot represent).
    #[error("cannot render the report as {format}: {message}")]
    Serialize {
        /// The format being written.
        format: &'static str,
        /// The serializer's message.
        message: String,
    },
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: OutputFormat) -> Result<String, RenderError> {
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(report)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| RenderError::Serialize {
                format: "JSON",
                message: e.to_string(),
            }),
        OutputFormat::Yaml => serde_norway::to_string(report).map_err(|e| RenderError::Serialize {
            format: "YAML",
            message: e.to_string(),
        }),
        OutputFormat::Csv => Ok(csv(report)),
        OutputFormat::Html => Ok(html::page(report)),
        OutputFormat::Autotuner => serde_json::to_string_pretty(&autotuner::metrics(report))
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| RenderError::Serialize {
                format: "autotuner JSON",
                message: e.to_string(),
            }),
    }
}

/// The distribution metrics, by column prefix, in column order.
fn distributions(b: &Benchmark) -> [(&'static str, Option<&StatusSplit<Distribution>>); 9] {
    let m = &b.metrics;
    [
        ("request_latency_ms", m.request_latency_ms.as_ref()),
        ("ttft_ms", m.ttft_ms.as_ref()),
        ("itl_ms", m.itl_ms.as_ref()),
        ("tpot_ms", m.tpot_ms.as_ref()),
        ("decode_time_ms", m.decode_time_ms.as_ref()),
        ("schedule_lag_ms", m.schedule_lag_ms.as_ref()),
        (
            "latency_from_intended_send_ms",
            m.latency_from_intended_send_ms.as_ref(),
        ),
        ("prompt_tokens", m.prompt_tokens.as_ref()),
        ("output_tokens", m.output_tokens.as_ref()),
    ]
}

/// The statistics written per distribution in CSV, over successful requests.
const CSV_STATS: [&str; 9] = [
    "count", "mean", "stdev", "min", "p50", "p90", "p95", "p99", "max",
];

fn csv_stat(d: &Distribution, stat: &str) -> f64 {
    match stat {
        "count" => d.count as f64,
        "mean" => d.mean,
        "stdev" => d.stdev,
        "min" => d.min,
        "p50" => d.percentiles.p50,
        "p90" => d.percentiles.p90,
        "p95" => d.percentiles.p95,
        "p99" => d.percentiles.p99,
        _ => d.max,
    }
}

/// One header row, then one row per benchmark. Distribution columns summarize successful
/// requests (`ttft_ms_p99`); an empty cell means the engine could not measure it.
fn csv(report: &Report) -> String {
    let mut header: Vec<String> = [
        "index",
        "workload",
        "strategy",
        "streams",
        "target_rate_per_s",
        "max_concurrency",
        "duration_s",
        "requests_successful",
        "requests_incomplete",
        "requests_errored",
        "requests_total",
        "stopped_by",
        "requests_per_s",
        "output_tokens_per_s",
        "total_tokens_per_s",
        "concurrency_mean",
        "concurrency_max",
    ]
    .map(str::to_owned)
    .to_vec();
    let metric_names = [
        "request_latency_ms",
        "ttft_ms",
        "itl_ms",
        "tpot_ms",
        "decode_time_ms",
        "schedule_lag_ms",
        "latency_from_intended_send_ms",
        "prompt_tokens",
        "output_tokens",
    ];
    for name in metric_names {
        header.extend(CSV_STATS.iter().map(|s| format!("{name}_{s}")));
    }
    header.extend(["slo_attainment", "goodput_requests_per_s", "warnings"].map(str::to_owned));

    let mut out = String::new();
    push_row(&mut out, header.iter().map(String::as_str));
    for b in &report.benchmarks {
        let s = &b.strategy;
        let r = &b.metrics.rates;
        let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let successful = |split: Option<&StatusSplit<f64>>| num(split.and_then(|s| s.successful));
        let mut row = vec![
            b.index.to_string(),
            b.workload.clone(),
            strategy_name(s.kind).to_owned(),
            s.streams.map(|v| v.to_string()).unwrap_or_default(),
            num(s.target_rate_per_s),
            s.max_concurrency.map(|v| v.to_string()).unwrap_or_default(),
            b.window.duration_s.to_string(),
            b.requests.successful.to_string(),
            b.requests.incomplete.to_string(),
            b.requests.errored.to_string(),
            b.requests.total.to_string(),
            b.stopped_by
                .map(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .unwrap_or_default(),
            successful(r.requests_per_s.as_ref()),
            successful(r.output_tokens_per_s.as_ref()),
            successful(r.total_tokens_per_s.as_ref()),
            num(r.concurrency.map(|c| c.mean)),
            r.concurrency.map(|c| c.max.to_string()).unwrap_or_default(),
        ];
        for (_, split) in distributions(b) {
            let d = split.and_then(|s| s.successful.as_ref());
            row.extend(
                CSV_STATS
                    .iter()
                    .map(|stat| num(d.map(|d| csv_stat(d, stat)))),
            );
        }
        row.push(num(b.goodput.map(|g| g.slo_attainment)));
        row.push(num(b.goodput.map(|g| g.requests_per_s)));
        row.push(
            b.warnings
                .iter()
                .map(|w| w.code.as_str())
                .collect::<Vec<_>>()
                .join(";"),
        );
        push_row(&mut out, row.iter().map(String::as_str));
    }
    out
}

/// Appends one RFC 4180 row: fields with commas, quotes or line breaks are quoted.
fn push_row<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

pub(crate) fn strategy_name(kind: StrategyKind) -> &'static str {
    match kind {
        StrategyKind::Synchronous => "synchronous",
        StrategyKind::Concurrent => "concurrent",
        StrategyKind::Throughput => "throughput",
        StrategyKind::Constant => "constant",
        StrategyKind::Poisson => "poisson",
    }
}

/// `concurrent x4`, `constant @12.5/s`: how a benchmark generated load, in a few characters.
pub fn strategy_label(s: &crate::schema::Strategy) -> String {
    let mut label = strategy_name(s.kind).to_owned();
    if let Some(n) = s.streams.filter(|_| s.kind == StrategyKind::Concurrent) {
        let _ = write!(label, " x{n}");
    }
    if let Some(rate) = s.target_rate_per_s {
        let _ = write!(label, " @{}/s", fixed(rate));
    }
    label
}

/// The console summary: one row per benchmark with the figures people compare, then the
/// warnings. Latencies are over successful requests; `-` means not measured.
pub fn summary_table(report: &Report) -> String {
    let header = [
        "#",
        "strategy",
        "workload",
        "ok/inc/err",
        "req/s",
        "out tok/s",
        "TTFT p50/p95/p99 ms",
        "ITL p50/p95/p99 ms",
        "TPOT p50/p95/p99 ms",
        "latency p50/p95/p99 ms",
        "conc",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for b in &report.benchmarks {
        let strategy = strategy_label(&b.strategy);
        let pct = |split: &Option<StatusSplit<Distribution>>, picks: &[u8]| match successful(split)
        {
            Some(d) => picks
                .iter()
                .map(|&p| fixed(percentile(d, p)))
                .collect::<Vec<_>>()
                .join("/"),
            None => "-".to_owned(),
        };
        let rate = |split: &Option<StatusSplit<f64>>| {
            split
                .as_ref()
                .and_then(|s| s.successful)
                .map_or("-".to_owned(), fixed)
        };
        let m = &b.metrics;
        rows.push(vec![
            b.index.to_string(),
            strategy,
            b.workload.clone(),
            format!(
                "{}/{}/{}",
                b.requests.successful, b.requests.incomplete, b.requests.errored
            ),
            rate(&m.rates.requests_per_s),
            rate(&m.rates.output_tokens_per_s),
            pct(&m.ttft_ms, &[50, 95, 99]),
            pct(&m.itl_ms, &[50, 95, 99]),
            pct(&m.tpot_ms, &[50, 95, 99]),
            pct(&m.request_latency_ms, &[50, 95, 99]),
            m.rates
                .concurrency
                .map_or("-".to_owned(), |c| fixed(c.mean)),
        ]);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                // Text columns align left, figures right.
                if matches!(i, 1 | 2) {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut out, &header.map(str::to_owned));
    line(
        &mut out,
        &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    );
    for row in &rows {
        line(&mut out, row);
    }
    let _ = writeln!(
        out,
        "engine {}, {} benchmark(s){}",
        report.engine,
        report.benchmarks.len(),
        if report.interrupted {
            ", interrupted: partial results"
        } else {
            ""
        }
    );
    for w in &report.warnings {
        let _ = writeln!(out, "warning [{}]: {}", w.code, w.message);
    }
    for b in &report.benchmarks {
        if let Some(reason) = b.stopped_by {
            let reason = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(out, "benchmark {}: stopped by {reason}", b.index);
        }
        for w in &b.warnings {
            let _ = writeln!(
                out,
                "benchmark {} warning [{}]: {}",
                b.index, w.code, w.message
            );
        }
    }
    out
}

/// The summary table's percentiles: 50, 95 or 99.
pub(crate) fn percentile(d: &Distribution, p: u8) -> f64 {
    match p {
        50 => d.percentiles.p50,
        95 => d.percentiles.p95,
        _ => d.percentiles.p99,
    }
}

pub(crate) fn successful(split: &Option<StatusSplit<Distribution>>) -> Option<&Distribution> {
    split.as_ref().and_then(|s| s.successful.as_ref())
}

/// A figure with about three significant digits and no exponent.
pub(crate) fn fixed(value: f64) -> String {
    let magnitude = value.abs();
    let decimals = if magnitude >= 100.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        3
    };
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    }

    /// A real report: a 6-step sweep by the native engine against the embedded mock
    /// (`fixtures/README.md` has the command).
    fn sweep() -> Report {
        serde_json::from_str(
            &std::fs::read_to_string(fixtures().join("report-sweep.json")).unwrap(),
        )
        .unwrap()
    }

    /// Compares `text` with the committed snapshot `name`; `UPDATE_SNAPSHOTS=1` rewrites it.
    fn snapshot(name: &str, text: &str) {
        let path = fixtures().join("snapshots").join(name);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} changed; check the new output below, then run with UPDATE_SNAPSHOTS=1 and commit it:\n{text}",
            path.display()
        );
    }

    #[test]
    fn the_summary_table_of_a_sweep_matches_its_snapshot() {
        snapshot("summary.txt", &summary_table(&sweep()));
    }

    #[test]
    fn the_autotuner_object_of_a_sweep_matches_its_snapshot() {
        let text = render(&sweep(), OutputFormat::Autotuner).unwrap();
        snapshot("autotuner.json", &text);
        // Spot checks of the shape the autotuner reads.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["num_result_files"], 6);
        let first = &v["raw_results"][0];
        assert_eq!(first["iteration_type"], "num_concurrency");
        assert_eq!(first["num_concurrency"], 1);
        // Seconds, not milliseconds: the mock's TTFT is 30 ms plus prefill.
        let ttft = first["stats"]["ttft"]["mean"].as_f64().unwrap();
        assert!((0.030..0.060).contains(&ttft), "{ttft}");
        assert_eq!(v["raw_results"][2]["iteration_type"], "request_rate");
        assert!(v["raw_results"][2]["num_concurrency"].is_null());
        let max = v["max_output_throughput"].as_f64().unwrap();
        assert!(v["raw_results"].as_array().unwrap().iter().all(|r| r
            ["mean_output_throughput_tokens_per_s"]
            .as_f64()
            .unwrap()
            <= max));
    }

    #[test]
    fn the_html_page_is_self_contained_escaped_and_has_every_chart() {
        let mut report = sweep();
        report.benchmarks[0].workload = "<script>alert('x')</script>".to_owned();
        report.warnings.push(crate::schema::Warning {
            code: "test".to_owned(),
            message: "a \"quoted\" <b>message</b> & more".to_owned(),
        });
        let page = render(&report, OutputFormat::Html).unwrap();
        for id in [
            "kpis",
            "ttft-vs-rate",
            "itl-vs-rate",
            "latency-vs-rate",
            "throughput-vs-concurrency",
            "ttft-cdf",
            "latency-cdf",
            "itl-cdf",
            "timeline",
            "benchmarks",
            "warnings",
            "config",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id} is missing");
        }
        assert!(
            !page.contains("<script"),
            "no script, and the workload is escaped"
        );
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(page.contains("a &quot;quoted&quot; &lt;b&gt;message&lt;/b&gt; &amp; more"));
        for fetch in [" src=", " href=", "url(", "@import"] {
            assert!(!page.contains(fetch), "nothing to fetch: {fetch}");
        }
        assert!(page.contains("default-src 'none'"));
    }
}
