//! `llm-bench run --metrics-listen` against the embedded mock, scraped while it runs, and the
//! checks both test binaries make of the scrapes (parsed by whichever parser the test has).

use std::collections::BTreeMap;
use std::io::{Read as _, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bench_core::schema::{Distribution, StatusSplit};
use bench_core::Report;

/// One sample of a scrape: its name (with `_total`, `_bucket`, ... as written), labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// What a scraped run produced: each scrape's text, in order, and the report it wrote.
#[derive(Debug)]
pub struct ScrapedRun {
    pub scrapes: Vec<String>,
    pub report: Report,
}

/// Standard error as it is written, line by line, to the test thread.
struct Lines {
    partial: Vec<u8>,
    sender: mpsc::Sender<String>,
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let _ = self
                .sender
                .send(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Two constant-rate benchmarks (25 req/s, 2.5 s each, the first 0.5 s of each a warmup)
/// against the embedded mock, with `--metrics-listen 127.0.0.1:0`, scraped every 150 ms
/// from the printed address until the run ends. The report is written into `dir`.
pub fn scrape_a_run(dir: &Path) -> ScrapedRun {
    let report = dir.join("r.json");
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[target.mock]\nttft_ms = 5\nitl_ms = 2\n\
             [profile]\nkind = \"constant\"\nrates = [25, 25]\n\
             [constraints]\nmax_seconds = 2.5\n[warmup]\nseconds = 0.5\n\
             [data]\nkind = \"scenario\"\nscenario = \"D(16,8)\"\napproximate = true\n\
             [[output]]\npath = {:?}\n",
            report.display().to_string()
        ),
    )
    .expect("the config is written");
    let (sender, lines) = mpsc::channel();
    let args = vec![
        "llm-bench".to_owned(),
        "run".to_owned(),
        "-c".to_owned(),
        config.display().to_string(),
        "--no-progress".to_owned(),
        "--metrics-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    let run = std::thread::spawn(move || {
        let mut stdout = Vec::new();
        let mut stderr = Lines {
            partial: Vec::new(),
            sender,
        };
        let code = bench_cli::run(args, &mut stdout, &mut stderr);
        (code, String::from_utf8_lossy(&stdout).into_owned())
    });
    let address = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("llm-bench prints where it serves live metrics");
        if let Some(rest) = line.strip_prefix("serving live metrics at http://") {
            let address: SocketAddr = rest
                .trim_end_matches("/metrics")
                .parse()
                .expect("an address");
            break address;
        }
    };
    let mut scrapes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.is_finished() && Instant::now() < deadline {
        // The run may end between the check and the connection: that scrape is simply lost.
        if let Some(text) = scrape(address) {
            scrapes.push(text);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let (code, stdout) = run.join().expect("the run does not panic");
    assert_eq!(code, 0, "llm-bench run failed: {stdout}");
    assert!(
        TcpStream::connect(address).is_err(),
        "the listener closes with the run"
    );
    let report = serde_json::from_str(&std::fs::read_to_string(&report).expect("the report"))
        .expect("a report");
    ScrapedRun { scrapes, report }
}

/// `GET /metrics`: the body of a 200 answer with Prometheus's content type.
fn scrape(address: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Some(body.to_owned())
}

/// The value of the sample named `name` whose labels include every `(key, value)` of `with`.
fn find(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Checks parsed scrapes against the run's report: counters never go down and rise while a
/// benchmark runs; once the first benchmark's `llm_bench_benchmark_running` reads 0, its
/// requests, tokens and histogram counts and sums equal its report's; the second's never
/// exceed its report's.
pub fn check_scrapes(scrapes: &[Vec<Sample>], report: &Report) {
    assert!(scrapes.len() >= 10, "only {} scrapes", scrapes.len());
    // Counters and histogram counts never decrease between scrapes.
    for pair in scrapes.windows(2) {
        let after: BTreeMap<(&str, &BTreeMap<String, String>), f64> = pair[1]
            .iter()
            .map(|s| ((s.name.as_str(), &s.labels), s.value))
            .collect();
        for before in &pair[0] {
            let counting = before.name.ends_with("_total")
                || before.name.ends_with("_count")
                || before.name.ends_with("_bucket");
            if !counting {
                continue;
            }
            let after = *after
                .get(&(before.name.as_str(), &before.labels))
                .unwrap_or_else(|| panic!("{} {:?} disappeared", before.name, before.labels));
            assert!(
                after >= before.value,
                "{} {:?} went from {} to {after}",
                before.name,
                before.labels,
                before.value
            );
        }
    }
    let base = |benchmark: &'static str| {
        [
            ("engine", "native"),
            ("benchmark", benchmark),
            ("strategy", "constant"),
        ]
    };
    let successful = |scrape: &[Sample], benchmark: &'static str| {
        let mut with = base(benchmark).to_vec();
        with.push(("outcome", "successful"));
        find(scrape, "llm_bench_requests_total", &with)
    };
    let running = |scrape: &[Sample], benchmark: &'static str| {
        find(scrape, "llm_bench_benchmark_running", &base(benchmark))
    };
    // While benchmark 1 ran, its successful count rose from one scrape to a later one.
    let during: Vec<f64> = scrapes
        .iter()
        .filter(|s| running(s, "1") == Some(1.0))
        .filter_map(|s| successful(s, "1"))
        .collect();
    assert!(
        !during.is_empty() && during.first() < during.last(),
        "benchmark 1's successful requests did not rise while it ran: {during:?}"
    );
    assert!(
        scrapes.iter().any(|s| {
            running(s, "1") == Some(1.0)
                && find(s, "llm_bench_achieved_requests_per_second", &base("1"))
                    .is_some_and(|r| r > 0.0)
        }),
        "no achieved rate while benchmark 1 ran"
    );
    // Final: the last scrape in which benchmark 1 had finished.
    let last = scrapes
        .iter()
        .rev()
        .find(|s| running(s, "1") == Some(0.0))
        .expect("a scrape after benchmark 1 finished (benchmark 2 runs 2.5 s)");
    let first = &report.benchmarks[0];
    let totals = &first.requests;
    let metrics = &first.metrics;
    let parts: [(&str, u64, Option<&Distribution>, Option<&Distribution>); 3] = [
        (
            "successful",
            totals.successful,
            part(&metrics.prompt_tokens, 0),
            part(&metrics.output_tokens, 0),
        ),
        (
            "incomplete",
            totals.incomplete,
            part(&metrics.prompt_tokens, 1),
            part(&metrics.output_tokens, 1),
        ),
        (
            "errored",
            totals.errored,
            part(&metrics.prompt_tokens, 2),
            part(&metrics.output_tokens, 2),
        ),
    ];
    assert!(totals.successful > 20, "{totals:?}");
    let sum = |d: Option<&Distribution>| d.map_or(0.0, |d| d.sum);
    for (outcome, requests, prompt, output) in parts {
        let mut with = base("1").to_vec();
        with.push(("outcome", outcome));
        assert_eq!(
            find(last, "llm_bench_requests_total", &with),
            Some(requests as f64),
            "{outcome} requests"
        );
        assert_eq!(
            find(last, "llm_bench_prompt_tokens_total", &with),
            Some(sum(prompt)),
            "{outcome} prompt tokens"
        );
        assert_eq!(
            find(last, "llm_bench_output_tokens_total", &with),
            Some(sum(output)),
            "{outcome} output tokens"
        );
    }
    let mut ok = base("1").to_vec();
    ok.push(("outcome", "successful"));
    for (name, distribution) in [
        ("llm_bench_ttft_seconds", part(&metrics.ttft_ms, 0)),
        ("llm_bench_itl_seconds", part(&metrics.itl_ms, 0)),
        (
            "llm_bench_request_latency_seconds",
            part(&metrics.request_latency_ms, 0),
        ),
        (
            "llm_bench_schedule_lag_seconds",
            part(&metrics.schedule_lag_ms, 0),
        ),
    ] {
        let distribution = distribution.unwrap_or_else(|| panic!("the report has {name}"));
        let count = find(last, &format!("{name}_count"), &ok).expect("a count");
        assert_eq!(count, distribution.count as f64, "{name}_count");
        let mut inf = ok.clone();
        inf.push(("le", "+Inf"));
        assert_eq!(
            find(last, &format!("{name}_bucket"), &inf),
            Some(count),
            "{name} +Inf bucket"
        );
        let seconds = find(last, &format!("{name}_sum"), &ok).expect("a sum");
        let expected = distribution.sum / 1000.0;
        assert!(
            (seconds - expected).abs() <= 1e-9 * expected.abs().max(1e-3),
            "{name}_sum {seconds} against the report's {expected}"
        );
    }
    // Benchmark 2 was still running at the last scrape, or had just ended: never past its
    // report.
    let end = scrapes.last().expect("a scrape");
    if let Some(second) = successful(end, "2") {
        assert!(second <= report.benchmarks[1].requests.successful as f64);
    }
}

/// The outcome's part (0 successful, 1 incomplete, 2 errored) of a split distribution.
fn part(split: &Option<StatusSplit<Distribution>>, which: usize) -> Option<&Distribution> {
    let split = split.as_ref()?;
    match which {
        0 => split.successful.as_ref(),
        1 => split.incomplete.as_ref(),
        _ => split.errored.as_ref(),
    }
}

/// The samples of a scrape, read by this file's own small reader of the text format (the
/// `prerequisites` binary reads them with Prometheus's Python parser instead): every line
/// that is not a comment is `name{label="value",...} value`.
pub fn read_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("a number in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("labels end with }");
                    let labels = inner
                        .split("\",")
                        .map(|pair| {
                            let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
                            (key.to_owned(), value.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name, labels)
                }
            };
            Sample {
                name: name.to_owned(),
                labels,
                value,
            }
        })
        .collect()
}
