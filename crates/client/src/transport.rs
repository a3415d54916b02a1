//! The byte stream under the WebSocket: plain TCP for `http://` servers, TLS (rustls with
//! the *ring* provider) for `https://` ones, optionally bound to a source address first.
//!
//! Certificates are checked against the system's trust store, plus any CA given in
//! [`TlsConfig::with_extra_ca`] (for a self-hosted server with its own certificate
//! authority). There is no switch to skip verification: a terminal client that does not
//! check the server would give up the one advantage it has over a served web page.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A connected stream, plain or TLS.
#[derive(Debug)]
pub enum Transport {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<TlsStream<TcpStream>>),
}

/// How to check servers' certificates. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsConfig(Arc<ClientConfig>);

/// The TLS trust store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A CA file could not be read or has no certificate.
    #[error("CA certificate {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// No certificate could be trusted at all.
    #[error("no trusted certificates: the system store is empty and no --ca-cert was given")]
    NoRoots,
    /// rustls refused the configuration.
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsConfig {
    /// The system's trust store.
    pub fn system() -> Result<Self, TlsConfigError> {
        Self::build(None)
    }

    /// The system's trust store plus the CA certificates (PEM) in `path`.
    pub fn with_extra_ca(path: &Path) -> Result<Self, TlsConfigError> {
        Self::build(Some(path))
    }

    fn build(extra: Option<&Path>) -> Result<Self, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped: one bad file must not stop the rest.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = extra {
            let shown = path.display().to_string();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| TlsConfigError::CaFile {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?
                .collect::<Result<_, _>>()
                .map_err(|e| TlsConfigError::CaFile {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(TlsConfigError::CaFile {
                    path: shown,
                    reason: "no PEM certificate in it".to_owned(),
                });
            }
            for cert in certs {
                roots.add(cert).map_err(TlsConfigError::Rustls)?;
            }
        }
        if roots.is_empty() {
            return Err(TlsConfigError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self(Arc::new(config)))
    }
}

/// Where a `ws://` or `wss://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else {
            return Err(format!("{url}: not a ws:// or wss:// URL"));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{url}: bad port"))?,
                None => default_port,
            };
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, p)) => (
                    host.to_owned(),
                    p.parse().map_err(|_| format!("{url}: bad port"))?,
                ),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Self { tls, host, port })
    }
}

/// Connects TCP (bound to `local` first if given), then TLS for `wss://`.
pub(crate) async fn connect(
    target: &Target,
    local: Option<IpAddr>,
    tls: Option<&TlsConfig>,
) -> io::Result<Transport> {
    let remote = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await?
        .find(|addr| local.is_none_or(|l| l.is_ipv4() == addr.is_ipv4()))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host does not resolve"))?;
    let stream = match local {
        None => TcpStream::connect(remote).await?,
        Some(local) => {
            let socket = match remote {
                SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.bind(SocketAddr::new(local, 0))?;
            socket.connect(remote).await?
        }
    };
    // Small frames (acks, short messages) should not wait for Nagle.
    stream.set_nodelay(true)?;
    if !target.tls {
        return Ok(Transport::Plain(stream));
    }
    let config = match tls {
        Some(config) => config.clone(),
        None => TlsConfig::system().map_err(io::Error::other)?,
    };
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let tls = tokio_rustls::TlsConnector::from(config.0)
        .connect(name, stream)
        .await?;
    Ok(Transport::Tls(Box::new(tls)))
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = |tls, host: &str, port| Target {
            tls,
            host: host.to_owned(),
            port,
        };
        assert_eq!(
            Target::parse("ws://127.0.0.1:8000/socket.io/?EIO=4").unwrap(),
            t(false, "127.0.0.1", 8000)
        );
        assert_eq!(
            Target::parse("wss://chat.example/socket.io/").unwrap(),
            t(true, "chat.example", 443)
        );
        assert_eq!(Target::parse("ws://[::1]:9/x").unwrap(), t(false, "::1", 9));
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("ws://:80").is_err());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        assert!(matches!(
            TlsConfig::with_extra_ca(&path),
            Err(TlsConfigError::CaFile { .. })
        ));
    }
}
