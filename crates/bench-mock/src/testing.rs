//! Test helpers: certificates made at test time, HTTPS clients, and a streamed request read
//! chunk by chunk with when each event arrived.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

use crate::{MockConfig, MockServer};

pub(crate) use crate::test_pki::{Pair, Pki};

/// HTTPS clients for a [`Pki`].
pub(crate) trait Clients {
    /// A client that trusts the PKI's CA, offers `h2` and `http/1.1` by ALPN, and presents
    /// `identity` (a client certificate) when the server asks.
    fn client(&self, identity: Option<&Pair>) -> reqwest::Client;
}

impl Clients for Pki {
    fn client(&self, identity: Option<&Pair>) -> reqwest::Client {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.ca).unwrap())
            .unwrap();
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut tls = match identity {
            Some(pair) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_file(&pair.cert).unwrap()],
                    PrivateKeyDer::from_pem_file(&pair.key).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        // reqwest uses a preconfigured rustls config as it is: ALPN is the config's.
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        reqwest::Client::builder()
            .no_proxy()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap()
    }
}

/// A plain-HTTP client that speaks HTTP/1.1.
pub(crate) fn http1_client() -> reqwest::Client {
    plain_client(false)
}

/// A plain-HTTP client that speaks HTTP/2 with prior knowledge (h2c).
pub(crate) fn h2c_client() -> reqwest::Client {
    plain_client(true)
}

fn plain_client(h2c: bool) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Never used for http:// URLs, but reqwest wants a TLS config (no default provider).
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    let builder = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls);
    let builder = if h2c {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    builder.build().unwrap()
}

/// A streaming chat request with usage.
pub(crate) fn chat() -> Value {
    json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hello there mock"}],
        "stream": true,
        "stream_options": {"include_usage": true},
    })
}

/// A response read chunk by chunk.
pub(crate) struct Streamed {
    pub(crate) version: reqwest::Version,
    pub(crate) status: u16,
    pub(crate) body: String,
    /// Arrival time of each SSE event, by event index.
    pub(crate) event_times: Vec<Instant>,
    /// The body ended with a transport error (a closed connection or a reset stream).
    pub(crate) broken: bool,
}

/// Posts `body` to `path` and reads the whole response, or up to `events` SSE events (then
/// drops it, as a client that goes away does).
pub(crate) async fn post(
    client: &reqwest::Client,
    server: &MockServer,
    path: &str,
    body: &Value,
    events: Option<usize>,
) -> Result<Streamed, reqwest::Error> {
    let mut response = client
        .post(format!("{}{path}", server.base_url()))
        .json(body)
        .send()
        .await?;
    let mut streamed = Streamed {
        version: response.version(),
        status: response.status().as_u16(),
        body: String::new(),
        event_times: Vec::new(),
        broken: false,
    };
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                streamed.body.push_str(std::str::from_utf8(&chunk).unwrap());
                let now = Instant::now();
                while streamed.event_times.len() < streamed.body.matches("\n\n").count() {
                    streamed.event_times.push(now);
                }
                if events.is_some_and(|n| streamed.event_times.len() >= n) {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                streamed.broken = true;
                break;
            }
        }
    }
    Ok(streamed)
}

/// Waits up to a second for `condition` to hold.
pub(crate) async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

/// The precision test's bounds (`tests/integration/mock.rs`): TTFT 30 ms and 19 gaps of
/// 4 ms, never early, late only by what a busy shared machine adds.
pub(crate) fn timing_config() -> MockConfig {
    MockConfig {
        ttft_ms: 30.0,
        itl_ms: 4.0,
        output_tokens: 20,
        ..MockConfig::default()
    }
}

/// Checks the server's and the client's view of a [`timing_config`] stream.
pub(crate) fn assert_timing(server: &MockServer, reply: &Streamed) {
    let t = server.ground_truth().pop().unwrap();
    assert_eq!((t.tokens_sent, t.completed), (20, true));
    let ttft_us = t.first_token_unix_us.unwrap() - t.admitted_unix_us.unwrap();
    let decode_us = t.last_token_unix_us.unwrap() - t.first_token_unix_us.unwrap();
    assert!(
        (30_000..60_000).contains(&ttft_us),
        "server TTFT {ttft_us} us"
    );
    // Never early: every token is written at or after its deadline. A first token written a
    // few ms late (a loaded machine) shortens the span from it to the last one, so the lower
    // bound leaves 6 ms for that (a CI run once measured 73.7 ms).
    assert!(
        (70_000..95_000).contains(&decode_us),
        "19 gaps of 4 ms took {decode_us} us"
    );
    // Role chunk, 20 tokens, usage, [DONE].
    assert_eq!(reply.event_times.len(), 23, "{}", reply.body);
    let client_decode = reply.event_times[20] - reply.event_times[1];
    assert!(
        client_decode >= Duration::from_millis(70),
        "{client_decode:?}"
    );
    let lateness = server.stats().token_lateness_us;
    assert!(lateness.p50 < 1_000.0, "{lateness:?}");
}
