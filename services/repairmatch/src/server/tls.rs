//! TLS and mutual TLS for the gRPC port (`[server.tls]`), reloaded when the
//! files change.
//!
//! cert-manager renews a certificate by rewriting the Secret mounted beside
//! the service; the service reads the files again when their directory
//! changes and hands the new certificate to every handshake after that.
//! Connections already up keep the session they made. Files that do not load
//! together (a renewal caught half-written, a key that is not the
//! certificate's) are refused with a log line and a count, and the previous
//! certificate keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;
use crate::metrics::Metrics;
use crate::reload::{DirectoryWatch, watch_directories};

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file is missing, unreadable or not PEM of the right kind.
    #[error("{}: {source}", .file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// A PEM file holds no certificate.
    #[error("{}: no certificate in it", .0.display())]
    NoCertificate(PathBuf),
    /// The client CA cannot verify clients.
    #[error("server.tls.client_ca_file: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
    /// rustls refused the combination (a key that does not match the
    /// certificate, an unsupported key type).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls server config the files describe: HTTP/2 only (gRPC), and
/// client certificates required when `client_ca_file` is set.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&tls.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|source| TlsError::File { file: tls.key_file.clone(), source })?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca_file {
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(ca_file)? {
                roots.add(certificate)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::File { file: file.to_owned(), source };
    let chain =
        CertificateDer::pem_file_iter(file).map_err(pem_error)?.collect::<Result<Vec<_>, _>>().map_err(pem_error)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(file.to_owned()));
    }
    Ok(chain)
}

/// The TLS config in force, swapped when the files change.
#[derive(Debug)]
pub struct ReloadingTls {
    current: Arc<ArcSwap<ServerConfig>>,
    _watch: DirectoryWatch,
}

impl ReloadingTls {
    /// Loads the files (they must load now: a server does not start on a
    /// certificate it cannot serve) and watches their directories.
    pub fn start(tls: TlsConfig, metrics: Metrics) -> anyhow::Result<Self> {
        let current = Arc::new(ArcSwap::new(server_config(&tls)?));
        let files: Vec<PathBuf> = tls.files().map(Path::to_owned).collect();
        let swapped = Arc::clone(&current);
        let watch = watch_directories(&files, move || match server_config(&tls) {
            Ok(config) => {
                swapped.store(config);
                tracing::info!(cert_file = %tls.cert_file.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                metrics.tls_reloads_refused.inc();
                tracing::error!(%error, "TLS files refused; the previous certificate keeps serving");
            }
        })?;
        Ok(Self { current, _watch: watch })
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }
}
