//! The HTML report: one self-contained page (inline CSS and SVG, no script, no network: a
//! Content-Security-Policy forbids every fetch), readable offline and from an email
//! attachment. Every text that came from a config or a server is escaped.

use std::fmt::Write as _;

use bench_core::config::TargetKind;
use bench_core::schema::{Benchmark, Distribution, Report, StatusSplit};

use super::svg::{self, escape, LineChart, Series};
use super::timeline::{self, Span};
use super::{display_number, fixed, percentile, shared_workload, strategy_label, successful};

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1360px;padding:16px 24px;color:#1b1f24;background:#fff}
h1{font-size:1.5em;margin:0 0 8px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a;margin:0 0 12px}.badge{background:#d1242f;color:#fff;border-radius:4px;padding:1px 6px;font-size:.85em}
header.card{padding:12px 16px;margin-bottom:14px}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:8px 20px;margin:0 0 8px}
.facts div{min-width:0}.facts dt{color:#57606a;font-size:.8em}.facts dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.tiles{display:grid;grid-template-columns:repeat(8,minmax(0,1fr));gap:10px}
@media (max-width:1200px){.tiles{grid-template-columns:repeat(4,minmax(0,1fr))}}
@media (max-width:560px){.tiles{grid-template-columns:repeat(2,minmax(0,1fr))}}
.tile{padding:10px 12px}.tile .v{font-size:1.35em;font-weight:600;overflow-wrap:anywhere}.tile .k{color:#57606a;font-size:.82em;overflow-wrap:anywhere}
.full{margin-top:14px}
table{border-collapse:collapse;font-size:.85em;width:100%}th,td{border-bottom:1px solid #eaeef2;padding:4px 6px;text-align:right;white-space:nowrap}
th{background:#f6f8fa;position:sticky;top:0;white-space:normal;vertical-align:bottom}td.t,th.t{text-align:left}
.scroll{overflow-x:auto}pre{background:#f6f8fa;padding:12px;margin:8px 0 0;border-radius:6px;overflow-x:auto;font-size:.85em}
details.card{padding:8px 12px}details.card summary{cursor:pointer;font-weight:600}
.answer{font-size:1.3em;margin:8px 0}.warn li{margin:4px 0;overflow-wrap:anywhere}.warn code{background:#fff8c5;padding:0 4px;border-radius:3px}.empty{color:#57606a;font-style:italic}
";

/// The whole page.
pub(super) fn page(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!(
        "llm-bench report: {} engine, {}",
        report.engine, report.started_at
    );
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}{}{}</style></head><body>",
        escape(&title),
        svg::STYLE,
        timeline::STYLE,
    );
    out.push_str(&header(report));
    // A search's answer first: it is what the run was for.
    if let Some(search) = &report.search {
        out.push_str(&super::search::html(search));
    }
    out.push_str(&tiles(report));
    out.push_str("<h2>Curves</h2><div class=\"charts\">");
    for chart in curves(&report.benchmarks) {
        out.push_str(&chart);
    }
    out.push_str("</div><h2>Distributions</h2><div class=\"charts\">");
    for chart in distributions(&report.benchmarks) {
        out.push_str(&chart);
    }
    out.push_str("</div><h2>Time line</h2>");
    out.push_str(&timeline(report));
    out.push_str(&super::server::html_section(report));
    out.push_str(&table(report));
    out.push_str(&super::reasoning::html_table(&report.benchmarks));
    out.push_str(&super::sessions::html_section(&report.benchmarks));
    out.push_str(&warnings(report));
    let config = serde_json::to_string_pretty(&report.config)
        .unwrap_or_else(|e| format!("(the config cannot be shown: {e})"));
    let _ = write!(
        out,
        "<h2>Config</h2><details class=\"card\" id=\"config-card\"><summary>The config that produced this report \
         (secrets redacted): save it as JSON to run it again</summary><pre id=\"config\">{}</pre></details>",
        escape(&config)
    );
    out.push_str("</body></html>\n");
    out
}

/// What was measured, where, when and for how long, in words.
fn header(report: &Report) -> String {
    let target = &report.config.target;
    let server = match (target.kind(), &target.url) {
        (TargetKind::Mock, Some(url)) => format!("the embedded mock at {url}"),
        (TargetKind::Mock, None) => "the embedded mock".to_owned(),
        (_, Some(url)) => url.clone(),
        (_, None) => "-".to_owned(),
    };
    let facts = [
        ("target", server),
        ("model", target.model().to_owned()),
        ("engine", report.engine.clone()),
        (
            "duration",
            duration_in_words(report.ended_at.seconds_since(report.started_at)),
        ),
        ("date", report.started_at.in_words()),
        ("benchmarks", report.benchmarks.len().to_string()),
    ];
    let mut out =
        String::from("<header class=\"card\"><h1>llm-bench report</h1><dl class=\"facts\">");
    for (key, value) in facts {
        let _ = write!(
            out,
            "<div><dt>{key}</dt><dd id=\"fact-{key}\">{}</dd></div>",
            escape(&value)
        );
    }
    let _ = write!(
        out,
        "</dl><p class=\"meta\">{} {} · report schema {} · {} to {}{}{}</p></header>",
        escape(&report.tool.name),
        escape(&report.tool.version),
        report.schema_version,
        report.started_at,
        report.ended_at,
        if report.interrupted {
            " · <span class=\"badge\">interrupted: partial results</span>"
        } else {
            ""
        },
        report.merged.as_ref().map_or(String::new(), |m| format!(
            " · {}",
            escape(&crate::merge::in_words(m))
        ))
    );
    out
}

/// A run's length for people: `850 ms`, `42.3 s`, `2 min 5 s`, `1 h 3 min`.
fn duration_in_words(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".to_owned();
    }
    if seconds < 1.0 {
        return format!("{:.0} ms", seconds * 1000.0);
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.round() as u64;
    let (hours, minutes, secs) = (whole / 3600, whole % 3600 / 60, whole % 60);
    if hours > 0 {
        format!("{hours} h {minutes} min")
    } else {
        format!("{minutes} min {secs} s")
    }
}

fn ok_rate(split: &Option<StatusSplit<f64>>) -> Option<f64> {
    split.as_ref().and_then(|s| s.successful)
}

fn label(b: &Benchmark) -> String {
    format!("#{} {}", display_number(b), strategy_label(&b.strategy))
}

fn tiles(report: &Report) -> String {
    let benchmarks = &report.benchmarks;
    let (mut ok, mut incomplete, mut errored) = (0, 0, 0);
    for b in benchmarks {
        ok += b.requests.successful;
        incomplete += b.requests.incomplete;
        errored += b.requests.errored;
    }
    let best = |value: fn(&Benchmark) -> Option<f64>| {
        benchmarks
            .iter()
            .filter_map(|b| value(b).map(|v| (v, b)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let lowest = |value: fn(&Benchmark) -> Option<f64>| {
        benchmarks
            .iter()
            .filter_map(|b| value(b).map(|v| (v, b)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    };
    let mut tiles: Vec<(String, String)> = vec![
        (
            format!("{ok} ok"),
            format!("requests; {incomplete} incomplete, {errored} errored"),
        ),
        (
            if ok + errored == 0 {
                "-".to_owned()
            } else {
                format!("{:.2} %", 100.0 * errored as f64 / (ok + errored) as f64)
            },
            "error rate (errored of finished)".to_owned(),
        ),
    ];
    let mut push = |found: Option<(f64, &Benchmark)>, unit: &str, what: &str| {
        let (value, key) = match found {
            Some((v, b)) => (
                format!("{} {unit}", fixed(v)),
                format!("{what} ({})", label(b)),
            ),
            None => ("-".to_owned(), what.to_owned()),
        };
        tiles.push((value, key));
    };
    push(
        best(|b| ok_rate(&b.metrics.rates.output_tokens_per_s)),
        "tok/s",
        "peak output throughput",
    );
    push(
        best(|b| ok_rate(&b.metrics.rates.requests_per_s)),
        "req/s",
        "peak request rate",
    );
    push(
        lowest(|b| successful(&b.metrics.ttft_ms).map(|d| d.percentiles.p50)),
        "ms",
        "lowest TTFT p50",
    );
    push(
        best(|b| successful(&b.metrics.ttft_ms).map(|d| d.percentiles.p99)),
        "ms",
        "highest TTFT p99",
    );
    push(
        lowest(|b| successful(&b.metrics.itl_ms).map(|d| d.percentiles.p50)),
        "ms",
        "lowest ITL p50",
    );
    push(
        best(|b| successful(&b.metrics.itl_ms).map(|d| d.percentiles.p99)),
        "ms",
        "highest ITL p99",
    );
    // Eight tiles: one row of 8, two of 4 or four of 2, never a row left half empty.
    debug_assert_eq!(tiles.len(), 8);
    let mut out = String::from("<section class=\"tiles\" id=\"kpis\">");
    for (value, key) in tiles {
        let _ = write!(
            out,
            "<div class=\"card tile\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>",
            escape(&value),
            escape(&key)
        );
    }
    out.push_str("</section>");
    out
}

/// Latency against achieved rate (the sweep curve, where the knee shows) and throughput
/// against concurrency.
fn curves(benchmarks: &[Benchmark]) -> Vec<String> {
    let mut by_rate: Vec<&Benchmark> = benchmarks
        .iter()
        .filter(|b| ok_rate(&b.metrics.rates.requests_per_s).is_some())
        .collect();
    by_rate.sort_by(|a, b| {
        let rate = |x: &Benchmark| ok_rate(&x.metrics.rates.requests_per_s).unwrap_or(0.0);
        rate(a).total_cmp(&rate(b))
    });
    let against_rate = |pick: fn(&Benchmark) -> Option<&Distribution>, name: &str| {
        [(50u8, false), (99u8, true)]
            .into_iter()
            .map(|(p, dashed)| Series {
                name: format!("{name} p{p}"),
                points: by_rate
                    .iter()
                    .filter_map(|b| {
                        let x = ok_rate(&b.metrics.rates.requests_per_s)?;
                        Some((x, percentile(pick(b)?, p)))
                    })
                    .collect(),
                dashed,
            })
            .collect::<Vec<_>>()
    };
    let mut charts = vec![
        LineChart {
            id: "ttft-vs-rate",
            title: "Time to first token against achieved rate",
            x_label: "successful requests per second",
            y_label: "TTFT, ms",
            series: against_rate(|b| successful(&b.metrics.ttft_ms), "TTFT"),
            tooltip: |name, x, y| format!("{name}: {y} ms at {x} req/s"),
        },
        LineChart {
            id: "itl-vs-rate",
            title: "Inter-token latency against achieved rate",
            x_label: "successful requests per second",
            y_label: "ITL, ms",
            series: against_rate(|b| successful(&b.metrics.itl_ms), "ITL"),
            tooltip: |name, x, y| format!("{name}: {y} ms at {x} req/s"),
        },
        LineChart {
            id: "latency-vs-rate",
            title: "Request latency against achieved rate",
            x_label: "successful requests per second",
            y_label: "latency, ms",
            series: against_rate(|b| successful(&b.metrics.request_latency_ms), "latency"),
            tooltip: |name, x, y| format!("{name}: {y} ms at {x} req/s"),
        },
    ];
    // Throughput against concurrency: measured (time-weighted) where known, else streams.
    let mut by_concurrency: Vec<(f64, f64)> = benchmarks
        .iter()
        .filter_map(|b| {
            let x = b
                .metrics
                .rates
                .concurrency
                .map(|c| c.mean)
                .or(b.strategy.streams.map(f64::from))?;
            Some((x, ok_rate(&b.metrics.rates.output_tokens_per_s)?))
        })
        .collect();
    by_concurrency.sort_by(|a, b| a.0.total_cmp(&b.0));
    charts.push(LineChart {
        id: "throughput-vs-concurrency",
        title: "Output throughput against concurrency",
        x_label: "requests in flight (time-weighted mean)",
        y_label: "output tokens per second",
        series: vec![Series {
            name: "output tok/s".to_owned(),
            points: by_concurrency,
            dashed: false,
        }],
        tooltip: |name, x, y| format!("{name}: {y} tok/s at {x} requests in flight"),
    });
    charts.iter().map(LineChart::render).collect()
}

/// A distribution's cumulative curve from its percentiles: (value, % at or below), from the
/// minimum at 0 % to the maximum at 100 %.
pub(super) fn cdf(d: &Distribution) -> Vec<(f64, f64)> {
    let p = &d.percentiles;
    vec![
        (d.min, 0.0),
        (p.p0_1, 0.1),
        (p.p1, 1.0),
        (p.p5, 5.0),
        (p.p10, 10.0),
        (p.p25, 25.0),
        (p.p50, 50.0),
        (p.p75, 75.0),
        (p.p90, 90.0),
        (p.p95, 95.0),
        (p.p99, 99.0),
        (p.p99_9, 99.9),
        (d.max, 100.0),
    ]
}

/// Cumulative distributions per benchmark, from the percentiles.
fn distributions(benchmarks: &[Benchmark]) -> Vec<String> {
    let chart = |id: &'static str,
                 title: &'static str,
                 x_label: &'static str,
                 pick: fn(&Benchmark) -> Option<&Distribution>| {
        LineChart {
            id,
            title,
            x_label,
            y_label: "% of requests at or below",
            series: benchmarks
                .iter()
                .filter_map(|b| {
                    Some(Series {
                        name: label(b),
                        points: cdf(pick(b)?),
                        dashed: false,
                    })
                })
                .collect(),
            tooltip: |name, x, y| format!("{name}: {y} % of requests at or below {x} ms"),
        }
        .render()
    };
    vec![
        chart(
            "ttft-cdf",
            "Time to first token, per benchmark",
            "TTFT, ms",
            |b| successful(&b.metrics.ttft_ms),
        ),
        chart(
            "itl-cdf",
            "Inter-token latency, per benchmark",
            "ITL, ms",
            |b| successful(&b.metrics.itl_ms),
        ),
        chart(
            "tpot-cdf",
            "Time per output token, per benchmark",
            "TPOT, ms",
            |b| successful(&b.metrics.tpot_ms),
        ),
        chart(
            "latency-cdf",
            "Request latency, per benchmark",
            "latency, ms",
            |b| successful(&b.metrics.request_latency_ms),
        ),
    ]
}

fn timeline(report: &Report) -> String {
    let spans: Vec<Span> = report
        .benchmarks
        .iter()
        .map(|b| Span {
            name: label(b),
            start: b.window.start.seconds_since(report.started_at),
            end: b.window.end.seconds_since(report.started_at),
        })
        .collect();
    timeline::html(
        "timeline",
        "Measured windows (warmup and cooldown excluded)",
        &spans,
    )
}

fn table(report: &Report) -> String {
    let benchmarks = &report.benchmarks[..];
    let shared = shared_workload(benchmarks);
    let mut out = String::from("<h2>Benchmarks</h2>");
    if let Some(workload) = shared {
        let _ = write!(
            out,
            "<p class=\"meta\" id=\"workload\">Every benchmark ran the workload <code>{}</code>.</p>",
            escape(workload)
        );
    }
    let _ = write!(
        out,
        "<div class=\"card scroll\"><table id=\"benchmarks\"><thead><tr>\
         <th>#</th><th class=\"t\">strategy</th>{}<th>ok / inc / err</th><th>req/s</th><th>out tok/s</th>\
         <th>TTFT p50 / p95 / p99 ms</th><th>ITL p50 / p95 / p99 ms</th><th>TPOT p50 / p95 / p99 ms</th><th>latency p50 / p95 / p99 ms</th>\
         <th>concurrency</th><th class=\"t\">stopped by</th></tr></thead><tbody>",
        if shared.is_some() {
            ""
        } else {
            "<th class=\"t\">workload</th>"
        }
    );
    let pct = |split: &Option<StatusSplit<Distribution>>| match successful(split) {
        Some(d) => [50, 95, 99]
            .iter()
            .map(|&p| fixed(percentile(d, p)))
            .collect::<Vec<_>>()
            .join(" / "),
        None => "-".to_owned(),
    };
    for b in benchmarks {
        let m = &b.metrics;
        let rate = |s: &Option<StatusSplit<f64>>| ok_rate(s).map_or("-".to_owned(), fixed);
        let stopped = b
            .stopped_by
            .and_then(|r| serde_json::to_value(r).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "-".to_owned());
        let workload = if shared.is_some() {
            String::new()
        } else {
            format!("<td class=\"t\">{}</td>", escape(&b.workload))
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"t\">{}</td>{workload}<td>{} / {} / {}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"t\">{}</td></tr>",
            display_number(b),
            escape(&strategy_label(&b.strategy)),
            b.requests.successful,
            b.requests.incomplete,
            b.requests.errored,
            rate(&m.rates.requests_per_s),
            rate(&m.rates.output_tokens_per_s),
            pct(&m.ttft_ms),
            pct(&m.itl_ms),
            pct(&m.tpot_ms),
            pct(&m.request_latency_ms),
            m.rates.concurrency.map_or("-".to_owned(), |c| fixed(c.mean)),
            escape(&stopped),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

fn warnings(report: &Report) -> String {
    let mut items = Vec::new();
    for w in &report.warnings {
        items.push(format!(
            "<li><code>{}</code> {}</li>",
            escape(&w.code),
            escape(&w.message)
        ));
    }
    for b in &report.benchmarks {
        for w in &b.warnings {
            items.push(format!(
                "<li>benchmark {}: <code>{}</code> {}</li>",
                display_number(b),
                escape(&w.code),
                escape(&w.message)
            ));
        }
        for e in &b.errors {
            items.push(format!(
                "<li>benchmark {}: {} request(s) failed with <code>{}</code>{}{}</li>",
                display_number(b),
                e.count,
                escape(&e.kind),
                e.status_code
                    .map_or(String::new(), |c| format!(" (HTTP {c})")),
                e.example
                    .as_deref()
                    .map_or(String::new(), |x| format!(": {}", escape(x)))
            ));
        }
    }
    if items.is_empty() {
        return "<h2>Warnings and errors</h2><p class=\"empty\" id=\"warnings\">none</p>"
            .to_owned();
    }
    format!(
        "<h2>Warnings and errors</h2><ul class=\"warn\" id=\"warnings\">{}</ul>",
        items.concat()
    )
}
