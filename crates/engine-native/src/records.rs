//! Per-request records, streamed to a JSON-lines file when `[engines.native] request_records`
//! names one: every request of every benchmark, warmup and cooldown included, as it finishes.
//! Memory stays flat: lines go to a writer thread, not into a list.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;

use crate::aggregate::Clock;
use crate::client::{Exchange, Outcome};

/// One line of the file.
#[derive(Debug, Serialize)]
struct Line<'a> {
    benchmark: usize,
    /// Also sent as the request's `x-request-id` header, for joining with server logs.
    request_id: &'a str,
    outcome: &'static str,
    error_kind: Option<&'static str>,
    status_code: Option<u16>,
    error: Option<&'a str>,
    intended_unix_us: i64,
    /// When the client started the request (before opening a connection for it).
    started_unix_us: i64,
    /// When the server could see the whole request (the write of its last byte returned).
    sent_unix_us: i64,
    /// Whether the response times are the kernel's receive times (else the client's reads).
    kernel_timestamps: bool,
    first_token_unix_us: Option<i64>,
    last_token_unix_us: Option<i64>,
    end_unix_us: i64,
    content_chunks: u32,
    /// The first answer chunk (reasoning models: after the reasoning chunks).
    first_answer_token_unix_us: Option<i64>,
    /// Content chunks that carried only reasoning.
    reasoning_chunks: u32,
    /// The prompt length the client built the request for.
    requested_prompt_tokens: u32,
    /// The server's count (`usage.prompt_tokens`).
    prompt_tokens: Option<u64>,
    output_tokens: Option<u64>,
    /// The server's own `timings` (llama.cpp): `prompt_n`, `prompt_ms`, `predicted_n`,
    /// `predicted_per_token_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    server_timings: Option<crate::client::ServerTimings>,
}

#[derive(Debug)]
pub(crate) struct Records {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<String>>>,
    writer: Mutex<Option<JoinHandle<std::io::Result<()>>>>,
}

impl Records {
    pub(crate) fn create(path: &Path) -> std::io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        let (sender, receiver) = mpsc::channel::<String>();
        let writer = std::thread::Builder::new()
            .name("native-records".to_owned())
            .spawn(move || write_all(file, &receiver))?;
        Ok(Self {
            path: path.to_path_buf(),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    pub(crate) fn record(&self, benchmark: usize, request_id: &str, ex: &Exchange, clock: &Clock) {
        let at = |t: Instant| clock.at(t).unix_micros();
        let (outcome, failure) = match &ex.outcome {
            Outcome::Successful => ("successful", None),
            Outcome::Incomplete => ("incomplete", None),
            Outcome::Errored(f) => ("errored", Some(f)),
        };
        let line = Line {
            benchmark,
            request_id,
            outcome,
            error_kind: failure.map(|f| f.kind),
            status_code: failure.and_then(|f| f.status),
            error: failure.map(|f| f.message.as_str()),
            intended_unix_us: at(ex.intended),
            started_unix_us: at(ex.started),
            sent_unix_us: at(ex.sent),
            kernel_timestamps: ex.timing.kernel,
            first_token_unix_us: ex.first_token.map(at),
            last_token_unix_us: ex.last_token.map(at),
            end_unix_us: at(ex.end),
            content_chunks: ex.content_chunks,
            first_answer_token_unix_us: ex.phases.first_answer.map(at),
            reasoning_chunks: ex.phases.reasoning_chunks,
            requested_prompt_tokens: ex.client_prompt_tokens,
            prompt_tokens: ex.usage.and_then(|u| u.prompt_tokens),
            output_tokens: ex.usage.and_then(|u| u.completion_tokens),
            server_timings: ex.server_timings,
        };
        if let (Ok(text), Some(sender)) =
            (serde_json::to_string(&line), lock(&self.sender).as_ref())
        {
            let _ = sender.send(text);
        }
    }

    /// Flushes and closes the file.
    pub(crate) fn close(&self) -> Result<(), String> {
        drop(lock(&self.sender).take());
        match lock(&self.writer).take().map(JoinHandle::join) {
            Some(Ok(Err(error))) => Err(format!(
                "cannot write request records to {}: {error}",
                self.path.display()
            )),
            Some(Err(_)) => Err(format!("the writer of {} failed", self.path.display())),
            _ => Ok(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn write_all(mut out: BufWriter<File>, receiver: &mpsc::Receiver<String>) -> std::io::Result<()> {
    while let Ok(line) = receiver.recv() {
        writeln!(out, "{line}")?;
        while let Ok(next) = receiver.try_recv() {
            writeln!(out, "{next}")?;
        }
        // Flush once the queue is empty, so a reader following the file sees whole lines.
        out.flush()?;
    }
    out.flush()
}
