//! `cargo xtask wire-check [--streams 500,1000] [--seconds S] [--keep]`: llm-bench's
//! per-request timestamps against the wire (issue 19). The mock runs as its own process,
//! `tcpdump` captures loopback traffic with kernel timestamps, and `llm-bench run` writes its
//! request records; the capture is read here (`pcap`, `flows`) and joined with the records by
//! `x-request-id`.
//!
//! `cargo xtask wire-check --analyze DIR` reads a kept level folder again without running.

mod flows;
mod pcap;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};

use flows::{Anomalies, Tracker, WireExchange};

const USAGE: &str =
    "usage: cargo xtask wire-check [--streams 500,1000] [--seconds 15] [--keep] | --analyze DIR";

/// The issue's targets: both stamps within 1 ms of the wire at p99.
const TARGET_MS: f64 = 1.0;

/// The load of the original measurement: 100-token streams, TTFT 50 ms, ITL 10 ms.
const OUTPUT_TOKENS: u32 = 100;
const TTFT_MS: u32 = 50;
const ITL_MS: u32 = 10;
const PROMPT_TOKENS: u32 = 64;

pub(crate) fn command(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args.get(i + 1).map(String::as_str).context(USAGE))
            .transpose()
    };
    if let Some(dir) = option("--analyze")? {
        let dir = PathBuf::from(dir);
        let port = std::fs::read_to_string(dir.join("port"))
            .with_context(|| format!("{} holds no `port` file", dir.display()))?
            .trim()
            .parse()
            .context("the `port` file")?;
        let analysis = analyze(&dir.join("capture.pcap"), &dir.join("records.jsonl"), port)?;
        print!("{}", analysis.describe(None));
        return Ok(());
    }
    let streams: Vec<usize> = option("--streams")?
        .unwrap_or("500,1000")
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("--streams: `{s}`"))
        })
        .collect::<anyhow::Result<_>>()?;
    let seconds: f64 = option("--seconds")?
        .map_or(Ok(15.0), str::parse)
        .context("--seconds")?;
    if streams.contains(&0) || !seconds.is_finite() || seconds <= 0.0 {
        bail!("{USAGE}");
    }
    let keep = args.iter().any(|a| a == "--keep");

    ensure_tcpdump()?;
    build_release(root)?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let binary = target.join("release/llm-bench");
    let out = target.join("wire-check");
    let mut rows = Vec::new();
    for &n in &streams {
        let dir = out.join(format!("streams-{n}"));
        println!(
            "xtask: wire-check at {n} streams for {seconds} s (files in {})",
            dir.display()
        );
        let analysis = level(root, &binary, &dir, n, seconds)?;
        print!("{}", analysis.describe(Some(n)));
        if !keep {
            let _ = std::fs::remove_file(dir.join("capture.pcap"));
        }
        rows.push((n, analysis));
    }
    println!("\n{}", table(&rows));
    println!(
        "Both clocks are CLOCK_REALTIME-based: the records' stamps are the realtime clock read once \
         at the run's start plus CLOCK_MONOTONIC since, the capture's are realtime per packet, so a \
         step or slew of the realtime clock during a run shifts every difference (each level shows \
         how far realtime moved against monotonic during its run). At low load the first-token \
         median is the client's own delay plus any fixed offset, so it bounds the offset."
    );
    Ok(())
}

/// `cargo build --release -p bench-cli`, without the package variables `cargo run` gave this
/// process: ring's build script reruns when they change, and so would every crate above it.
pub(crate) fn build_release(root: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("xtask: cargo build --release -p bench-cli");
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "--quiet", "-p", "bench-cli"])
        .current_dir(root);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let of_this_package = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| key.starts_with(p));
        if of_this_package || key == "OUT_DIR" {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo build --release -p bench-cli` failed ({status})");
    }
    Ok(())
}

/// One level: mock, capture, run, analysis.
fn level(
    root: &Path,
    binary: &Path,
    dir: &Path,
    streams: usize,
    seconds: f64,
) -> anyhow::Result<Analysis> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let port = free_port()?;
    std::fs::write(dir.join("port"), format!("{port}\n"))?;
    let fds = streams as u64 + 256;

    let mock_log = File::create(dir.join("mock.log"))?;
    let mut mock = with_open_files(binary, fds)?;
    mock.arg("mock-server")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--ttft-ms",
            &TTFT_MS.to_string(),
            "--itl-ms",
            &ITL_MS.to_string(),
        ])
        // Far above the streams: the mock must not be what limits the run.
        .args(["--max-batch", "100000", "--record-limit", "10000"])
        .stdin(Stdio::null())
        .stdout(mock_log.try_clone()?)
        .stderr(mock_log);
    let mock = Running::spawn(&mut mock, "the mock server")?;
    wait_for_port(port, &mock)?;

    let pcap_path = dir.join("capture.pcap");
    let capture = Capture::start(&pcap_path, port)?;

    let records = dir.join("records.jsonl");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        run_config(root, port, streams, seconds, &records, dir),
    )?;
    let run_log = dir.join("run.log");
    let log = File::create(&run_log)?;
    let load_before = load_average();
    let realtime_moved = RealtimeWatch::start();
    let started = Instant::now();
    let status = with_open_files(binary, fds)?
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("cannot run llm-bench")?;
    let realtime_moved_us = realtime_moved.moved_us();
    let took = started.elapsed();
    // libpcap's ring hands a block over when it is full or after its 1 s timeout, and tcpdump
    // drops a block it has not got when interrupted: wait for the last one.
    std::thread::sleep(Duration::from_millis(2500));
    let capture = capture.stop()?;
    mock.interrupt_and_wait()?;
    if !status.success() {
        bail!(
            "llm-bench run failed ({status}) after {:.1} s; see {}",
            took.as_secs_f64(),
            run_log.display()
        );
    }
    let mut analysis = analyze(&pcap_path, &records, port)?;
    analysis.capture = Some(capture);
    analysis.realtime_moved_us = Some(realtime_moved_us);
    analysis.load = load_before.zip(load_average());
    Ok(analysis)
}

/// The 1-minute load average: other work on the machine shows in every figure.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn run_config(
    root: &Path,
    port: u16,
    streams: usize,
    seconds: f64,
    records: &Path,
    dir: &Path,
) -> String {
    let path = |p: &Path| toml_string(&p.display().to_string());
    format!(
        "# Written by `cargo xtask wire-check`.\n\
         [target]\n\
         url = \"http://127.0.0.1:{port}\"\n\
         model = \"mock-model\"\n\
         \n\
         [profile]\n\
         kind = \"concurrent\"\n\
         streams = [{streams}]\n\
         \n\
         [constraints]\n\
         max_seconds = {seconds}\n\
         \n\
         [data]\n\
         kind = \"synthetic\"\n\
         prompt_tokens = {PROMPT_TOKENS}\n\
         output_tokens = {OUTPUT_TOKENS}\n\
         tokenizer = {tokenizer}\n\
         \n\
         [engines.native]\n\
         request_records = {records}\n\
         # The mock keeps connections open: no probe request on the wire.\n\
         reuse_connections = true\n\
         \n\
         [[output]]\n\
         path = {report}\n",
        tokenizer = path(&root.join("data/tokenizer")),
        records = path(records),
        report = path(&dir.join("report.json")),
    )
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// How far CLOCK_REALTIME moved against CLOCK_MONOTONIC over a span: the offset the records'
/// clock (realtime once, then monotonic) gathers against the capture's (realtime throughout).
struct RealtimeWatch {
    instant: Instant,
    wall: SystemTime,
}

impl RealtimeWatch {
    fn start() -> Self {
        Self {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn moved_us(&self) -> f64 {
        let monotonic = self.instant.elapsed().as_secs_f64();
        let realtime = match SystemTime::now().duration_since(self.wall) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        (realtime - monotonic) * 1e6
    }
}

/// A child process started here, stopped (SIGKILL) if still running when dropped.
struct Running {
    child: Child,
    what: &'static str,
}

impl Running {
    fn spawn(cmd: &mut Command, what: &'static str) -> anyhow::Result<Self> {
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        Ok(Self { child, what })
    }

    /// SIGINT, as a user's Ctrl-C: tcpdump then flushes its file, the mock prints its counts.
    fn interrupt_and_wait(mut self) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} (pid {pid}) did not stop on SIGINT within 10 s",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn wait_for_port(port: u16, server: &Running) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{} did not listen on port {port} within 15 s", server.what);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `program`, run under an open-files limit of at least `need`: the soft limit raised within
/// the hard one when it is lower (the client and the mock each hold a socket per stream).
fn with_open_files(program: &Path, need: u64) -> anyhow::Result<Command> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let (soft, hard) = open_files_limit(&limits).unwrap_or((u64::MAX, u64::MAX));
    if soft >= need {
        return Ok(Command::new(program));
    }
    if hard < need {
        bail!(
            "{need} open files are needed, and the hard limit is {hard}: raise it (`ulimit -Hn`, \
             /etc/security/limits.conf) or run fewer streams"
        );
    }
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -n \"$1\" && shift && exec \"$@\"", "sh"])
        .arg(need.to_string())
        .arg(program);
    Ok(cmd)
}

/// The soft and hard `Max open files` of `/proc/self/limits`.
fn open_files_limit(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..].split_whitespace().map(|v| {
        if v == "unlimited" {
            Some(u64::MAX)
        } else {
            v.parse().ok()
        }
    });
    Some((numbers.next()??, numbers.next()??))
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn ensure_tcpdump() -> anyhow::Result<()> {
    let present = || {
        Command::new("tcpdump")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present() {
        return Ok(());
    }
    if effective_uid() != Some(0) {
        bail!("tcpdump is missing: install it (Debian: `sudo apt-get install tcpdump`) and run as root");
    }
    println!("xtask: tcpdump is missing; installing the Debian package with apt-get");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "tcpdump"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").arg("update").status();
        if !install() {
            bail!("cannot install tcpdump with apt-get: install it and run again");
        }
    }
    if !present() {
        bail!("tcpdump was installed but does not run");
    }
    Ok(())
}

/// tcpdump writing a loopback capture with nanosecond kernel timestamps.
struct Capture {
    tcpdump: Running,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

/// What tcpdump said about its capture when it stopped.
#[derive(Debug, Clone, Default)]
struct CaptureReport {
    captured: Option<u64>,
    dropped_by_kernel: Option<u64>,
}

impl Capture {
    fn start(path: &Path, port: u16) -> anyhow::Result<Self> {
        let mut cmd = Command::new("tcpdump");
        cmd.args(["-i", "lo", "-n", "-s", "0", "--time-stamp-precision=nano"])
            // 256 MiB of kernel buffer: 1,000 streams write ~100,000 packets a second.
            .args(["-B", "262144"])
            .arg("-w")
            .arg(path);
        if effective_uid() == Some(0) {
            // Debian's tcpdump otherwise drops to user `tcpdump` before opening the file, which
            // then cannot write into a folder of root's.
            cmd.args(["-Z", "root"]);
        }
        cmd.arg(format!("tcp port {port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut tcpdump = Running::spawn(&mut cmd, "tcpdump")?;
        let stderr = tcpdump.child.stderr.take().context("tcpdump's stderr")?;
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let listening = line.contains("listening on");
                    seen.push(line);
                    if listening {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = tcpdump.child.wait()?;
                    bail!(
                        "tcpdump cannot capture on lo ({status}): {}\n\
                         the capture needs root, or CAP_NET_RAW and CAP_NET_ADMIN for tcpdump \
                         (`sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v tcpdump)\"`)",
                        seen.join("; ")
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                    bail!(
                        "tcpdump did not start capturing within 15 s: {}",
                        seen.join("; ")
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        Ok(Self {
            tcpdump,
            lines,
            seen,
        })
    }

    fn stop(mut self) -> anyhow::Result<CaptureReport> {
        let status = self.tcpdump.interrupt_and_wait()?;
        self.seen.extend(self.lines.iter());
        let said = self.seen.join("\n");
        if !status.success() {
            bail!("tcpdump failed ({status}): {said}");
        }
        Ok(CaptureReport {
            captured: tcpdump_count(&said, "packets captured"),
            dropped_by_kernel: tcpdump_count(&said, "packets dropped by kernel"),
        })
    }
}

/// The number before `what` in tcpdump's closing lines ("12 packets dropped by kernel").
fn tcpdump_count(said: &str, what: &str) -> Option<u64> {
    said.lines()
        .find_map(|l| l.trim().strip_suffix(what))
        .and_then(|n| n.trim().parse().ok())
}

/// One line of the request records, the fields the check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    id: String,
    outcome: String,
    sent_us: i64,
    first_token_us: Option<i64>,
    end_us: i64,
}

/// Reads a record line. The lines are serde_json's output of a flat object, so a key is
/// found as `"key":` (an escaped quote inside a string value can never form one).
fn parse_record(line: &str) -> Option<Record> {
    Some(Record {
        id: json_string(line, "request_id")?,
        outcome: json_string(line, "outcome")?,
        sent_us: json_raw(line, "sent_unix_us")?.parse().ok()?,
        first_token_us: match json_raw(line, "first_token_unix_us")? {
            "null" => None,
            v => Some(v.parse().ok()?),
        },
        end_us: json_raw(line, "end_unix_us")?.parse().ok()?,
    })
}

/// The raw text of a number, `null` or `true`/`false` value.
fn json_raw<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let at = line.find(&pattern)? + pattern.len();
    let rest = line[at..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// A string value without escapes (request ids and outcomes have none).
fn json_string(line: &str, key: &str) -> Option<String> {
    let raw = json_raw(line, key)?;
    let s = raw.strip_prefix('"')?;
    let end = s.find('"')?;
    let value = &s[..end];
    (!value.contains('\\')).then(|| value.to_owned())
}

/// The differences of one level, in milliseconds (stamp minus wire).
#[derive(Debug, Default)]
struct Joined {
    records: usize,
    /// Records whose id the capture does not have (none expected).
    not_on_wire: usize,
    /// Records with a first-token stamp whose response showed no content event on the wire.
    first_token_without_wire: usize,
    /// The ids of a few records of those two kinds, to look up in the capture.
    examples: Vec<String>,
    /// (wire time in ns, first-token stamp − wire), for the drift over the run.
    first_token: Vec<(i64, f64)>,
    /// Requests on a connection opened for them.
    sent_new: Vec<f64>,
    /// Requests on a connection already open.
    sent_reused: Vec<f64>,
    /// For requests on a connection opened for them: `sent` − the SYN.
    sent_minus_syn: Vec<f64>,
}

fn join(records: &[Record], wire: Vec<WireExchange>) -> Joined {
    let by_id: HashMap<String, WireExchange> = wire
        .into_iter()
        .filter_map(|w| Some((w.id.clone()?, w)))
        .collect();
    let ms = |stamp_us: i64, wire_ns: i64| (stamp_us * 1000 - wire_ns) as f64 / 1e6;
    let mut j = Joined {
        records: records.len(),
        ..Joined::default()
    };
    for r in records {
        let Some(w) = by_id.get(&r.id) else {
            j.not_on_wire += 1;
            if j.examples.len() < 3 {
                j.examples.push(r.id.clone());
            }
            continue;
        };
        // Stamped before its connection's SYN: it waited for that connection to open. The
        // first request on a spare connection the pool opened earlier found it open.
        let opened_for_it = w
            .new_connection_syn_ns
            .filter(|&syn| r.sent_us * 1000 <= syn);
        match opened_for_it {
            Some(syn) => {
                j.sent_new.push(ms(r.sent_us, w.request_ns));
                j.sent_minus_syn.push(ms(r.sent_us, syn));
            }
            None => j.sent_reused.push(ms(r.sent_us, w.request_ns)),
        }
        match (r.first_token_us, w.first_content_ns) {
            (Some(stamp), Some(wire)) => j.first_token.push((wire, ms(stamp, wire))),
            (Some(_), None) => {
                j.first_token_without_wire += 1;
                if j.examples.len() < 3 {
                    j.examples.push(r.id.clone());
                }
            }
            _ => {}
        }
    }
    j.first_token.sort_by_key(|&(wire, _)| wire);
    j
}

/// Nearest-rank percentiles of a sample, and the p99 of its size for the verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    n: usize,
    /// The low tail: where a `sent` stamp taken long before its request left shows.
    p1: f64,
    median: f64,
    p90: f64,
    p99: f64,
    abs_p99: f64,
}

fn summarize(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut abs: Vec<f64> = values.iter().map(|v| v.abs()).collect();
    abs.sort_by(f64::total_cmp);
    Some(Summary {
        n: sorted.len(),
        p1: percentile(&sorted, 0.01),
        median: percentile(&sorted, 0.5),
        p90: percentile(&sorted, 0.9),
        p99: percentile(&sorted, 0.99),
        abs_p99: percentile(&abs, 0.99),
    })
}

/// The smallest value with at least `q` of the sample at or below it.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(values: &[f64]) -> Option<f64> {
    summarize(values).map(|s| s.median)
}

/// One level's result.
#[derive(Debug)]
struct Analysis {
    joined: Joined,
    successful: usize,
    anomalies: Anomalies,
    packets: u64,
    /// The last request's end minus the capture's last packet (a capture stopped too soon).
    capture_ends_early_ms: f64,
    truncated_frames: u64,
    cut_short: bool,
    capture: Option<CaptureReport>,
    realtime_moved_us: Option<f64>,
    /// The 1-minute load average before and after the run.
    load: Option<(f64, f64)>,
}

fn analyze(pcap_path: &Path, records_path: &Path, port: u16) -> anyhow::Result<Analysis> {
    let file =
        File::open(pcap_path).with_context(|| format!("cannot open {}", pcap_path.display()))?;
    let mut reader = pcap::Reader::new(BufReader::with_capacity(1 << 20, file))?;
    let linktype = reader.format.linktype;
    if linktype != pcap::LINKTYPE_ETHERNET && linktype != pcap::LINKTYPE_LINUX_SLL {
        bail!(
            "the capture's link type is {linktype}; only Ethernet (lo) and Linux cooked are read"
        );
    }
    let mut tracker = Tracker::new(port);
    let mut packets = 0u64;
    let mut last_packet_ns = 0;
    while let Some((header, frame)) = reader.next_record()? {
        packets += 1;
        last_packet_ns = last_packet_ns.max(header.ts_ns);
        if let Some(segment) = pcap::tcp_segment(linktype, frame) {
            tracker.segment(header.ts_ns, &segment);
        }
    }
    let (wire, anomalies) = tracker.finish();
    let text = std::fs::read_to_string(records_path)
        .with_context(|| format!("cannot read {}", records_path.display()))?;
    let records: Vec<Record> = text.lines().filter_map(parse_record).collect();
    if records.is_empty() {
        bail!("{} holds no request records", records_path.display());
    }
    let successful = records.iter().filter(|r| r.outcome == "successful").count();
    let last_end_us = records.iter().map(|r| r.end_us).max().unwrap_or(0);
    Ok(Analysis {
        joined: join(&records, wire),
        successful,
        anomalies,
        packets,
        capture_ends_early_ms: (last_end_us * 1000 - last_packet_ns) as f64 / 1e6,
        truncated_frames: reader.truncated,
        cut_short: reader.cut_short,
        capture: None,
        realtime_moved_us: None,
        load: None,
    })
}

fn fmt_ms(v: f64) -> String {
    format!("{v:.3}")
}

fn verdict(s: Option<Summary>) -> &'static str {
    match s {
        Some(s) if s.abs_p99 <= TARGET_MS => "PASS",
        Some(_) => "MISS",
        None => "NO DATA",
    }
}

impl Analysis {
    fn first_token(&self) -> Option<Summary> {
        let values: Vec<f64> = self.joined.first_token.iter().map(|&(_, d)| d).collect();
        summarize(&values)
    }

    fn sent(&self) -> Option<Summary> {
        let all: Vec<f64> = self
            .joined
            .sent_new
            .iter()
            .chain(&self.joined.sent_reused)
            .copied()
            .collect();
        summarize(&all)
    }

    /// The first-token median of the first and the last quarter of the run, by wire time.
    fn drift(&self) -> Option<(f64, f64)> {
        let ft = &self.joined.first_token;
        let quarter = ft.len() / 4;
        if quarter == 0 {
            return None;
        }
        let values = |part: &[(i64, f64)]| part.iter().map(|&(_, d)| d).collect::<Vec<_>>();
        Some((
            median(&values(&ft[..quarter]))?,
            median(&values(&ft[ft.len() - quarter..]))?,
        ))
    }

    fn describe(&self, streams: Option<usize>) -> String {
        let j = &self.joined;
        let mut out = String::new();
        let line = |out: &mut String, s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let level = streams.map_or("the capture".to_owned(), |n| format!("{n} streams"));
        line(
            &mut out,
            format!(
                "{level}: {} request records ({} successful), {} on the wire; {} packets read",
                j.records,
                self.successful,
                j.records - j.not_on_wire,
                self.packets
            ),
        );
        // A first-token stamp comes after the wire, its tail is high; a `sent` stamp comes
        // before, its tail is low.
        let stats = |s: Option<Summary>, late: bool| match s {
            None => "no data".to_owned(),
            Some(s) if late => format!(
                "median {} / p90 {} / p99 {} ms (p1 {}, |d| p99 {} ms, n = {})",
                fmt_ms(s.median),
                fmt_ms(s.p90),
                fmt_ms(s.p99),
                fmt_ms(s.p1),
                fmt_ms(s.abs_p99),
                s.n
            ),
            Some(s) => format!(
                "median {} / p1 {} ms (p99 {}, |d| p99 {} ms, n = {})",
                fmt_ms(s.median),
                fmt_ms(s.p1),
                fmt_ms(s.p99),
                fmt_ms(s.abs_p99),
                s.n
            ),
        };
        line(
            &mut out,
            format!(
                "  first token − wire (packet completing the first content event): {}",
                stats(self.first_token(), true)
            ),
        );
        line(
            &mut out,
            format!(
                "  sent − wire (packet with the request's last byte): {}",
                stats(self.sent(), false)
            ),
        );
        line(
            &mut out,
            format!(
                "    on connections already open: {}",
                stats(summarize(&j.sent_reused), false)
            ),
        );
        line(
            &mut out,
            format!(
                "    on connections opened for them: {}; sent − their SYN: {}",
                stats(summarize(&j.sent_new), false),
                stats(summarize(&j.sent_minus_syn), false)
            ),
        );
        if let Some((early, late)) = self.drift() {
            line(
                &mut out,
                format!(
                    "  first token − wire, median over the first and last quarter of the run: {} → {} ms",
                    fmt_ms(early),
                    fmt_ms(late)
                ),
            );
        }
        if let Some(us) = self.realtime_moved_us {
            line(
                &mut out,
                format!("  realtime − monotonic moved {us:.1} µs during the run"),
            );
        }
        if let Some((before, after)) = self.load {
            line(
                &mut out,
                format!("  load average (1 min) {before:.2} before the run, {after:.2} after"),
            );
        }
        let mut caveats = Vec::new();
        if j.not_on_wire > 0 {
            caveats.push(format!("{} records not found on the wire", j.not_on_wire));
        }
        if j.first_token_without_wire > 0 {
            caveats.push(format!(
                "{} first tokens with no content event on the wire",
                j.first_token_without_wire
            ));
        }
        let a = &self.anomalies;
        if a.without_syn + a.directions_with_gaps + a.unparsable > 0 {
            caveats.push(format!(
                "{} connections without their SYN, {} directions with bytes missing, {} unparsable",
                a.without_syn, a.directions_with_gaps, a.unparsable
            ));
        }
        if let Some(c) = &self.capture {
            if c.dropped_by_kernel.is_some_and(|d| d > 0)
                || c.captured.is_some_and(|n| n != self.packets)
            {
                caveats.push(format!(
                    "tcpdump captured {} packets, {} dropped by the kernel",
                    c.captured.map_or("?".to_owned(), |n| n.to_string()),
                    c.dropped_by_kernel
                        .map_or("?".to_owned(), |n| n.to_string()),
                ));
            }
        }
        if self.truncated_frames > 0 || self.cut_short {
            caveats.push(format!(
                "{} frames cut by the snapshot length{}",
                self.truncated_frames,
                if self.cut_short {
                    ", the file ends inside a record"
                } else {
                    ""
                }
            ));
        }
        // A request ends after its last packet; more than a moment after means packets are missing.
        if self.capture_ends_early_ms > 50.0 {
            caveats.push(format!(
                "the capture ends {:.0} ms before the last request",
                self.capture_ends_early_ms
            ));
        }
        if !j.examples.is_empty() {
            caveats.push(format!("e.g. {}", j.examples.join(", ")));
        }
        if !caveats.is_empty() {
            line(&mut out, format!("  caveats: {}", caveats.join("; ")));
        }
        line(
            &mut out,
            format!(
                "  {}: first-token |d| p99 ≤ {TARGET_MS} ms; {}: sent |d| p99 ≤ {TARGET_MS} ms",
                verdict(self.first_token()),
                verdict(self.sent())
            ),
        );
        out
    }
}

/// The levels as a Markdown table, for docs/performance.md.
fn table(rows: &[(usize, Analysis)]) -> String {
    let mut t = String::from(
        "| streams | requests joined | first token − wire ms: median / p90 / p99 | sent − wire ms: median / p1 | on open connections | on connections opened for them | load avg | verdict (\\|d\\| p99 ≤ 1 ms) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let dash = || "-".to_owned();
    let low = |s: Option<Summary>| {
        s.map_or_else(dash, |s| format!("{} / {}", fmt_ms(s.median), fmt_ms(s.p1)))
    };
    for (n, a) in rows {
        let ft = a.first_token();
        let _ = writeln!(
            t,
            "| {n} | {} | {} | {} | {} | {} | {} | first token {}, sent {} |",
            a.joined.records - a.joined.not_on_wire,
            ft.map_or_else(dash, |s| format!(
                "{} / {} / {}",
                fmt_ms(s.median),
                fmt_ms(s.p90),
                fmt_ms(s.p99)
            )),
            low(a.sent()),
            low(summarize(&a.joined.sent_reused)),
            low(summarize(&a.joined.sent_new)),
            a.load
                .map_or_else(dash, |(before, after)| format!("{before:.1}-{after:.1}")),
            verdict(ft),
            verdict(a.sent()),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"benchmark":0,"request_id":"req-12","outcome":"successful","error_kind":null,"status_code":null,"error":"a \"sent_unix_us\":1 trap","intended_unix_us":1700000000000000,"sent_unix_us":1700000000000100,"first_token_unix_us":1700000000050300,"last_token_unix_us":1700000001040000,"end_unix_us":1700000001040100,"content_chunks":100,"requested_prompt_tokens":64,"prompt_tokens":64,"output_tokens":100}"#;

    #[test]
    fn a_record_line_gives_its_id_and_stamps() {
        assert_eq!(
            parse_record(LINE),
            Some(Record {
                id: "req-12".to_owned(),
                outcome: "successful".to_owned(),
                sent_us: 1_700_000_000_000_100,
                first_token_us: Some(1_700_000_000_050_300),
                end_us: 1_700_000_001_040_100,
            })
        );
        let no_token = LINE.replace(
            "\"first_token_unix_us\":1700000000050300",
            "\"first_token_unix_us\":null",
        );
        assert_eq!(parse_record(&no_token).unwrap().first_token_us, None);
        assert_eq!(parse_record("{\"request_id\":\"x\"}"), None);
        assert_eq!(parse_record(""), None);
    }

    #[test]
    fn records_join_the_wire_by_id_and_split_new_from_reused_connections() {
        let record = |id: &str, sent_us: i64, first_token_us: Option<i64>| Record {
            id: id.to_owned(),
            outcome: "successful".to_owned(),
            sent_us,
            first_token_us,
            end_us: sent_us + 1_000_000,
        };
        let wire = |id: &str, request_ns: i64, syn: Option<i64>, first: Option<i64>| WireExchange {
            id: Some(id.to_owned()),
            request_ns,
            new_connection_syn_ns: syn,
            status: Some(200),
            first_content_ns: first,
        };
        let j = join(
            &[
                record("req-1", 1_000, Some(60_000)),
                record("req-2", 2_000, Some(70_000)),
                record("req-3", 3_000, Some(80_000)),
                record("req-4", 4_000, None),
                record("req-5", 5_000_000, None),
            ],
            vec![
                // Stamped 0.3 ms before the SYN's connection carried it.
                wire("req-1", 1_300_000, Some(1_050_000), Some(59_800_000)),
                wire("req-2", 2_050_000, None, Some(69_000_000)),
                wire("req-3", 3_000_000, None, None),
                // The first request on a connection the pool opened 2 s before.
                wire("req-5", 5_000_000_100, Some(3_000_000_000), None),
                WireExchange {
                    id: None,
                    ..wire("", 0, None, None)
                },
            ],
        );
        assert_eq!(j.records, 5);
        assert_eq!(j.not_on_wire, 1);
        assert_eq!(j.first_token_without_wire, 1);
        assert_eq!(j.sent_new, [-0.3]);
        assert_eq!(j.sent_minus_syn, [-0.05]);
        assert_eq!(j.sent_reused, [-0.05, 0.0, -0.0001]);
        assert_eq!(j.first_token, [(59_800_000, 0.2), (69_000_000, 1.0)]);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarize(&values).unwrap();
        assert_eq!((s.median, s.p90, s.p99, s.n), (50.0, 90.0, 99.0, 100));
        let s = summarize(&[-3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.p99, s.abs_p99), (1.0, 2.0, 3.0));
        assert_eq!(summarize(&[]), None);
        assert_eq!(verdict(summarize(&[0.2, -0.9])), "PASS");
        assert_eq!(verdict(summarize(&[0.2, -1.1])), "MISS");
    }

    #[test]
    fn limits_and_tcpdump_counts_parse() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_files_limit(limits), Some((1024, 524_288)));
        assert_eq!(
            open_files_limit("Max open files unlimited unlimited files"),
            Some((u64::MAX, u64::MAX))
        );
        let said = "listening on lo, link-type EN10MB (Ethernet)\n\
                    1234 packets captured\n1300 packets received by filter\n66 packets dropped by kernel";
        assert_eq!(tcpdump_count(said, "packets captured"), Some(1234));
        assert_eq!(tcpdump_count(said, "packets dropped by kernel"), Some(66));
        assert_eq!(tcpdump_count("", "packets captured"), None);
    }

    #[test]
    fn the_config_is_a_concurrent_run_with_records() {
        let c = run_config(
            Path::new("/repo"),
            8123,
            500,
            15.0,
            Path::new("/t/records.jsonl"),
            Path::new("/t"),
        );
        for expected in [
            "url = \"http://127.0.0.1:8123\"",
            "kind = \"concurrent\"",
            "streams = [500]",
            "max_seconds = 15",
            "output_tokens = 100",
            "request_records = \"/t/records.jsonl\"",
            "tokenizer = \"/repo/data/tokenizer\"",
        ] {
            assert!(c.contains(expected), "{expected} missing from\n{c}");
        }
        assert_eq!(toml_string(r#"a\"b"#), r#""a\\\"b""#);
    }
}
