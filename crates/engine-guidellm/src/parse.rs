//! GuideLLM's JSON report into bench-core's schema.
//!
//! Every distribution is recomputed from the report's per-request lists with bench-core's
//! statistics, so percentiles follow the native engine's definitions. GuideLLM keeps no gaps
//! between chunks: its `inter_token_latency_ms` is a per-request average, which is what this
//! project calls TPOT, so `itl_ms` stays null. Its `time_per_output_token_ms` (which includes
//! the TTFT) is not read.

use std::sync::Arc;

use bench_core::config::StrategyKind;
use bench_core::live::LiveBenchmark;
use bench_core::measure::{
    concurrency, BenchmarkBuilder, Ended, Head, RequestError, RequestRecord,
};
use bench_core::progress::{Phase, ProgressUpdate};
use bench_core::schema::{Benchmark, RequestTotals, StopReason, Timestamp, Warning, Window};
use bench_subprocess::secrets::blank;
use bench_subprocess::{Parsed, Point};
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

/// Reads the report of `point` (one benchmark) from `text`, blanking `secrets` from error
/// examples.
/// Reads GuideLLM's report of one point; every request the benchmark counts is also counted
/// in `live` (the live export's benchmark), when given.
pub(crate) fn report(
    text: &str,
    point: &Point,
    secrets: &[String],
    live: Option<Arc<LiveBenchmark>>,
) -> Result<Parsed, String> {
    let file: ReportFile = serde_json::from_str(text).map_err(|e| {
        format!("the report is not a GuideLLM report this engine knows (tested with GuideLLM 0.8.1): {e}")
    })?;
    let version = file.metadata.and_then(|m| m.guidellm_version);
    let mut benchmarks = file.benchmarks.into_iter();
    let (Some(first), None) = (benchmarks.next(), benchmarks.next()) else {
        return Err("the report does not hold exactly one benchmark".to_owned());
    };
    Ok(Parsed {
        benchmark: benchmark(first, point, secrets, live),
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

fn benchmark(
    file: BenchmarkFile,
    point: &Point,
    secrets: &[String],
    live: Option<Arc<LiveBenchmark>>,
) -> Benchmark {
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
        point.strategy.kind,
        StrategyKind::Constant | StrategyKind::Poisson | StrategyKind::Gamma | StrategyKind::Replay
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
            // GuideLLM lists the warmup's and cooldown's requests too; like its own totals,
            // a request counts when its life overlaps the window.
            if sent.is_some_and(|s| s > end) || ended_at.is_some_and(|e| e < start) {
                continue;
            }
            let message = request
                .info
                .as_ref()
                .and_then(|i| i.error.as_deref())
                .map(|m| blank(m, secrets))
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
            let record = RequestRecord {
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
            };
            measured.add(&record);
            // The live export counts what the report counts.
            if let Some(live) = &live {
                live.add(&record);
            }
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
        index: point.index,
        strategy: point.strategy.clone(),
        workload: point.workload.clone(),
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

/// The error kind of GuideLLM's error text (the Python exception it caught, as `repr`), in
/// the native engine's words.
fn error_kind(message: &str) -> &'static str {
    let class = message.split(['(', ':']).next().unwrap_or_default();
    if status_code(message).is_some() || class == "HTTPStatusError" {
        "http_status"
    } else if class.contains("Timeout") {
        "timeout"
    } else if class.starts_with("Connect") || class == "ConnectionRefusedError" {
        "connect"
    } else if matches!(
        class,
        "RemoteProtocolError" | "ReadError" | "LocalProtocolError"
    ) {
        "stream"
    } else if message.contains("Streaming response returned an error") {
        "server_error_object"
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

/// A progress line of GuideLLM's log (`--disable-progress` writes one every few seconds):
/// `Benchmark 1 (concurrent@2): started | elapsed=0.0s | successful=10 errored=5
/// incomplete=0 | requests/s=16.73 output_tokens/s=267.68`, as an update of point `index`.
pub(crate) fn progress(line: &str, index: usize) -> Option<ProgressUpdate> {
    let (_, rest) = line.split_once(" - Benchmark ")?;
    let mut fields = rest.split(" | ").skip(1).flat_map(|part| part.split(' '));
    let mut value = |name: &str| -> Option<f64> {
        let v = fields.find_map(|f| f.strip_prefix(name)?.strip_prefix('='))?;
        v.trim_end_matches('s').parse().ok()
    };
    let elapsed_s = value("elapsed")?;
    let successful = value("successful")? as u64;
    let errored = value("errored")? as u64;
    let incomplete = value("incomplete")? as u64;
    let requests_per_s = value("requests/s")?;
    let output_tokens_per_s = value("output_tokens/s")?;
    Some(ProgressUpdate {
        index,
        phase: Phase::Active,
        elapsed_s,
        remaining_s: None,
        requests: RequestTotals::new(successful, incomplete, errored),
        in_flight: 0,
        requests_per_s,
        output_tokens_per_s,
        ttft_p50_ms: None,
        itl_p50_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use bench_core::config::Strategy;
    use bench_core::schema::{Distribution, RequestTotals, StatusSplit};

    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
            .join("report.json");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn point(kind: StrategyKind) -> Point {
        Point {
            index: 1,
            of: 2,
            strategy: Strategy {
                kind,
                streams: (kind == StrategyKind::Concurrent).then_some(2),
                target_rate_per_s: (kind == StrategyKind::Constant).then_some(5.0),
                max_concurrency: None,
                burstiness: None,
                speedup: None,
            },
            workload: "prompt_tokens=32,output_tokens=16".to_owned(),
        }
    }

    fn ok(d: &Option<StatusSplit<Distribution>>) -> &Distribution {
        d.as_ref().unwrap().successful.as_ref().unwrap()
    }

    /// The mock answered with TTFT 20 ms and 16 tokens 5 ms apart.
    #[test]
    fn a_concurrent_run_is_recomputed_from_its_requests() {
        let parsed = report(
            &fixture("concurrent"),
            &point(StrategyKind::Concurrent),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(parsed.version.as_deref(), Some("0.8.1"));
        let b = parsed.benchmark;
        assert_eq!(b.index, 1);
        assert_eq!(b.requests, RequestTotals::new(20, 0, 0));
        assert_eq!(b.stopped_by, Some(StopReason::MaxRequests));
        assert!((b.window.duration_s - 1.1227617263793945).abs() < 1e-9);
        let m = &b.metrics;
        let ttft = ok(&m.ttft_ms);
        assert!(ttft.min > 20.0 && ttft.median < 40.0, "{ttft:?}");
        // (last - first) / 15 gaps of 5 ms.
        let tpot = ok(&m.tpot_ms);
        assert!((tpot.median - 5.0).abs() < 0.5, "{tpot:?}");
        assert_eq!(ok(&m.output_tokens).mean, 16.0);
        assert_eq!(ok(&m.prompt_tokens).mean, 32.0);
        assert!(m.itl_ms.is_none(), "no per-chunk gaps in GuideLLM's report");
        assert!(m.schedule_lag_ms.is_none(), "closed loop: no schedule");
        let c = m.rates.concurrency.unwrap();
        assert!(c.max == 2 && c.mean > 1.5 && c.mean <= 2.0, "{c:?}");
        let rps = m.rates.requests_per_s.as_ref().unwrap().successful.unwrap();
        assert!((rps - 20.0 / 1.1227617263793945).abs() < 0.5, "{rps}");
        assert!(b.warnings.iter().any(|w| w.code == "guidellm_itl_average"));
    }

    #[test]
    fn a_constant_run_has_schedule_lag_and_stops_on_its_duration() {
        let b = report(
            &fixture("constant"),
            &point(StrategyKind::Constant),
            &[],
            None,
        )
        .unwrap()
        .benchmark;
        assert_eq!(b.stopped_by, Some(StopReason::MaxSeconds));
        assert_eq!(b.window.duration_s, 4.0);
        let lag = ok(&b.metrics.schedule_lag_ms);
        assert!(lag.count >= 19 && lag.max < 100.0, "{lag:?}");
        assert!(b.metrics.latency_from_intended_send_ms.is_some());
    }

    #[test]
    fn requests_of_the_warmup_and_cooldown_are_left_out_as_guidellm_does() {
        let b = report(
            &fixture("synchronous-warmup-cooldown"),
            &point(StrategyKind::Synchronous),
            &[],
            None,
        )
        .unwrap()
        .benchmark;
        // GuideLLM's own request_totals: 29 successful of the 47 listed.
        assert_eq!(b.requests, RequestTotals::new(29, 0, 0));
        assert_eq!(b.window.duration_s, 3.0);
    }

    #[test]
    fn failures_are_grouped_by_kind_and_status_and_secrets_never_leave() {
        let secrets = ["127.0.0.1:18440".to_owned()];
        let b = report(
            &fixture("faults-mixed"),
            &point(StrategyKind::Concurrent),
            &secrets,
            None,
        )
        .unwrap()
        .benchmark;
        assert_eq!(b.requests, RequestTotals::new(18, 0, 12));
        let groups: Vec<_> = b
            .errors
            .iter()
            .map(|e| (e.kind.as_str(), e.status_code, e.count))
            .collect();
        assert_eq!(
            groups,
            [
                ("http_status", Some(500), 6),
                ("server_error_object", None, 2),
                ("stream", None, 4)
            ]
        );
        let json = serde_json::to_string(&b).unwrap();
        assert!(
            !json.contains("127.0.0.1:18440"),
            "the planted secret is blanked"
        );
    }

    #[test]
    fn progress_lines_become_updates_and_other_lines_do_not() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/faults-mixed/progress.txt"),
        )
        .unwrap();
        let updates: Vec<_> = text.lines().filter_map(|l| progress(l, 4)).collect();
        assert_eq!(updates.len(), 3, "{text}");
        let last = &updates[2];
        assert_eq!(last.index, 4);
        assert_eq!(last.requests, RequestTotals::new(18, 0, 12));
        assert!((last.requests_per_s - 16.30).abs() < 1e-9);
        assert!(progress("Starting benchmark for strategy: concurrent@2", 0).is_none());
    }

    #[test]
    fn a_report_that_is_not_guidellms_is_an_error_never_a_panic() {
        let c = point(StrategyKind::Synchronous);
        assert!(report("{}", &c, &[], None)
            .unwrap_err()
            .contains("not a GuideLLM report"));
        assert!(report("{\"benchmarks\": []}", &c, &[], None)
            .unwrap_err()
            .contains("exactly one"));
        let odd = r#"{"benchmarks": [{"start_time": 1e300, "end_time": -5, "requests": {"successful": [{"request_start_time": "x"}]}}]}"#;
        let _ = report(odd, &c, &[], None);
        let odd = r#"{"benchmarks": [{"start_time": 1e300, "end_time": 1e301, "requests": {"successful": [{}]}}]}"#;
        let b = report(odd, &c, &[], None).unwrap().benchmark;
        assert_eq!(b.window.duration_s, 0.0);
    }
}
