//! Running a gateway: build the cluster view from the topology, bind, serve until shutdown, then
//! stop intake and flush within the deadline.

use std::future::Future;
use std::sync::Arc;

use chgate_clickhouse_http::{Client, ClientConfig, ServerVersion};
use chgate_topology::{Secret, Topology};
use tokio::sync::Semaphore;

use crate::batcher::Batcher;
use crate::catalog::Catalog;
use crate::config::GatewayConfig;
use crate::retry::Backoff;
use crate::server::{router, App};
use crate::writer::{Cluster, Replica, Writer, WriterSettings};

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration is invalid.
    #[error("invalid gateway config: {0}")]
    Config(String),
    /// A ClickHouse client could not be built.
    #[error(transparent)]
    ClickHouse(#[from] chgate_clickhouse_http::Error),
    /// Binding or serving failed.
    #[error("cannot serve on {addr}: {source}")]
    Io {
        /// Listen address.
        addr: std::net::SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Builds the cluster view (every node of the topology, shards in order) and detects the lowest
/// server version among the nodes that answer (18.16 assumed when none does yet).
///
/// # Errors
/// [`RunError::ClickHouse`] when a client cannot be built.
pub async fn cluster(
    t: &Topology,
    password: &Secret,
    cfg: &GatewayConfig,
) -> Result<Cluster, RunError> {
    let mut shards: Vec<Vec<Replica>> = vec![Vec::new(); t.cluster.shards as usize];
    let mut version: Option<ServerVersion> = None;
    for n in t.clickhouse_nodes() {
        let mut c = ClientConfig::new(
            format!("http://{}:{}", t.network.listen, n.http_port),
            t.clickhouse.user.clone(),
            password.clone(),
        );
        c.timeout = cfg.insert_timeout;
        let client = Client::new(c)?;
        if let Ok(v) = client.version().await {
            version = Some(version.map_or(v, |old| old.min(v)));
        }
        shards[(n.shard - 1) as usize].push(Replica {
            name: n.name,
            client,
        });
    }
    let fallback = ServerVersion {
        major: 18,
        minor: 16,
        patch: 0,
    };
    Ok(Cluster::new(shards, version.unwrap_or(fallback)))
}

/// Binds `cfg.listen`, serves until `shutdown` resolves, then drains.
///
/// # Errors
/// [`RunError`] for invalid config or a failed bind.
pub async fn serve(
    cfg: GatewayConfig,
    t: &Topology,
    password: &Secret,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| RunError::Io {
            addr: cfg.listen,
            source,
        })?;
    serve_on(listener, cfg, t, password, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0) until `shutdown`, then drains.
///
/// # Errors
/// [`RunError`] for invalid config or a failed accept loop.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    mut cfg: GatewayConfig,
    t: &Topology,
    password: &Secret,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    if let Ok(addr) = listener.local_addr() {
        cfg.listen = addr;
    }
    cfg.validate().map_err(RunError::Config)?;
    let batch = cfg.batch.validate().map_err(RunError::Config)?;
    let cluster = Arc::new(cluster(t, password, &cfg).await?);
    tracing::info!(version = %cluster.version, shards = cluster.shards.len(), "ClickHouse cluster");
    let settings = WriterSettings {
        mode: cfg.write_mode,
        format: cfg.format,
        backoff: Backoff {
            attempts: cfg.insert_attempts,
            ..Backoff::default()
        },
    };
    let batcher = Batcher::new(batch, Writer::new(cluster, settings));
    let permits = u32::try_from(cfg.memory_budget_bytes / 1024).unwrap_or(u32::MAX) as usize;
    let app = Arc::new(App {
        database: cfg
            .database
            .clone()
            .unwrap_or_else(|| t.cluster.database.clone()),
        catalog: Catalog::new(cfg.schema_ttl),
        batcher: batcher.clone(),
        budget: Arc::new(Semaphore::new(permits)),
        series: crate::ingest::SeriesCache::new(cfg.series_refresh, 1 << 20),
        cfg: cfg.clone(),
    });
    tracing::info!(listen = %cfg.listen, mode = ?cfg.write_mode, format = ?cfg.format, "gateway listening");
    let addr = cfg.listen;
    let io = move |source| RunError::Io { addr, source };
    match &cfg.tls {
        None => axum::serve(listener, router(app))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(io)?,
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|e| {
                    RunError::Config(format!(
                        "[tls] cert {} / key {}: {e}",
                        tls.cert.display(),
                        tls.key.display()
                    ))
                })?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            let std_listener = listener.into_std().map_err(io)?;
            axum_server::from_tcp_rustls(std_listener, rustls)
                .map_err(io)?
                .handle(handle)
                .serve(router(app).into_make_service())
                .await
                .map_err(io)?;
        }
    }
    tracing::info!("intake stopped; flushing batches");
    if !batcher.shutdown(cfg.shutdown_deadline).await {
        tracing::warn!(deadline = ?cfg.shutdown_deadline, "some batches were not flushed before the deadline");
    }
    Ok(())
}
