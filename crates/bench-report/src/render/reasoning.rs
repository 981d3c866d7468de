//! The reasoning figures of reasoning models (`metrics.reasoning`), shown only for benchmarks
//! whose responses streamed reasoning: a line each under the console table (which stays as
//! wide as it is) and a table of their own on the HTML page.

use std::fmt::Write as _;

use bench_core::schema::{Benchmark, Distribution, Reasoning, StatusSplit};

use super::svg::escape;
use super::{display_number, fixed, percentile, successful};

/// The benchmark's reasoning figures, when a successful request streamed any reasoning.
fn streamed(b: &Benchmark) -> Option<&Reasoning> {
    let reasoning = b.metrics.reasoning.as_ref()?;
    successful(&reasoning.reasoning_tokens)
        .is_some_and(|d| d.max > 0.0)
        .then_some(reasoning)
}

fn pct(split: &Option<StatusSplit<Distribution>>, separator: &str) -> String {
    match successful(split) {
        Some(d) => [50, 95, 99]
            .iter()
            .map(|&p| fixed(percentile(d, p)))
            .collect::<Vec<_>>()
            .join(separator),
        None => "-".to_owned(),
    }
}

fn mean(split: &Option<StatusSplit<Distribution>>) -> String {
    successful(split).map_or("-".to_owned(), |d| fixed(d.mean))
}

/// One line per benchmark whose responses streamed reasoning, for under the console table.
pub(crate) fn console_lines(benchmarks: &[Benchmark]) -> String {
    let mut out = String::new();
    for b in benchmarks {
        let Some(r) = streamed(b) else { continue };
        let _ = writeln!(
            out,
            "benchmark {}: reasoning model: first answer token p50/p95/p99 {} ms (TTFT {} ms); tokens per request: reasoning {}, answer {} (mean); ITL p50/p95/p99: reasoning {} ms, answer {} ms",
            display_number(b),
            pct(&r.time_to_first_answer_token_ms, "/"),
            pct(&b.metrics.ttft_ms, "/"),
            mean(&r.reasoning_tokens),
            mean(&r.answer_tokens),
            pct(&r.reasoning_itl_ms, "/"),
            pct(&r.answer_itl_ms, "/"),
        );
    }
    out
}

/// The HTML table of the benchmarks whose responses streamed reasoning; empty without any.
pub(crate) fn html_table(benchmarks: &[Benchmark]) -> String {
    let rows: Vec<(&Benchmark, &Reasoning)> = benchmarks
        .iter()
        .filter_map(|b| streamed(b).map(|r| (b, r)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2>Reasoning</h2><p class=\"meta\">Responses streamed reasoning before their answer: TTFT is the first reasoning chunk, the answer began later.</p>\
         <div class=\"card scroll\"><table id=\"reasoning\"><thead><tr><th>#</th><th class=\"t\">workload</th>\
         <th>TTFT p50 / p95 / p99 ms</th><th>first answer token p50 / p95 / p99 ms</th>\
         <th>reasoning tokens (mean)</th><th>answer tokens (mean)</th>\
         <th>reasoning ITL p50 / p95 / p99 ms</th><th>answer ITL p50 / p95 / p99 ms</th></tr></thead><tbody>",
    );
    for (b, r) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            display_number(b),
            escape(&b.workload),
            pct(&b.metrics.ttft_ms, " / "),
            pct(&r.time_to_first_answer_token_ms, " / "),
            mean(&r.reasoning_tokens),
            mean(&r.answer_tokens),
            pct(&r.reasoning_itl_ms, " / "),
            pct(&r.answer_itl_ms, " / "),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use bench_core::measure::{BenchmarkBuilder, Ended, ReasoningRecord, RequestRecord};

    use crate::render::{render, summary_table, OutputFormat};

    /// A sweep's first benchmark with the figures of responses of `reasoning` reasoning and
    /// 5 answer tokens, first answering at 400 ms.
    fn with_reasoning(reasoning: u64) -> bench_core::Report {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/report-sweep.json"),
        )
        .unwrap();
        let mut report: bench_core::Report = serde_json::from_str(&text).unwrap();
        let mut builder = BenchmarkBuilder::new();
        for _ in 0..3 {
            builder.add(&RequestRecord {
                ttft_ms: Some(50.0),
                reasoning: Some(ReasoningRecord {
                    time_to_first_answer_token_ms: Some(400.0),
                    reasoning_tokens: Some(reasoning),
                    answer_tokens: Some(5),
                    reasoning_itl_ms: &[10.0; 9],
                    answer_itl_ms: &[20.0; 4],
                }),
                ..RequestRecord::new(Ended::Successful)
            });
        }
        let b = &report.benchmarks[0];
        let head = bench_core::measure::Head {
            index: b.index,
            strategy: b.strategy.clone(),
            workload: b.workload.clone(),
            window: b.window.clone(),
            stopped_by: None,
            warnings: Vec::new(),
        };
        report.benchmarks[0].metrics.reasoning = builder.finish(head).metrics.reasoning;
        report
    }

    #[test]
    fn reasoning_figures_show_only_where_responses_streamed_reasoning() {
        let report = with_reasoning(10);
        let console = summary_table(&report);
        let line = console
            .lines()
            .find(|l| l.starts_with("benchmark 1: reasoning model"))
            .expect(&console);
        assert!(
            line.contains("first answer token p50/p95/p99 400/400/400 ms")
                && line.contains("reasoning 10.0, answer 5.00")
                && line.contains("reasoning 10.0/10.0/10.0 ms, answer 20.0/20.0/20.0 ms"),
            "{line}"
        );
        assert_eq!(console.matches("reasoning model").count(), 1, "{console}");
        let page = render(&report, OutputFormat::Html).unwrap();
        assert!(page.contains("id=\"reasoning\""));
        // Measured, but no reasoning streamed: nothing to show.
        let report = with_reasoning(0);
        assert!(!summary_table(&report).contains("reasoning"));
        let page = render(&report, OutputFormat::Html).unwrap();
        assert!(!page.contains("id=\"reasoning\""));
    }
}
