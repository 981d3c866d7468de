//! `cargo xtask soak [--seconds N]`: the native engine against the mock for a long time at a
//! moderate rate, with token-exact prompts from the feeder thread, showing the client's memory
//! and open file descriptors stay flat.
//!
//! One constant-rate benchmark (200 req/s of 128-token prompts and 32-token streams, mock TTFT
//! 5 ms and ITL 1 ms in a child process). Every tenth of the run this process's RSS and open
//! descriptors are sampled; the verdict compares the end with the sample a quarter in (after
//! connection pools and histograms have reached their working size).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_core::config::ConfigFormat;
use bench_core::{registry, Config, RunContext};

use crate::support::{open_fds, rss_kib};

// Link the engine so its registration is present.
use engine_native as _;

/// RSS may grow this much from a quarter in to the end and still count as flat.
const RSS_TOLERANCE: f64 = 0.10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve-mock") {
        support::serve_mock();
        return;
    }
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(if args.iter().any(|a| a == "--quick") {
            30.0
        } else {
            600.0
        });
    let (mut child, url) = support::spawn_mock();
    let tokenizer = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tokenizer");
    let text = format!(
        "[target]\nurl = \"{url}\"\nmodel = \"m\"\n[profile]\nkind = \"constant\"\nrates = [200]\n\
         [constraints]\nmax_seconds = {seconds}\n[data]\nkind = \"synthetic\"\nprompt_tokens = 128\noutput_tokens = 32\n\
         tokenizer = {:?}\n",
        tokenizer.display().to_string()
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).expect("config");
    let engine = registry::engine_for(&config).expect("engine");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("soak: constant 200 req/s for {seconds} s, 128-token prompts (test tokenizer), 32-token streams; mock in a child process");
    println!("{:>8} {:>10} {:>8}", "seconds", "RSS MiB", "fds");
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let running = running.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let every = Duration::from_secs_f64((seconds / 10.0).max(1.0));
            let mut samples = Vec::new();
            while running.load(Ordering::Relaxed) {
                let sample = (started.elapsed().as_secs_f64(), rss_kib(), open_fds());
                println!(
                    "{:>8.0} {:>10.1} {:>8}",
                    sample.0,
                    sample.1 as f64 / 1024.0,
                    sample.2
                );
                samples.push(sample);
                let next = started + every * samples.len() as u32;
                while running.load(Ordering::Relaxed) && Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            samples
        })
    };
    let report = runtime
        .block_on(engine.run(&config, &RunContext::default()))
        .expect("run");
    running.store(false, Ordering::Relaxed);
    let samples = sampler.join().expect("sampler");
    let b = &report.benchmarks[0];
    let achieved = support::achieved_rate(b);
    println!(
        "requests: {} successful, {} errored, {} incomplete; achieved {achieved:.1} req/s",
        b.requests.successful, b.requests.errored, b.requests.incomplete
    );
    let quarter = samples
        .iter()
        .find(|s| s.0 >= seconds / 4.0)
        .or(samples.first())
        .copied();
    let last = samples.last().copied();
    if let (Some(q), Some(l)) = (quarter, last) {
        let growth = (l.1 as f64 - q.1 as f64) / q.1.max(1) as f64;
        let flat = growth <= RSS_TOLERANCE && l.2 <= q.2 + 2;
        println!(
            "RSS {:.1} MiB at {:.0} s -> {:.1} MiB at {:.0} s ({:+.1} %); fds {} -> {}: {}",
            q.1 as f64 / 1024.0,
            q.0,
            l.1 as f64 / 1024.0,
            l.0,
            growth * 100.0,
            q.2,
            l.2,
            if flat { "flat" } else { "GROWING" }
        );
    }
    drop(child.stdin.take());
    let _ = child.wait();
}
