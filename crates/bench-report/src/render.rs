//! Report writers: the full report as JSON or YAML, a flat CSV row per benchmark, the console
//! summary table, a self-contained HTML page (`html`, drawing with `svg` and `timeline`), and the autotuner's
//! metrics object (`autotuner`). They render to strings; writing files (atomically) is the
//! caller's job.

pub mod autotuner;
pub(crate) mod comparison;
mod html;
mod reasoning;
mod search;
mod server;
mod sessions;
pub(crate) mod svg;
mod timeline;

use std::fmt::Write as _;

use bench_core::config::{OutputFormat, StrategyKind};
use bench_core::schema::{Benchmark, Distribution, ErrorCount, Report, StatusSplit};

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

/// Decimal places of the figures the CSV and the autotuner's object write (docs/report.md):
/// what the histograms resolve, and no float noise such as `8.508000000000001`.
pub(crate) mod places {
    /// Milliseconds: the histograms resolve 0.001 ms.
    pub(crate) const MS: u32 = 3;
    /// Seconds (the autotuner's times, window durations): the same microsecond.
    pub(crate) const SECONDS: u32 = 6;
    /// Per-second rates: requests, tokens, target rates, the time-weighted concurrency.
    pub(crate) const RATE: u32 = 3;
    /// Token statistics (a mean of token counts).
    pub(crate) const TOKENS: u32 = 3;
    /// Shares in [0, 1] (error rate, SLO attainment): a hundredth of a percent.
    pub(crate) const SHARE: u32 = 4;
}

/// `value` rounded to `places` decimals, so that it prints with at most that many. Values too
/// large to carry that many decimals, and non-finite ones, are returned as they are.
pub(crate) fn round(value: f64, places: u32) -> f64 {
    let factor = 10f64.powi(places as i32);
    let scaled = value * factor;
    // Past 2^52 a double has no fractional part to round.
    if !scaled.is_finite() || scaled.abs() >= 4_503_599_627_370_496.0 {
        return value;
    }
    // Dividing an exact integer by an exact power of ten gives the double nearest the
    // decimal, which prints as that decimal; `+ 0.0` turns -0 into 0.
    scaled.round() / factor + 0.0
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

/// The CSV value of one statistic, rounded to `places` (a count is whole).
fn csv_stat(d: &Distribution, stat: &str, places: u32) -> f64 {
    let value = match stat {
        "count" => return d.count as f64,
        "mean" => d.mean,
        "stdev" => d.stdev,
        "min" => d.min,
        "p50" => d.percentiles.p50,
        "p90" => d.percentiles.p90,
        "p95" => d.percentiles.p95,
        "p99" => d.percentiles.p99,
        _ => d.max,
    };
    round(value, places)
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
        let num = |v: Option<f64>, places: u32| {
            v.map(|v| round(v, places).to_string()).unwrap_or_default()
        };
        let successful =
            |split: Option<&StatusSplit<f64>>| num(split.and_then(|s| s.successful), places::RATE);
        let mut row = vec![
            b.index.to_string(),
            b.workload.clone(),
            s.kind.name().to_owned(),
            s.streams.map(|v| v.to_string()).unwrap_or_default(),
            num(s.target_rate_per_s, places::RATE),
            s.max_concurrency.map(|v| v.to_string()).unwrap_or_default(),
            num(Some(b.window.duration_s), places::SECONDS),
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
            num(r.concurrency.map(|c| c.mean), places::RATE),
            r.concurrency.map(|c| c.max.to_string()).unwrap_or_default(),
        ];
        for (name, split) in distributions(b) {
            let d = split.and_then(|s| s.successful.as_ref());
            let places = if name.ends_with("_ms") {
                places::MS
            } else {
                places::TOKENS
            };
            row.extend(CSV_STATS.iter().map(|stat| {
                d.map(|d| csv_stat(d, stat, places).to_string())
                    .unwrap_or_default()
            }));
        }
        row.push(num(b.goodput.map(|g| g.slo_attainment), places::SHARE));
        row.push(num(b.goodput.map(|g| g.requests_per_s), places::RATE));
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

/// `concurrent x4`, `constant @12.5/s`: how a benchmark generated load, in a few characters.
pub fn strategy_label(s: &bench_core::config::Strategy) -> String {
    let mut label = s.kind.name().to_owned();
    if let Some(n) = s.streams.filter(|_| s.kind == StrategyKind::Concurrent) {
        let _ = write!(label, " x{n}");
    }
    if let Some(rate) = s.target_rate_per_s {
        let _ = write!(label, " @{}/s", fixed(rate));
    }
    if let Some(b) = s.burstiness {
        let _ = write!(label, " b={b}");
    }
    if let Some(x) = s.speedup {
        let _ = write!(label, " x{x}");
    }
    label
}

/// The console summary: one row per benchmark with the figures people compare, then the
/// warnings. Latencies are over successful requests; `-` means not measured.
pub fn summary_table(report: &Report) -> String {
    summary_table_within(report, None)
}

/// A column of the console table: its header and cells with all three percentiles, and
/// with only p50 and p99 for a narrow terminal.
struct Column {
    header: &'static str,
    short_header: &'static str,
    cells: Vec<String>,
    short_cells: Vec<String>,
    /// Text aligns left, figures right.
    text: bool,
}

impl Column {
    /// The header and cells shown: all three percentiles, or only p50 and p99 (`short`).
    fn view(&self, short: bool) -> (&str, &[String]) {
        if short {
            (self.short_header, &self.short_cells)
        } else {
            (self.header, &self.cells)
        }
    }

    /// Characters of the widest of its header and cells.
    fn width(&self, short: bool) -> usize {
        let (header, cells) = self.view(short);
        cells
            .iter()
            .map(|cell| cell.chars().count())
            .fold(header.chars().count(), usize::max)
    }
}

/// Columns dropped, in this order, while the table is still wider than the terminal once its
/// percentiles have shrunk to p50/p99 (the least important first).
const DROPPED_FIRST: [&str; 4] = ["TPOT", "latency", "out tok/s", "conc"];

/// [`summary_table`] fitted to a terminal `width` columns wide: when the table is wider, its
/// percentiles shrink to p50/p99 and the least important columns are left out (a line says
/// which). `None` keeps every column. Either way a workload every benchmark shares is shown
/// once above the table instead of on every row.
pub fn summary_table_within(report: &Report, width: Option<usize>) -> String {
    let pct = |split: &Option<StatusSplit<Distribution>>, picks: &[u8]| match successful(split) {
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
    let bs = &report.benchmarks;
    let plain = |header: &'static str, text: bool, cell: &dyn Fn(&Benchmark) -> String| {
        let cells: Vec<String> = bs.iter().map(cell).collect();
        Column {
            header,
            short_header: header,
            short_cells: cells.clone(),
            cells,
            text,
        }
    };
    let percentiles =
        |header: &'static str,
         short_header: &'static str,
         pick: &dyn Fn(&Benchmark) -> &Option<StatusSplit<Distribution>>| Column {
            header,
            short_header,
            cells: bs.iter().map(|b| pct(pick(b), &[50, 95, 99])).collect(),
            short_cells: bs.iter().map(|b| pct(pick(b), &[50, 99])).collect(),
            text: false,
        };
    let shared_workload = shared_workload(bs);
    let mut columns = vec![
        plain("#", false, &|b| display_number(b).to_string()),
        plain("strategy", true, &|b| strategy_label(&b.strategy)),
    ];
    if shared_workload.is_none() {
        columns.push(plain("workload", true, &|b| b.workload.clone()));
    }
    columns.extend([
        plain("ok/inc/err", false, &|b| {
            format!(
                "{}/{}/{}",
                b.requests.successful, b.requests.incomplete, b.requests.errored
            )
        }),
        plain("req/s", false, &|b| rate(&b.metrics.rates.requests_per_s)),
        plain("out tok/s", false, &|b| {
            rate(&b.metrics.rates.output_tokens_per_s)
        }),
        percentiles("TTFT p50/p95/p99 ms", "TTFT p50/p99 ms", &|b| {
            &b.metrics.ttft_ms
        }),
        percentiles("ITL p50/p95/p99 ms", "ITL p50/p99 ms", &|b| {
            &b.metrics.itl_ms
        }),
        percentiles("TPOT p50/p95/p99 ms", "TPOT p50/p99 ms", &|b| {
            &b.metrics.tpot_ms
        }),
        percentiles("latency p50/p95/p99 ms", "latency p50/p99 ms", &|b| {
            &b.metrics.request_latency_ms
        }),
        plain("conc", false, &|b| {
            b.metrics
                .rates
                .concurrency
                .map_or("-".to_owned(), |c| fixed(c.mean))
        }),
    ]);
    let table_width = |columns: &[Column], short: bool| {
        columns.iter().map(|c| c.width(short)).sum::<usize>() + 2 * columns.len().saturating_sub(1)
    };
    let mut short = false;
    let mut left_out = Vec::new();
    if let Some(width) = width {
        short = table_width(&columns, false) > width;
        for drop in DROPPED_FIRST {
            if table_width(&columns, short) <= width {
                break;
            }
            if let Some(i) = columns.iter().position(|c| c.header.starts_with(drop)) {
                left_out.push(drop);
                columns.remove(i);
            }
        }
    }
    let widths: Vec<usize> = columns.iter().map(|c| c.width(short)).collect();
    // A search's answer before everything else: it is what the run was for.
    let mut out = report
        .search
        .as_ref()
        .map(search::console)
        .unwrap_or_default();
    if let Some(merged) = &report.merged {
        let _ = writeln!(out, "{}", crate::merge::in_words(merged));
    }
    if let Some(workload) = &shared_workload {
        let _ = writeln!(out, "workload: {workload}");
    }
    let line = |out: &mut String, cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&columns)
            .map(|((cell, w), c)| {
                if c.text {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    let headers: Vec<&str> = columns.iter().map(|c| c.view(short).0).collect();
    line(&mut out, &headers);
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(
        &mut out,
        &rules.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for row in 0..bs.len() {
        let cells: Vec<&str> = columns
            .iter()
            .map(|c| c.view(short).1[row].as_str())
            .collect();
        line(&mut out, &cells);
    }
    if short {
        let _ = writeln!(
            out,
            "(fitted to {} columns: p95 {}; every figure is in the report)",
            width.unwrap_or_default(),
            if left_out.is_empty() {
                "left out".to_owned()
            } else {
                format!("and {} left out", left_out.join(", "))
            }
        );
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
    out.push_str(&reasoning::console_lines(&report.benchmarks));
    out.push_str(&sessions::console_lines(&report.benchmarks));
    out.push_str(&server::console_lines(&report.benchmarks));
    for w in &report.warnings {
        let _ = writeln!(out, "warning [{}]: {}", w.code, w.message);
    }
    for b in &report.benchmarks {
        let n = display_number(b);
        if let Some(reason) = b.stopped_by {
            let reason = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(out, "benchmark {n}: stopped by {reason}");
        }
        if b.requests.total == 0 {
            let _ = writeln!(
                out,
                "benchmark {n}: no successful request: no request fell in its measured window, so nothing was measured"
            );
        } else if b.requests.successful == 0 {
            let _ = writeln!(
                out,
                "benchmark {n}: no successful request: its figures describe failures only"
            );
        }
        if b.requests.errored > 0 {
            let _ = writeln!(
                out,
                "benchmark {n}: {} errored: {}",
                b.requests.errored,
                error_breakdown(&b.errors)
            );
        }
        for w in &b.warnings {
            let _ = writeln!(out, "benchmark {n} warning [{}]: {}", w.code, w.message);
        }
    }
    out
}

/// The number people see for a benchmark: its `index` (from 0 in JSON and CSV) plus 1, as
/// in the logs and `validate`.
/// The workload every benchmark ran, shown once above a table instead of on every row.
pub(crate) fn shared_workload(benchmarks: &[Benchmark]) -> Option<&str> {
    let first = benchmarks.first()?;
    benchmarks
        .iter()
        .all(|b| b.workload == first.workload)
        .then_some(first.workload.as_str())
}

pub(crate) fn display_number(b: &Benchmark) -> usize {
    b.index + 1
}

/// The longest error example shown under the summary table, in characters.
const EXAMPLE_CHARS: usize = 100;

/// `http 501 ×1212 (e.g. "Unsupported method ('POST')"); timeout ×3`: each kind of failure
/// with its status, count and a one-line example.
fn error_breakdown(errors: &[ErrorCount]) -> String {
    if errors.is_empty() {
        return "no breakdown recorded".to_owned();
    }
    errors
        .iter()
        .map(|e| {
            let mut part = match (e.kind.as_str(), e.status_code) {
                ("http_status", Some(code)) => format!("http {code}"),
                (kind, Some(code)) => format!("{kind} (http {code})"),
                (kind, None) => kind.to_owned(),
            };
            let _ = write!(part, " ×{}", e.count);
            if let Some(example) = e.example.as_deref().map(one_line).filter(|x| !x.is_empty()) {
                let _ = write!(part, " (e.g. \"{example}\")");
            }
            part
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `text` on one line (every run of whitespace a single space), at most [`EXAMPLE_CHARS`]
/// characters, with `…` where it was cut.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXAMPLE_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(EXAMPLE_CHARS - 1).collect();
    cut.push('…');
    cut
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

    /// The sweep's report as a search's: its benchmarks as the steps of a search whose
    /// boundary lies between its third and fourth rate steps.
    fn search() -> Report {
        use bench_core::config::{RateStrategy, SearchSettings, Slo};
        use bench_core::search::{RateSearch, StepCounts};
        let mut report = sweep();
        let slo = Slo {
            ttft_ms: Some(100.0),
            ..Slo::default()
        };
        let mut search = RateSearch::new(SearchSettings::default(), RateStrategy::Constant, slo);
        let counts = |judged: u64, met: u64| StepCounts {
            judged,
            met,
            missed: [judged - met, 0, 0, 0],
        };
        search.probe(0, Some(10.0), counts(40, 40));
        for (index, met) in [(2, 200), (3, 120)] {
            let rate = search.next_rate().unwrap();
            search.record(index, rate, counts(200, met));
        }
        search.interrupt();
        report.search = Some(search.finish());
        report
    }

    #[test]
    fn a_search_shows_its_answer_first_in_the_console_the_page_and_the_autotuner_object() {
        let report = search();
        let summary = summary_table(&report);
        assert!(summary.starts_with("SLO search: 20.000 req/s\n  the highest rate meeting the SLOs (95.0 % of requests within every objective) is 20.000 req/s; at 20.000 req/s 100.0 % of 200 requests met the SLOs (95.0 % Wilson interval 98.1 % to 100.0 %); at 40.000 req/s 60.0 % of 200 requests met the SLOs"), "{summary}");
        assert!(summary.contains("req/s: 120 of 200 met (95.0 % interval 53.1 % to 66.5 %): fail; ttft_ms 60.0 % missed"), "{summary}");
        let page = render(&report, OutputFormat::Html).unwrap();
        let answer = page
            .find("Highest rate meeting the SLOs: 20.000 req/s")
            .unwrap();
        assert!(answer < page.find("<h2>Curves</h2>").unwrap());
        let text = render(&report, OutputFormat::Autotuner).unwrap();
        assert!(text.find("\"slo_search\"").unwrap() < text.find("\"interrupted\"").unwrap());
        let object: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(object["slo_search"]["max_rate_per_s"], 20.0);
        assert_eq!(object["slo_search"]["lowest_failing_rate_per_s"], 40.0);
        assert_eq!(object["slo_search"]["ended"], "interrupted");
        // A report without a search has no such key.
        let plain: serde_json::Value =
            serde_json::from_str(&render(&sweep(), OutputFormat::Autotuner).unwrap()).unwrap();
        assert!(plain.get("slo_search").is_none());
    }

    #[test]
    fn the_autotuner_object_of_a_sweep_matches_its_snapshot() {
        let text = render(&sweep(), OutputFormat::Autotuner).unwrap();
        snapshot("autotuner.json", &text);
        // Spot checks of the shape the autotuner reads.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["num_result_files"], 6);
        assert_eq!(v["interrupted"], false);
        assert_eq!(v["warnings"], serde_json::json!([]));
        let first = &v["raw_results"][0];
        assert_eq!(first["strategy"], "synchronous");
        assert_eq!(first["iteration_type"], "num_concurrency");
        assert_eq!(first["num_concurrency"], 1);
        assert!(first["max_concurrency"].is_null());
        assert_eq!(first["stopped_by"], "max_seconds");
        assert!(first["goodput"].is_null(), "the sweep had no [slo]");
        // Seconds, not milliseconds: the mock's TTFT is 30 ms plus prefill.
        let ttft = first["stats"]["ttft"]["mean"].as_f64().unwrap();
        assert!((0.030..0.060).contains(&ttft), "{ttft}");
        // The throughput step is a concurrency level: its cap.
        let throughput = &v["raw_results"][1];
        assert_eq!(throughput["strategy"], "throughput");
        assert_eq!(throughput["iteration_type"], "num_concurrency");
        assert_eq!(throughput["num_concurrency"], 48);
        assert_eq!(throughput["max_concurrency"], 48);
        assert!(throughput["request_rate"].is_null());
        let constant = &v["raw_results"][2];
        assert_eq!(constant["strategy"], "constant");
        assert_eq!(constant["iteration_type"], "request_rate");
        assert!(constant["num_concurrency"].is_null());
        assert_eq!(constant["max_concurrency"], 48);
        assert!(constant["request_rate"].as_f64().unwrap() > 11.0);
        assert_eq!(constant["warnings"][0]["code"], "client_bound");
        let max = v["max_output_throughput"].as_f64().unwrap();
        assert!(v["raw_results"].as_array().unwrap().iter().all(|r| r
            ["mean_output_throughput_tokens_per_s"]
            .as_f64()
            .unwrap()
            <= max));
    }

    /// A sweep in which benchmark 2 (index 1) only failed and benchmark 4 failed in two ways.
    fn sweep_with_errors() -> Report {
        let mut report = sweep();
        let b = &mut report.benchmarks[1];
        b.requests = bench_core::schema::RequestTotals::new(0, 3, 1212);
        b.errors = vec![ErrorCount {
            kind: "http_status".to_owned(),
            status_code: Some(501),
            count: 1212,
            example: Some("Unsupported method ('POST')".to_owned()),
        }];
        let b = &mut report.benchmarks[3];
        b.requests = bench_core::schema::RequestTotals::new(40, 7, 5);
        b.errors = vec![
            ErrorCount {
                kind: "timeout".to_owned(),
                status_code: None,
                count: 3,
                example: None,
            },
            ErrorCount {
                kind: "server_error_object".to_owned(),
                status_code: Some(200),
                count: 2,
                example: Some(format!(
                    "{{\"error\":\n  {{\"message\": \"{}\"}}}}",
                    "overloaded ".repeat(20)
                )),
            },
        ];
        report
    }

    #[test]
    fn the_summary_table_lists_each_benchmarks_errors_and_says_when_none_succeeded() {
        let table = summary_table(&sweep_with_errors());
        snapshot("summary-errors.txt", &table);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines.contains(
                &"benchmark 2: no successful request: its figures describe failures only"
            ),
            "{table}"
        );
        assert!(
            lines.contains(
                &"benchmark 2: 1212 errored: http 501 ×1212 (e.g. \"Unsupported method ('POST')\")"
            ),
            "{table}"
        );
        let four = lines
            .iter()
            .find(|l| l.starts_with("benchmark 4: 5 errored: "))
            .unwrap();
        assert!(four.starts_with("benchmark 4: 5 errored: timeout ×3; server_error_object (http 200) ×2 (e.g. \"{\"error\": {\"message\": \"overloaded overloaded"), "{four}");
        // The example is cut to 100 characters, on one line.
        let example = four
            .split("(e.g. \"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\")");
        assert_eq!(example.chars().count(), EXAMPLE_CHARS);
        assert!(example.ends_with('…'));
        assert!(!lines
            .iter()
            .any(|l| l.starts_with("benchmark 1: ") && l.contains("errored")));
    }

    /// A shared workload is shown once; a narrow terminal gets p50/p99 and, narrower still,
    /// fewer columns, with a line saying what was left out.
    #[test]
    fn the_summary_table_fits_the_terminal() {
        let report = sweep();
        let full = summary_table(&report);
        let shared = full.lines().next().unwrap();
        assert!(shared.starts_with("workload: "), "{full}");
        assert!(full.lines().nth(1).unwrap().starts_with("#  strategy  "));
        let widest = |t: &str| t.lines().take(8).map(|l| l.chars().count()).max().unwrap();
        assert!(widest(&full) > 120, "{full}");
        for width in [120, 100, 80] {
            let fitted = summary_table_within(&report, Some(width));
            let table: String = fitted
                .lines()
                .skip(1)
                .take(7)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(widest(&table) <= width, "{width}: {fitted}");
            assert!(fitted.contains("TTFT p50/p99 ms") && !fitted.contains("TTFT p50/p95/p99"));
            assert!(
                fitted.contains(&format!("(fitted to {width} columns: p95")),
                "{fitted}"
            );
        }
        let narrow = summary_table_within(&report, Some(80));
        assert!(!narrow.contains("TPOT p50"), "{narrow}");
        assert!(narrow.contains("TPOT, "), "{narrow}");
        // Wide enough: the same as without a width.
        assert_eq!(summary_table_within(&report, Some(400)), full);
    }

    /// Every number people read counts benchmarks from 1; JSON and CSV keep `index` from 0.
    #[test]
    fn benchmarks_are_numbered_from_1_for_people_and_from_0_in_data() {
        let report = sweep_with_errors();
        let table = summary_table(&report);
        // Below the shared workload, the header and the rule.
        let numbers: Vec<&str> = table
            .lines()
            .skip(3)
            .take(6)
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(numbers, ["1", "2", "3", "4", "5", "6"]);
        assert!(table.contains("benchmark 1: stopped by max_seconds"));
        assert!(!table.contains("benchmark 0"), "{table}");
        let page = render(&report, OutputFormat::Html).unwrap();
        assert!(page.contains("<tr><td>1</td>") && page.contains("<tr><td>6</td>"));
        assert!(!page.contains("<tr><td>0</td>"));
        assert!(page.contains("#1 synchronous") && !page.contains("#0 "));
        assert!(page.contains("<li>benchmark 2: 1212 request(s) failed"));
        let csv = render(&report, OutputFormat::Csv).unwrap();
        let first_cells: Vec<&str> = csv.lines().skip(1).map(|l| &l[..1]).collect();
        assert_eq!(first_cells, ["0", "1", "2", "3", "4", "5"]);
    }

    /// Decimals a number is written with: `8.508` has 3, `2.0` none, `1e-6` 6.
    fn decimals(number: &str) -> i64 {
        let (mantissa, exponent) = number
            .split_once(['e', 'E'])
            .map_or((number, 0), |(m, e)| (m, e.parse::<i64>().unwrap()));
        let fraction = mantissa
            .split_once('.')
            .map_or("", |(_, f)| f)
            .trim_end_matches('0');
        (fraction.len() as i64 - exponent).max(0)
    }

    /// The fields of one CSV line (quoted ones unquoted).
    fn fields(line: &str) -> Vec<String> {
        let (mut out, mut field, mut quoted) = (Vec::new(), String::new(), false);
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => out.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        out.push(field);
        out
    }

    /// The documented decimals (docs/report.md) of a CSV column.
    fn csv_places(column: &str) -> i64 {
        let places = if column.ends_with("_count") {
            0
        } else if column == "duration_s" {
            places::SECONDS
        } else if column == "slo_attainment" {
            places::SHARE
        } else if column.contains("_ms_") {
            places::MS
        } else if column.starts_with("prompt_tokens_") || column.starts_with("output_tokens_") {
            places::TOKENS
        } else if column.ends_with("_per_s") || column == "concurrency_mean" {
            places::RATE
        } else {
            0
        };
        i64::from(places)
    }

    /// The documented decimals of a key of the autotuner's object, under its parent key.
    fn autotuner_places(parent: &str, key: &str) -> i64 {
        let places = match (parent, key) {
            ("ttft" | "tpot" | "e2e_latency" | "output_latency", _) => places::SECONDS,
            ("num_input_tokens" | "num_output_tokens", _) => places::TOKENS,
            (_, "run_duration" | "mean_ttft" | "mean_tpot") => places::SECONDS,
            (_, "error_rate" | "slo_attainment") => places::SHARE,
            (_, k)
                if k.contains("throughput")
                    || k.ends_with("per_s")
                    || k.ends_with("per_second")
                    || k == "request_rate" =>
            {
                places::RATE
            }
            _ => 0,
        };
        i64::from(places)
    }

    /// Every number of the pretty-printed object with the keys above it.
    fn json_numbers(text: &str) -> Vec<(String, String, String)> {
        let mut stack: Vec<String> = Vec::new();
        let mut found = Vec::new();
        for line in text.lines().map(str::trim) {
            let (key, value) = match line.split_once("\": ") {
                Some((k, v)) => (k.trim_start_matches('"'), v.trim_end_matches(',')),
                None => ("", line.trim_end_matches(',')),
            };
            match value {
                "{" | "[" => stack.push(key.to_owned()),
                "}" | "]" => {
                    stack.pop();
                }
                v if v.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                    let parent = stack.last().cloned().unwrap_or_default();
                    found.push((parent, key.to_owned(), v.to_owned()));
                }
                _ => {}
            }
        }
        found
    }

    #[test]
    fn no_number_in_the_csv_or_the_autotuner_object_has_more_decimals_than_documented() {
        let mut report = sweep();
        // A goodput too, so that every field is checked.
        report.benchmarks[2].goodput = Some(bench_core::schema::Goodput {
            judged: 29,
            met: 26,
            slo_attainment: 26.0 / 29.0,
            requests_per_s: 26.0 / 2.2017,
        });
        let csv = render(&report, OutputFormat::Csv).unwrap();
        let mut rows = csv.lines().map(fields);
        let header = rows.next().unwrap();
        let mut checked = 0;
        for row in rows {
            for (column, cell) in header.iter().zip(row) {
                if cell.parse::<f64>().is_ok() {
                    assert!(decimals(&cell) <= csv_places(column), "{column} = {cell}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 400, "{checked} numbers checked");
        let text = render(&report, OutputFormat::Autotuner).unwrap();
        let numbers = json_numbers(&text);
        assert!(numbers.len() > 400, "{} numbers found", numbers.len());
        for (parent, key, number) in numbers {
            assert!(
                decimals(&number) <= autotuner_places(&parent, &key),
                "{parent}.{key} = {number}"
            );
        }
        assert_eq!(decimals("8.508"), 3);
        assert_eq!(decimals("8.508000000000001"), 15, "the checker sees noise");
        assert_eq!(decimals("1e-6"), 6);
        assert_eq!(decimals("2.0"), 0);
    }

    #[test]
    fn rounding_leaves_no_noise_and_keeps_what_cannot_be_rounded() {
        assert_eq!(round(8.508000000000001, places::MS).to_string(), "8.508");
        assert_eq!(round(0.1 + 0.2, 3).to_string(), "0.3");
        assert_eq!(round(2.0000004, places::SECONDS).to_string(), "2");
        assert_eq!(round(-0.0001, 3).to_string(), "0");
        assert_eq!(round(1e300, 3), 1e300);
        assert!(round(f64::NAN, 3).is_nan());
        assert_eq!(round(f64::INFINITY, 3), f64::INFINITY);
    }

    #[test]
    fn the_html_page_is_self_contained_escaped_and_has_every_chart() {
        let mut report = sweep();
        report.benchmarks[0].workload = "<script>alert('x')</script>".to_owned();
        report.warnings.push(bench_core::schema::Warning {
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
