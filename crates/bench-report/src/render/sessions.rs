//! Multi-turn sessions (`benchmarks[].sessions`): a line each under the console table (the
//! session totals and TTFT by turn, where prefix reuse shows) and a table per benchmark on the
//! HTML page, one row per turn index.

use std::fmt::Write as _;

use bench_core::schema::{Benchmark, Distribution, Sessions, TurnMetrics};

use super::svg::escape;
use super::{display_number, fixed};

/// Turn indexes shown on a console line; the HTML table shows every one the report keeps.
const CONSOLE_TURNS: usize = 8;

fn p50(d: &Option<Distribution>) -> String {
    d.as_ref()
        .map_or("-".to_owned(), |d| fixed(d.percentiles.p50))
}

fn pcts(d: &Option<Distribution>) -> String {
    d.as_ref().map_or("-".to_owned(), |d| {
        format!(
            "{} / {} / {}",
            fixed(d.percentiles.p50),
            fixed(d.percentiles.p95),
            fixed(d.percentiles.p99)
        )
    })
}

fn mean(d: &Option<Distribution>) -> String {
    d.as_ref().map_or("-".to_owned(), |d| fixed(d.mean))
}

/// The turn's label: `3`, or `3+` when it folds every later turn.
fn turn_label(t: &TurnMetrics) -> String {
    if t.and_later {
        format!("{}+", t.turn)
    } else {
        t.turn.to_string()
    }
}

fn totals(s: &Sessions) -> String {
    format!(
        "{} started, {} completed, {} partial; turns per session mean {}; completed sessions {} s (p50)",
        s.started,
        s.completed,
        s.partial,
        mean(&s.turns_per_session),
        p50(&s.duration_s)
    )
}

/// One line per benchmark that ran sessions, for under the console table.
pub(crate) fn console_lines(benchmarks: &[Benchmark]) -> String {
    let mut out = String::new();
    for b in benchmarks {
        let Some(s) = &b.sessions else { continue };
        let mut by_turn: Vec<String> = s
            .by_turn
            .iter()
            .take(CONSOLE_TURNS)
            .map(|t| {
                let cached = match &t.cached_prompt_tokens {
                    Some(d) => format!(" ({} cached)", fixed(d.mean)),
                    None => String::new(),
                };
                format!("{} {} ms{cached}", turn_label(t), p50(&t.ttft_ms))
            })
            .collect();
        if s.by_turn.len() > CONSOLE_TURNS {
            by_turn.push(format!(
                "... ({} turn indexes in the report)",
                s.by_turn.len()
            ));
        }
        let _ = writeln!(
            out,
            "benchmark {}: sessions: {}; TTFT p50 by turn: {}",
            display_number(b),
            totals(s),
            if by_turn.is_empty() {
                "-".to_owned()
            } else {
                by_turn.join(", ")
            }
        );
    }
    out
}

/// The HTML section of the benchmarks that ran sessions; empty without any.
pub(crate) fn html_section(benchmarks: &[Benchmark]) -> String {
    let with: Vec<(&Benchmark, &Sessions)> = benchmarks
        .iter()
        .filter_map(|b| b.sessions.as_ref().map(|s| (b, s)))
        .collect();
    if with.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2>Sessions</h2><p class=\"meta\">Multi-turn sessions resend the whole conversation each turn: \
         a server that reuses its prefix cache shows cached prompt tokens, and a TTFT that does not grow with the history.</p>",
    );
    for (b, s) in with {
        let _ = write!(
            out,
            "<h3>benchmark {} <span class=\"meta\">{}</span></h3><p class=\"meta\">{}</p>\
             <div class=\"card scroll\"><table class=\"sessions\"><thead><tr><th>turn</th><th>successful</th>\
             <th>TTFT p50 / p95 / p99 ms</th><th>latency p50 / p95 / p99 ms</th>\
             <th>prompt tokens (mean)</th><th>cached prompt tokens (mean)</th><th>output tokens (mean)</th></tr></thead><tbody>",
            display_number(b),
            escape(&b.workload),
            escape(&totals(s)),
        );
        for t in &s.by_turn {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                turn_label(t),
                t.requests,
                pcts(&t.ttft_ms),
                pcts(&t.request_latency_ms),
                mean(&t.prompt_tokens),
                mean(&t.cached_prompt_tokens),
                mean(&t.output_tokens),
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out
}

#[cfg(test)]
mod tests {
    use bench_core::schema::{Sessions, TurnMetrics};
    use bench_core::stats::Histogram;

    use crate::render::{render, summary_table, OutputFormat};

    fn distribution(values: &[f64]) -> Option<bench_core::schema::Distribution> {
        let mut h = Histogram::for_milliseconds();
        for &v in values {
            h.record(v).unwrap();
        }
        h.summary()
    }

    fn turn(turn: u32, and_later: bool, ttft: f64, cached: Option<f64>) -> TurnMetrics {
        TurnMetrics {
            turn,
            and_later,
            requests: 4,
            ttft_ms: distribution(&[ttft; 4]),
            request_latency_ms: distribution(&[ttft + 100.0; 4]),
            prompt_tokens: distribution(&[64.0 * f64::from(turn); 4]),
            cached_prompt_tokens: cached.and_then(|c| distribution(&[c; 4])),
            output_tokens: distribution(&[16.0; 4]),
        }
    }

    fn report_with_sessions() -> bench_core::Report {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/report-sweep.json"),
        )
        .unwrap();
        let mut report: bench_core::Report = serde_json::from_str(&text).unwrap();
        report.benchmarks[1].sessions = Some(Sessions {
            started: 5,
            completed: 4,
            partial: 1,
            turns_per_session: distribution(&[3.0, 3.0, 3.0, 3.0, 1.0]),
            duration_s: distribution(&[2.0; 4]),
            output_tokens: distribution(&[48.0; 4]),
            by_turn: vec![
                turn(1, false, 80.0, None),
                turn(2, false, 40.0, Some(64.0)),
                turn(3, true, 42.0, Some(128.0)),
            ],
        });
        report
    }

    #[test]
    fn sessions_show_their_totals_and_ttft_by_turn_where_a_benchmark_ran_them() {
        let report = report_with_sessions();
        let console = summary_table(&report);
        let line = console
            .lines()
            .find(|l| l.starts_with("benchmark 2: sessions:"))
            .expect(&console);
        assert!(
            line.contains("5 started, 4 completed, 1 partial")
                && line.contains(
                    "TTFT p50 by turn: 1 80.0 ms, 2 40.0 ms (64.0 cached), 3+ 42.0 ms (128 cached)"
                ),
            "{line}"
        );
        assert_eq!(console.matches("sessions:").count(), 1, "{console}");
        let page = render(&report, OutputFormat::Html).unwrap();
        assert!(page.contains("<h2>Sessions</h2>"));
        assert_eq!(
            page.matches("<tr><td>").count() - page_rows_without(&report),
            3
        );
        assert!(
            page.contains("<tr><td>3+</td><td>4</td><td>42.0 / 42.0 / 42.0</td>"),
            "{page}"
        );
        // A report without sessions shows none of it.
        let mut plain = report;
        plain.benchmarks[1].sessions = None;
        assert!(!summary_table(&plain).contains("sessions:"));
        assert!(!render(&plain, OutputFormat::Html)
            .unwrap()
            .contains("<h2>Sessions</h2>"));
    }

    /// Table rows on the page of `report` without its sessions.
    fn page_rows_without(report: &bench_core::Report) -> usize {
        let mut plain = report.clone();
        for b in &mut plain.benchmarks {
            b.sessions = None;
        }
        render(&plain, OutputFormat::Html)
            .unwrap()
            .matches("<tr><td>")
            .count()
    }
}
