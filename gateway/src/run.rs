//! Running a gateway: build the cluster view from the topology, bind, serve until shutdown, then
//! stop intake and flush within the deadline.

use std::future::Future;
use std::sync::Arc;

use chgate_clickhouse_http::{Client, ClientConfig, ServerVersion};
use chgate_topology::{Secret, Topology};
use tokio::sync::Semaphore;

use crate::auth::store::PgSettings;
use crate::auth::{Authenticator, PgSource};
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
        // With [tls] in the topology every node serves HTTPS: use it, trusting the topology's CA.
        let mut c = ClientConfig::for_node(t, &n, password.clone());
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
    serve_with(cfg, t, password, None, shutdown).await
}

/// As [`serve`], with the tenants' authenticator (see [`authenticator`]).
///
/// # Errors
/// [`RunError`] for invalid config or a failed bind.
pub async fn serve_with(
    cfg: GatewayConfig,
    t: &Topology,
    password: &Secret,
    auth: Option<Arc<Authenticator>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| RunError::Io {
            addr: cfg.listen,
            source,
        })?;
    serve_on_with(listener, cfg, t, password, auth, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0) until `shutdown`, then drains.
/// Without an authenticator: `[auth] enabled` is refused here (see [`serve_on_with`]).
///
/// # Errors
/// [`RunError`] for invalid config or a failed accept loop.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    cfg: GatewayConfig,
    t: &Topology,
    password: &Secret,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    serve_on_with(listener, cfg, t, password, None, shutdown).await
}

/// The authenticator of `[auth]` over the topology's PostgreSQL (`None` when auth is off).
///
/// # Errors
/// [`RunError::Config`] when the PostgreSQL password reference cannot be read.
pub fn authenticator(
    cfg: &GatewayConfig,
    loaded: &chgate_topology::LoadedTopology,
) -> Result<Option<Arc<Authenticator>>, RunError> {
    if !cfg.auth.enabled {
        return Ok(None);
    }
    let pg = PgSettings::from_topology(loaded, cfg.auth.postgres_database.as_deref())
        .map_err(|e| RunError::Config(format!("[auth]: {e}")))?;
    Ok(Some(Arc::new(Authenticator::new(
        cfg.auth.clone(),
        Arc::new(PgSource::new(pg)),
    ))))
}

/// As [`serve_on`], with the tenants' authenticator (required when `[auth] enabled`).
///
/// # Errors
/// [`RunError`] for invalid config or a failed accept loop.
pub async fn serve_on_with(
    listener: tokio::net::TcpListener,
    mut cfg: GatewayConfig,
    t: &Topology,
    password: &Secret,
    auth: Option<Arc<Authenticator>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    if let Ok(addr) = listener.local_addr() {
        cfg.listen = addr;
    }
    let app = app(&cfg, t, password, auth).await?;
    let batcher = app.batcher.clone();
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
    let started = std::time::Instant::now();
    if !batcher.shutdown(cfg.shutdown_deadline).await {
        tracing::warn!(deadline = ?cfg.shutdown_deadline, "some batches were not flushed before the deadline");
    }
    if let Some(d) = batcher.delivery() {
        // Everything acked is in the spool by now; deliver what the deadline allows, the rest
        // is replayed by the next start.
        let left = cfg.shutdown_deadline.saturating_sub(started.elapsed());
        if !d.shutdown(left).await {
            tracing::warn!(
                pending_bytes = d.spool().pending_bytes(),
                "spooled blocks left for the next start"
            );
        }
    }
    Ok(())
}

/// The shared state of the handlers: cluster view, batcher, schema cache, authenticator. Serving
/// is separate so tests can drive [`crate::server::router`] in-process.
///
/// # Errors
/// [`RunError::Config`] for an invalid config, or `[auth] enabled` without an authenticator;
/// [`RunError::ClickHouse`].
pub async fn app(
    cfg: &GatewayConfig,
    t: &Topology,
    password: &Secret,
    auth: Option<Arc<Authenticator>>,
) -> Result<Arc<App>, RunError> {
    cfg.validate().map_err(RunError::Config)?;
    if cfg.auth.enabled && auth.is_none() {
        return Err(RunError::Config(
            "[auth] enabled = true needs the tenants' PostgreSQL (chgate serve reads it from the topology)".into(),
        ));
    }
    let batch = cfg.batch.validate().map_err(RunError::Config)?;
    let cluster = Arc::new(cluster(t, password, cfg).await?);
    tracing::info!(version = %cluster.version, shards = cluster.shards.len(), "ClickHouse cluster");
    let settings = WriterSettings {
        mode: cfg.write_mode,
        format: cfg.format,
        backoff: Backoff {
            attempts: cfg.insert_attempts,
            ..Backoff::default()
        },
        breaker: cfg.breaker,
    };
    let writer = Writer::new(cluster, settings);
    let mut batcher = Batcher::new(batch, writer.clone());
    if cfg.ack == crate::delivery::AckMode::Spooled {
        batcher = batcher.with_delivery(start_delivery(cfg, writer)?);
    }
    let permits = u32::try_from(cfg.memory_budget_bytes / 1024).unwrap_or(u32::MAX) as usize;
    Ok(Arc::new(App {
        database: cfg
            .database
            .clone()
            .unwrap_or_else(|| t.cluster.database.clone()),
        catalog: Catalog::new(cfg.schema_ttl),
        batcher,
        budget: Arc::new(Semaphore::new(permits)),
        series: crate::ingest::SeriesCache::new(cfg.series_refresh, 1 << 20),
        auth,
        cfg: cfg.clone(),
    }))
}

/// Opens the spool (recovering a previous run's blocks, truncating a torn tail) and its
/// dead-letter queue, and starts delivery.
///
/// # Errors
/// [`RunError::Config`] naming the directory when the spool cannot be opened.
fn start_delivery(
    cfg: &GatewayConfig,
    writer: Writer,
) -> Result<Arc<crate::delivery::Delivery>, RunError> {
    let (spool, recovery) = crate::spool::Spool::open(cfg.spool.clone())
        .map_err(|e| RunError::Config(format!("[spool]: {e}")))?;
    for (file, bytes) in &recovery.truncated {
        tracing::warn!(file = %file.display(), bytes, "spool segment had a torn tail; truncated");
    }
    tracing::info!(dir = %spool.dir().display(), replay = recovery.replay.len(), "spool opened (ack = spooled)");
    let dlq = crate::dlq::Dlq::open(spool.dir().join("dlq"))
        .map_err(|e| RunError::Config(format!("[spool]: {e}")))?;
    Ok(crate::delivery::Delivery::start(
        spool, recovery, dlq, writer,
    ))
}
