//! GuideLLM's JSON report into bench-core's schema.
//!
//! Every distribution is recomputed from the report's per-request lists with bench-core's
//! statistics, so percentiles follow the native engine's definitions. GuideLLM keeps no gaps
//! between chunks: its `inter_token_latency_ms` is a per-request average, which is what this
//! project calls TPOT, so `itl_ms` stays null. Its `time_per_output_token_ms` (which includes
//! the TTFT) is not read.

use bench_core::measure::{
    concurrency, BenchmarkBuilder, Ended, Head, RequestError, RequestRecord,
};
use bench_core::schema::{
    Benchmark, StopReason, Strategy, StrategyKind, Timestamp, Warning, Window,
};
use bench_subprocess::secrets::blank;
use serde::Deserialize;

/// Latest time believed, in Unix seconds (year 2200): a broken file can say anything, and a
/// window's ends must stay times.
const LATEST: f64 = 7_258_118_400.0;

/// `report.json`, the fields read.
#[derive(Debug, Deserialize)]
struct ReportFile {
    #[serde(default)]
    metadata: Option<Metadata>,
    benchmarks: Vec<BenchmarkFile>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    guidellm_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BenchmarkFile {
    /// The measured window, Unix seconds (after the warmup, before the cooldown).
    start_time: f64,
    end_time: f64,
    requests: Requests,
    #[serde(default)]
    warnings: Vec<GuidellmWarning>,
    #[serde(default)]
    scheduler_state: Option<SchedulerState>,
}

#[derive(Debug, Deserialize)]
struct Requests {
    #[serde(default)]
    successful: Vec<Request>,
    #[serde(default)]
    errored: Vec<Request>,
    #[serde(default)]
    incomplete: Vec<Request>,
}

#[derive(Debug, Deserialize)]
struct Request {
    #[serde(default)]
    request_start_time: Option<f64>,
    #[serde(default)]
    request_end_time: Option<f64>,
    #[serde(default)]
    prompt_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
    #[serde(default)]
    time_to_first_token_ms: Option<f64>,
    #[serde(default)]
    info: Option<Info>,
}

#[derive(Debug, Deserialize)]
struct Info {
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    error: Option<String>,
}

/// Unix seconds of a request's events, as GuideLLM's worker saw them.
#[derive(Debug, Deserialize)]
struct Timings {
    /// When the schedule wanted it sent.
    #[serde(default)]
    targeted_start: Option<f64>,
    #[serde(default)]
    request_start: Option<f64>,
    #[serde(default)]
    first_token_iteration: Option<f64>,
    #[serde(default)]
    last_token_iteration: Option<f64>,
    #[serde(default)]
    request_end: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct GuidellmWarning {
    code: String,
    message: String,
}

#[derive(Debug, Deserialize)]
struct SchedulerState {
    /// The constraints that stopped processing, by GuideLLM's name.
    #[serde(default)]
    end_processing_constraints: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What a finished point gave.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) benchmark: Benchmark,
    /// GuideLLM's version, from the report's metadata.
    pub(crate) version: Option<String>,
}

/// What the caller knows about the point beyond GuideLLM's report.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) index: usize,
    pub(crate) strategy: Strategy,
    pub(crate) workload: String,
    /// Secrets to blank out of error examples.
    pub(crate) secrets: &'a [String],
}

/// Reads the report of one point (one benchmark) from `text`.
pub(crate) fn report(text: &str, context: &Context<'_>) -> Result<Parsed, String> {
    let file: ReportFile = serde_json::from_str(text).map_err(|e| {
        format!("the report is not a GuideLLM report this engine knows (tested with GuideLLM 0.8.1): {e}")
    })?;
    let version = file.metadata.and_then(|m| m.guidellm_version);
    let mut benchmarks = file.benchmarks.into_iter();
    let (Some(first), None) = (benchmarks.next(), benchmarks.next()) else {
        return Err("the report does not hold exactly one benchmark".to_owned());
    };
    Ok(Parsed {
        benchmark: benchmark(first, context),
        version,
    })
}

/// Milliseconds from `from` to `to` (Unix seconds), when both are known; negative when `to`
/// came first.
fn signed_ms(from: Option<f64>, to: Option<f64>) -> Option<f64> {
    let d = (to? - from?) * 1000.0;
    d.is_finite().then_some(d)
}

/// Milliseconds from `from` to `to` (Unix seconds), when both are known and in order.
fn ms(from: Option<f64>, to: Option<f64>) -> Option<f64> {
    let d = (to? - from?) * 1000.0;
    (d.is_finite() && d >= 0.0).then_some(d)
}

fn benchmark(file: BenchmarkFile, context: &Context<'_>) -> Benchmark {
    let time = |t: f64| t.is_finite() && t > 0.0 && t < LATEST;
    let (start, end) =
        if time(file.start_time) && time(file.end_time) && file.end_time >= file.start_time {
            (file.start_time, file.end_time)
        } else {
            (0.0, 0.0)
        };
    // Schedule lag only where there is a schedule: GuideLLM's target time of a closed-loop
    // request is when its stream became free, not an intended send.
    let open_loop = matches!(
        context.strategy.kind,
        StrategyKind::Constant | StrategyKind::Poisson
    );
    let count = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v as u64);
    let mut measured = BenchmarkBuilder::new();
    let mut spans = Vec::new();
    let lists = [
        (&file.requests.successful, 0),
        (&file.requests.incomplete, 1),
        (&file.requests.errored, 2),
    ];
    for (list, part) in lists {
        for request in list {
            let timings = request.info.as_ref().and_then(|i| i.timings.as_ref());
            let at = |f: fn(&Timings) -> Option<f64>| timings.and_then(f);
            let sent = request.request_start_time.or(at(|t| t.request_start));
            let ended_at = request.request_end_time.or(at(|t| t.request_end));
            let message = request
                .info
                .as_ref()
                .and_then(|i| i.error.as_deref())
                .map(|m| blank(m, context.secrets))
                .unwrap_or_default();
            let ended = match part {
                0 => Ended::Successful,
                1 => Ended::Incomplete,
                _ => Ended::Errored(RequestError {
                    kind: error_kind(&message),
                    status_code: status_code(&message),
                    message: &message,
                }),
            };
            let output_tokens = count(request.output_tokens);
            let decode = ms(
                at(|t| t.first_token_iteration),
                at(|t| t.last_token_iteration),
            );
            let targeted = at(|t| t.targeted_start).filter(|_| open_loop);
            measured.add(&RequestRecord {
                latency_ms: ms(sent, ended_at),
                ttft_ms: request
                    .time_to_first_token_ms
                    .filter(|v| v.is_finite() && *v >= 0.0),
                tpot_ms: match (decode, output_tokens) {
                    (Some(d), Some(n)) if n > 1 => Some(d / (n - 1) as f64),
                    _ => None,
                },
                decode_time_ms: decode,
                schedule_lag_ms: signed_ms(targeted, sent),
                latency_from_intended_send_ms: ms(targeted, ended_at),
                prompt_tokens: count(request.prompt_tokens),
                output_tokens,
                ended_in_window: ended_at.is_some_and(|e| e >= start && e <= end),
                ..RequestRecord::new(ended)
            });
            if let (Some(s), Some(e)) = (sent, ended_at) {
                spans.push((s, e));
            }
        }
    }
    let stopped_by = file
        .scheduler_state
        .as_ref()
        .and_then(|s| s.end_processing_constraints.as_ref())
        .and_then(|c| c.keys().find_map(|name| stop_reason(name)));
    let duration_s = end - start;
    let window_start = Timestamp::from_unix_micros((start * 1e6) as i64);
    let mut warnings: Vec<Warning> = file
        .warnings
        .into_iter()
        .map(|w| Warning {
            code: format!("guidellm_{}", w.code),
            message: format!("GuideLLM: {}", w.message),
        })
        .collect();
    warnings.push(Warning {
        code: "guidellm_itl_average".to_owned(),
        message: "GuideLLM keeps no gaps between chunks, only each request's average (its inter_token_latency_ms, which is tpot_ms here); itl_ms is null".to_owned(),
    });
    let mut benchmark = measured.finish(Head {
        index: context.index,
        strategy: context.strategy.clone(),
        workload: context.workload.clone(),
        window: Window {
            start: window_start,
            end: Timestamp::from_unix_micros((end * 1e6) as i64),
            duration_s,
        },
        stopped_by,
        warnings,
    });
    benchmark.metrics.rates.concurrency = concurrency(spans, start, end);
    benchmark
}

/// GuideLLM's constraint names as stop reasons.
fn stop_reason(name: &str) -> Option<StopReason> {
    Some(match name {
        "max_requests" => StopReason::MaxRequests,
        "max_duration" => StopReason::MaxSeconds,
        "max_errors" => StopReason::MaxErrors,
        "max_error_rate" | "max_global_error_rate" => StopReason::MaxErrorRate,
        "over_saturation" => StopReason::OverSaturation,
        _ => return None,
    })
}

/// The error kind of GuideLLM's error text: an HTTP status when it names one, else the kind of
/// failure the text starts with.
fn error_kind(message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    if status_code(message).is_some() {
        "http_status"
    } else if lower.contains("timeout") || lower.contains("timed out") {
        "timeout"
    } else if lower.contains("connect") {
        "connect"
    } else {
        "guidellm_error"
    }
}

/// The HTTP status in httpx's `Server error '500 Internal Server Error' for url ...`.
fn status_code(message: &str) -> Option<u16> {
    let (_, rest) = message.split_once(" error '")?;
    rest.get(..3)?
        .parse()
        .ok()
        .filter(|s| (100..600).contains(s))
}
