//! An SLO search's answer and steps, for the console summary and the HTML page: the answer
//! first, then one line per step with its verdict and interval.

use std::fmt::Write as _;

use bench_core::config::StrategyKind;
use bench_core::schema::{Search, SearchStep};

use super::svg::escape;

fn percent(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn verdict(step: &SearchStep) -> &'static str {
    match (step.passed, step.conclusive) {
        (true, true) => "pass",
        (true, false) => "pass (not conclusive)",
        (false, true) => "fail",
        (false, false) => "fail (not conclusive)",
    }
}

fn rate(step: &SearchStep) -> String {
    if step.kind == StrategyKind::Synchronous {
        format!("{:.3} (synchronous probe)", step.rate_per_s)
    } else {
        format!("{:.3}", step.rate_per_s)
    }
}

fn objectives(step: &SearchStep) -> String {
    step.objectives
        .iter()
        .map(|o| {
            format!(
                "{} {} {}",
                o.objective,
                percent(o.attainment),
                if o.passed { "ok" } else { "missed" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The console lines: the answer, then the steps.
pub(super) fn console(search: &Search) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "SLO search: {}",
        search.answer.rate_per_s.map_or_else(
            || "no rate met the SLOs".to_owned(),
            |r| format!("{r:.3} req/s")
        )
    );
    let _ = writeln!(out, "  {}", search.answer.statement);
    for step in &search.steps {
        let _ = writeln!(
            out,
            "  step (benchmark {}): {} req/s: {} of {} met ({} interval {} to {}): {}; {}",
            step.benchmark + 1,
            rate(step),
            step.met,
            step.judged,
            percent(search.confidence),
            percent(step.interval.low),
            percent(step.interval.high),
            verdict(step),
            objectives(step)
        );
    }
    out.push('\n');
    out
}

/// The HTML section: the answer as a headline, then a table of the steps.
pub(super) fn html(search: &Search) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<h2>SLO search</h2><p class=\"answer\" id=\"search-answer\"><b>{}</b></p><p class=\"meta\">{}</p>",
        search.answer.rate_per_s.map_or_else(
            || "No rate met the SLOs".to_owned(),
            |r| format!("Highest rate meeting the SLOs: {r:.3} req/s")
        ),
        escape(&search.answer.statement)
    );
    out.push_str(
        "<div class=\"card scroll\"><table><tr><th>benchmark</th><th>rate req/s</th><th>met / judged</th>\
         <th>attainment</th><th>interval</th><th class=\"t\">verdict</th><th class=\"t\">objectives</th></tr>",
    );
    for step in &search.steps {
        let _ = write!(
            out,
            "<tr><td>#{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{} to {}</td><td class=\"t\">{}</td><td class=\"t\">{}</td></tr>",
            step.benchmark + 1,
            escape(&rate(step)),
            step.met,
            step.judged,
            percent(step.attainment),
            percent(step.interval.low),
            percent(step.interval.high),
            verdict(step),
            escape(&objectives(step))
        );
    }
    out.push_str("</table></div>");
    out
}
