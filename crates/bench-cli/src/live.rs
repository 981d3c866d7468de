//! Live progress on a terminal: one line per benchmark (pending, warmup, active, cooldown,
//! done) with its elapsed and remaining time and live figures, and an overall bar.
//! Used when standard error is a terminal; otherwise `progress::LogProgress` logs lines.

use std::fmt::Write as _;
use std::sync::Mutex;

use bench_core::config::Strategy;
use bench_core::progress::{Phase, ProgressEvent, ProgressSink, ProgressUpdate};
use bench_core::schema::Benchmark;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Width of the per-benchmark bar, in characters.
const BAR: &str = "{prefix:.bold} [{bar:20}] {msg}";

pub(crate) struct TerminalProgress {
    bars: MultiProgress,
    state: Mutex<State>,
    /// Where to draw once the lines exist (drawing starts then, so adding them does not
    /// leave stale rows behind).
    target: fn() -> ProgressDrawTarget,
}

#[derive(Default)]
struct State {
    /// One bar per benchmark, created as pending when the run's size is known.
    lines: Vec<ProgressBar>,
    overall: Option<ProgressBar>,
    drawing: bool,
}

impl std::fmt::Debug for TerminalProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TerminalProgress")
    }
}

impl TerminalProgress {
    /// Draws on standard error.
    pub(crate) fn stderr() -> Self {
        Self::with_target(|| ProgressDrawTarget::stderr_with_hz(4))
    }

    fn with_target(target: fn() -> ProgressDrawTarget) -> Self {
        Self {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            state: Mutex::new(State::default()),
            target,
        }
    }

    fn line(&self, state: &mut State, index: usize) -> ProgressBar {
        while state.lines.len() <= index {
            let n = state.lines.len();
            // Hidden until added: a bar left on its default target draws itself at once.
            let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden())
                .with_style(style());
            let bar = match &state.overall {
                Some(overall) => self.bars.insert_before(overall, bar),
                None => self.bars.add(bar),
            };
            bar.set_prefix(format!("#{n}"));
            bar.set_message("pending");
            state.lines.push(bar);
        }
        if state.overall.is_none() && !state.drawing {
            // A run of unknown size: draw from its first line on.
            self.bars.set_draw_target((self.target)());
            state.drawing = true;
        }
        state.lines[index].clone()
    }
}

impl TerminalProgress {
    /// The pending lines of a run of `of` benchmarks and the overall bar below them.
    fn start_block(&self, state: &mut State, of: usize) {
        for i in 0..of {
            self.line(state, i);
        }
        let overall = self.bars.add(
            ProgressBar::with_draw_target(Some(of as u64), ProgressDrawTarget::hidden())
                .with_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} [{bar:20}] {pos}/{len} benchmarks, {elapsed} elapsed",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
        );
        overall.set_prefix("run");
        state.overall = Some(overall);
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(BAR)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl ProgressSink for TerminalProgress {
    fn event(&self, event: &ProgressEvent) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            ProgressEvent::BenchmarkStarted {
                index,
                of,
                strategy,
                workload,
            } => {
                if *index == 0 && state.lines.iter().any(ProgressBar::is_finished) {
                    // The next engine of `run --engines`: a new block below the last one.
                    *state = State {
                        drawing: true,
                        ..State::default()
                    };
                    if let Some(of) = of {
                        self.start_block(&mut state, *of);
                    }
                }
                if let Some(of) = of.filter(|_| !state.drawing) {
                    // Every line first, then the overall bar below them, then draw.
                    state.drawing = true;
                    self.start_block(&mut state, of);
                    self.bars.set_draw_target((self.target)());
                }
                let line = self.line(&mut state, *index);
                line.set_prefix(format!("#{} {}", index + 1, label(strategy, workload)));
                line.set_message("starting");
            }
            ProgressEvent::Update(update) => {
                let line = self.line(&mut state, update.index);
                line.set_position(fraction(update));
                line.set_message(live(update));
            }
            ProgressEvent::BenchmarkFinished { index, benchmark } => {
                let line = self.line(&mut state, *index);
                line.set_position(1000);
                line.finish_with_message(done(benchmark));
                if let Some(overall) = &state.overall {
                    overall.inc(1);
                    if overall.position() >= overall.length().unwrap_or(0) {
                        overall.finish();
                    }
                }
            }
            _ => {}
        }
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        // An interrupted run: leave its unfinished lines as they are.
        for line in &state.lines {
            if !line.is_finished() {
                line.abandon();
            }
        }
    }
}

/// `concurrent x4 D(100,100)`.
fn label(s: &Strategy, workload: &str) -> String {
    format!("{} {workload}", bench_report::render::strategy_label(s))
}

/// Progress in thousandths: elapsed over elapsed plus remaining, when the end is known.
fn fraction(u: &ProgressUpdate) -> u64 {
    match u.remaining_s {
        Some(remaining) if u.elapsed_s + remaining > 0.0 => {
            (1000.0 * u.elapsed_s / (u.elapsed_s + remaining)).clamp(0.0, 1000.0) as u64
        }
        _ => 0,
    }
}

/// The live figures of a running benchmark.
fn live(u: &ProgressUpdate) -> String {
    let phase = match u.phase {
        Phase::Warmup => "warmup",
        Phase::Active => "active",
        Phase::Cooldown => "cooldown",
    };
    let mut out = format!("{phase} {:.0}s", u.elapsed_s);
    if let Some(remaining) = u.remaining_s {
        let _ = write!(out, " ({remaining:.0}s left)");
    }
    let _ = write!(
        out,
        " | ok {} err {} in flight {} | {:.1} req/s {:.0} tok/s",
        u.requests.successful,
        u.requests.errored,
        u.in_flight,
        u.requests_per_s,
        u.output_tokens_per_s
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
    let _ = write!(
        out,
        " | TTFT p50 {} ITL p50 {}",
        ms(u.ttft_p50_ms),
        ms(u.itl_p50_ms)
    );
    out
}

/// The line a finished benchmark keeps.
fn done(b: &Benchmark) -> String {
    let r = &b.requests;
    let rate = b
        .metrics
        .rates
        .requests_per_s
        .as_ref()
        .and_then(|s| s.successful)
        .map_or("-".to_owned(), |v| format!("{v:.1} req/s"));
    format!(
        "done in {:.1}s | ok {} incomplete {} errored {} | {rate}",
        b.window.duration_s, r.successful, r.incomplete, r.errored
    )
}

#[cfg(test)]
mod tests {
    use bench_core::config::StrategyKind;
    use bench_core::schema::RequestTotals;

    use super::*;

    fn update(phase: Phase, elapsed_s: f64, remaining_s: Option<f64>) -> ProgressUpdate {
        ProgressUpdate {
            index: 1,
            phase,
            elapsed_s,
            remaining_s,
            requests: RequestTotals::new(40, 0, 2),
            in_flight: 4,
            requests_per_s: 12.34,
            output_tokens_per_s: 987.6,
            ttft_p50_ms: Some(21.44),
            itl_p50_ms: None,
        }
    }

    #[test]
    fn a_live_line_shows_phase_time_counts_rates_and_latencies() {
        let line = live(&update(Phase::Active, 3.2, Some(6.8)));
        assert_eq!(
            line,
            "active 3s (7s left) | ok 40 err 2 in flight 4 | 12.3 req/s 988 tok/s | TTFT p50 21.4 ms ITL p50 -"
        );
        assert_eq!(fraction(&update(Phase::Active, 3.0, Some(7.0))), 300);
        assert_eq!(fraction(&update(Phase::Warmup, 3.0, None)), 0);
    }

    #[test]
    fn events_of_a_whole_run_drive_the_lines_to_done() {
        let progress = TerminalProgress::with_target(ProgressDrawTarget::hidden);
        let strategy = Strategy {
            kind: StrategyKind::Concurrent,
            streams: Some(4),
            target_rate_per_s: None,
            max_concurrency: None,
            burstiness: None,
            speedup: None,
        };
        progress.event(&ProgressEvent::BenchmarkStarted {
            index: 0,
            of: Some(3),
            strategy: strategy.clone(),
            workload: "D(100,100)".to_owned(),
        });
        progress.event(&ProgressEvent::Update(ProgressUpdate {
            index: 0,
            ..update(Phase::Active, 1.0, Some(1.0))
        }));
        {
            let state = progress.state.lock().unwrap();
            assert_eq!(state.lines.len(), 3, "the other two are pending");
            assert_eq!(state.lines[0].position(), 500);
            assert_eq!(state.lines[0].prefix(), "#1 concurrent x4 D(100,100)");
            assert_eq!(state.lines[2].message(), "pending");
        }
        let report: bench_core::Report = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../bench-report/fixtures/report-sweep.json"),
            )
            .unwrap(),
        )
        .unwrap();
        progress.event(&ProgressEvent::BenchmarkFinished {
            index: 0,
            benchmark: Box::new(report.benchmarks[0].clone()),
        });
        let state = progress.state.lock().unwrap();
        assert!(state.lines[0].is_finished());
        assert!(state.lines[0]
            .message()
            .starts_with("done in 2.2s | ok 9 incomplete 1 errored 0"));
        assert_eq!(state.overall.as_ref().unwrap().position(), 1);
    }
}
