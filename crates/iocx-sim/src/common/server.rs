//! Running an emulator on a listener, over HTTP or TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tower::ServiceExt as _;

/// A self-signed certificate for `127.0.0.1` and `localhost`, for emulators whose SDK insists on
/// HTTPS.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate in PEM, to hand to clients as their CA bundle.
    pub cert_pem: String,
    /// The private key in PEM (PKCS #8), for servers that read key files.
    pub key_pem: String,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A fresh self-signed identity.
    ///
    /// # Errors
    /// When the certificate cannot be generated.
    pub fn self_signed() -> anyhow::Result<TlsIdentity> {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .context("generating a self-signed certificate")?;
        Ok(TlsIdentity {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
            cert: certified.cert.der().clone(),
            key: certified.signing_key.serialize_der(),
        })
    }

    fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(vec![self.cert.clone()], key)
        .context("TLS certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// A running emulator. Dropping the handle stops it.
#[derive(Debug)]
pub struct SimHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `http://ADDR` or `https://ADDR`.
    pub base_url: String,
    /// The TLS identity, when serving HTTPS.
    pub tls: Option<TlsIdentity>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// Stops accepting and waits for the accept loop to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server stops (it runs until the process ends or `stop` is called).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves `router` on `listener` (HTTP, or HTTPS with `tls`) until the returned handle stops.
///
/// # Errors
/// When the listener has no local address or the TLS identity is unusable.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<TlsIdentity>,
) -> anyhow::Result<SimHandle> {
    let addr = listener.local_addr().context("listener address")?;
    let acceptor = tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.changed() => break,
            };
            let Ok((stream, _peer)) = accepted else {
                continue;
            };
            let router = router.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        router.clone().oneshot(request.map(axum::body::Body::new))
                    },
                );
                let builder = auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls_stream) = acceptor.accept(stream).await {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(tls_stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Ok(SimHandle {
        addr,
        base_url: format!("{scheme}://{addr}"),
        tls,
        stop,
        task: Some(task),
    })
}
