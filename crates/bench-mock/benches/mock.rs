//! `cargo xtask bench mock`: how precisely and how cheaply the mock serves.
//!
//! 1. Precision: 1,000 concurrent streams; token write time minus its deadline, from the mock's
//!    own measurement (p50, p99, p99.9).
//! 2. Cost: closed-loop 16-token streams (TTFT 5 ms, ITL 1 ms) as fast as the client can;
//!    the mock's CPU time per request, from the CPU time of its own threads.
//!
//! Both also count the context switches of the mock's threads per token: each is a sleep and a
//! wake-up, which on a virtual machine costs more than writing the token.
//!
//! The client is a minimal raw-HTTP/1.1 loop on its own runtime, so it costs little and is not
//! counted. Thread CPU comes from /proc (Linux; clock ticks of 10 ms, so runs last seconds).

use std::time::{Duration, Instant};

use bench_mock::{MockConfig, MockServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let seconds = if quick { 3 } else { 10 };
    let only = |phase: &str| {
        !std::env::args().any(|a| a == "--only") || std::env::args().any(|a| a == phase)
    };
    println!("bench-mock benchmark ({} s per phase)", seconds);
    if only("precision") {
        for itl_ms in [100.0, 50.0, 20.0] {
            precision(1_000, itl_ms, seconds);
        }
    }
    if only("cost") {
        for streams in [1, 32, 128] {
            cost(streams, seconds);
        }
    }
}

fn runtime(name: &str, threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

/// CPU seconds and context switches (voluntary and not: each is a sleep and a wake) so far of
/// this process's threads whose name starts with `prefix`.
fn thread_usage(prefix: &str) -> (f64, u64) {
    let mut ticks = 0u64;
    let mut switches = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .expect("/proc is mounted")
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // After the command: state is field 3, utime 14 and stime 15 (1-based, whole line).
        let utime: u64 = fields[11].parse().unwrap_or(0);
        let stime: u64 = fields[12].parse().unwrap_or(0);
        ticks += utime + stime;
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        switches += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    (ticks as f64 / 100.0, switches)
}

/// Sends `body` on `stream` and reads the response to the end of its chunked body.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    stream.write_all(request).await?;
    buffer.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if buffer.ends_with(b"0\r\n\r\n") {
            return Ok(());
        }
    }
}

fn request(tokens: u32) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"m","prompt":"hello","max_tokens":{tokens},"ignore_eos":true,"stream":true}}"#
    );
    format!(
        "POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Runs `streams` closed-loop connections for `seconds`; returns completed requests.
async fn load(
    addr: std::net::SocketAddr,
    streams: usize,
    tokens: u32,
    seconds: u64,
    spread: Duration,
) -> u64 {
    let end = Instant::now() + Duration::from_secs(seconds);
    let request = std::sync::Arc::new(request(tokens));
    let mut tasks = Vec::new();
    for i in 0..streams {
        let request = request.clone();
        // Staggered starts: with identical timings, streams started together would keep every
        // token deadline in lockstep, and the benchmark would measure burst draining.
        let delay = spread.mul_f64(i as f64 / streams as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut done = 0u64;
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return 0;
            };
            let _ = stream.set_nodelay(true);
            let mut buffer = Vec::with_capacity(8192);
            while Instant::now() < end {
                if exchange(&mut stream, &request, &mut buffer).await.is_err() {
                    break;
                }
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total
}

/// The mock on a runtime of its own (its threads are the ones measured), and the client's
/// runtime.
fn start(
    ttft_ms: f64,
    itl_ms: f64,
) -> (tokio::runtime::Runtime, tokio::runtime::Runtime, MockServer) {
    let server_rt = runtime("bench-mock-worker", 2);
    let client_rt = runtime("load-client", 2);
    let config = MockConfig {
        ttft_ms,
        itl_ms,
        max_batch: 4096,
        ..MockConfig::default()
    };
    let server = server_rt
        .block_on(MockServer::start(config))
        .expect("mock starts");
    (server_rt, client_rt, server)
}

fn precision(streams: usize, itl_ms: f64, seconds: u64) {
    let (_server_rt, client_rt, server) = start(50.0, itl_ms);
    let addr = server.addr();
    let (cpu_before, switches_before) = thread_usage("bench-mock");
    let start = Instant::now();
    let done = client_rt.block_on(load(
        addr,
        streams,
        64,
        seconds,
        Duration::from_secs_f64(itl_ms / 1000.0),
    ));
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu_after, switches_after) = thread_usage("bench-mock");
    let stats = server.stats();
    let l = stats.token_lateness_us;
    let tokens = stats.tokens_sent.max(1) as f64;
    println!(
        "precision: {streams} concurrent streams, ITL {itl_ms} ms, {done} requests, {} tokens ({:.0} tokens/s): \
         token write - deadline p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us; \
         mock CPU {:.1} us/token, {:.2} context switches/token",
        stats.tokens_sent,
        stats.tokens_sent as f64 / elapsed,
        l.p50,
        l.p99,
        l.p99_9,
        l.max,
        (cpu_after - cpu_before) / tokens * 1e6,
        (switches_after - switches_before) as f64 / tokens,
    );
    drop(server);
}

fn cost(streams: usize, seconds: u64) {
    let (_server_rt, client_rt, server) = start(5.0, 1.0);
    let addr = server.addr();
    let (cpu_before, switches_before) = thread_usage("bench-mock");
    let start = Instant::now();
    let done = client_rt.block_on(load(addr, streams, 16, seconds, Duration::from_millis(20)));
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu_after, switches_after) = thread_usage("bench-mock");
    let cpu = cpu_after - cpu_before;
    let stats = server.stats();
    let l = stats.token_lateness_us;
    println!(
        "cost: {streams} closed-loop streams of 16 tokens (TTFT 5 ms, ITL 1 ms): {:.0} req/s, mock CPU {:.1} us/request \
         ({:.2} cores), {:.2} context switches/token, token lateness p50 {:.1} us, p99 {:.1} us",
        done as f64 / elapsed,
        cpu / done.max(1) as f64 * 1e6,
        cpu / elapsed,
        (switches_after - switches_before) as f64 / stats.tokens_sent.max(1) as f64,
        l.p50,
        l.p99
    );
    drop(server);
}
