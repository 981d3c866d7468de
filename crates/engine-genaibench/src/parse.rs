//! genai-bench's result folder into bench-core's schema.
//!
//! Every distribution is recomputed from `individual_request_metrics` with bench-core's
//! statistics, so percentiles follow the same definitions as the native engine's (genai-bench's
//! own `stats` interpolate). Counts come from the same list, and the error rate is computed
//! here (genai-bench 0.0.5 writes `error_rate: 0` whatever happened). What genai-bench does not
//! record (per-chunk ITL, schedule lag, time-weighted concurrency) stays absent.

use std::path::{Path, PathBuf};

use bench_core::measure::{BenchmarkBuilder, Ended, Head, RequestError, RequestRecord};
use bench_core::schema::{Benchmark, StopReason, Timestamp, Warning, Window};
use bench_subprocess::secrets::blank;
use bench_subprocess::{Parsed, Point};
use serde::Deserialize;

/// Longest `run_duration` believed, in seconds (a year).
const MAX_RUN_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// A per-run JSON file (or the `debug_for_run_*` file written when aggregation failed).
#[derive(Debug, Deserialize)]
struct RunFile {
    aggregated_metrics: Aggregated,
    #[serde(default)]
    individual_request_metrics: Vec<RequestMetrics>,
    #[serde(rename = "_time_unit", default)]
    time_unit: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Aggregated {
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    num_concurrency: Option<u32>,
    /// Always seconds, whatever `_time_unit` says.
    #[serde(default)]
    run_duration: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct RequestMetrics {
    ttft: Option<f64>,
    tpot: Option<f64>,
    e2e_latency: Option<f64>,
    output_latency: Option<f64>,
    num_input_tokens: Option<f64>,
    num_output_tokens: Option<f64>,
    error_code: Option<i64>,
    error_message: Option<String>,
}

/// `experiment_metadata.json`, the fields read.
#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    benchmark_version: Option<String>,
}

/// What the caller knows about the point beyond genai-bench's files.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) point: &'a Point,
    /// When genai-bench started sending, as llm-bench saw it.
    pub(crate) started: Timestamp,
    pub(crate) warmup_ratio: f64,
    pub(crate) cooldown_ratio: f64,
    pub(crate) max_requests: Option<u64>,
    pub(crate) max_seconds: Option<f64>,
    /// Secrets to blank out of error examples.
    pub(crate) secrets: &'a [String],
    /// The live export's benchmark, counting every request the benchmark counts.
    pub(crate) live: Option<std::sync::Arc<bench_core::live::LiveBenchmark>>,
}

/// Reads the results of one point from `folder`.
pub(crate) fn folder(folder: &Path, context: &Context<'_>) -> Result<Parsed, String> {
    let version = std::fs::read_to_string(folder.join("experiment_metadata.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Metadata>(&text).ok())
        .and_then(|m| m.benchmark_version);
    let file = run_file(folder)?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let run: RunFile = serde_json::from_str(&text).map_err(|e| {
        format!("{} is not a genai-bench run file this adapter knows (tested with genai-bench 0.0.5): {e}", file.display())
    })?;
    let debug = file
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("debug_for_run_"));
    let mut benchmark = benchmark(&run, context)?;
    if debug {
        benchmark.warnings.push(Warning {
            code: "genai_bench_aggregation_failed".to_owned(),
            message: format!("genai-bench could not aggregate this run (typically: no request succeeded) and wrote {}; the figures are recomputed from its per-request list", file.display()),
        });
    }
    Ok(Parsed { benchmark, version })
}

/// The run file of a folder that holds one point: `*_time_<n>s.json`, else `debug_for_run_*.json`.
fn run_file(folder: &Path) -> Result<PathBuf, String> {
    let entries = std::fs::read_dir(folder).map_err(|e| {
        format!(
            "genai-bench wrote no results folder {}: {e}",
            folder.display()
        )
    })?;
    let mut runs = Vec::new();
    let mut debug = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        if name.starts_with("debug_for_run_") {
            debug.push(entry.path());
        } else if name.contains("_time_") && name.ends_with("s.json") {
            runs.push(entry.path());
        }
    }
    runs.sort();
    debug.sort();
    runs.into_iter()
        .next()
        .or_else(|| debug.into_iter().next())
        .ok_or_else(|| format!("genai-bench wrote no run file into {}", folder.display()))
}

fn benchmark(run: &RunFile, context: &Context<'_>) -> Result<Benchmark, String> {
    let to_ms = match run.time_unit.as_deref() {
        Some("ms") => 1.0,
        Some("s") | None => 1000.0,
        Some(other) => return Err(format!("unknown _time_unit `{other}` (expected s or ms)")),
    };
    // genai-bench's own exclusion: the first and last fractions of the list.
    let all = &run.individual_request_metrics;
    let n = all.len();
    let skip_front = (n as f64 * context.warmup_ratio) as usize;
    let skip_back = (n as f64 * context.cooldown_ratio) as usize;
    let measured = &all[skip_front.min(n)..n.saturating_sub(skip_back).max(skip_front.min(n))];

    let mut measured_requests = BenchmarkBuilder::new();
    // A value a request can have: a measured time or count, never negative.
    let value = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
    for request in measured {
        let message;
        let ended = match request.error_code {
            Some(code) => {
                message = request
                    .error_message
                    .as_deref()
                    .map(|m| blank(m, context.secrets))
                    .unwrap_or_default();
                Ended::Errored(RequestError {
                    kind: "http_status",
                    status_code: u16::try_from(code).ok(),
                    message: &message,
                })
            }
            None => Ended::Successful,
        };
        // genai-bench's figures of a failed request are placeholders, not measurements.
        let record = match ended {
            Ended::Successful => RequestRecord {
                latency_ms: value(request.e2e_latency).map(|v| v * to_ms),
                ttft_ms: value(request.ttft).map(|v| v * to_ms),
                tpot_ms: value(request.tpot).map(|v| v * to_ms),
                decode_time_ms: value(request.output_latency).map(|v| v * to_ms),
                prompt_tokens: value(request.num_input_tokens).map(|v| v as u64),
                output_tokens: value(request.num_output_tokens).map(|v| v as u64),
                ..RequestRecord::new(ended)
            },
            _ => RequestRecord::new(ended),
        };
        measured_requests.add(&record);
        if let Some(live) = &context.live {
            live.add(&record);
        }
    }
    let duration = run
        .aggregated_metrics
        .run_duration
        // A duration a run can have: positive, and not beyond a year (a broken file can say
        // anything, and the window's end must stay a time).
        .filter(|d| d.is_finite() && *d > 0.0 && *d < MAX_RUN_SECONDS);
    let total = measured_requests.totals().total;
    let stopped_by = match (context.max_requests, context.max_seconds) {
        (Some(max), _) if total >= max => Some(StopReason::MaxRequests),
        (_, Some(_)) => Some(StopReason::MaxSeconds),
        _ => None,
    };
    let duration_s = duration.unwrap_or(0.0);
    let mut warnings = vec![Warning {
        code: "incomplete_not_counted".to_owned(),
        message: "genai-bench drops the requests in flight when a run stops, without recording them: `incomplete` is 0 because they are unknown, not because there were none".to_owned(),
    }];
    if let Some(scenario) = &run.aggregated_metrics.scenario {
        if *scenario != context.point.workload
            && context.point.workload.starts_with(['D', 'N', 'U'])
        {
            warnings.push(Warning {
                code: "genai_bench_scenario_mismatch".to_owned(),
                message: format!(
                    "genai-bench reports scenario {scenario}, llm-bench asked for {}",
                    context.point.workload
                ),
            });
        }
    }
    if let (Some(c), Some(streams)) = (
        run.aggregated_metrics.num_concurrency,
        context.point.strategy.streams,
    ) {
        if c != streams {
            return Err(format!(
                "the run file is for concurrency {c}, not {streams}"
            ));
        }
    }
    Ok(measured_requests.finish(Head {
        index: context.point.index,
        strategy: context.point.strategy.clone(),
        workload: context.point.workload.clone(),
        window: Window {
            start: context.started,
            end: context
                .started
                .plus(std::time::Duration::try_from_secs_f64(duration_s).unwrap_or_default()),
            duration_s,
        },
        stopped_by,
        warnings,
    }))
}

#[cfg(test)]
mod tests {
    use bench_core::config::{Strategy, StrategyKind};
    use bench_core::schema::{RequestTotals, StatusSplit};

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    }

    fn context<'a>(workload: &str, streams: u32, secrets: &'a [String]) -> Context<'a> {
        // Leaked: a test's few bytes, for a context that borrows its point.
        let point = Box::leak(Box::new(Point {
            index: 3,
            of: 4,
            strategy: Strategy {
                kind: StrategyKind::Concurrent,
                streams: Some(streams),
                target_rate_per_s: None,
                max_concurrency: None,
                burstiness: None,
                speedup: None,
            },
            workload: workload.to_owned(),
        }));
        Context {
            point,
            started: Timestamp::from_unix_micros(1_000_000),
            warmup_ratio: 0.0,
            cooldown_ratio: 0.0,
            max_requests: Some(8),
            max_seconds: Some(60.0),
            secrets,
            live: None,
        }
    }

    fn ok(
        d: &Option<StatusSplit<bench_core::schema::Distribution>>,
    ) -> &bench_core::schema::Distribution {
        d.as_ref().unwrap().successful.as_ref().unwrap()
    }

    #[test]
    fn a_clean_run_in_milliseconds_is_recomputed_from_its_requests() {
        let parsed = folder(&fixture("ok"), &context("D(20,5)", 2, &[])).unwrap();
        assert_eq!(parsed.version.as_deref(), Some("0.0.5"));
        let b = parsed.benchmark;
        assert_eq!(b.requests, RequestTotals::new(40, 0, 0));
        assert_eq!(b.stopped_by, Some(StopReason::MaxRequests));
        assert!((b.window.duration_s - 1.275116804999925).abs() < 1e-12);
        let ttft = ok(&b.metrics.ttft_ms);
        assert_eq!(ttft.count, 40);
        // Mock TTFT 20 ms; genai-bench opens a new connection per request and adds its own delay.
        assert!(ttft.min > 20.0 && ttft.median < 60.0, "{ttft:?}");
        assert_eq!(ok(&b.metrics.output_tokens).mean, 5.0);
        let tpot = ok(&b.metrics.tpot_ms);
        assert!((tpot.median - 5.0).abs() < 1.0, "{tpot:?}");
        let rps = b
            .metrics
            .rates
            .requests_per_s
            .as_ref()
            .unwrap()
            .successful
            .unwrap();
        assert!((rps - 40.0 / 1.275116804999925).abs() < 1e-9);
        assert!(b.metrics.itl_ms.is_none() && b.metrics.schedule_lag_ms.is_none());
        assert!(b
            .warnings
            .iter()
            .any(|w| w.code == "incomplete_not_counted"));
    }

    #[test]
    fn errors_are_counted_by_status_in_seconds_units_and_secrets_never_leave() {
        let secrets = ["sk-test-secret-123".to_owned()];
        let b = folder(&fixture("errors"), &context("N(30,5)/(6,2)", 2, &secrets))
            .unwrap()
            .benchmark;
        // genai-bench's own error_rate says 0; the requests say otherwise.
        assert_eq!(b.requests, RequestTotals::new(34, 0, 16));
        assert_eq!(b.errors.len(), 1);
        assert_eq!(
            (b.errors[0].status_code, b.errors[0].count),
            (Some(500), 16)
        );
        assert!(
            b.errors[0].example.as_deref().unwrap().contains("injected"),
            "{:?}",
            b.errors[0]
        );
        // Seconds in the file, milliseconds in the report.
        let ttft = ok(&b.metrics.ttft_ms);
        assert!(ttft.min > 20.0 && ttft.max < 1000.0, "{ttft:?}");
        let out = ok(&b.metrics.output_tokens);
        assert!(out.min >= 2.0 && out.count == 34);
        let report = serde_json::to_string(&b).unwrap();
        assert!(!report.contains("sk-test-secret-123"));
    }

    #[test]
    fn a_run_where_everything_failed_is_an_all_errored_benchmark() {
        let mut c = context("D(20,5)", 1, &[]);
        c.max_requests = Some(5);
        let b = folder(&fixture("down"), &c).unwrap().benchmark;
        assert_eq!(b.requests, RequestTotals::new(0, 0, 187));
        assert_eq!(b.errors[0].status_code, Some(503));
        assert!(b.errors[0]
            .example
            .as_deref()
            .unwrap()
            .contains("Connection refused"));
        assert!(b.metrics.ttft_ms.is_none(), "absent, not zero");
        assert!(
            b.metrics.rates.requests_per_s.is_none(),
            "run_duration 0: no rate"
        );
        assert!(b
            .warnings
            .iter()
            .any(|w| w.code == "genai_bench_aggregation_failed"));
    }

    #[test]
    fn warmup_and_cooldown_drop_the_ends_of_the_list_as_genai_bench_does() {
        let mut c = context("D(20,5)", 2, &[]);
        c.warmup_ratio = 0.1;
        c.cooldown_ratio = 0.2;
        let b = folder(&fixture("ok"), &c).unwrap().benchmark;
        assert_eq!(b.requests.successful, 40 - 4 - 8);
    }

    /// Found by the property test: a run file claiming an impossible duration panicked when the
    /// window's end was computed.
    #[test]
    fn an_impossible_run_duration_gives_no_rate_instead_of_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for duration in ["1e300", "-5", "0"] {
            std::fs::write(
                dir.path().join("X_time_1s.json"),
                format!(r#"{{"aggregated_metrics": {{"run_duration": {duration}}}, "individual_request_metrics": []}}"#),
            )
            .unwrap();
            let b = folder(dir.path(), &context("D(1,1)", 2, &[]))
                .unwrap()
                .benchmark;
            assert!(b.metrics.rates.requests_per_s.is_none(), "{duration}");
            assert_eq!(b.window.duration_s, 0.0);
        }
    }

    #[test]
    fn a_folder_without_results_or_for_another_concurrency_is_an_error() {
        let empty = tempfile::tempdir().unwrap();
        let error = folder(empty.path(), &context("D(20,5)", 2, &[])).unwrap_err();
        assert!(error.contains("no run file"), "{error}");
        let error = folder(&fixture("ok"), &context("D(20,5)", 4, &[])).unwrap_err();
        assert!(error.contains("concurrency 2, not 4"), "{error}");
    }
}

/// Property tests: whatever JSON genai-bench (or a broken disk) leaves, reading it returns a
/// benchmark or an error, never a panic.
#[cfg(test)]
mod properties {
    use bench_core::config::StrategyKind;
    use proptest::prelude::*;

    use super::{folder, Context, Timestamp};

    fn json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z_]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("aggregated_metrics".to_owned()),
                        Just("individual_request_metrics".to_owned()),
                        Just("_time_unit".to_owned()),
                        Just("run_duration".to_owned()),
                        Just("ttft".to_owned()),
                        Just("error_code".to_owned()),
                        Just("num_output_tokens".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn any_run_file_parses_or_fails_cleanly(value in json(), ratio in 0.0f64..1.0) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("X_time_1s.json"), value.to_string()).unwrap();
            let point = bench_subprocess::Point {
                index: 0,
                of: 1,
                strategy: bench_core::config::Strategy {
                    kind: StrategyKind::Concurrent,
                    streams: Some(1),
                    target_rate_per_s: None,
                    max_concurrency: None,
                    burstiness: None,
                    speedup: None,
                },
                workload: "D(1,1)".to_owned(),
            };
            let context = Context {
                point: &point,
                started: Timestamp::from_unix_micros(0),
                warmup_ratio: ratio,
                cooldown_ratio: 1.0 - ratio,
                max_requests: None,
                max_seconds: None,
                secrets: &[],
                live: None,
            };
            let _ = folder(dir.path(), &context);
        }
    }
}
