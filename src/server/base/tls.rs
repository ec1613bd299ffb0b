//! TLS through rustls (TLS 1.2 and 1.3, the ring provider): loading the
//! certificate and key, and describing a finished handshake. The records
//! themselves are moved in `conn.rs`, inside the poll loop.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::proto::smtp::TlsInfo;

/// Per-connection cap on buffered TLS output: a client that stops
/// reading cannot make us hold more than this (plus the loop's own
/// reply buffer cap).
pub const BUFFER_LIMIT: usize = 32 * 1024;

/// Builds a server config from a PEM chain and a PEM key (PKCS#8, RSA or
/// SEC1). Errors name the file at fault.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect())
            .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[
            &rustls::version::TLS13,
            &rustls::version::TLS12,
        ])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))?;
    // Sessions resume through tickets only: no per-session state here.
    config.session_storage =
        Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

pub use crate::util::certs::expiry;

/// `config` for the web listener: the same certificate, offering
/// `http/1.1` by ALPN.
pub fn for_http(config: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut http = ServerConfig::clone(config);
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(http)
}

/// A new server-side TLS session on `config`, its buffered output
/// capped at [`BUFFER_LIMIT`].
pub fn session(
    config: &Arc<ServerConfig>,
) -> Result<Box<rustls::ServerConnection>, rustls::Error> {
    let mut t = rustls::ServerConnection::new(Arc::clone(config))?;
    t.set_buffer_limit(Some(BUFFER_LIMIT));
    Ok(Box::new(t))
}

/// What to write in Received about a finished handshake.
pub fn describe(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "TLS".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map_or_else(|| format!("{suite:?}"), str::to_string)
        })
        .unwrap_or_default();
    TlsInfo { version, cipher }
}
