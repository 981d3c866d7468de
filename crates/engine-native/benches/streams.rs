//! `cargo xtask bench streams`: closed-loop streams, the client's timestamps against the
//! server's.
//!
//! The native engine runs concurrent (closed-loop) streams of 100-token responses against the
//! mock (TTFT 50 ms, ITL 10 ms, every token's write time recorded) in a child process, at 1,
//! 10, 100, 500 and 1,000 streams (`--quick`: 1, 10 and 100), each level long enough for at
//! least two requests per stream. Each request of the engine's `request_records` is joined by
//! its `x-request-id` with the mock's ground truth, whose times are when a write call that
//! handed the bytes to the kernel returned. Per level:
//! - the client's first-token time minus the server's write of that token (median, p99), and
//!   the server's TTFT (first write minus arrival) for reference;
//! - the inter-token gaps' p99 and standard deviation as the client measured them (the
//!   report's `itl_ms`) and as the mock wrote them;
//! - the report's `timestamps` block when the engine writes one (read from the JSON, so the
//!   benchmark runs before and after the engine has it; "n/a" when absent);
//! - the client's CPU time per request and peak RSS (the mock's are in its own process), and
//!   the mock's CPU time per token written.

mod support;

use std::collections::HashMap;
use std::path::Path;

use bench_core::config::ConfigFormat;
use bench_core::schema::Benchmark;
use bench_core::{registry, Config, RunContext};
use bench_mock::{MockConfig, RequestRecord};
use serde_json::Value;

use crate::support::{ground_truth, now_unix_us, peak_rss_kib};

// Link the engine so its registration is present.
use engine_native as _;

/// Output tokens per request.
const TOKENS: u32 = 100;

/// The mock's constant time to first token and inter-token gap, in microseconds.
const TTFT_US: i64 = 50_000;
const ITL_US: i64 = 10_000;

/// Descriptors each process needs beside one per stream (runtime, timer, files, listener).
const RESERVED_FDS: u64 = 64;

/// One load level: `streams` closed-loop streams, `per_stream` requests each.
#[derive(Debug, Clone, Copy)]
struct Level {
    streams: u32,
    per_stream: u32,
}

const FULL: [Level; 5] = [
    Level {
        streams: 1,
        per_stream: 10,
    },
    Level {
        streams: 10,
        per_stream: 4,
    },
    Level {
        streams: 100,
        per_stream: 2,
    },
    Level {
        streams: 500,
        per_stream: 2,
    },
    Level {
        streams: 1000,
        per_stream: 2,
    },
];

const QUICK: [Level; 3] = [
    Level {
        streams: 1,
        per_stream: 3,
    },
    Level {
        streams: 10,
        per_stream: 2,
    },
    Level {
        streams: 100,
        per_stream: 2,
    },
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve-mock") {
        support::serve_mock_with(MockConfig {
            ttft_ms: TTFT_US as f64 / 1000.0,
            itl_ms: ITL_US as f64 / 1000.0,
            max_batch: 1_000_000,
            record_limit: 10_000_000,
            token_times: true,
            ..MockConfig::default()
        });
        return;
    }
    let levels: &[Level] = if args.iter().any(|a| a == "--quick") {
        &QUICK
    } else {
        &FULL
    };
    // Before the mock starts, so that the child inherits the raised limit.
    let open_files = support::raise_open_files();
    let (mut child, url) = support::spawn_mock();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("native-client")
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("llm-bench-streams-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");

    println!("closed-loop streams: {TOKENS}-token responses, mock TTFT 50 ms, ITL 10 ms (mock in a child process, open-file limit {open_files})");
    println!("  first d: client first-token time - server's write of it (ms); server TTFT: first write - arrival, p50 (ms)");
    println!("  ITL: p99 and stdev of the gaps between tokens, as the client measured them (report) and as the mock wrote them (ms)");
    println!("  srv late: the mock's token writes minus their deadlines, p50/p99 (ms); mock CPU per token written (us)");
    println!("  delay, coalesced, source: the report's timestamps block (client delay p50/p99 ms, share of coalesced content events)");
    println!(
        "{:>7} {:>6} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>10} {:>7} {:>8}  source",
        "streams",
        "reqs",
        "first p50",
        "first p99",
        "srv TTFT",
        "ITL99 cl",
        "ITL99 srv",
        "ITLsd cl",
        "ITLsd srv",
        "late p50",
        "late p99",
        "delay p50",
        "delay p99",
        "coalesced",
        "CPU us/req",
        "RSS MiB",
        "mock/tok",
    );
    for &level in levels {
        let need = u64::from(level.streams) + RESERVED_FDS;
        if need > open_files {
            println!(
                "{:>7} skipped: needs {need} open files per process, the limit is {open_files}",
                level.streams
            );
            continue;
        }
        let records_path = dir.join(format!("records-{}.jsonl", level.streams));
        let requests = level.streams * level.per_stream;
        let text = format!(
            "benchmark_engine = \"native\"\n[target]\nurl = \"{url}\"\nmodel = \"m\"\n\
             [profile]\nkind = \"concurrent\"\nstreams = [{}]\n\
             [constraints]\nmax_requests = {requests}\nmax_seconds = 120\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = {TOKENS}\napproximate = true\n\
             [engines.native]\nrequest_records = {:?}\n",
            level.streams,
            records_path.display().to_string()
        );
        let config = Config::load(&text, ConfigFormat::Toml, &[]).expect("config");
        let engine = registry::engine_for(&config).expect("engine");
        // Reset the peak-RSS mark so each level reports its own peak (Linux >= 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let wall_start = now_unix_us();
        let cpu_before = support::process_cpu_time();
        let mock_cpu_before = support::threads_cpu_time(child.id());
        let report = runtime
            .block_on(engine.run(&config, &RunContext::default()))
            .expect("run");
        let cpu = support::process_cpu_time() - cpu_before;
        let mock_cpu = support::threads_cpu_time(child.id()) - mock_cpu_before;
        let rss_mib = peak_rss_kib() as f64 / 1024.0;
        let b = &report.benchmarks[0];
        let records = client_records(&records_path);
        let truth = truth_by_id(&url, wall_start);
        let joined = join(&records, &truth);
        let tokens: u64 = truth.values().map(|t| u64::from(t.tokens_sent)).sum();
        let stamps = Stamps::of(b);
        let client_itl = b
            .metrics
            .itl_ms
            .as_ref()
            .and_then(|s| s.successful.as_ref());
        println!(
            "{:>7} {:>6} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>10.0} {:>7.1} {:>8.1}  {}",
            level.streams,
            b.requests.successful,
            ms(percentile(&joined.first_delta_ms, 0.5)),
            ms(percentile(&joined.first_delta_ms, 0.99)),
            ms(percentile(&joined.server_ttft_ms, 0.5)),
            ms(client_itl.map(|d| d.percentiles.p99)),
            ms(percentile(&joined.server_gaps_ms, 0.99)),
            ms(client_itl.map(|d| d.stdev)),
            ms(stdev(&joined.server_gaps_ms)),
            ms(percentile(&joined.server_late_ms, 0.5)),
            ms(percentile(&joined.server_late_ms, 0.99)),
            ms(stamps.delay_p50),
            ms(stamps.delay_p99),
            stamps
                .coalesced
                .map_or("n/a".to_owned(), |s| format!("{:.1} %", s * 100.0)),
            cpu / b.requests.successful.max(1) as f64 * 1e6,
            rss_mib,
            mock_cpu / tokens.max(1) as f64 * 1e6,
            stamps.source,
        );
        let unmatched = records.len() - joined.matched;
        if unmatched > 0 || b.requests.errored > 0 || b.requests.incomplete > 0 {
            println!(
                "        ({} errored, {} incomplete, {unmatched} client records without a ground-truth record)",
                b.requests.errored, b.requests.incomplete
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(child.stdin.take());
    let _ = child.wait();
}

/// The fields of a `request_records` line this benchmark reads.
#[derive(Debug, serde::Deserialize)]
struct ClientRecord {
    request_id: String,
    outcome: String,
    first_token_unix_us: Option<i64>,
}

fn client_records(path: &Path) -> Vec<ClientRecord> {
    std::fs::read_to_string(path)
        .expect("request records")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The mock's records of requests that arrived since `since_unix_us`, by request id.
fn truth_by_id(url: &str, since_unix_us: i64) -> HashMap<String, RequestRecord> {
    ground_truth(url, since_unix_us)
        .into_iter()
        .filter_map(|r| Some((r.request_id.clone()?, r)))
        .collect()
}

/// Successful requests seen from both ends.
#[derive(Debug, Default)]
struct Joined {
    matched: usize,
    first_delta_ms: Vec<f64>,
    server_ttft_ms: Vec<f64>,
    /// Gaps between consecutive token writes, pooled over requests.
    server_gaps_ms: Vec<f64>,
    /// Each token's write minus its deadline (admission + TTFT + k ITL: constant here).
    server_late_ms: Vec<f64>,
}

fn join(records: &[ClientRecord], truth: &HashMap<String, RequestRecord>) -> Joined {
    let mut joined = Joined::default();
    for record in records {
        let Some(server) = truth.get(&record.request_id) else {
            continue;
        };
        joined.matched += 1;
        if record.outcome != "successful" {
            continue;
        }
        if let (Some(client), Some(server_first)) =
            (record.first_token_unix_us, server.first_token_unix_us)
        {
            joined
                .first_delta_ms
                .push((client - server_first) as f64 / 1000.0);
            joined
                .server_ttft_ms
                .push((server_first - server.arrival_unix_us) as f64 / 1000.0);
        }
        if let Some(times) = &server.token_times_unix_us {
            joined
                .server_gaps_ms
                .extend(times.windows(2).map(|w| (w[1] - w[0]) as f64 / 1000.0));
            if let Some(admitted) = server.admitted_unix_us {
                let first = admitted + TTFT_US;
                joined.server_late_ms.extend(
                    (0..)
                        .zip(times)
                        .map(|(k, at)| (at - first - k * ITL_US) as f64 / 1000.0),
                );
            }
        }
    }
    joined
}

/// The report's `timestamps` block, read from its JSON so that this compiles whether or not
/// the schema has it yet.
#[derive(Debug)]
struct Stamps {
    source: String,
    delay_p50: Option<f64>,
    delay_p99: Option<f64>,
    coalesced: Option<f64>,
}

impl Stamps {
    fn of(benchmark: &Benchmark) -> Self {
        let value = serde_json::to_value(benchmark).unwrap_or(Value::Null);
        let block = value.get("timestamps").filter(|v| !v.is_null());
        let field = |name: &str| block.and_then(|b| b.get(name)).filter(|v| !v.is_null());
        let delay = |p: &str| {
            field("client_delay_ms")
                .and_then(|d| d.pointer(&format!("/percentiles/{p}")))
                .and_then(Value::as_f64)
        };
        let source = match (
            field("source").and_then(Value::as_str),
            field("reads_without_kernel_time").and_then(Value::as_u64),
        ) {
            (None, _) => "n/a".to_owned(),
            (Some(source), Some(missing)) if missing > 0 => {
                format!("{source} ({missing} reads without kernel time)")
            }
            (Some(source), _) => source.to_owned(),
        };
        Self {
            source,
            delay_p50: delay("p50"),
            delay_p99: delay("p99"),
            coalesced: field("coalesced_share").and_then(Value::as_f64),
        }
    }
}

/// Nearest rank: the smallest value with at least `q` of the values at or below it.
fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Population standard deviation.
fn stdev(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    Some((values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

fn ms(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{v:.3}"))
}
