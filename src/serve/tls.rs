//! Optional HTTPS: a rustls server config (ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`)
//! from a PEM certificate chain and a PEM private key.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::error::ServeError;

pub(super) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(cert, e))?;
    if certs.is_empty() {
        return Err(ServeError::TlsInvalid {
            path: cert.to_path_buf(),
            message: "no CERTIFICATE block found".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| ServeError::TlsInvalid {
            path: key.to_path_buf(),
            message: format!("does not match {} or is unusable: {e}", cert.display()),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn pem_error(path: &Path, e: pem::Error) -> ServeError {
    match e {
        pem::Error::Io(source) => ServeError::TlsRead {
            path: path.to_path_buf(),
            source,
        },
        other => ServeError::TlsInvalid {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}
