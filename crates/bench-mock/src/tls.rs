//! HTTPS: the server's certificate and key, client certificates (mutual TLS), the protocols
//! offered by ALPN, and the handshake, which runs in the connection's own task.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::MockConfig;
use crate::written::Stamped;
use crate::MockError;

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of every TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The TLS side of a mock that serves HTTPS.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
}

/// The protocol a client chose by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    H2,
    Http1,
    /// The client offered no protocol.
    None,
}

impl Tls {
    /// The TLS configuration of `config`, or None when it serves plain HTTP. Files that cannot
    /// be read or parsed are errors naming the knob and the path.
    pub(crate) fn load(config: &MockConfig) -> Result<Option<Self>, MockError> {
        let (Some(cert_path), Some(key_path)) = (&config.tls_cert, &config.tls_key) else {
            return Ok(None);
        };
        let chain = certificates("tls_cert", cert_path)?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
            bad(
                "tls_key",
                format!(
                    "cannot read a PEM private key from {}: {}",
                    key_path.display(),
                    pem_error(&e, "PRIVATE KEY (PKCS#8, PKCS#1 or SEC1)")
                ),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("tls_cert", e.to_string()))?;
        let builder = match &config.tls_client_ca {
            None => builder.with_no_client_auth(),
            Some(ca_path) => {
                let mut roots = RootCertStore::empty();
                for ca in certificates("tls_client_ca", ca_path)? {
                    roots.add(ca).map_err(|e| {
                        bad(
                            "tls_client_ca",
                            format!("{}: not a usable CA certificate: {e}", ca_path.display()),
                        )
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| bad("tls_client_ca", format!("{}: {e}", ca_path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_single_cert(chain, key).map_err(|e| {
            bad(
                "tls_key",
                format!(
                    "{} does not go with the certificate in {}: {e}",
                    key_path.display(),
                    cert_path.display()
                ),
            )
        })?;
        server.alpn_protocols = if config.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
        }))
    }

    /// The server side of the handshake, bounded in time. A client that speaks plain HTTP
    /// gets a 400 saying that this port serves HTTPS.
    pub(crate) async fn handshake(
        &self,
        stream: Stamped<TcpStream>,
    ) -> Result<(TlsStream<Stamped<TcpStream>>, Alpn), String> {
        let handshake = async {
            let mut first = [0_u8; 1];
            match stream.get_ref().peek(&mut first).await {
                Ok(0) => return Err("the client closed the connection".to_owned()),
                Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => {
                    refuse_plain_http(stream).await;
                    return Err("the client spoke plain HTTP".to_owned());
                }
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
            self.acceptor
                .accept(stream)
                .await
                .map_err(|e| e.to_string())
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| format!("no handshake within {HANDSHAKE_TIMEOUT:?}"))??;
        let alpn = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => Alpn::H2,
            Some(_) => Alpn::Http1,
            None => Alpn::None,
        };
        Ok((tls, alpn))
    }
}

fn bad(key: &str, message: String) -> MockError {
    MockError::Config {
        key: key.to_owned(),
        message,
    }
}

/// Every certificate of a PEM file; at least one.
fn certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, MockError> {
    let cannot = |e: String| {
        bad(
            key,
            format!("cannot read PEM certificates from {}: {e}", path.display()),
        )
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| cannot(pem_error(&e, "CERTIFICATE")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cannot(pem_error(&e, "CERTIFICATE")))?;
    if certificates.is_empty() {
        return Err(cannot(pem_error(
            &rustls_pki_types::pem::Error::NoItemsFound,
            "CERTIFICATE",
        )));
    }
    Ok(certificates)
}

/// Why a PEM file that should hold `sections` could not be read.
fn pem_error(error: &rustls_pki_types::pem::Error, sections: &str) -> String {
    match error {
        rustls_pki_types::pem::Error::Io(e) => e.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => format!("it holds no {sections} section"),
        other => other.to_string(),
    }
}

/// Answers a plain-HTTP request on the HTTPS port with a 400, as nginx does, then closes.
async fn refuse_plain_http(mut stream: Stamped<TcpStream>) {
    let body = crate::openai::error_body(
        "this port serves HTTPS: use an https:// URL",
        "invalid_request_error",
        None,
        400,
    );
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(response.as_bytes()).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    // Read what the client sent until it closes, so that closing does not reset the
    // connection before the client has read the answer.
    let mut sink = [0_u8; 4096];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_timing, chat, eventually, post, timing_config, Clients as _, Pki};
    use crate::{MockConfig, MockServer};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn https_streams_over_h2_with_tokens_on_time() {
        let pki = Pki::new();
        let server = MockServer::start(pki.https(timing_config())).await.unwrap();
        assert!(server.base_url().starts_with("https://127.0.0.1:"));
        let client = pki.client(None);
        let reply = post(&client, &server, "/v1/chat/completions", &chat(), None)
            .await
            .unwrap();
        assert_eq!(reply.version, reqwest::Version::HTTP_2);
        assert_eq!(reply.status, 200);
        assert!(reply.body.ends_with("data: [DONE]\n\n"));
        assert_timing(&server, &reply);
        // The same client's next request rides the same connection.
        let health = client
            .get(format!("{}/health", server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(health.version(), reqwest::Version::HTTP_2);
        let stats = server.stats();
        assert_eq!(
            (
                stats.http1_connections,
                stats.http2_connections,
                stats.tls_handshake_failures
            ),
            (0, 1, 0)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn https_without_http2_serves_http1_with_tokens_on_time() {
        let pki = Pki::new();
        let config = MockConfig {
            http2: false,
            ..pki.https(timing_config())
        };
        let server = MockServer::start(config).await.unwrap();
        // The client offers h2 first; the server only has http/1.1 to choose.
        let reply = post(
            &pki.client(None),
            &server,
            "/v1/chat/completions",
            &chat(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(reply.version, reqwest::Version::HTTP_11);
        assert_timing(&server, &reply);
        let stats = server.stats();
        assert_eq!((stats.http1_connections, stats.http2_connections), (1, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mutual_tls_refuses_clients_without_a_certificate_of_the_ca() {
        let pki = Pki::new();
        let config = MockConfig {
            tls_client_ca: Some(pki.client_ca.clone()),
            ..pki.https(MockConfig::default())
        };
        let server = MockServer::start(config).await.unwrap();
        let url = format!("{}/health", server.base_url());
        let refused = pki.client(None).get(&url).send().await;
        assert!(refused.is_err(), "{refused:?}");
        assert!(eventually(|| server.stats().tls_handshake_failures == 1).await);
        let stranger = pki.client(Some(&pki.stranger)).get(&url).send().await;
        assert!(stranger.is_err(), "{stranger:?}");
        assert!(eventually(|| server.stats().tls_handshake_failures == 2).await);

        let reply = post(
            &pki.client(Some(&pki.client)),
            &server,
            "/v1/chat/completions",
            &chat(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            (reply.status, reply.version),
            (200, reqwest::Version::HTTP_2)
        );
        assert!(reply.body.ends_with("data: [DONE]\n\n"));
        let stats = server.stats();
        assert_eq!(
            (stats.http2_connections, stats.tls_handshake_failures),
            (1, 2)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_http_to_the_https_port_gets_a_clear_400() {
        let pki = Pki::new();
        let server = MockServer::start(pki.https(MockConfig::default()))
            .await
            .unwrap();
        let plain = server.base_url().replace("https://", "http://");
        // (reqwest without a TLS config of its own panics: no default crypto provider.)
        let response = pki
            .client(None)
            .post(format!("{plain}/v1/chat/completions"))
            .json(&chat())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("https://"),
            "{body}"
        );
        assert!(eventually(|| server.stats().tls_handshake_failures == 1).await);
        assert_eq!(server.stats().requests, 0);
        // The server goes on serving HTTPS.
        let reply = post(
            &pki.client(None),
            &server,
            "/v1/chat/completions",
            &chat(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(reply.status, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_handshake_does_not_hold_up_other_clients() {
        let pki = Pki::new();
        let server = MockServer::start(pki.https(MockConfig::default()))
            .await
            .unwrap();
        // Connects and says nothing; then one that sends half a TLS record.
        let _silent = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let mut half = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut half, &[0x16, 0x03, 0x01])
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let response = pki
            .client(None)
            .get(format!("{}/health", server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[tokio::test]
    async fn bad_combinations_and_unreadable_files_name_the_knob_and_the_path() {
        let pki = Pki::new();
        let message = |config: MockConfig| config.validate().unwrap_err().to_string();
        assert_eq!(
            message(MockConfig {
                tls_cert: Some(pki.server.cert.clone()),
                ..MockConfig::default()
            }),
            "invalid mock setting `tls_key`: `tls_cert` is set: give its PEM private key too"
        );
        assert_eq!(
            message(MockConfig {
                tls_key: Some(pki.server.key.clone()),
                ..MockConfig::default()
            }),
            "invalid mock setting `tls_cert`: `tls_key` is set: give its PEM certificate chain too"
        );
        assert!(message(MockConfig {
            tls_client_ca: Some(pki.ca.clone()),
            ..MockConfig::default()
        })
        .starts_with("invalid mock setting `tls_client_ca`: client certificates need HTTPS"));

        let start_error = |config: MockConfig| async move {
            MockServer::start(config).await.unwrap_err().to_string()
        };
        let missing = pki.dir().join("missing.pem");
        let garbage = pki.dir().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let cases = [
            (
                MockConfig {
                    tls_cert: Some(missing.clone()),
                    ..pki.https(MockConfig::default())
                },
                "`tls_cert`",
                &missing,
            ),
            (
                MockConfig {
                    tls_cert: Some(garbage.clone()),
                    ..pki.https(MockConfig::default())
                },
                "`tls_cert`",
                &garbage,
            ),
            (
                MockConfig {
                    tls_key: Some(missing.clone()),
                    ..pki.https(MockConfig::default())
                },
                "`tls_key`",
                &missing,
            ),
            (
                MockConfig {
                    tls_key: Some(pki.server.cert.clone()),
                    ..pki.https(MockConfig::default())
                },
                "`tls_key`",
                &pki.server.cert,
            ),
            (
                MockConfig {
                    tls_client_ca: Some(garbage.clone()),
                    ..pki.https(MockConfig::default())
                },
                "`tls_client_ca`",
                &garbage,
            ),
        ];
        for (config, knob, path) in cases {
            let message = start_error(config).await;
            assert!(
                message.contains(knob) && message.contains(&path.display().to_string()),
                "{message}"
            );
        }
        // A key that is not the certificate's.
        let other = Pki::new();
        let message = start_error(MockConfig {
            tls_key: Some(other.server.key.clone()),
            ..pki.https(MockConfig::default())
        })
        .await;
        assert!(
            message.contains("`tls_key`") && message.contains("does not go with"),
            "{message}"
        );
    }
}
