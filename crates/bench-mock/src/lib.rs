//! bench-mock: an OpenAI-compatible mock server whose timings are known, so that a benchmark's
//! accuracy can be shown against it.
//!
//! - Every token is written at an absolute deadline (arrival + queue wait + prefill, then one
//!   drawn gap per token) by a precise timer, so lateness never accumulates.
//! - A load model: at most `max_batch` sequences decode at once, the rest wait in FIFO order
//!   (their wait is part of their TTFT), the gaps grow with the batch, and a full queue refuses.
//! - Seeded faults: HTTP 429/500/503, resets, streams closed or stalled mid-way, broken chunks,
//!   a missing `[DONE]`, error objects inside the stream.
//! - HTTP/1.1 and HTTP/2, over plain HTTP or HTTPS (optionally mutual TLS), with every
//!   behaviour the same over both protocols.
//! - Ground truth per request (arrival, first and last token writes, optionally every token's,
//!   tokens, fault) at `GET /mock/ground-truth` and in a JSON-lines log, joinable by response
//!   id or `x-request-id`. A token counts as written when the write call that handed its
//!   bytes to the kernel returned.
//!
//! Use it as a library ([`MockServer::start`]), as `llm-bench mock-server`, or as the embedded
//! default target of an llm-bench config (`target.kind = "mock"`). The reference is
//! `docs/mock-server.md`.

mod config;
mod openai;
mod served;
mod server;
mod stream;
#[cfg(any(test, feature = "test-pki"))]
pub mod test_pki;
#[cfg(test)]
mod testing;
mod tls;
mod tokens;
mod truth;
mod written;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Notify;

pub use config::{DelayDistribution, FaultKind, FaultSpec, MockConfig};
pub use truth::{Lateness, MessageDigest, MockStats, RequestRecord};

/// The text of a response of `tokens` generated tokens, as the mock writes it (one word, with
/// its leading space, per token).
pub fn response_text(tokens: u32) -> String {
    (0..tokens).map(openai::token_text).collect()
}

/// Why the mock could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// A knob has a value the mock cannot use.
    #[error("invalid mock setting `{key}`: {message}")]
    Config {
        /// The knob.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The operating system refused (a port in use, a file that cannot be created).
    #[error("{what}")]
    Io {
        /// What the mock was doing.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running mock server. Dropping it stops the server.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<server::State>,
    stop: Arc<Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for server::State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl MockServer {
    /// Validates `config`, binds `host:port` and starts serving on the current tokio runtime.
    pub async fn start(config: MockConfig) -> Result<Self, MockError> {
        let (host, port) = (config.host.clone(), config.port);
        let state = Arc::new(server::State::new(config)?);
        let (listener, addr) = server::bind(&host, port).await?;
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(server::serve(listener, state.clone(), stop.clone()));
        tracing::debug!("mock server listening on {addr}");
        Ok(Self {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, or `https://ADDR` when it serves HTTPS: the base URL to give a client.
    pub fn base_url(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The ground-truth records of finished requests, in the order they finished.
    pub fn ground_truth(&self) -> Vec<RequestRecord> {
        self.state.truth.records()
    }

    /// Counters and token-timing precision so far.
    pub fn stats(&self) -> MockStats {
        self.state.stats()
    }

    /// Stops accepting, closes open connections, and flushes the log.
    pub async fn shutdown(mut self) {
        self.stop.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.state.timer.stop();
        self.state.truth.close();
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            self.state.timer.stop();
            self.state.truth.close();
        }
    }
}
