//! Whether the server keeps a connection open after a streamed response.
//!
//! llama.cpp's server announces `Keep-Alive` yet closes the connection right after every
//! streamed response, without `Connection: close`. A closed-loop client that sends its next
//! request on that connection at once races the close; when it loses, the request never
//! reaches the server and fails as "connection closed before message completed". The client
//! cannot tell that apart from a server that read the request and then dropped it, so
//! resending would hide real faults. Instead, one probe finds out, and against such a server
//! every request gets its own connection, as the server forces anyway.
//!
//! The probe needs a fixed wait (the server's close may come a little after the stream's end,
//! and only waiting proves that no close is coming), so it runs beside the first benchmark
//! instead of before it: until it has decided, [`Reuse`] gives every request a connection of
//! its own and keeps none open, which is safe against either kind of server; once it finds
//! the server keeping its connections, requests reuse them. Watching a pooled socket for its
//! end instead would still race a close that is on its way while the next request goes out.
//! A fresh connection's set-up is timed apart from the request's TTFT (`setup.rs`), so the
//! early requests' TTFT means what the later ones' does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Marks the probe, so a server that wants to (our mock) can leave it out of its counts.
pub(crate) const PROBE_HEADER: &str = bench_target::PROBE_HEADER;

/// How long the probe waits after the stream ends for the server's close to arrive.
const CLOSE_GRACE: Duration = Duration::from_millis(100);
/// The longest the probe may take (a slow or silent server): then nothing is known.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

const UNDECIDED: u8 = 0;
const KEEP: u8 = 1;
const FRESH: u8 = 2;

/// Whether a request may leave its connection open for the next one: fixed by
/// `reuse_connections`, or undecided (no) until the probe decides.
#[derive(Debug)]
pub(crate) struct Reuse(AtomicU8);

impl Reuse {
    /// A decision made up front (the config's `reuse_connections`, or a run without streams).
    pub(crate) fn fixed(reuse: bool) -> Self {
        Self(AtomicU8::new(if reuse { KEEP } else { FRESH }))
    }

    /// Nothing known yet: requests open connections of their own until [`Reuse::decide`].
    pub(crate) fn undecided() -> Self {
        Self(AtomicU8::new(UNDECIDED))
    }

    pub(crate) fn decide(&self, reuse: bool) {
        self.0
            .store(if reuse { KEEP } else { FRESH }, Ordering::Release);
    }

    /// Whether requests keep and reuse connections now.
    pub(crate) fn now(&self) -> bool {
        self.0.load(Ordering::Acquire) == KEEP
    }
}

/// The two reqwest clients of a run, and which one requests take: the pooled one once
/// connections may be reused, else the one that keeps no idle connection.
#[derive(Debug)]
pub(crate) struct Clients {
    pub(crate) pooled: reqwest::Client,
    pub(crate) fresh: reqwest::Client,
    pub(crate) reuse: Arc<Reuse>,
}

impl Clients {
    /// One client for every request, reusing its connections (tests).
    #[cfg(test)]
    pub(crate) fn single(client: reqwest::Client) -> Self {
        Self {
            pooled: client.clone(),
            fresh: client,
            reuse: Arc::new(Reuse::fixed(true)),
        }
    }

    /// The client the next request goes on.
    pub(crate) fn now(&self) -> &reqwest::Client {
        if self.reuse.now() {
            &self.pooled
        } else {
            &self.fresh
        }
    }
}

/// The probe running beside the run; it decides `reuse` when it ends.
#[derive(Debug)]
pub(crate) struct Probe(tokio::task::JoinHandle<Option<bool>>);

impl Probe {
    /// Starts the probe on `client` (see [`closes_streams_silently`]); when it ends, `reuse`
    /// becomes yes unless the server was seen closing after a stream.
    pub(crate) fn start(
        client: reqwest::Client,
        url: String,
        models_url: String,
        body: bytes::Bytes,
        reuse: Arc<Reuse>,
    ) -> Self {
        Self(tokio::spawn(async move {
            let silent_close = closes_streams_silently(&client, &url, &models_url, body).await;
            reuse.decide(silent_close != Some(true));
            silent_close
        }))
    }

    /// Waits for the probe's answer (at most its grace and a round trip after a short run)
    /// unless `cancel` comes first: `Some(true)` when the server closes after streams.
    pub(crate) async fn finish(self, cancel: &bench_core::CancelToken) -> Option<bool> {
        let task = self.0;
        let abort = task.abort_handle();
        tokio::select! {
            answer = task => answer.ok().flatten(),
            () = cancel.cancelled() => {
                abort.abort();
                None
            }
        }
    }
}

/// Sends one streamed request (`body`, one output token) and then a `GET` to `models_url` on
/// the same client. `Some(true)` when the second went out on a new connection because the
/// server had closed the first without announcing it; `None` when either failed, so nothing
/// is known. (A server that sends `Connection: close` is never raced: no client reuses that
/// connection.)
pub(crate) async fn closes_streams_silently(
    client: &reqwest::Client,
    url: &str,
    models_url: &str,
    body: bytes::Bytes,
) -> Option<bool> {
    tokio::time::timeout(PROBE_LIMIT, probe(client, url, models_url, body))
        .await
        .ok()
        .flatten()
}

async fn probe(
    client: &reqwest::Client,
    url: &str,
    models_url: &str,
    body: bytes::Bytes,
) -> Option<bool> {
    let streamed = client
        .post(url)
        .header(PROBE_HEADER, "connection")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    if !streamed.status().is_success() {
        return None;
    }
    let announced_close = streamed
        .headers()
        .get(reqwest::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let first = local_addr(&streamed)?;
    streamed.bytes().await.ok()?;
    if announced_close {
        return Some(false);
    }
    tokio::time::sleep(CLOSE_GRACE).await;
    let second = client.get(models_url).send().await.ok()?;
    let silent_close = local_addr(&second)? != first;
    second.bytes().await.ok()?;
    tracing::debug!("connection probe: the server closed the connection after a stream without notice: {silent_close}");
    Some(silent_close)
}

/// This end of the connection the response came on.
fn local_addr(response: &reqwest::Response) -> Option<SocketAddr> {
    response
        .extensions()
        .get::<hyper_util::client::legacy::connect::HttpInfo>()
        .map(hyper_util::client::legacy::connect::HttpInfo::local_addr)
}
