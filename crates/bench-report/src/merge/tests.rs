//! A run's requests split at random between two shards: the merge of the shards' reports
//! must be the report of the whole (distributions exactly, rates over the union window), and
//! everything that is not one run must be refused with a message naming it.

use std::time::Duration;

use bench_core::config::{ShardConfig, StrategyKind};
use bench_core::schema::{
    Concurrency, Distribution, ErrorCount, Rates, Report, RequestTotals, ShardRun, StatusSplit,
    StopReason, Timestamp, TimestampSource, Timestamps, Transport, Warning, Window,
};
use bench_core::stats::{Outcome, SplitHistogram};
use proptest::prelude::*;

use super::{merge, ShardReport};

const FIXTURE: &str = include_str!("../../fixtures/report-sweep.json");

/// One request: its outcome and its figures.
#[derive(Debug, Clone, Copy)]
struct Request {
    ok: bool,
    ttft_ms: f64,
    latency_ms: f64,
    prompt_tokens: u32,
    output_tokens: u32,
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::bool::weighted(0.9),
        0.01f64..5_000.0,
        0.0f64..60_000.0,
        1u32..4_096,
        0u32..2_048,
    )
        .prop_map(
            |(ok, ttft_ms, extra, prompt_tokens, output_tokens)| Request {
                ok,
                ttft_ms,
                latency_ms: ttft_ms + extra,
                prompt_tokens,
                output_tokens,
            },
        )
}

fn base() -> Report {
    let mut report: Report = serde_json::from_str(FIXTURE).unwrap();
    // The constant-rate benchmark as the template: profiles that can be sharded.
    let mut b = report.benchmarks[2].clone();
    b.index = 0;
    report.benchmarks = vec![b];
    report.warnings.clear();
    report
}

fn split(requests: &[Request], value: fn(&Request) -> f64) -> Option<StatusSplit<Distribution>> {
    let mut h = SplitHistogram::new(0.001);
    for r in requests {
        let outcome = if r.ok {
            Outcome::Successful
        } else {
            Outcome::Errored
        };
        h.record(outcome, value(r)).unwrap();
    }
    h.summary()
}

fn counts(requests: &[Request], value: fn(&Request) -> f64) -> Option<StatusSplit<Distribution>> {
    let mut h = SplitHistogram::new(1.0);
    for r in requests {
        let outcome = if r.ok {
            Outcome::Successful
        } else {
            Outcome::Errored
        };
        h.record(outcome, value(r)).unwrap();
    }
    h.summary()
}

/// The report of `requests` measured over `start .. start + duration_s`, as one shard's
/// (`shard = Some((index, count))`) or the whole run's.
fn report_of(
    requests: &[Request],
    start: Timestamp,
    duration_s: f64,
    concurrency: Concurrency,
    shard: Option<(u32, u32)>,
) -> Report {
    let mut report = base();
    let b = &mut report.benchmarks[0];
    let end = start.plus(Duration::from_secs_f64(duration_s));
    b.window = Window {
        start,
        end,
        duration_s: end.seconds_since(start),
    };
    let duration_s = b.window.duration_s;
    let ok = requests.iter().filter(|r| r.ok).count() as u64;
    b.requests = RequestTotals::new(ok, 0, requests.len() as u64 - ok);
    let rate = |pick: &dyn Fn(&Request) -> f64| {
        let sum = |ok: Option<bool>| {
            requests
                .iter()
                .filter(|r| ok.is_none_or(|o| r.ok == o))
                .map(pick)
                .sum::<f64>()
                / duration_s
        };
        Some(StatusSplit {
            successful: Some(sum(Some(true))),
            incomplete: Some(0.0),
            errored: Some(sum(Some(false))),
            total: Some(sum(None)),
        })
    };
    let empty = requests.is_empty();
    let m = &mut b.metrics;
    m.ttft_ms = (!empty).then(|| split(requests, |r| r.ttft_ms)).flatten();
    m.request_latency_ms = (!empty)
        .then(|| split(requests, |r| r.latency_ms))
        .flatten();
    m.itl_ms = (!empty)
        .then(|| split(requests, |r| r.latency_ms / 7.0))
        .flatten();
    m.tpot_ms = m.itl_ms.clone();
    m.decode_time_ms = (!empty)
        .then(|| split(requests, |r| r.latency_ms - r.ttft_ms))
        .flatten();
    m.schedule_lag_ms = (!empty)
        .then(|| split(requests, |r| r.ttft_ms / 100.0))
        .flatten();
    m.latency_from_intended_send_ms = m.request_latency_ms.clone();
    m.prompt_tokens = (!empty)
        .then(|| counts(requests, |r| f64::from(r.prompt_tokens)))
        .flatten();
    m.output_tokens = (!empty)
        .then(|| counts(requests, |r| f64::from(r.output_tokens)))
        .flatten();
    m.rates = Rates {
        requests_per_s: rate(&|_| 1.0),
        output_tokens_per_s: rate(&|r| f64::from(r.output_tokens)),
        total_tokens_per_s: rate(&|r| f64::from(r.output_tokens + r.prompt_tokens)),
        concurrency: Some(concurrency),
    };
    b.timestamps = Some(Timestamps {
        source: TimestampSource::Kernel,
        client_delay_ms: split(requests, |r| r.ttft_ms / 1000.0).and_then(|s| s.total),
        coalesced_share: Some(0.0),
        reads_without_kernel_time: requests.len() as u64,
    });
    b.transport = Some(Transport {
        http_versions: [("HTTP/1.1".to_owned(), requests.len() as u64)].into(),
        connections_opened: 3,
        connection_setup_ms: split(requests, |r| r.ttft_ms / 50.0).and_then(|s| s.total),
        scheme: "http".to_owned(),
        tls_verified: None,
        proxy: None,
    });
    b.strategy.target_rate_per_s = Some(10.0);
    if let Some((index, count)) = shard {
        report.shard = Some(ShardRun {
            run_id: "run-test".to_owned(),
            index,
            count,
            start_at: None,
            clock: None,
        });
        report.config.shard = Some(ShardConfig {
            index: Some(index),
            count,
            start_at: None,
            run_id: None,
        });
        report.config.outputs[0].path = format!("shard-{index}.json");
    }
    report
}

fn shard(source: &str, report: Report) -> ShardReport {
    ShardReport {
        source: source.to_owned(),
        report,
    }
}

fn close(a: f64, b: f64, what: &str) {
    let tolerance = 1e-9 * a.abs().max(b.abs()) + 1e-9;
    assert!(
        (a - b).abs() <= tolerance,
        "{what}: merged {a} vs whole {b}"
    );
}

fn same_distribution(merged: Option<&Distribution>, whole: Option<&Distribution>, what: &str) {
    let (Some(m), Some(w)) = (merged, whole) else {
        assert_eq!(
            merged.is_none(),
            whole.is_none(),
            "{what}: present in one only"
        );
        return;
    };
    assert_eq!(
        (m.count, m.min, m.max, m.median, m.mode),
        (w.count, w.min, w.max, w.median, w.mode),
        "{what}"
    );
    assert_eq!(m.percentiles, w.percentiles, "{what}");
    // Not the encoded bytes: an auto-resizing histogram's header records how far it grew,
    // which depends on the order values came in; its buckets are what the figures come from.
    close(m.sum, w.sum, what);
    close(m.mean, w.mean, what);
    // The variance of values of order 1e4 carries float error of order 1e-12 of its square.
    close(m.stdev, w.stdev, what);
    let _ = (m.variance, w.variance);
}

fn same_split(
    merged: &Option<StatusSplit<Distribution>>,
    whole: &Option<StatusSplit<Distribution>>,
    what: &str,
) {
    let (Some(m), Some(w)) = (merged, whole) else {
        assert_eq!(
            merged.is_none(),
            whole.is_none(),
            "{what}: present in one only"
        );
        return;
    };
    same_distribution(
        m.successful.as_ref(),
        w.successful.as_ref(),
        &format!("{what}.successful"),
    );
    same_distribution(
        m.incomplete.as_ref(),
        w.incomplete.as_ref(),
        &format!("{what}.incomplete"),
    );
    same_distribution(
        m.errored.as_ref(),
        w.errored.as_ref(),
        &format!("{what}.errored"),
    );
    same_distribution(m.total.as_ref(), w.total.as_ref(), &format!("{what}.total"));
}

fn same_rates(merged: &Option<StatusSplit<f64>>, whole: &Option<StatusSplit<f64>>, what: &str) {
    let (m, w) = (merged.as_ref().unwrap(), whole.as_ref().unwrap());
    for (a, b, part) in [
        (m.successful, w.successful, "successful"),
        (m.errored, w.errored, "errored"),
        (m.total, w.total, "total"),
    ] {
        close(a.unwrap(), b.unwrap(), &format!("{what}.{part}"));
    }
}

/// Cases of the property below, fixed: each case builds and merges a dozen histograms (about
/// 0.3 s in a debug build), so CI's `PROPTEST_CASES` for the cheap properties would make it
/// run for ten minutes.
const MERGE_CASES: u32 = 48;

/// Two halves of one run, merged, are the run.
#[test]
fn merging_two_halves_of_a_run_gives_the_runs_figures() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: MERGE_CASES,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop::collection::vec((request(), any::<bool>()), 2..400),
        (0u64..5_000, 0u64..5_000),
        (1_000u64..120_000, 1_000u64..120_000),
        (0.0f64..64.0, 0.0f64..64.0),
        (0u64..128, 0u64..128),
    );
    let result = runner.run(
        &strategy,
        |(requests, offsets_ms, durations_ms, means, maxima)| {
            let all: Vec<Request> = requests.iter().map(|(r, _)| *r).collect();
            let left: Vec<Request> = requests
                .iter()
                .filter(|(_, l)| *l)
                .map(|(r, _)| *r)
                .collect();
            let right: Vec<Request> = requests
                .iter()
                .filter(|(_, l)| !*l)
                .map(|(r, _)| *r)
                .collect();
            let t0 = Timestamp::parse("2026-11-29T12:00:00Z").unwrap();
            let start_a = t0.plus(Duration::from_millis(offsets_ms.0));
            let start_b = t0.plus(Duration::from_millis(offsets_ms.1));
            let (dur_a, dur_b) = (durations_ms.0 as f64 / 1e3, durations_ms.1 as f64 / 1e3);
            let conc_a = Concurrency {
                mean: means.0,
                max: maxima.0,
            };
            let conc_b = Concurrency {
                mean: means.1,
                max: maxima.1,
            };
            let a = report_of(&left, start_a, dur_a, conc_a, Some((0, 2)));
            let b = report_of(&right, start_b, dur_b, conc_b, Some((1, 2)));

            // The whole run over the union window.
            let start = start_a.min(start_b);
            let end = a.benchmarks[0].window.end.max(b.benchmarks[0].window.end);
            let union_s = end.seconds_since(start);
            let request_seconds = means.0 * a.benchmarks[0].window.duration_s
                + means.1 * b.benchmarks[0].window.duration_s;
            let whole = report_of(
                &all,
                start,
                union_s,
                Concurrency {
                    mean: request_seconds / union_s,
                    max: maxima.0 + maxima.1,
                },
                None,
            );

            // Given in either order.
            let merged = merge(vec![shard("b.json", b), shard("a.json", a)]).unwrap();
            let (m, w) = (&merged.benchmarks[0], &whole.benchmarks[0]);
            prop_assert_eq!(m.requests, w.requests);
            prop_assert_eq!(m.window.start, w.window.start);
            prop_assert_eq!(m.window.end, w.window.end);
            close(m.window.duration_s, w.window.duration_s, "window");
            for (what, mm, ww) in [
                ("ttft_ms", &m.metrics.ttft_ms, &w.metrics.ttft_ms),
                (
                    "request_latency_ms",
                    &m.metrics.request_latency_ms,
                    &w.metrics.request_latency_ms,
                ),
                ("itl_ms", &m.metrics.itl_ms, &w.metrics.itl_ms),
                ("tpot_ms", &m.metrics.tpot_ms, &w.metrics.tpot_ms),
                (
                    "decode_time_ms",
                    &m.metrics.decode_time_ms,
                    &w.metrics.decode_time_ms,
                ),
                (
                    "schedule_lag_ms",
                    &m.metrics.schedule_lag_ms,
                    &w.metrics.schedule_lag_ms,
                ),
                (
                    "latency_from_intended_send_ms",
                    &m.metrics.latency_from_intended_send_ms,
                    &w.metrics.latency_from_intended_send_ms,
                ),
                (
                    "prompt_tokens",
                    &m.metrics.prompt_tokens,
                    &w.metrics.prompt_tokens,
                ),
                (
                    "output_tokens",
                    &m.metrics.output_tokens,
                    &w.metrics.output_tokens,
                ),
            ] {
                same_split(mm, ww, what);
            }
            let (mt, wt) = (
                m.timestamps.as_ref().unwrap(),
                w.timestamps.as_ref().unwrap(),
            );
            same_distribution(
                mt.client_delay_ms.as_ref(),
                wt.client_delay_ms.as_ref(),
                "client_delay_ms",
            );
            prop_assert_eq!(mt.reads_without_kernel_time, wt.reads_without_kernel_time);
            let (mx, wx) = (m.transport.as_ref().unwrap(), w.transport.as_ref().unwrap());
            same_distribution(
                mx.connection_setup_ms.as_ref(),
                wx.connection_setup_ms.as_ref(),
                "connection_setup_ms",
            );
            prop_assert_eq!(&mx.http_versions, &wx.http_versions);
            prop_assert_eq!(mx.connections_opened, 6);

            same_rates(
                &m.metrics.rates.requests_per_s,
                &w.metrics.rates.requests_per_s,
                "requests_per_s",
            );
            same_rates(
                &m.metrics.rates.output_tokens_per_s,
                &w.metrics.rates.output_tokens_per_s,
                "output_tokens_per_s",
            );
            same_rates(
                &m.metrics.rates.total_tokens_per_s,
                &w.metrics.rates.total_tokens_per_s,
                "total_tokens_per_s",
            );
            let (mc, wc) = (
                m.metrics.rates.concurrency.unwrap(),
                w.metrics.rates.concurrency.unwrap(),
            );
            close(mc.mean, wc.mean, "concurrency.mean");
            prop_assert_eq!(mc.max, wc.max);
            prop_assert_eq!(m.strategy.target_rate_per_s, Some(20.0));

            let info = merged.merged.as_ref().unwrap();
            prop_assert_eq!(info.count, 2);
            prop_assert!(info.missing.is_empty());
            prop_assert_eq!(
                info.shards
                    .iter()
                    .map(|s| (s.index, s.source.as_str()))
                    .collect::<Vec<_>>(),
                vec![(0, "a.json"), (1, "b.json")]
            );
            prop_assert!(merged.shard.is_none());
            prop_assert_eq!(merged.config.shard.as_ref().unwrap().index, None);
            prop_assert_eq!(
                merged.started_at,
                start_a.min(start_b).min(merged.started_at)
            );
            Ok(())
        },
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn pair() -> (Report, Report) {
    let requests: Vec<Request> = (0..40)
        .map(|i| Request {
            ok: i % 7 != 0,
            ttft_ms: 10.0 + f64::from(i),
            latency_ms: 100.0 + 3.0 * f64::from(i),
            prompt_tokens: 100 + i,
            output_tokens: 20 + i,
        })
        .collect();
    let t0 = Timestamp::parse("2026-11-29T12:00:00Z").unwrap();
    let c = Concurrency { mean: 2.0, max: 3 };
    (
        report_of(&requests[..25], t0, 10.0, c, Some((0, 2))),
        report_of(&requests[25..], t0, 10.0, c, Some((1, 2))),
    )
}

fn refused(a: Report, b: Report) -> String {
    merge(vec![shard("a.json", a), shard("b.json", b)])
        .unwrap_err()
        .to_string()
}

#[test]
fn a_whole_runs_report_is_refused() {
    let (a, mut b) = pair();
    b.shard = None;
    assert_eq!(
        refused(a, b),
        "b.json is not a shard's report (no `shard` block); run with --shard I/N"
    );
}

#[test]
fn shards_of_different_configs_are_refused_naming_the_key() {
    let (a, mut b) = pair();
    b.config.seed += 1;
    let message = refused(a.clone(), b);
    assert!(
        message.starts_with(
            "b.json and a.json are not shards of one run: their configs differ in `seed`"
        ),
        "{message}"
    );
    let (_, mut b) = pair();
    b.config.profile.kind = bench_core::config::ProfileKind::Poisson;
    assert!(refused(a.clone(), b).contains("differ in `profile`"));
    // `shard.index` and the output files differ between shards by design.
    let (a, b) = pair();
    assert_ne!(a.config.outputs, b.config.outputs);
    assert!(merge(vec![shard("a.json", a), shard("b.json", b)]).is_ok());
}

#[test]
fn shards_of_different_runs_or_counts_or_engines_are_refused() {
    let (a, mut b) = pair();
    b.shard.as_mut().unwrap().run_id = "run-other".to_owned();
    assert_eq!(
        refused(a, b),
        "b.json belongs to run `run-other` but a.json to run `run-test`; merge only the shards of one run"
    );
    let (a, mut b) = pair();
    b.shard.as_mut().unwrap().count = 3;
    assert!(refused(a, b).contains("b.json is shard 1 of 3 but a.json is of 2"));
    let (a, mut b) = pair();
    b.engine = "guidellm".to_owned();
    assert!(
        refused(a, b).contains("b.json was measured by engine `guidellm` but a.json by `native`")
    );
}

#[test]
fn one_shard_given_twice_is_refused() {
    let (a, _) = pair();
    assert_eq!(
        refused(a.clone(), a),
        "shard 0 is given twice: a.json and b.json; give each shard's report once"
    );
}

#[test]
fn a_distribution_without_its_histogram_is_refused_never_approximated() {
    let (a, mut b) = pair();
    let ttft = b.benchmarks[0].metrics.ttft_ms.as_mut().unwrap();
    ttft.successful.as_mut().unwrap().histogram = None;
    assert_eq!(
        refused(a, b),
        "`metrics.ttft_ms.successful` of benchmark 1 in b.json carries no histogram, so it cannot be merged exactly (only reports by the native engine carry them); merge shards of the native engine"
    );
}

#[test]
fn different_benchmarks_under_one_number_are_refused() {
    let (a, mut b) = pair();
    b.benchmarks[0].workload = "D(1,1)".to_owned();
    let message = refused(a, b);
    assert!(
        message.starts_with("benchmark 1: b.json ran `constant` on `D(1,1)` but a.json ran `constant` on `prompt_tokens=128,output_tokens=24`"),
        "{message}"
    );
    let (a, mut b) = pair();
    b.benchmarks[0].strategy.kind = StrategyKind::Poisson;
    assert!(refused(a, b).contains("ran `poisson`"));
}

#[test]
fn a_missing_shard_is_merged_but_loud() {
    let (mut a, mut b) = pair();
    for r in [&mut a, &mut b] {
        r.shard.as_mut().unwrap().count = 3;
        r.config.shard.as_mut().unwrap().count = 3;
    }
    let merged = merge(vec![shard("a.json", a), shard("b.json", b)]).unwrap();
    assert_eq!(merged.merged.as_ref().unwrap().missing, vec![2]);
    let warning = merged
        .warnings
        .iter()
        .find(|w| w.code == "shards_missing")
        .expect("a shards_missing warning");
    assert!(
        warning
            .message
            .contains("2 of 3 shards were merged: shard(s) 2 missing"),
        "{}",
        warning.message
    );
}

#[test]
fn warnings_say_their_shard_and_errors_and_stops_are_joined() {
    let (mut a, mut b) = pair();
    a.warnings.push(Warning {
        code: "engine_version".to_owned(),
        message: "untested".to_owned(),
    });
    let error = |count, example: Option<&str>| ErrorCount {
        kind: "http_status".to_owned(),
        status_code: Some(503),
        count,
        example: example.map(str::to_owned),
    };
    a.benchmarks[0].errors = vec![error(2, Some("first"))];
    b.benchmarks[0].errors = vec![
        error(3, Some("second")),
        ErrorCount {
            kind: "timeout".to_owned(),
            status_code: None,
            count: 1,
            example: None,
        },
    ];
    b.benchmarks[0].stopped_by = Some(StopReason::MaxRequests);
    a.interrupted = true;
    let merged = merge(vec![shard("a.json", a), shard("b.json", b)]).unwrap();
    assert!(merged.interrupted);
    assert_eq!(merged.warnings[0].message, "shard 0: untested");
    let bench = &merged.benchmarks[0];
    assert_eq!(bench.errors.len(), 2);
    assert_eq!(
        (bench.errors[0].count, bench.errors[0].example.as_deref()),
        (5, Some("first"))
    );
    assert_eq!(bench.stopped_by, Some(StopReason::MaxSeconds));
    let client_bound: Vec<&str> = bench
        .warnings
        .iter()
        .filter(|w| w.code == "client_bound")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(client_bound.len(), 2);
    assert!(client_bound[1].starts_with("shard 1: the client"));
    assert!(bench
        .warnings
        .iter()
        .any(|w| w.code == "stopped_by_differs" && w.message.contains("shard 0 by max_seconds")));
}

#[test]
fn the_merged_report_renders_in_every_format() {
    let (a, b) = pair();
    let merged = merge(vec![shard("a.json", a), shard("b.json", b)]).unwrap();
    for format in [
        bench_core::config::OutputFormat::Json,
        bench_core::config::OutputFormat::Yaml,
        bench_core::config::OutputFormat::Csv,
        bench_core::config::OutputFormat::Html,
        bench_core::config::OutputFormat::Autotuner,
    ] {
        crate::render::render(&merged, format).unwrap();
    }
    let html = crate::render::render(&merged, bench_core::config::OutputFormat::Html).unwrap();
    assert!(html.contains("merged from 2 of 2 shards of run run-test"));
    let table = crate::render::summary_table(&merged);
    assert!(table.contains("merged from 2 of 2 shards"), "{table}");
    // And it reads back as a report.
    let json = crate::render::render(&merged, bench_core::config::OutputFormat::Json).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.merged, merged.merged);
}

#[test]
fn sessions_goodput_drain_and_the_server_merge_as_documented() {
    use bench_core::config::ServerMetricsScrape;
    use bench_core::schema::{
        Drain, DrainOutcome, Goodput, ScrapeStatus, ServerMetrics, Sessions, TokenCheck,
        TurnMetrics,
    };
    use bench_core::stats::Histogram;

    let dist = |values: &[f64]| {
        let mut h = Histogram::for_counts();
        values.iter().for_each(|v| h.record(*v).unwrap());
        h.summary()
    };
    let turn = |turn: u32, requests: u64, tokens: &[f64]| TurnMetrics {
        turn,
        and_later: false,
        requests,
        ttft_ms: None,
        request_latency_ms: None,
        prompt_tokens: dist(tokens),
        cached_prompt_tokens: None,
        output_tokens: None,
    };
    let server = |index: u32, client_output_tokens: u64| ServerMetrics {
        url: format!("http://server/metrics#{index}"),
        status: ScrapeStatus::Scraped,
        naming: Some("vllm".to_owned()),
        interval_s: 1.0,
        scrapes: 10,
        failed_scrapes: 0,
        last_error: None,
        started_at: Timestamp::parse("2026-11-29T12:00:00Z").unwrap(),
        window_s: 9.0,
        running: None,
        waiting: None,
        kv_cache_usage: None,
        prompt_tokens: Some(5000.0),
        generation_tokens: Some(1000.0),
        preemptions: None,
        prefix_cache_hit_rate: None,
        ttft_ms: None,
        itl_ms: None,
        e2e_latency_ms: None,
        queue_time_ms: None,
        series: Vec::new(),
        unmapped: Vec::new(),
        token_check: Some(TokenCheck {
            client_output_tokens,
            server_generation_tokens: Some(1000.0),
            client_prompt_tokens: 100,
            server_prompt_tokens: Some(5000.0),
            relative_difference: Some(1.0),
            agrees: Some(false),
        }),
        cpu_ms_per_scrape: None,
    };
    let (mut a, mut b) = pair();
    for r in [&mut a, &mut b] {
        r.config.target.metrics = Some(ServerMetricsScrape::default());
    }
    let (ba, bb) = (&mut a.benchmarks[0], &mut b.benchmarks[0]);
    ba.sessions = Some(Sessions {
        started: 3,
        completed: 2,
        partial: 1,
        turns_per_session: dist(&[2.0, 3.0, 1.0]),
        duration_s: None,
        output_tokens: None,
        by_turn: vec![turn(1, 3, &[10.0, 11.0, 12.0]), turn(2, 2, &[30.0, 31.0])],
    });
    bb.sessions = Some(Sessions {
        started: 1,
        completed: 1,
        partial: 0,
        turns_per_session: dist(&[3.0]),
        duration_s: None,
        output_tokens: None,
        by_turn: vec![turn(1, 1, &[9.0]), turn(2, 1, &[29.0]), turn(3, 1, &[50.0])],
    });
    ba.goodput = Some(Goodput {
        judged: 10,
        met: 9,
        slo_attainment: 0.9,
        requests_per_s: 0.9,
    });
    bb.goodput = Some(Goodput {
        judged: 10,
        met: 5,
        slo_attainment: 0.5,
        requests_per_s: 0.5,
    });
    ba.drain = Some(Drain {
        seconds: 1.0,
        outcome: DrainOutcome::Idle,
    });
    bb.drain = Some(Drain {
        seconds: 0.5,
        outcome: DrainOutcome::TimedOut,
    });
    ba.server = Some(server(0, 600));
    bb.server = Some(server(1, 420));

    let merged = merge(vec![shard("b.json", b), shard("a.json", a)]).unwrap();
    let m = &merged.benchmarks[0];
    let s = m.sessions.as_ref().unwrap();
    assert_eq!((s.started, s.completed, s.partial), (4, 3, 1));
    assert_eq!(s.turns_per_session.as_ref().unwrap().count, 4);
    let turns: Vec<(u32, u64, u64)> = s
        .by_turn
        .iter()
        .map(|t| (t.turn, t.requests, t.prompt_tokens.as_ref().unwrap().count))
        .collect();
    assert_eq!(turns, vec![(1, 4, 4), (2, 3, 3), (3, 1, 1)]);
    assert_eq!(s.by_turn[0].prompt_tokens.as_ref().unwrap().min, 9.0);

    let g = m.goodput.unwrap();
    assert_eq!((g.judged, g.met, g.slo_attainment), (20, 14, 0.7));
    close(g.requests_per_s, 1.4, "goodput over a shared 10 s window");
    assert_eq!(
        m.drain,
        Some(Drain {
            seconds: 1.0,
            outcome: DrainOutcome::TimedOut
        })
    );

    // Shard 0's scrape, with every shard's client tokens against the server's counters.
    let server = m.server.as_ref().unwrap();
    assert_eq!(server.url, "http://server/metrics#0");
    let check = server.token_check.unwrap();
    assert_eq!(check.client_output_tokens, 1020);
    assert_eq!(check.client_prompt_tokens, 200);
    close(
        check.relative_difference.unwrap(),
        20.0 / 1020.0,
        "relative_difference",
    );
    assert_eq!(check.agrees, Some(true));
}
