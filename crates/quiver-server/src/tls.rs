//! HTTPS for `quiver serve`: rustls (with the ring provider, no C toolchain needed), certificate and key from PEM
//! files, optional client certificates (mutual TLS), and reload of the files on SIGHUP without dropping a
//! connection.
//!
//! Each accepted connection takes the configuration current at its handshake, so a reload changes what new
//! connections see and never touches connections already open; a reload that fails (a missing or mismatched file)
//! is logged and the previous certificate stays in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Where the certificate chain, its key and (for mutual TLS) the client CA certificates are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to; none: no client certificates asked for.
    pub client_ca: Option<PathBuf>,
}

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("reading the {what} {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading the {what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("the {what} {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Builds the rustls configuration from the files (each error names the file and what is wrong with it).
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = read_certs(&files.cert, "TLS certificate")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("reading the TLS key {}: {e} (expected a PEM private key)", files.key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca, "client CA file")? {
                roots.add(c).map_err(|e| format!("the client CA file {}: {e}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("the client CA file {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!("the TLS certificate {} and key {} do not fit: {e}", files.cert.display(), files.key.display())
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS configuration in use, replaced as a whole by [`Tls::reload`].
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl Tls {
    /// Loads the files (an error names the file at fault).
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, String> {
        let current = RwLock::new(server_config(&files)?);
        Ok(Arc::new(Tls { files, current }))
    }

    /// Reads the files again; on success new connections use them, on failure the old ones stay.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.files)?;
        *self.current.write() = config;
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.read()))
    }

    /// Reloads on every SIGHUP until the process ends (unix; elsewhere nothing).
    pub fn reload_on_sighup(self: &Arc<Self>) {
        #[cfg(unix)]
        {
            let tls = Arc::clone(self);
            tokio::spawn(async move {
                let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                    tracing::warn!("cannot listen for SIGHUP: TLS files will not be reloaded");
                    return;
                };
                while hup.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => tracing::info!(cert = %tls.files.cert.display(), "TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "TLS reload failed; the previous certificate stays"),
                    }
                }
            });
        }
    }
}

/// Serves `app` over TLS on `listener` until `stop` completes, then waits for the open connections to finish
/// their requests (the caller bounds that wait). HTTP/1.1 with upgrades (the change feed's WebSocket).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Arc<Tls>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connections are told to finish through this, then awaited: each ends after its request in flight.
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let acceptor = tls.acceptor();
        let service = TowerToHyperService::new(app.clone());
        let mut shutdown = shutdown_rx.clone();
        connections.spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = shutdown_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}
