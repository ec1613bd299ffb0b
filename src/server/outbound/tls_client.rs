//! TLS for the mail we send (rustls, ring provider). Remote MX hosts get
//! opportunistic TLS (RFC 7435): the certificate is checked against the
//! system's CA store and the result logged, but a failed check does not
//! stop delivery, since most MX certificates would fail it and the
//! alternative is plain text. The smarthost's certificate must pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

use crate::server::base::tls::BUFFER_LIMIT;

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::tls_client";

pub use crate::util::certs::ca_file;

/// The client side's shared pieces, made once at start.
pub struct ClientTls {
    base: Arc<ClientConfig>,
    /// The CA store's verifier; None when no CA could be read.
    verifier: Option<Arc<WebPkiServerVerifier>>,
}

/// How one connection's certificate check came out.
#[derive(Debug, Clone, Default)]
pub struct Checked(Arc<AtomicBool>);

impl Checked {
    /// `verified` or `unverified`, for the log.
    pub fn word(&self) -> &'static str {
        if self.0.load(Ordering::Relaxed) {
            "verified"
        } else {
            "unverified"
        }
    }
}

impl ClientTls {
    /// Reads the CA store (a missing or empty one leaves every peer
    /// unverified, and the smarthost unreachable).
    pub fn load() -> ClientTls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let file = ca_file();
        match CertificateDer::pem_file_iter(&file) {
            Ok(certs) => {
                let (added, _) =
                    roots.add_parsable_certificates(certs.flatten());
                log::debug!(target: LOG_TARGET,
                    "{} CA certificates from {}",
                    added,
                    file.display()
                );
            }
            Err(e) => log::warn!(target: LOG_TARGET,
                "no CA store ({}: {e}): outbound TLS is unverified",
                file.display()
            ),
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .ok();
        let unverified: Arc<dyn ServerCertVerifier> = Arc::new(Recorder {
            inner: verifier.clone(),
            required: false,
            checked: Checked::default(),
            schemes: provider
                .signature_verification_algorithms
                .supported_schemes(),
            algorithms: provider.signature_verification_algorithms,
        });
        let base = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[
                &rustls::version::TLS13,
                &rustls::version::TLS12,
            ])
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(unverified)
                    .with_no_client_auth()
            });
        let base = match base {
            Ok(b) => Arc::new(b),
            // invariant: the ring provider supports both versions.
            Err(e) => panic!("TLS client config: {e}"),
        };
        ClientTls { base, verifier }
    }

    /// A TLS session to `host`: `required` refuses a certificate the CA
    /// store does not vouch for.
    pub fn connect(
        &self,
        host: &str,
        required: bool,
    ) -> Result<(Box<rustls::ClientConnection>, Checked), Error> {
        let checked = Checked::default();
        let provider = rustls::crypto::ring::default_provider();
        let mut config = (*self.base).clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(Recorder {
                inner: self.verifier.clone(),
                required,
                checked: checked.clone(),
                schemes: provider
                    .signature_verification_algorithms
                    .supported_schemes(),
                algorithms: provider.signature_verification_algorithms,
            }));
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| Error::General(format!("bad server name {host}")))?;
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name)?;
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok((Box::new(conn), checked))
    }
}

/// Checks the certificate against the CA store and remembers the
/// verdict; unless `required`, lets the handshake go on either way. The
/// handshake's signatures are always checked.
#[derive(Debug)]
struct Recorder {
    inner: Option<Arc<WebPkiServerVerifier>>,
    required: bool,
    checked: Checked,
    schemes: Vec<SignatureScheme>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verdict = match &self.inner {
            Some(v) => v.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp,
                now,
            ),
            None => Err(Error::General("no CA store".into())),
        };
        match verdict {
            Ok(ok) => {
                self.checked.0.store(true, Ordering::Relaxed);
                Ok(ok)
            }
            Err(e) if self.required => Err(e),
            Err(e) => {
                log::debug!(target: LOG_TARGET, "certificate of {server_name:?} unverified: {e}");
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
