//! # chgate-pg-tls
//!
//! PostgreSQL connections for every part of chgate (migrator, gateway tenants, Grafana
//! provisioning, backup, `chgate local status`'s probe, the live-test harness): [`connect`] is the
//! one place that opens a `tokio-postgres` connection (`chgate-migrations` re-exports this crate as
//! `pg_tls`).
//! With the topology's `[tls]` it requires TLS (`tokio-rustls`): the server's certificate must
//! chain to `[tls] ca` and name the host connected to, with no fallback to plain text; without
//! `[tls]` the connection is plain text. [`libpq_env`] gives the libpq programs (`pg_dump`,
//! `pg_restore`, `psql`) the same rule.

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::{Client, Config, NoTls};
use tokio_rustls::rustls;

/// Why [`connect`] failed. Exhaustive on purpose: each caller maps both cases into its own
/// error type (the CA problem is a configuration error, the driver error names the server).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The CA file could not be used (message names the file).
    #[error("PostgreSQL TLS: {0}")]
    Ca(String),
    /// TCP, the TLS handshake (e.g. a certificate not signed by the CA) or authentication failed.
    #[error(transparent)]
    Postgres(tokio_postgres::Error),
}

/// Opens a connection with `config` and spawns its connection task on the current runtime (it
/// ends when the [`Client`] drops; an error ending it is logged at `warn`).
///
/// With `ca` (the topology's `[tls] ca`), TLS is required and the server's certificate is
/// verified against it; without, the connection is plain text (`config`'s `sslmode` is then
/// only honoured as far as `NoTls` allows: `require` fails).
///
/// # Errors
/// [`ConnectError::Ca`] when `ca` cannot be read or holds no certificate;
/// [`ConnectError::Postgres`] when connecting, the handshake or authentication fails.
pub async fn connect(config: &Config, ca: Option<&Path>) -> Result<Client, ConnectError> {
    let Some(ca) = ca else {
        let (client, conn) = config
            .connect(NoTls)
            .await
            .map_err(ConnectError::Postgres)?;
        spawn_connection(conn);
        return Ok(client);
    };
    let tls = RustlsConnect::from_ca_file(ca).map_err(ConnectError::Ca)?;
    let mut config = config.clone();
    let (client, conn) = config
        .ssl_mode(SslMode::Require)
        .connect(tls)
        .await
        .map_err(ConnectError::Postgres)?;
    spawn_connection(conn);
    Ok(client)
}

fn spawn_connection<F>(conn: F)
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended with an error");
        }
    });
}

/// Environment for a libpq program (`pg_dump`, `pg_restore`, `psql`) that applies [`connect`]'s
/// rule: with `ca`, `PGSSLMODE=verify-full` (TLS required, certificate chained to `ca` and
/// naming the host) and `PGSSLROOTCERT=ca`; without, `PGSSLMODE=disable`. Set explicitly so
/// that a `PGSSLMODE` inherited from the caller's environment cannot weaken it.
pub fn libpq_env(ca: Option<&Path>) -> Vec<(&'static str, OsString)> {
    match ca {
        Some(ca) => vec![
            ("PGSSLMODE", "verify-full".into()),
            ("PGSSLROOTCERT", ca.as_os_str().to_owned()),
        ],
        None => vec![("PGSSLMODE", "disable".into())],
    }
}

/// Makes TLS connections trusting one CA.
#[derive(Clone)]
pub struct RustlsConnect(Arc<rustls::ClientConfig>);

impl RustlsConnect {
    /// Trusts the CA certificates in the PEM file `ca`.
    ///
    /// # Errors
    /// A message naming the file when it cannot be read or holds no certificate.
    pub fn from_ca_file(ca: &Path) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let certs =
            CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no certificate", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(RustlsConnect(Arc::new(config)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> MakeTlsConnect<S> for RustlsConnect {
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnectOne;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnectOne> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnectOne {
            config: self.0.clone(),
            name,
        })
    }
}

/// One connection's TLS handshake.
pub struct RustlsConnectOne {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsConnect<S> for RustlsConnectOne {
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
        })
    }
}

/// A TLS stream to PostgreSQL.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_programs_verify_the_server_with_the_ca_and_stay_plain_without() {
        let env = libpq_env(Some(Path::new("/s/tls/ca.crt")));
        assert_eq!(
            env,
            vec![
                ("PGSSLMODE", OsString::from("verify-full")),
                ("PGSSLROOTCERT", OsString::from("/s/tls/ca.crt")),
            ]
        );
        assert_eq!(
            libpq_env(None),
            vec![("PGSSLMODE", OsString::from("disable"))]
        );
    }

    #[tokio::test]
    async fn an_unreadable_ca_is_named_before_any_connection() {
        let cfg = Config::new();
        let e = connect(&cfg, Some(Path::new("/nonexistent/ca.crt")))
            .await
            .expect_err("no CA file");
        assert!(matches!(e, ConnectError::Ca(_)), "{e}");
        assert!(e.to_string().contains("/nonexistent/ca.crt"), "{e}");
    }
}
