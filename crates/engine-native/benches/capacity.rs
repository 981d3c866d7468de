//! `cargo xtask bench native`: the native engine's capacity.
//!
//! Constant rates of 16-token streams against the mock (TTFT 5 ms, ITL 1 ms), rising until a
//! rate is no longer kept (achieved < 99 % of target, or schedule lag p99 >= 1 ms). The mock
//! runs in a child process (this same binary with `--serve-mock`), so the CPU time and peak RSS
//! read from /proc are the client's alone. For each rate: the achieved rate, the schedule lag,
//! the client's CPU per request, and the client-minus-server TTFT (server TTFT from the mock's
//! ground truth: first token written minus request arrival).
//!
//! `--rates 1000,2000` measures just those rates, each whatever the one before achieved (for
//! comparing two builds side by side at the same rates).

mod support;

use bench_core::config::ConfigFormat;
use bench_core::{registry, Config, RunContext};

use crate::support::{ground_truth, now_unix_us, peak_rss_kib, process_cpu_seconds};

// Link the engine so its registration is present.
use engine_native as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve-mock") {
        support::serve_mock();
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let seconds = if quick { 2.0 } else { 4.0 };
    let chosen: Option<Vec<f64>> = args
        .iter()
        .position(|a| a == "--rates")
        .and_then(|i| args.get(i + 1))
        .map(|list| {
            list.split(',')
                .map(|r| r.trim().parse().expect("--rates takes numbers: 1000,2000"))
                .collect()
        });
    let (mut child, url) = support::spawn_mock();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("native-client")
        .enable_all()
        .build()
        .expect("runtime");
    println!("native engine capacity: constant rates of 16-token streams, mock TTFT 5 ms, ITL 1 ms, {seconds} s per rate (mock in a child process)");
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>14} {:>14} {:>9} {:>6}",
        "target",
        "achieved",
        "lag p50 ms",
        "lag p99 ms",
        "CPU us/req",
        "TTFT err ms",
        "peak RSS",
        "kept"
    );
    let mut best: Option<(f64, f64, f64)> = None;
    let mut sustained: Option<(f64, f64, f64)> = None;
    let rates = chosen.clone().unwrap_or_else(|| {
        vec![
            250.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 8000.0, 10000.0,
        ]
    });
    for &rate in &rates {
        let text = format!(
            "benchmark_engine = \"native\"\n[target]\nurl = \"{url}\"\nmodel = \"m\"\n[profile]\nkind = \"constant\"\nrates = [{rate}]\n\
             [constraints]\nmax_seconds = {seconds}\n[warmup]\nseconds = 0.5\n[data]\nkind = \"synthetic\"\nprompt_tokens = 16\noutput_tokens = 16\napproximate = true\n"
        );
        let config = Config::load(&text, ConfigFormat::Toml, &[]).expect("config");
        let engine = registry::engine_for(&config).expect("engine");
        // Reset the peak-RSS mark so each rate reports its own peak (Linux >= 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let wall_start = now_unix_us();
        let cpu_before = process_cpu_seconds();
        let report = runtime
            .block_on(engine.run(&config, &RunContext::default()))
            .expect("run");
        let cpu = process_cpu_seconds() - cpu_before;
        let rss_mib = peak_rss_kib() / 1024;
        let truth = ground_truth(&url, wall_start);
        let b = &report.benchmarks[0];
        let achieved = support::achieved_rate(b);
        let lag = b
            .metrics
            .schedule_lag_ms
            .as_ref()
            .and_then(|s| s.total.clone());
        let (lag_p50, lag_p99) = lag.as_ref().map_or((f64::NAN, f64::NAN), |d| {
            (d.percentiles.p50, d.percentiles.p99)
        });
        if std::env::var_os("CAPACITY_DEBUG").is_some() {
            if let Some(d) = &lag {
                eprintln!(
                    "lag p90 {:.3} p99.9 {:.3} max {:.3} count {}",
                    d.percentiles.p90, d.percentiles.p99_9, d.max, d.count
                );
            }
        }
        let client_ttft = b
            .metrics
            .ttft_ms
            .as_ref()
            .and_then(|s| s.successful.as_ref())
            .map_or(f64::NAN, |d| d.median);
        let mut server_ttft: Vec<f64> = truth
            .iter()
            .filter_map(|t| Some((t.first_token_unix_us? - t.arrival_unix_us) as f64 / 1000.0))
            .collect();
        server_ttft.sort_by(f64::total_cmp);
        let server_p50 = server_ttft
            .get(server_ttft.len() / 2)
            .copied()
            .unwrap_or(f64::NAN);
        let cpu_per_request = cpu / truth.len().max(1) as f64 * 1e6;
        let kept = achieved >= 0.99 * rate && lag_p99 < 1.0;
        println!(
            "{rate:>8.0} {achieved:>10.1} {lag_p50:>12.3} {lag_p99:>12.3} {cpu_per_request:>14.1} {:>14.3} {:>5} MiB {:>6}",
            client_ttft - server_p50,
            rss_mib,
            if kept { "yes" } else { "no" }
        );
        if kept {
            best = Some((rate, cpu_per_request, client_ttft - server_p50));
        }
        // Rates whose lag misses the bound still say how far the client keeps up.
        if achieved >= 0.99 * rate {
            sustained = Some((rate, cpu_per_request, client_ttft - server_p50));
        } else if chosen.is_none() {
            break;
        }
    }
    match best {
        Some((rate, cpu, error)) => println!("highest rate kept (achieved >= 99 %, lag p99 < 1 ms): {rate} req/s; client CPU {cpu:.1} us/request; client-minus-server TTFT p50 {error:.3} ms"),
        None => println!("highest rate kept (achieved >= 99 %, lag p99 < 1 ms): none"),
    }
    if let Some((rate, cpu, error)) = sustained {
        println!("highest rate achieved at >= 99 % (any lag): {rate} req/s; client CPU {cpu:.1} us/request; client-minus-server TTFT p50 {error:.3} ms");
    }
    drop(child.stdin.take());
    let _ = child.wait();
}
