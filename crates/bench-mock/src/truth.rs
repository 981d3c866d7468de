//! The ground truth: what the server did with every request, for joining with a client's
//! records (by response `id` or the echoed `x-request-id`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::MockError;

/// What the server did with one request. Times are wall-clock microseconds since the Unix
/// epoch, derived from one monotonic clock, so differences between them are exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The response id (`chatcmpl-N` / `cmpl-N`), also the N-th request in arrival order.
    pub id: String,
    /// The client's `x-request-id` header, echoed back in the response.
    pub request_id: Option<String>,
    /// `chat` or `completions`.
    pub route: String,
    /// Whether the response was streamed.
    pub stream: bool,
    /// The HTTP status sent (0 when the connection was closed before any response).
    pub status: u16,
    /// The fault injected, if any.
    pub fault: Option<String>,
    /// When the request arrived (its headers were read).
    pub arrival_unix_us: i64,
    /// When it got a batch slot (after any queue wait).
    pub admitted_unix_us: Option<i64>,
    /// When the first content token was written: when the write call that handed its bytes
    /// to the kernel returned (over HTTP/1.1, plain or TLS; over HTTP/2, whose connection
    /// writes every stream's frames together, when it was handed to the connection). On
    /// loopback the kernel delivers the bytes inside that call, so a client may receive them a
    /// few microseconds earlier. A non-streamed body's tokens are all written with the body.
    pub first_token_unix_us: Option<i64>,
    /// When the last content token was written (as `first_token_unix_us`).
    pub last_token_unix_us: Option<i64>,
    /// With the `token_times` knob, when each content token of a streamed response was
    /// written (as `first_token_unix_us`), in order; absent otherwise. A token whose write
    /// never returned (the connection broke first) has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_times_unix_us: Option<Vec<i64>>,
    /// Prompt tokens as the server counted them.
    pub prompt_tokens: u32,
    /// Tokens the server meant to send.
    pub output_tokens_planned: u32,
    /// Of those, the reasoning tokens sent before the answer (the `reasoning_tokens` knob;
    /// chat only).
    #[serde(default)]
    pub reasoning_tokens_planned: u32,
    /// When the first answer token (the first after the reasoning) was written, as
    /// `first_token_unix_us`; equal to it without reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_answer_token_unix_us: Option<i64>,
    /// Content tokens handed to the connection.
    pub tokens_sent: u32,
    /// True when the response was sent to its end.
    pub completed: bool,
    /// A chat request's messages in order, each as a digest: enough to check that a
    /// multi-turn client resent its conversation exactly, without keeping the text. Absent
    /// for completions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageDigest>>,
}

/// One chat message as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDigest {
    /// Its `role`.
    pub role: String,
    /// Bytes of its text content.
    pub bytes: usize,
    /// FNV-1a (64 bits, hex) of its text content: equal digests, equal text.
    pub fnv64: String,
}

impl MessageDigest {
    /// The digest of a message of `role` with the text `content`.
    pub fn of(role: &str, content: &str) -> Self {
        let hash = content.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Self {
            role: role.to_owned(),
            bytes: content.len(),
            fnv64: format!("{hash:016x}"),
        }
    }
}

/// Turns `Instant`s into wall-clock microseconds consistently.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base_instant: Instant,
    base_unix_us: i64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            base_instant: Instant::now(),
            base_unix_us: i64::try_from(unix.as_micros()).unwrap_or(i64::MAX),
        }
    }

    pub(crate) fn unix_us(&self, at: Instant) -> i64 {
        let offset = i64::try_from(at.saturating_duration_since(self.base_instant).as_micros())
            .unwrap_or(i64::MAX);
        self.base_unix_us + offset
    }

    pub(crate) fn unix_s(&self, at: Instant) -> u64 {
        u64::try_from(self.unix_us(at) / 1_000_000).unwrap_or(0)
    }
}

/// Counters and token-timing precision, served at `GET /mock/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MockStats {
    /// Requests received on the completion routes.
    pub requests: u64,
    /// Connection probes answered (llm-bench's native engine sends one before a run); not
    /// in `requests`, the fault schedule or the ground truth.
    #[serde(default)]
    pub probes: u64,
    /// Responses by HTTP status (0: closed without a response).
    pub statuses: BTreeMap<u16, u64>,
    /// Injected faults by name.
    pub faults: BTreeMap<String, u64>,
    /// Content tokens written.
    pub tokens_sent: u64,
    /// Sequences decoding now.
    pub active: u64,
    /// Requests waiting for a batch slot now.
    pub queued: u64,
    /// Ground-truth records not kept in memory because `record_limit` was reached.
    pub records_dropped: u64,
    /// Connections served over HTTP/1.x (counted at their first request).
    #[serde(default)]
    pub http1_connections: u64,
    /// Connections served over HTTP/2 (counted at their first request).
    #[serde(default)]
    pub http2_connections: u64,
    /// TLS handshakes that failed or timed out (a refused client certificate, a client that
    /// spoke plain HTTP to the HTTPS port); the connection is closed, the server goes on.
    #[serde(default)]
    pub tls_handshake_failures: u64,
    /// Write time (as [`RequestRecord::first_token_unix_us`]) minus deadline, in
    /// microseconds, per streamed token or non-streamed body.
    pub token_lateness_us: Lateness,
}

/// The server's own counters and gauges, for [`Truth::stats`].
pub(crate) struct Counts {
    pub(crate) requests: u64,
    pub(crate) probes: u64,
    pub(crate) active: u64,
    pub(crate) queued: u64,
    pub(crate) http1_connections: u64,
    pub(crate) http2_connections: u64,
    pub(crate) tls_handshake_failures: u64,
}

/// A summary of token lateness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lateness {
    /// Tokens measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
}

/// Collects records in memory (up to a limit) and in the log file.
#[derive(Debug)]
pub(crate) struct Truth {
    records: Mutex<Vec<RequestRecord>>,
    limit: usize,
    dropped: AtomicU64,
    tokens: AtomicU64,
    /// The counters and histograms `/metrics` serves.
    pub(crate) served: crate::served::Served,
    log: Mutex<Option<(mpsc::Sender<String>, JoinHandle<()>)>>,
    statuses: Mutex<BTreeMap<u16, u64>>,
    faults: Mutex<BTreeMap<String, u64>>,
    lateness_ns: Mutex<hdrhistogram::Histogram<u64>>,
    /// Responses whose body has ended but whose last write has not returned yet: their
    /// records are pushed a moment after a client may have read the end.
    closing: AtomicU64,
}

/// How long a reader of the ground truth waits for ended responses' last writes: they take
/// microseconds, but a full socket buffer could hold one back indefinitely.
const SETTLE: Duration = Duration::from_millis(50);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Truth {
    pub(crate) fn new(limit: usize, log: Option<&Path>) -> Result<Self, MockError> {
        let log = match log {
            None => None,
            Some(path) => {
                let file = File::create(path).map_err(|e| MockError::Io {
                    what: format!("cannot create the ground-truth log {}", path.display()),
                    source: e,
                })?;
                let (tx, rx) = mpsc::channel::<String>();
                let writer = std::thread::Builder::new()
                    .name("bench-mock-log".to_owned())
                    .spawn(move || write_log(BufWriter::new(file), &rx))
                    .map_err(|e| MockError::Io {
                        what: "cannot start the log writer".to_owned(),
                        source: e,
                    })?;
                Some((tx, writer))
            }
        };
        Ok(Self {
            records: Mutex::new(Vec::new()),
            limit,
            dropped: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            served: crate::served::Served::default(),
            log: Mutex::new(log),
            statuses: Mutex::new(BTreeMap::new()),
            faults: Mutex::new(BTreeMap::new()),
            lateness_ns: Mutex::new(hdrhistogram::Histogram::new(3).expect("3 digits is valid")),
            closing: AtomicU64::new(0),
        })
    }

    /// A response's body ended; its record follows with [`Truth::closed`] once its last write
    /// returned.
    pub(crate) fn closing(&self) {
        self.closing.fetch_add(1, Ordering::AcqRel);
    }

    /// The record of a response counted by [`Truth::closing`].
    pub(crate) fn closed(&self, record: RequestRecord) {
        self.push(record);
        self.closing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Waits (at most [`SETTLE`]) until every ended response has its record, so that a client
    /// that has read a whole response finds it in the ground truth.
    fn settle(&self) {
        let until = Instant::now() + SETTLE;
        while self.closing.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    pub(crate) fn push(&self, record: RequestRecord) {
        self.served.ended(&record);
        *lock(&self.statuses).entry(record.status).or_default() += 1;
        if let Some(fault) = &record.fault {
            *lock(&self.faults).entry(fault.clone()).or_default() += 1;
        }
        if let Some((tx, _)) = lock(&self.log).as_ref() {
            if let Ok(line) = serde_json::to_string(&record) {
                let _ = tx.send(line);
            }
        }
        let mut records = lock(&self.records);
        if records.len() < self.limit {
            records.push(record);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts `tokens` written together, `lateness` after their deadline.
    pub(crate) fn tokens_written(&self, tokens: u64, lateness: Duration) {
        self.tokens.fetch_add(tokens, Ordering::Relaxed);
        let ns = u64::try_from(lateness.as_nanos()).unwrap_or(u64::MAX);
        let _ = lock(&self.lateness_ns).record(ns);
    }

    /// Content tokens written so far.
    pub(crate) fn tokens_written_total(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }

    pub(crate) fn records(&self) -> Vec<RequestRecord> {
        self.settle();
        lock(&self.records).clone()
    }

    pub(crate) fn stats(&self, counts: Counts) -> MockStats {
        self.settle();
        let h = lock(&self.lateness_ns);
        let us = |ns: u64| ns as f64 / 1000.0;
        MockStats {
            requests: counts.requests,
            probes: counts.probes,
            statuses: lock(&self.statuses).clone(),
            faults: lock(&self.faults).clone(),
            tokens_sent: self.tokens.load(Ordering::Relaxed),
            active: counts.active,
            queued: counts.queued,
            records_dropped: self.dropped.load(Ordering::Relaxed),
            http1_connections: counts.http1_connections,
            http2_connections: counts.http2_connections,
            tls_handshake_failures: counts.tls_handshake_failures,
            token_lateness_us: Lateness {
                count: h.len(),
                p50: us(h.value_at_quantile(0.5)),
                p99: us(h.value_at_quantile(0.99)),
                p99_9: us(h.value_at_quantile(0.999)),
                max: us(h.max()),
            },
        }
    }

    /// Flushes and closes the log file.
    pub(crate) fn close(&self) {
        if let Some((tx, writer)) = lock(&self.log).take() {
            drop(tx);
            let _ = writer.join();
        }
    }
}

fn write_log(mut out: BufWriter<File>, rx: &mpsc::Receiver<String>) {
    let mut failed = false;
    while let Ok(line) = rx.recv() {
        let mut batch = Some(line);
        // Write what is queued, then flush once, so a reader sees whole lines promptly.
        while let Some(line) = batch {
            if !failed && writeln!(out, "{line}").is_err() {
                failed = true;
                tracing::error!(
                    "cannot write the ground-truth log; later records are kept in memory only"
                );
            }
            batch = rx.try_recv().ok();
        }
        if !failed && out.flush().is_err() {
            failed = true;
        }
    }
    let _ = out.flush();
}
