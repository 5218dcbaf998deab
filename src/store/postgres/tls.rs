//! TLS for PostgreSQL connections, on rustls (no OpenSSL): `verify-full` checks the
//! server's certificate chain against a CA file or the platform's roots and its name
//! against the host connected to; `require` encrypts without checking who answers; a
//! Unix socket never uses TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::persist::StoreError;

/// How a connection to PostgreSQL is protected.
///
/// Unless [`PgOptions::tls`](super::PgOptions::tls) or the connection string's
/// `sslmode=disable`/`sslmode=require` says otherwise: [`TlsMode::VerifyFull`] for a host
/// name or address, [`TlsMode::Disable`] when every host is a Unix socket (TLS never
/// applies there). libpq's default `prefer`, which falls back to plaintext without a
/// word, is never used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// No TLS (a Unix socket, or a network you trust).
    Disable,
    /// TLS, without checking the server's certificate: protects against a passive
    /// eavesdropper only (libpq's `require`).
    Require,
    /// TLS, with the certificate checked against the CA file (or the platform's roots)
    /// and the host name (libpq's `verify-full`). A server that cannot prove it is the one
    /// named is refused: no fallback to plaintext.
    VerifyFull,
}

/// The CA certificates in a PEM file.
pub(super) fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| StoreError::Backend {
            operation: "read the PostgreSQL CA file",
            source: Box::new(e),
        })?;
    if certs.is_empty() {
        return Err(StoreError::Backend {
            operation: "read the PostgreSQL CA file",
            source: "no certificate in the CA file".into(),
        });
    }
    Ok(certs)
}

/// The connector for `mode`: `ca` (else the platform's roots) for `verify-full`.
pub(super) fn connector(
    mode: TlsMode,
    ca: Option<&[CertificateDer<'static>]>,
) -> Result<MakeRustlsConnect, StoreError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend {
            operation: "set up TLS",
            source: Box::new(e),
        })?;
    let config = match mode {
        TlsMode::VerifyFull | TlsMode::Disable => {
            let mut roots = RootCertStore::empty();
            match ca {
                Some(certs) => {
                    for cert in certs {
                        roots.add(cert.clone()).map_err(|e| StoreError::Backend {
                            operation: "read the PostgreSQL CA file",
                            source: Box::new(e),
                        })?;
                    }
                }
                // Disable never makes a TLS connection: no roots to look for.
                None if mode == TlsMode::Disable => {}
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(found.certs);
                    if roots.is_empty() {
                        return Err(StoreError::Backend {
                            operation: "set up TLS",
                            source: "no platform root certificates: give PgOptions::ca_file".into(),
                        });
                    }
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `require`: any certificate is accepted, but the handshake's signatures are still
/// checked, so the session keys belong to whoever holds that certificate's key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
