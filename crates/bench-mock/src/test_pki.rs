//! Certificates made at test time, for HTTPS tests of the mock and of its clients (feature
//! `test-pki`): one generator instead of one per test suite. The CA and the certificates it
//! signs have different subjects, so that OpenSSL (genai-bench's Python) does not take a
//! server certificate for a self-signed one.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::MockConfig;

/// A certificate file and its key file (PEM).
#[derive(Debug, Clone)]
pub struct Pair {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// Every certificate the HTTPS tests need, as PEM files in a temporary directory that lives as
/// long as this value.
#[derive(Debug)]
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA that signed every server certificate.
    pub ca: PathBuf,
    /// For 127.0.0.1 (IP SAN) and localhost.
    pub server: Pair,
    /// For 127.0.0.1 and localhost, expired in 2021.
    pub expired: Pair,
    /// For `other.example` only.
    pub other: Pair,
    /// The CA that signed `client`.
    pub client_ca: PathBuf,
    /// A client certificate signed by `client_ca`.
    pub client: Pair,
    /// A client certificate signed by neither CA.
    pub stranger: Pair,
}

/// A certificate authority of its own.
fn authority(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert, Issuer::new(params, key))
}

impl Pki {
    /// Generates the certificates and writes them to a new temporary directory.
    #[expect(
        clippy::new_without_default,
        reason = "it writes files: not a default value"
    )]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let leaf = |file: &str,
                    names: &[&str],
                    usage: ExtendedKeyUsagePurpose,
                    issuer: &Issuer<'static, KeyPair>,
                    expired: bool| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, "llm-bench test");
            params.extended_key_usages = vec![usage];
            params.use_authority_key_identifier_extension = true;
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            Pair {
                cert: write(&format!("{file}.pem"), cert.pem()),
                key: write(&format!("{file}.key"), key.serialize_pem()),
            }
        };
        let (ca, issuer) = authority("llm-bench test CA");
        let (client_ca, client_issuer) = authority("llm-bench test client CA");
        let (_, stranger_issuer) = authority("another CA");
        let here = ["127.0.0.1", "localhost"];
        let (server_use, client_use) = (
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            server: leaf("server", &here, server_use.clone(), &issuer, false),
            expired: leaf("expired", &here, server_use.clone(), &issuer, true),
            other: leaf("other", &["other.example"], server_use, &issuer, false),
            client: leaf("client", &[], client_use.clone(), &client_issuer, false),
            stranger: leaf("stranger", &[], client_use, &stranger_issuer, false),
            ca: write("ca.pem", ca.pem()),
            client_ca: write("client-ca.pem", client_ca.pem()),
            dir,
        }
    }

    /// The directory holding the files (removed when this value is dropped).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `config` serving HTTPS with the `server` certificate.
    pub fn https(&self, config: MockConfig) -> MockConfig {
        MockConfig {
            tls_cert: Some(self.server.cert.clone()),
            tls_key: Some(self.server.key.clone()),
            ..config
        }
    }
}
