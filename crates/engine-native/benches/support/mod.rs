//! What the engine benchmarks share: the mock in a child process (so /proc figures are the
//! client's alone) and readings of this process from /proc.

#![allow(dead_code, reason = "each benchmark uses part of it")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use bench_mock::{MockConfig, MockServer, RequestRecord};

/// Starts this same binary with `--serve-mock`; returns the child and the mock's base URL.
/// The mock serves until the child's stdin is closed.
pub(crate) fn spawn_mock() -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg("--serve-mock")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the mock");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("mock address");
    (child, line.trim().to_owned())
}

/// The child side of [`spawn_mock`]: the mock (TTFT 5 ms, ITL 1 ms, no batch limit).
pub(crate) fn serve_mock() {
    serve_mock_with(MockConfig {
        ttft_ms: 5.0,
        itl_ms: 1.0,
        max_batch: 1_000_000,
        record_limit: 10_000_000,
        ..MockConfig::default()
    });
}

/// The child side of [`spawn_mock`] with the mock configured by `config`.
pub(crate) fn serve_mock_with(config: MockConfig) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = MockServer::start(config).await.expect("mock");
        println!("{}", server.base_url());
        std::io::stdout().flush().expect("flush");
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await
        .expect("stdin watcher");
        server.shutdown().await;
    });
}

/// Raises the soft open-file limit to the hard limit (a child started afterwards inherits
/// it); returns the soft limit in force.
pub(crate) fn raise_open_files() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return raised.current.unwrap_or(u64::MAX);
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

pub(crate) fn now_unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// User + system CPU seconds of this process (clock ticks of 1/100 s).
pub(crate) fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    ticks as f64 / 100.0
}

/// CPU time of this process so far (every thread, exited ones included), in seconds, to the
/// nanosecond: /proc's clock ticks of 10 ms are too coarse for a few requests.
pub(crate) fn process_cpu_time() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// CPU time so far of process `pid`'s threads (the scheduler's own account, in nanoseconds),
/// in seconds; for a child whose CPU is not this process's.
pub(crate) fn threads_cpu_time(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory of this process now, KiB.
pub(crate) fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process now.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Requests per second the benchmark achieved (every outcome), 0 when it measured none.
pub(crate) fn achieved_rate(b: &bench_core::schema::Benchmark) -> f64 {
    b.metrics
        .rates
        .requests_per_s
        .as_ref()
        .and_then(|r| r.total)
        .unwrap_or(0.0)
}

/// The mock's ground-truth records of requests that arrived since `since_unix_us`.
pub(crate) fn ground_truth(url: &str, since_unix_us: i64) -> Vec<RequestRecord> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let text = runtime.block_on(async {
        bench_target::plain_client()
            .expect("client")
            .get(format!("{url}/mock/ground-truth"))
            .send()
            .await
            .expect("ground truth")
            .text()
            .await
            .expect("body")
    });
    text.lines()
        .filter_map(|l| serde_json::from_str::<RequestRecord>(l).ok())
        .filter(|r| r.arrival_unix_us >= since_unix_us)
        .collect()
}
