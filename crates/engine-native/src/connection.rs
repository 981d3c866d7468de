//! Whether the server keeps a connection open after a streamed response.
//!
//! llama.cpp's server announces `Keep-Alive` yet closes the connection right after every
//! streamed response, without `Connection: close`. A closed-loop client that sends its next
//! request on that connection at once races the close; when it loses, the request never
//! reaches the server and fails as "connection closed before message completed". The client
//! cannot tell that apart from a server that read the request and then dropped it, so
//! resending would hide real faults. Instead, one probe before the first benchmark finds out,
//! and against such a server every request gets its own connection, as the server forces
//! anyway.

use std::net::SocketAddr;
use std::time::Duration;

/// Marks the probe, so a server that wants to (our mock) can leave it out of its counts.
pub(crate) const PROBE_HEADER: &str = bench_target::PROBE_HEADER;

/// How long the probe waits after the stream ends for the server's close to arrive.
const CLOSE_GRACE: Duration = Duration::from_millis(100);
/// The longest the probe may hold up the run (a slow or silent server): then nothing is known.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

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
