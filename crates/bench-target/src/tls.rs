//! HTTPS: the rustls client configuration `[target.tls]` asks for, and the words for a
//! handshake that fails.
//!
//! One crypto provider (ring) is named here rather than installed process-wide, so that a
//! program embedding llm-bench (the Python package) keeps its own choice.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use bench_core::config::Tls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::TargetError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `tls`, offering HTTP/2 by ALPN when `http2`. `https` says
/// whether the target is reached over TLS at all: reading the system's trust store costs tens
/// of milliseconds, which a plain-HTTP client (and each test process) need not pay.
pub(crate) fn client_config(
    tls: &Tls,
    http2: bool,
    https: bool,
) -> Result<ClientConfig, TargetError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| setting("target.tls", format!("no TLS version is usable: {e}")))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let roots = match &tls.ca_file {
            Some(path) => ca_bundle(path)?,
            None if https => system_roots().clone(),
            None => RootCertStore::empty(),
        };
        builder.with_root_certificates(roots)
    };
    let mut config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "target.tls.client_cert")?;
            let key = PrivateKeyDer::from_pem_file(cert_path(key)).map_err(|e| {
                setting(
                    "target.tls.client_key",
                    format!("cannot read a PEM private key from `{key}`: {e}"),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                setting(
                    "target.tls.client_key",
                    format!("does not go with target.tls.client_cert: {e}"),
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

fn cert_path(path: &str) -> &Path {
    Path::new(path)
}

fn setting(key: &str, message: String) -> TargetError {
    TargetError::Setting {
        key: key.to_owned(),
        message,
    }
}

fn certificates(path: &str, key: &str) -> Result<Vec<CertificateDer<'static>>, TargetError> {
    let read: Result<Vec<_>, _> = CertificateDer::pem_file_iter(cert_path(path))
        .map_err(|e| setting(key, format!("cannot read `{path}`: {e}")))?
        .collect();
    let certificates =
        read.map_err(|e| setting(key, format!("`{path}` is not a PEM certificate file: {e}")))?;
    if certificates.is_empty() {
        return Err(setting(
            key,
            format!("`{path}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certificates)
}

/// The certificate authorities of `target.tls.ca_file`, instead of the system's.
fn ca_bundle(path: &str) -> Result<RootCertStore, TargetError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path, "target.tls.ca_file")? {
        roots.add(certificate).map_err(|e| {
            setting(
                "target.tls.ca_file",
                format!("`{path}` holds a certificate that cannot be a trust anchor: {e}"),
            )
        })?;
    }
    Ok(roots)
}

/// The system's trust store (`/etc/ssl/certs` and friends, as `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` direct), read once.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!("reading the system's certificates: {error}");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!("system trust store: {added} certificates ({ignored} unusable)");
        roots
    })
}

/// `insecure_skip_verify`: any certificate is accepted; the handshake's signatures are still
/// checked, so the connection is encrypted, just not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Makes a TLS connection to `host:port` as the client would, sends one request and reads the
/// start of the answer, and returns what failed, explained: for failures that the HTTP client
/// reports only as a closed connection (a server that refuses the client's certificate after
/// a TLS 1.3 handshake sends its alert with the first read).
pub(crate) async fn diagnose(
    target: &bench_core::config::Target,
    host: &str,
    port: u16,
) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let config = client_config(&target.tls, false, true).ok()?;
    let name = target
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| host.to_owned());
    let server_name = ServerName::try_from(name.clone()).ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let mut tls = match connector.connect(server_name, tcp).await {
            Ok(tls) => tls,
            Err(error) => return tls_failure(&error).map(|e| explain(e, &name)),
        };
        let request =
            format!("GET /v1/models HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
        if let Err(error) = tls.write_all(request.as_bytes()).await {
            return tls_failure(&error).map(|e| explain(e, &name));
        }
        let mut buffer = [0u8; 64];
        match tls.read(&mut buffer).await {
            Err(error) => tls_failure(&error).map(|e| explain(e, &name)),
            Ok(_) => None,
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), attempt)
        .await
        .ok()
        .flatten()
}

/// The TLS failure inside `error`'s chain, if it is one: rustls's error travels inside an
/// `io::Error`, whose `source()` skips it, so each io error is opened on the way.
pub(crate) fn tls_failure<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(inner);
        }
        current = e.source();
    }
    None
}

/// What a failed handshake means for the user, and what to change.
pub(crate) fn explain(error: &rustls::Error, host: &str) -> String {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("the server's certificate has expired ({error}); renew it on the server"),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => format!("the server's certificate is not valid yet ({error}); check the clocks"),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => "the server's certificate is not signed by a trusted authority; give its CA bundle in target.tls.ca_file (or, for a test server only, set target.tls.insecure_skip_verify = true)".to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("the server's certificate is not valid for `{host}` ({error}); connect by a name the certificate holds, or set target.tls.server_name to one"),
        rustls::Error::AlertReceived(
            alert @ (Alert::CertificateRequired
            | Alert::HandshakeFailure
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::AccessDenied),
        ) => format!("the server refused the TLS handshake (alert: {alert:?}): it wants a client certificate it trusts; give one in target.tls.client_cert and target.tls.client_key"),
        other => format!("the TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_names_the_key_and_the_path() {
        let tls = Tls {
            ca_file: Some("/nonexistent/ca.pem".to_owned()),
            ..Tls::default()
        };
        let error = client_config(&tls, true, true).unwrap_err().to_string();
        assert!(
            error.contains("target.tls.ca_file") && error.contains("/nonexistent/ca.pem"),
            "{error}"
        );
        let dir = std::env::temp_dir().join(format!("bench-target-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let tls = Tls {
            ca_file: Some(empty.display().to_string()),
            ..Tls::default()
        };
        let error = client_config(&tls, true, true).unwrap_err().to_string();
        assert!(error.contains("holds no PEM certificate"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn alpn_offers_h2_unless_http2_is_off() {
        let on = client_config(&Tls::default(), true, true).unwrap();
        assert_eq!(on.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        let off = client_config(&Tls::default(), false, false).unwrap();
        assert_eq!(off.alpn_protocols, [b"http/1.1".to_vec()]);
    }
}
