//! The HTML page of a comparison: the reports' curves and distributions overlaid, one colour
//! per report everywhere on the page, then the metric tables with flagged rows and rows within
//! the noise marked apart. Self-contained like the report's page (no script, no fetch).

use std::fmt::Write as _;

use bench_core::config::StrategyKind;
use bench_core::schema::{Benchmark, Distribution, Report};
use bench_core::stats::Histogram;

use super::svg::{escape, LineChart, Series, PALETTE};
use super::{fixed, percentile, successful};
use crate::compare::{differences, mark, BenchmarkComparison, Comparison, Interval};

/// Benchmarks whose distributions are drawn; a long sweep would otherwise make a page of
/// dozens of charts. The tables below cover every benchmark.
const MAX_DISTRIBUTIONS: usize = 8;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1360px;padding:16px 24px;color:#1b1f24;background:#fff}
h1{font-size:1.5em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:1em;margin:18px 0 6px}
.meta{color:#57606a;margin:0 0 12px}.reports{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:6px 18px}.reports svg{vertical-align:-2px;margin-right:6px}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:.88em;margin:4px 0 14px}
th,td{border-bottom:1px solid #eaeef2;padding:3px 10px;text-align:right;white-space:nowrap;vertical-align:top}th{background:#f6f8fa}
th.t,td.t{text-align:left}td small{color:#57606a}tr.flag td{background:#ffebe9}tr.noise td{background:#fff8c5}
.key span{padding:0 6px;border-radius:3px}.key .flag{background:#ffebe9}.key .noise{background:#fff8c5}.empty{color:#57606a;font-style:italic}
";

/// What the page draws, taken from the reports when they are compared.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    /// Per report, its benchmarks as points of the curves, sorted along the x axis.
    curves: Vec<Vec<Point>>,
    /// Whether every benchmark is a `concurrent` one: the curves are drawn against streams
    /// then, and against the achieved request rate otherwise.
    by_streams: bool,
    /// The first [`MAX_DISTRIBUTIONS`] compared benchmarks' distributions.
    distributions: Vec<Cdfs>,
    /// Compared benchmarks whose distributions are not drawn.
    distributions_left_out: usize,
}

/// One benchmark of one report on the curves.
#[derive(Debug)]
struct Point {
    x: Option<f64>,
    ttft: Option<(f64, f64)>,
    itl: Option<(f64, f64)>,
    output_tokens_per_s: Option<f64>,
    concurrency: Option<f64>,
}

/// One compared benchmark's cumulative distributions, per report (empty where a report lacks
/// the benchmark or the metric).
#[derive(Debug)]
struct Cdfs {
    benchmark: String,
    ttft: Vec<Vec<(f64, f64)>>,
    itl: Vec<Vec<(f64, f64)>>,
}

impl Figures {
    /// The figures of `reports`, whose compared benchmarks are `compared`, matched in each
    /// report as `matched` (same order).
    pub(crate) fn new(
        reports: &[(String, Report)],
        compared: &[BenchmarkComparison],
        matched: &[Vec<Option<&Benchmark>>],
    ) -> Self {
        let by_streams = reports.iter().all(|(_, r)| {
            r.benchmarks.iter().all(|b| {
                b.strategy.kind == StrategyKind::Concurrent && b.strategy.streams.is_some()
            })
        });
        let curves = reports
            .iter()
            .map(|(_, r)| {
                let mut points: Vec<Point> =
                    r.benchmarks.iter().map(|b| point(b, by_streams)).collect();
                points.sort_by(|a, b| a.x.unwrap_or(f64::NAN).total_cmp(&b.x.unwrap_or(f64::NAN)));
                points
            })
            .collect();
        let distributions = compared
            .iter()
            .zip(matched)
            .take(MAX_DISTRIBUTIONS)
            .map(|(c, matches)| {
                let per_report = |pick: fn(&Benchmark) -> Option<&Distribution>| {
                    matches
                        .iter()
                        .map(|m| m.and_then(pick).map(cdf).unwrap_or_default())
                        .collect()
                };
                Cdfs {
                    benchmark: c.benchmark.clone(),
                    ttft: per_report(|b| successful(&b.metrics.ttft_ms)),
                    itl: per_report(|b| successful(&b.metrics.itl_ms)),
                }
            })
            .collect();
        Self {
            curves,
            by_streams,
            distributions,
            distributions_left_out: compared.len().saturating_sub(MAX_DISTRIBUTIONS),
        }
    }
}

fn point(b: &Benchmark, by_streams: bool) -> Point {
    let rate =
        |s: &Option<bench_core::schema::StatusSplit<f64>>| s.as_ref().and_then(|s| s.successful);
    let p50_p99 = |d: Option<&Distribution>| d.map(|d| (percentile(d, 50), percentile(d, 99)));
    Point {
        x: if by_streams {
            b.strategy.streams.map(f64::from)
        } else {
            rate(&b.metrics.rates.requests_per_s)
        },
        ttft: p50_p99(successful(&b.metrics.ttft_ms)),
        itl: p50_p99(successful(&b.metrics.itl_ms)),
        output_tokens_per_s: rate(&b.metrics.rates.output_tokens_per_s),
        concurrency: b
            .metrics
            .rates
            .concurrency
            .map(|c| c.mean)
            .or(b.strategy.streams.map(f64::from)),
    }
}

/// A cumulative distribution as (value, % at or below): read finely from the histogram when
/// the distribution carries one, else from its reported percentiles.
fn cdf(d: &Distribution) -> Vec<(f64, f64)> {
    if let Ok(h) = Histogram::from_distribution(d) {
        let mut points = vec![(d.min, 0.0)];
        let grid = [0.001, 0.005]
            .into_iter()
            .chain((1..50).map(|i| f64::from(i) / 50.0))
            .chain([0.99, 0.995, 0.999]);
        for q in grid {
            if let Some(v) = h.quantile(q) {
                points.push((v, q * 100.0));
            }
        }
        points.push((d.max, 100.0));
        return points;
    }
    super::html::cdf(d)
}

/// The whole page.
pub(crate) fn page(c: &Comparison) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>llm-bench comparison</title><style>{STYLE}{}</style></head><body>\
         <header><h1>llm-bench comparison</h1><p class=\"meta\">{} report(s), the first the baseline · tolerance {} % · {:.0} % intervals</p>",
        super::svg::STYLE,
        c.reports.len(),
        fixed(c.tolerance * 100.0),
        c.confidence * 100.0,
    );
    out.push_str("<ul class=\"reports\" id=\"reports\">");
    for (i, r) in c.reports.iter().enumerate() {
        let _ = write!(
            out,
            "<li data-colour=\"{colour}\"><svg width=\"14\" height=\"14\" aria-hidden=\"true\"><rect width=\"14\" height=\"14\" rx=\"3\" fill=\"{colour}\"/></svg><b>{}</b> ({} engine, started {})</li>",
            escape(&r.label),
            escape(&r.engine),
            escape(&when(&r.started_at)),
            colour = colour(i),
        );
    }
    out.push_str("</ul></header>");
    let _ = write!(out, "<p id=\"summary\">{}", escape(&c.verdict()));
    if c.within_noise > 0 {
        let _ = write!(
            out,
            "; {} more differ by that much but within the noise",
            c.within_noise
        );
    }
    out.push_str(".</p>");

    out.push_str("<h2>Curves</h2>");
    out.push_str(&curves(c));
    out.push_str("<h2>Distributions</h2>");
    out.push_str(&distributions(c));
    out.push_str(&tables(c));
    out.push_str("</body></html>\n");
    out
}

/// An RFC 3339 UTC time to the second, `2026-11-27 22:26:55 UTC`; another shape as it is.
fn when(rfc3339: &str) -> String {
    match rfc3339.get(..19) {
        Some(seconds) if rfc3339.ends_with('Z') => format!("{} UTC", seconds.replace('T', " ")),
        _ => rfc3339.to_owned(),
    }
}

/// The colour of report `i`, as the charts draw it.
fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A report's name in the charts' legends.
fn name(c: &Comparison, i: usize) -> String {
    c.reports[i].name()
}

/// Latency against the achieved rate (or streams), each report a curve: p50 solid and p99
/// dashed in the report's colour.
fn curves(c: &Comparison) -> String {
    let f = &c.figures;
    if f.curves.iter().all(|points| points.len() < 2) {
        return "<p class=\"empty\" id=\"curves\">one benchmark per report: no curves to draw; the distributions below compare them</p>".to_owned();
    }
    let (x_label, x_unit) = if f.by_streams {
        ("concurrent streams", "streams")
    } else {
        ("successful requests per second", "req/s")
    };
    let latency = |pick: fn(&Point) -> Option<(f64, f64)>| -> Vec<Series> {
        f.curves
            .iter()
            .enumerate()
            .flat_map(|(i, points)| {
                let of = |second: bool| -> Vec<(f64, f64)> {
                    points
                        .iter()
                        .filter_map(|p| {
                            let (p50, p99) = pick(p)?;
                            Some((p.x?, if second { p99 } else { p50 }))
                        })
                        .collect()
                };
                [
                    Series {
                        name: format!("{} p50", name(c, i)),
                        points: of(false),
                        dashed: false,
                    },
                    Series {
                        name: format!("{} p99", name(c, i)),
                        points: of(true),
                        dashed: true,
                    },
                ]
            })
            .collect()
    };
    let mut throughput: Vec<Series> = f
        .curves
        .iter()
        .enumerate()
        .map(|(i, points)| {
            let mut xy: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|p| Some((p.concurrency?, p.output_tokens_per_s?)))
                .collect();
            xy.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name: name(c, i),
                points: xy,
                dashed: false,
            }
        })
        .collect();
    // Without a measured concurrency there is nothing to draw against.
    if throughput.iter().all(|s| s.points.is_empty()) {
        throughput.clear();
    }
    let mut charts = vec![
        chart(
            LineChart {
                id: "cmp-ttft",
                title: "Time to first token, p50 and p99 (dashed)",
                x_label,
                y_label: "TTFT, ms",
                series: latency(|p| p.ttft),
                tooltip: plain_tooltip,
            },
            x_unit,
            "ms",
        ),
        chart(
            LineChart {
                id: "cmp-itl",
                title: "Inter-token latency, p50 and p99 (dashed)",
                x_label,
                y_label: "ITL, ms",
                series: latency(|p| p.itl),
                tooltip: plain_tooltip,
            },
            x_unit,
            "ms",
        ),
    ];
    if !throughput.is_empty() {
        charts.push(chart(
            LineChart {
                id: "cmp-throughput",
                title: "Output throughput against concurrency",
                x_label: "requests in flight (time-weighted mean)",
                y_label: "output tokens per second",
                series: throughput,
                tooltip: plain_tooltip,
            },
            "in flight",
            "tok/s",
        ));
    }
    format!(
        "<div class=\"charts\" id=\"curves\">{}</div>",
        charts.concat()
    )
}

/// Per compared benchmark (the first few), the reports' TTFT and ITL distributions overlaid.
fn distributions(c: &Comparison) -> String {
    let f = &c.figures;
    let mut out = String::new();
    for (n, d) in f.distributions.iter().enumerate() {
        let series = |cdfs: &[Vec<(f64, f64)>]| -> Vec<Series> {
            cdfs.iter()
                .enumerate()
                .map(|(i, points)| Series {
                    name: name(c, i),
                    points: points.clone(),
                    dashed: false,
                })
                .collect()
        };
        let (ttft_id, itl_id) = (format!("cmp-ttft-cdf-{n}"), format!("cmp-itl-cdf-{n}"));
        let _ = write!(
            out,
            "<h3>{}</h3><div class=\"charts\">{}{}</div>",
            escape(&d.benchmark),
            chart(
                LineChart {
                    id: &ttft_id,
                    title: "Time to first token",
                    x_label: "TTFT, ms",
                    y_label: "% of requests at or below",
                    series: series(&d.ttft),
                    tooltip: plain_tooltip,
                },
                "ms",
                "%",
            ),
            chart(
                LineChart {
                    id: &itl_id,
                    title: "Inter-token latency",
                    x_label: "ITL, ms",
                    y_label: "% of token gaps at or below",
                    series: series(&d.itl),
                    tooltip: plain_tooltip,
                },
                "ms",
                "%",
            ),
        );
    }
    if f.distributions_left_out > 0 {
        let _ = write!(
            out,
            "<p class=\"empty\">the distributions of {} more benchmark(s) are not drawn; the tables below compare them</p>",
            f.distributions_left_out
        );
    }
    if out.is_empty() {
        out.push_str("<p class=\"empty\">no benchmark in common</p>");
    }
    out
}

/// A point's tooltip before [`with_units`] names the units.
fn plain_tooltip(name: &str, x: &str, y: &str) -> String {
    format!("{name}: {y} at {x}")
}

/// A chart whose point tooltips name their units.
fn chart(chart: LineChart<'_>, x_unit: &str, y_unit: &str) -> String {
    with_units(&chart.render(), x_unit, y_unit)
}

/// Adds units to the points' tooltips, `name: 12.3 at 4.5` becoming `name: 12.3 ms at 4.5
/// req/s`; a tooltip of another shape (one that already names its units) is left alone.
fn with_units(svg: &str, x_unit: &str, y_unit: &str) -> String {
    const END: &str = "</title></circle>";
    let numeric = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'k'))
    };
    let mut out = String::with_capacity(svg.len() + svg.len() / 8);
    let mut rest = svg;
    while let Some(end) = rest.find(END) {
        let (head, tail) = rest.split_at(end);
        let rewritten = head.rfind(" at ").and_then(|at| {
            let x = &head[at + 4..];
            let colon = head[..at].rfind(": ")?;
            let y = &head[colon + 2..at];
            (numeric(x) && numeric(y)).then(|| {
                format!(
                    "{}: {y} {} at {x} {}",
                    &head[..colon],
                    escape(y_unit),
                    escape(x_unit)
                )
            })
        });
        out.push_str(rewritten.as_deref().unwrap_or(head));
        out.push_str(END);
        rest = &tail[END.len()..];
    }
    out.push_str(rest);
    out
}

/// One table per compared benchmark: each report's value with its interval beneath, the
/// differences, and the row marked when flagged or within the noise.
fn tables(c: &Comparison) -> String {
    let mut out = format!(
        "<h2>Differences</h2><p class=\"meta key\">Rows in <span class=\"flag\">red</span> (!) differ from the baseline by more than {} % and beyond the noise: their {:.0} % intervals (beneath each value) do not overlap. Rows in <span class=\"noise\">yellow</span> (~) differ by more than the tolerance but within the noise. An interval with no upper bound (∞) is too wide to bound with so few requests; a value with no interval falls back on a count rule (docs/report.md).</p>",
        fixed(c.tolerance * 100.0),
        c.confidence * 100.0,
    );
    for (n, b) in c.benchmarks.iter().enumerate() {
        let _ = write!(
            out,
            "<h3>{}</h3><div class=\"card scroll\"><table id=\"cmp-table-{n}\"><tr><th></th><th class=\"t\">metric</th>",
            escape(&b.benchmark)
        );
        for (i, r) in c.reports.iter().enumerate() {
            let requests = b
                .requests
                .get(i)
                .copied()
                .flatten()
                .map_or("-".to_owned(), |n| n.to_string());
            let _ = write!(
                out,
                "<th><svg width=\"10\" height=\"10\" aria-hidden=\"true\"><rect width=\"10\" height=\"10\" fill=\"{}\"/></svg> {}<br><small>{requests} requests</small></th>",
                colour(i),
                escape(&r.name())
            );
        }
        out.push_str("<th>difference</th></tr>");
        for m in &b.metrics {
            let class = if m.flagged {
                " class=\"flag\""
            } else if m.within_noise {
                " class=\"noise\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr{class}><td class=\"t\">{}</td><td class=\"t\">{}</td>",
                mark(m),
                m.metric
            );
            for (i, v) in m.values.iter().enumerate() {
                let interval = m.intervals.get(i).copied().flatten();
                let _ = write!(
                    out,
                    "<td>{}{}</td>",
                    v.map_or("-".to_owned(), fixed),
                    match (v, interval) {
                        (Some(_), Some(interval)) =>
                            format!("<br><small>{}</small>", bounds(interval)),
                        _ => String::new(),
                    }
                );
            }
            let _ = write!(out, "<td>{}</td></tr>", differences(m));
        }
        out.push_str("</table></div>");
    }
    for name in &c.unmatched {
        let _ = write!(out, "<p>not in the other reports: {}</p>", escape(name));
    }
    out
}

/// An interval as `11.9 – 12.8`, `∞` for an unbounded side.
fn bounds(i: Interval) -> String {
    format!(
        "{} – {}",
        i.low.map_or("−∞".to_owned(), fixed),
        i.high.map_or("∞".to_owned(), fixed)
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::compare::compare;

    fn sweep() -> Report {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/report-sweep.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The `<svg>` element with id `id`.
    fn svg<'a>(page: &'a str, id: &str) -> &'a str {
        let start = page
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no chart {id}"));
        let end = start + page[start..].find("</svg>").unwrap();
        &page[start..end]
    }

    /// (series name, stroke colour, dashed) of each drawn series of a chart.
    fn series(chart: &str) -> Vec<(String, String, bool)> {
        chart
            .split("<g class=\"series\" data-name=\"")
            .skip(1)
            .map(|g| {
                let name = g[..g.find('"').unwrap()].to_owned();
                let stroke = g.split("stroke=\"").nth(1).unwrap();
                let stroke = stroke[..stroke.find('"').unwrap()].to_owned();
                let polyline = &g[..g.find("/>").unwrap()];
                (name, stroke, polyline.contains("stroke-dasharray"))
            })
            .collect()
    }

    fn page_of_two() -> String {
        let mut other = sweep();
        other.engine = "vllm-bench".to_owned();
        compare(
            &[("a.json".to_owned(), sweep()), ("b.json".to_owned(), other)],
            0.1,
        )
        .html()
    }

    #[test]
    fn each_report_is_one_curve_in_its_own_colour_on_every_chart() {
        let page = page_of_two();
        let (a, b) = ("a.json (native)", "b.json (vllm-bench)");
        for id in ["cmp-ttft", "cmp-itl"] {
            let drawn = series(svg(&page, id));
            assert_eq!(
                drawn,
                [
                    (format!("{a} p50"), PALETTE[0].to_owned(), false),
                    (format!("{a} p99"), PALETTE[0].to_owned(), true),
                    (format!("{b} p50"), PALETTE[1].to_owned(), false),
                    (format!("{b} p99"), PALETTE[1].to_owned(), true),
                ],
                "{id}"
            );
            assert_eq!(
                svg(&page, id).matches("<circle").count(),
                4 * 6,
                "{id}: a point per benchmark on each curve"
            );
        }
        for id in ["cmp-throughput", "cmp-ttft-cdf-0", "cmp-itl-cdf-5"] {
            let drawn = series(svg(&page, id));
            assert_eq!(
                drawn,
                [
                    (a.to_owned(), PALETTE[0].to_owned(), false),
                    (b.to_owned(), PALETTE[1].to_owned(), false),
                ],
                "{id}"
            );
        }
        // The page's legend names each report in its colour.
        assert!(page.contains(&format!(
            "<li data-colour=\"{}\"><svg width=\"14\" height=\"14\" aria-hidden=\"true\"><rect width=\"14\" height=\"14\" rx=\"3\" fill=\"{}\"/></svg><b>b.json</b> (vllm-bench engine",
            PALETTE[1], PALETTE[1]
        )));
    }

    #[test]
    fn the_page_is_self_contained_and_its_tables_scroll() {
        let page = page_of_two();
        assert!(page.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
        assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
        assert_eq!(
            page.matches("<div class=\"card scroll\"><table").count(),
            6,
            "one scrolling table per benchmark"
        );
        assert!(page.contains(".scroll{overflow-x:auto"));
        // Tooltips name their units.
        let ttft = svg(&page, "cmp-ttft");
        assert!(
            ttft.contains(" ms at ") && ttft.contains(" req/s</title>"),
            "{ttft}"
        );
        assert!(svg(&page, "cmp-itl-cdf-0").contains(" % at "));
    }

    #[test]
    fn start_times_read_to_the_second() {
        assert_eq!(
            when("2026-11-27T22:26:55.039364Z"),
            "2026-11-27 22:26:55 UTC"
        );
        assert_eq!(when("yesterday"), "yesterday");
    }

    #[test]
    fn units_are_added_only_to_tooltips_of_the_known_shape() {
        let svg = "<circle><title>a: 12.5 at 3</title></circle><circle><title>b: 1 ms at 2 s</title></circle>";
        assert_eq!(
            with_units(svg, "req/s", "ms"),
            "<circle><title>a: 12.5 ms at 3 req/s</title></circle><circle><title>b: 1 ms at 2 s</title></circle>"
        );
    }

    #[test]
    fn a_report_without_a_benchmark_keeps_its_colour_and_legend() {
        let mut fewer = sweep();
        fewer.benchmarks.truncate(1);
        let page = compare(
            &[
                ("a".to_owned(), fewer),
                ("b".to_owned(), sweep()),
                ("c".to_owned(), sweep()),
            ],
            0.1,
        )
        .html();
        let drawn = series(svg(&page, "cmp-ttft"));
        let colours: Vec<&str> = drawn
            .iter()
            .filter(|s| !s.2)
            .map(|s| s.1.as_str())
            .collect();
        assert_eq!(colours, [PALETTE[0], PALETTE[1], PALETTE[2]]);
    }
}
