//! The server's own metrics (`benchmarks[].server`, from `[target.metrics]`): the few figures
//! that explain a knee on a console line per benchmark (peak waiting, peak running, peak KV
//! usage, prefix hit rate, the server's TTFT, generated tokens against the client's), and on
//! the HTML page a chart of the server's queue and batch over the run, on the time axis of the
//! measured windows above it, and a table.

use std::fmt::Write as _;

use bench_core::schema::{Benchmark, GaugeSummary, Report, ServerHistogram, ServerMetrics};

use super::svg::{escape, LineChart, Series};
use super::{display_number, fixed};

fn peak(g: &Option<GaugeSummary>) -> String {
    g.map_or("-".to_owned(), |g| fixed(g.max))
}

fn share(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{:.0} %", v * 100.0))
}

fn p50_p99(h: &Option<ServerHistogram>, separator: &str) -> String {
    h.map_or("-".to_owned(), |h| {
        format!("{}{separator}{}", fixed(h.p50), fixed(h.p99))
    })
}

fn tokens(s: &ServerMetrics) -> String {
    match (&s.token_check, s.generation_tokens) {
        (Some(check), Some(generated)) => format!(
            "{generated:.0} (client {}{})",
            check.client_output_tokens,
            if check.agrees == Some(false) {
                ", disagree"
            } else {
                ""
            }
        ),
        (_, Some(generated)) => format!("{generated:.0}"),
        _ => "-".to_owned(),
    }
}

fn status(s: &ServerMetrics) -> String {
    let status = serde_json::to_value(s.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "{status}{}, {} scrapes{}",
        s.naming
            .as_deref()
            .map_or(String::new(), |n| format!(" ({n} names)")),
        s.scrapes,
        if s.failed_scrapes > 0 {
            format!(", {} failed", s.failed_scrapes)
        } else {
            String::new()
        }
    )
}

/// One line per benchmark with a server block, for under the console table.
pub(crate) fn console_lines(benchmarks: &[Benchmark]) -> String {
    let mut out = String::new();
    for b in benchmarks {
        let Some(s) = &b.server else { continue };
        let _ = writeln!(
            out,
            "benchmark {}: server {}: waiting peak {}, running peak {}, KV cache peak {}, prefix cache hits {}, server TTFT p50/p99 {} ms, generated tokens {}",
            display_number(b),
            status(s),
            peak(&s.waiting),
            peak(&s.running),
            share(s.kv_cache_usage.map(|g| g.max)),
            share(s.prefix_cache_hit_rate),
            p50_p99(&s.ttft_ms, "/"),
            tokens(s),
        );
    }
    out
}

/// The HTML section: the queue chart and the table; empty when no benchmark has a block.
pub(crate) fn html_section(report: &Report) -> String {
    let with: Vec<(&Benchmark, &ServerMetrics)> = report
        .benchmarks
        .iter()
        .filter_map(|b| b.server.as_ref().map(|s| (b, s)))
        .collect();
    if with.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2>Server</h2><p class=\"meta\">What the server's own <code>/metrics</code> said while each benchmark ran: \
         its queue filling is where TTFT turns up.</p><div class=\"charts\">",
    );
    // Every benchmark's series on the run's time axis, one line per gauge.
    type Tooltip = fn(&str, &str, &str) -> String;
    let mut chart =
        |id: &str, title: &str, y_label: &str, names: &[(&str, &str)], tooltip: Tooltip| {
            let series = names
                .iter()
                .map(|(name, shown)| Series {
                    name: (*shown).to_owned(),
                    points: with
                        .iter()
                        .flat_map(|(_, s)| {
                            let offset = s.started_at.seconds_since(report.started_at);
                            s.series
                                .iter()
                                .filter(|series| series.name == *name)
                                .flat_map(move |series| {
                                    series.points.iter().map(move |p| (offset + p[0], p[1]))
                                })
                        })
                        .collect(),
                    dashed: false,
                })
                .collect();
            out.push_str(
                &LineChart {
                    id,
                    title,
                    x_label: "seconds since the run started",
                    y_label,
                    series,
                    tooltip,
                }
                .render(),
            );
        };
    chart(
        "server-queue",
        "The server's queue and batch",
        "requests",
        &[("waiting", "waiting"), ("running", "running")],
        |name, x, y| format!("{name}: {y} requests at {x} s"),
    );
    chart(
        "server-kv",
        "The server's KV-cache usage",
        "share of the KV cache (0 to 1)",
        &[("kv_cache_usage", "KV-cache usage")],
        |name, x, y| format!("{name}: {y} of the cache at {x} s"),
    );
    out.push_str(
        "</div><div class=\"card scroll full\"><table id=\"server\"><thead><tr><th>#</th><th class=\"t\">scraping</th>\
         <th>waiting mean / peak</th><th>running mean / peak</th><th>KV cache peak</th><th>prefix cache hits</th>\
         <th>server TTFT p50 / p99 ms</th><th>server ITL p50 / p99 ms</th><th>queue time p50 / p99 ms</th>\
         <th>preemptions</th><th>generated tokens</th></tr></thead><tbody>",
    );
    let mean_peak = |g: &Option<GaugeSummary>| {
        g.map_or("-".to_owned(), |g| {
            format!("{} / {}", fixed(g.mean), fixed(g.max))
        })
    };
    for (b, s) in with {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            display_number(b),
            escape(&status(s)),
            mean_peak(&s.waiting),
            mean_peak(&s.running),
            share(s.kv_cache_usage.map(|g| g.max)),
            share(s.prefix_cache_hit_rate),
            p50_p99(&s.ttft_ms, " / "),
            p50_p99(&s.itl_ms, " / "),
            p50_p99(&s.queue_time_ms, " / "),
            s.preemptions.map_or("-".to_owned(), |p| format!("{p:.0}")),
            escape(&tokens(s)),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use bench_core::schema::{
        GaugeSummary, ScrapeStatus, ServerHistogram, ServerMetrics, ServerSeries, TokenCheck,
    };

    use crate::render::{render, summary_table, OutputFormat};

    fn block(offset_s: f64, waiting_peak: f64) -> ServerMetrics {
        let gauge = |max: f64| GaugeSummary {
            min: 0.0,
            mean: max / 2.0,
            max,
            last: 0.0,
        };
        ServerMetrics {
            url: "http://127.0.0.1:8000/metrics".to_owned(),
            status: ScrapeStatus::Scraped,
            naming: Some("vllm".to_owned()),
            interval_s: 1.0,
            scrapes: 5,
            failed_scrapes: 0,
            last_error: None,
            started_at: bench_core::schema::Timestamp::from_unix_micros(
                1_700_000_000_000_000 + (offset_s * 1e6) as i64,
            ),
            window_s: 4.0,
            running: Some(gauge(4.0)),
            waiting: Some(gauge(waiting_peak)),
            kv_cache_usage: Some(gauge(0.98)),
            prompt_tokens: Some(1000.0),
            generation_tokens: Some(500.0),
            preemptions: Some(0.0),
            prefix_cache_hit_rate: Some(0.4),
            ttft_ms: Some(ServerHistogram {
                count: 10.0,
                mean: 30.0,
                p50: 25.0,
                p90: 60.0,
                p99: 90.0,
            }),
            itl_ms: None,
            e2e_latency_ms: None,
            queue_time_ms: None,
            series: vec![ServerSeries {
                name: "waiting".to_owned(),
                points: vec![[0.0, 0.0], [1.0, waiting_peak], [2.0, 1.0]],
            }],
            unmapped: Vec::new(),
            token_check: Some(TokenCheck {
                client_output_tokens: 500,
                server_generation_tokens: Some(500.0),
                client_prompt_tokens: 1000,
                server_prompt_tokens: Some(1000.0),
                relative_difference: Some(0.0),
                agrees: Some(true),
            }),
            cpu_ms_per_scrape: Some(0.2),
        }
    }

    #[test]
    fn the_servers_figures_show_where_a_benchmark_scraped_them() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/report-sweep.json"),
        )
        .unwrap();
        let mut report: bench_core::Report = serde_json::from_str(&text).unwrap();
        let plain = summary_table(&report);
        let plain_page = render(&report, OutputFormat::Html).unwrap();
        assert!(!plain.contains("server scraped") && !plain_page.contains("<h2>Server</h2>"));
        let start = report.started_at.unix_micros() as f64 / 1e6 - 1_700_000_000.0;
        report.benchmarks[0].server = Some(block(start + 1.0, 0.0));
        report.benchmarks[1].server = Some(block(start + 6.0, 28.0));
        let console = summary_table(&report);
        let line = console
            .lines()
            .find(|l| l.starts_with("benchmark 2: server"))
            .expect(&console);
        assert_eq!(
            line,
            "benchmark 2: server scraped (vllm names), 5 scrapes: waiting peak 28.0, running peak 4.00, KV cache peak 98 %, prefix cache hits 40 %, server TTFT p50/p99 25.0/90.0 ms, generated tokens 500 (client 500)"
        );
        let page = render(&report, OutputFormat::Html).unwrap();
        assert!(page.contains("<h2>Server</h2>") && page.contains("id=\"server-queue\""));
        // The second benchmark's peak sits 6 + 1 s into the run.
        assert!(
            page.contains("<title>waiting: 28 requests at 7 s</title>"),
            "{page}"
        );
        assert!(page.contains("<td>14.0 / 28.0</td>"));
    }
}
