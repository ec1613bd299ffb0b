//! Certificate files both the server and its helpers read: the system's
//! CA store, and when a PEM certificate expires.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The system's CA store (`SSL_CERT_FILE` overrides it).
pub fn ca_file() -> PathBuf {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into())
}

/// When the first certificate in the PEM file `cert` expires (epoch
/// seconds).
pub fn expiry(cert: &Path) -> Option<i64> {
    let first = CertificateDer::pem_file_iter(cert).ok()?.next()?.ok()?;
    crate::proto::x509::not_after(&first)
}
