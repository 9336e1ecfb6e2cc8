//! Tenant authentication, table authorisation and per-tenant quotas.
//!
//! Flow: [`layer`] (axum middleware on the ingest routes) reads the request's credentials
//! ([`token::credentials`]: `Bearer`, `Token` or `Basic`), resolves them through the
//! [`Authenticator`] (a TTL cache in front of PostgreSQL, see [`store`]) and runs the handler with
//! the [`Tenant`] in a task-local. The write path asks [`authorize`] before touching a table
//! (403 for a table outside the tenant's grants, and always for system databases), [`admit_rows`]
//! charges the tenant's row rate ([`quota`], 429 with `Retry-After`) and stamps the tenant's name
//! into the table's tenant column, and [`body_limit`] applies the tenant's body size limit.
//!
//! The task-local keeps the handlers' signatures unchanged: every protocol funnels through
//! `App::schema` / `App::write`, so the checks sit in one place and no handler can forget them.
//!
//! Answers carry no detail an attacker could use: an unknown, malformed, revoked or expired token
//! and a disabled tenant all get the same 401.

pub mod quota;
pub mod store;
pub mod token;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::server::App;
use crate::GatewayError;
use quota::RateLimiter;
use store::{Grant, PgSettings, StoreError, TokenRecord};
use token::Credentials;

/// `[auth]` of the gateway config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a tenant token on every ingest endpoint. Default `false` (loopback development and
    /// the test rig); a non-loopback `listen` is refused without it.
    pub enabled: bool,
    /// How long a token lookup is reused; revocation takes effect within this. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// While PostgreSQL is unreachable, tokens looked up successfully before keep working this
    /// long past `cache_ttl`; unknown tokens get 503. Default 5 min.
    #[serde(with = "humantime_serde")]
    pub stale_grace: Duration,
    /// Timeout of one PostgreSQL lookup. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub lookup_timeout: Duration,
    /// Database with the tenants' tables. Default: the topology's `postgres.database`.
    pub postgres_database: Option<String>,
    /// Rows per second for tenants without their own quota. Default: unlimited.
    pub default_rows_per_second: Option<u64>,
    /// Column stamped with the tenant's name where a target table has it. Default `tenant`.
    pub tenant_column: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            cache_ttl: Duration::from_secs(10),
            stale_grace: Duration::from_secs(300),
            lookup_timeout: Duration::from_secs(2),
            postgres_database: None,
            default_rows_per_second: None,
            tenant_column: "tenant".into(),
        }
    }
}

/// A boxed lookup future.
pub type Lookup<'a> =
    Pin<Box<dyn Future<Output = Result<Option<TokenRecord>, StoreError>> + Send + 'a>>;

/// Where token records come from: PostgreSQL ([`PgSource`]) in the gateway; tests inject failures.
pub trait TokenSource: Send + Sync + 'static {
    /// The record of `key_id`, `None` when there is none.
    fn lookup<'a>(&'a self, key_id: &'a str) -> Lookup<'a>;
}

/// [`TokenSource`] over one PostgreSQL connection, reconnecting after an error.
pub struct PgSource {
    settings: PgSettings,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl PgSource {
    /// No connection is made until the first lookup.
    pub fn new(settings: PgSettings) -> Self {
        PgSource {
            settings,
            client: tokio::sync::Mutex::new(None),
        }
    }
}

impl TokenSource for PgSource {
    fn lookup<'a>(&'a self, key_id: &'a str) -> Lookup<'a> {
        Box::pin(async move {
            let mut guard = self.client.lock().await;
            if !matches!(guard.as_ref(), Some(c) if !c.is_closed()) {
                *guard = Some(self.settings.connect().await?);
            }
            let client = guard.as_ref().ok_or(StoreError::Timeout(Duration::ZERO))?;
            let result = store::lookup(client, key_id).await;
            if result.is_err() {
                *guard = None;
            }
            result
        })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant id.
    pub id: i64,
    /// Tenant name.
    pub name: String,
    grants: Vec<Grant>,
    rows_per_second: Option<u64>,
    max_body_bytes: Option<u64>,
}

impl Tenant {
    /// Whether the tenant may write `db.table`.
    pub fn allows(&self, db: &str, table: &str) -> bool {
        self.grants.iter().any(|g| g.allows(db, table))
    }
}

struct Cached {
    record: Option<Arc<TokenRecord>>,
    fetched: Instant,
}

const CACHE_LIMIT: usize = 100_000;

/// Resolves credentials to tenants: a TTL cache in front of a [`TokenSource`], plus the tenants'
/// rate limiters.
pub struct Authenticator {
    cfg: AuthConfig,
    source: Arc<dyn TokenSource>,
    cache: Mutex<HashMap<String, Cached>>,
    limiters: Mutex<HashMap<i64, RateLimiter>>,
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 401: missing, malformed, unknown, revoked or expired token, or disabled tenant.
    Unauthorized,
    /// 503: the token is not cached and PostgreSQL cannot be asked.
    Unavailable,
}

impl Authenticator {
    /// An authenticator over `source`.
    pub fn new(cfg: AuthConfig, source: Arc<dyn TokenSource>) -> Self {
        Authenticator {
            cfg,
            source,
            cache: Mutex::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant of `creds`.
    ///
    /// # Errors
    /// [`Denied`].
    pub async fn authenticate(&self, creds: &Credentials) -> Result<Tenant, Denied> {
        let Credentials::Token(presented) = creds else {
            return Err(Denied::Unauthorized);
        };
        let record = self
            .record(&presented.key_id)
            .await?
            .ok_or(Denied::Unauthorized)?;
        if !record.active || !token::verify(&record.salt, &presented.secret, &record.secret_hash) {
            return Err(Denied::Unauthorized);
        }
        let max_body_bytes = record.quota.max_body_bytes;
        Ok(Tenant {
            id: record.tenant_id,
            name: record.tenant.clone(),
            grants: record.grants.clone(),
            rows_per_second: record
                .quota
                .rows_per_second
                .or(self.cfg.default_rows_per_second),
            max_body_bytes,
        })
    }

    fn cached(&self, key_id: &str, max_age: Duration) -> Option<Option<Arc<TokenRecord>>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key_id)
            .filter(|c| c.fetched.elapsed() < max_age)
            .map(|c| c.record.clone())
    }

    async fn record(&self, key_id: &str) -> Result<Option<Arc<TokenRecord>>, Denied> {
        if let Some(hit) = self.cached(key_id, self.cfg.cache_ttl) {
            return Ok(hit);
        }
        let fetched =
            tokio::time::timeout(self.cfg.lookup_timeout, self.source.lookup(key_id)).await;
        match fetched {
            Ok(Ok(record)) => {
                let record = record.map(Arc::new);
                self.remember(key_id, record.clone());
                Ok(record)
            }
            Ok(Err(e)) => self.stale(key_id, &e.to_string()),
            Err(_) => self.stale(key_id, "lookup timed out"),
        }
    }

    /// A known token keeps working for `stale_grace` while PostgreSQL is unreachable.
    fn stale(&self, key_id: &str, why: &str) -> Result<Option<Arc<TokenRecord>>, Denied> {
        crate::metrics::AUTH_BACKEND_ERRORS.inc();
        let hit = self.cached(key_id, self.cfg.cache_ttl + self.cfg.stale_grace);
        tracing::warn!(
            error = why,
            stale_hit = hit.is_some(),
            "token lookup in PostgreSQL failed"
        );
        match hit {
            Some(Some(record)) => Ok(Some(record)),
            _ => Err(Denied::Unavailable),
        }
    }

    fn remember(&self, key_id: &str, record: Option<Arc<TokenRecord>>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            let keep = self.cfg.cache_ttl + self.cfg.stale_grace;
            cache.retain(|_, c| c.record.is_some() && c.fetched.elapsed() < keep);
        }
        cache.insert(
            key_id.to_owned(),
            Cached {
                record,
                fetched: Instant::now(),
            },
        );
    }

    /// Charges `rows` to the tenant's rate limit.
    ///
    /// # Errors
    /// [`GatewayError::QuotaExceeded`] with the time until the tenant may send again.
    pub fn charge(&self, tenant: &Tenant, rows: u64) -> Result<(), GatewayError> {
        let Some(rate) = tenant.rows_per_second else {
            return Ok(());
        };
        let now = Instant::now();
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        let limiter = limiters
            .entry(tenant.id)
            .or_insert_with(|| RateLimiter::new(rate, now));
        if limiter.rate() != rate {
            *limiter = RateLimiter::new(rate, now);
        }
        limiter.take(rows, now).map_err(|wait| {
            crate::metrics::QUOTA_REJECTED.inc();
            GatewayError::QuotaExceeded {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    /// The tenant column name.
    pub fn tenant_column(&self) -> &str {
        &self.cfg.tenant_column
    }
}

/// What the task-local holds: the tenant and the authenticator that charges it.
#[derive(Clone)]
struct Caller {
    tenant: Arc<Tenant>,
    auth: Arc<Authenticator>,
}

tokio::task_local! {
    static CALLER: Caller;
}

/// The tenant of the request being handled (`None` when authentication is off).
pub fn current() -> Option<Arc<Tenant>> {
    CALLER.try_with(|c| c.tenant.clone()).ok()
}

/// Databases nobody writes through the gateway.
const SYSTEM_DATABASES: &[&str] = &["system", "information_schema", "INFORMATION_SCHEMA"];

/// May the current caller write `db.table`? System databases are refused for everyone.
///
/// # Errors
/// [`GatewayError::Forbidden`].
pub fn authorize(db: &str, table: &str) -> Result<(), GatewayError> {
    if SYSTEM_DATABASES.contains(&db) {
        return Err(GatewayError::Forbidden(format!(
            "`{db}` is a system database; the gateway does not write into it"
        )));
    }
    match current() {
        Some(t) if !t.allows(db, table) => Err(GatewayError::Forbidden(format!(
            "this token may not write to {db}.{table}"
        ))),
        _ => Ok(()),
    }
}

/// The body limit for the current caller: the gateway's, lowered by the tenant's quota.
pub fn body_limit(gateway_limit: usize) -> usize {
    current()
        .and_then(|t| t.max_body_bytes)
        .map_or(gateway_limit, |l| {
            gateway_limit.min(usize::try_from(l).unwrap_or(usize::MAX))
        })
}

/// Charges `rows` rows to the current caller's rate limit (no-op without authentication).
///
/// # Errors
/// [`GatewayError::QuotaExceeded`].
pub fn charge(rows: usize) -> Result<(), GatewayError> {
    match CALLER.try_with(Caller::clone) {
        Ok(c) => c.auth.charge(&c.tenant, rows as u64),
        Err(_) => Ok(()),
    }
}

/// The current tenant's name, for the samples schema's `tenant` column (`""` without auth).
pub fn tenant_name() -> String {
    current().map(|t| t.name.clone()).unwrap_or_default()
}

/// Charges the rows and stamps the tenant's name into the table's tenant column (added to the
/// column list when the client did not send it, overwritten when it did: a tenant cannot write
/// rows in another tenant's name).
///
/// # Errors
/// [`GatewayError::QuotaExceeded`].
pub fn admit_rows(
    schema: &crate::catalog::TableSchema,
    rows: &mut crate::ingest::TableBlock,
) -> Result<(), GatewayError> {
    let Ok(caller) = CALLER.try_with(Caller::clone) else {
        return Ok(());
    };
    caller
        .auth
        .charge(&caller.tenant, rows.block.len() as u64)?;
    let name = caller.auth.tenant_column();
    let Some(info) = schema
        .columns
        .iter()
        .find(|c| c.column.name == name && !c.computed)
    else {
        return Ok(());
    };
    if !matches!(
        info.column.ty.unwrap_low_cardinality(),
        crate::types::ColumnType::String
    ) {
        return Ok(());
    }
    let value = crate::value::Value::str(&caller.tenant.name);
    match rows.columns.iter().position(|c| c.name == name) {
        Some(i) => rows.block.fill(i, &value),
        None => {
            let mut cols = (*rows.columns).clone();
            cols.push(info.column.clone());
            rows.columns = Arc::new(cols);
            rows.block.push_column(&info.column.ty, &value);
        }
    }
    Ok(())
}

fn denied(d: &Denied) -> Response {
    let err = match d {
        Denied::Unauthorized => GatewayError::Unauthorized,
        Denied::Unavailable => GatewayError::Unavailable {
            table: String::new(),
            message: "authentication backend unavailable".into(),
        },
    };
    crate::metrics::AUTH_REJECTED.inc();
    err.into_response()
}

/// Axum middleware for the ingest routes: authenticates (when enabled) and runs the handler with
/// the tenant in scope.
pub async fn layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(auth) = app.auth.clone() else {
        return next.run(req).await;
    };
    let tenant = match auth.authenticate(&token::credentials(req.headers())).await {
        Ok(t) => Arc::new(t),
        Err(d) => return denied(&d),
    };
    let caller = Caller { tenant, auth };
    CALLER
        .scope(caller, async move {
            if req.uri().path() == "/" {
                let params =
                    axum::extract::Query::<HashMap<String, String>>::try_from_uri(req.uri())
                        .map(|q| q.0)
                        .unwrap_or_default();
                let header_db = req
                    .headers()
                    .get("X-ClickHouse-Database")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                // The bare `GET /` ping of ClickHouse clients reads nothing: let it through.
                let ping = req.method() == axum::http::Method::GET && !params.contains_key("query");
                if !ping {
                    if let Err(e) = clickhouse_compat(&app, &params, header_db).await {
                        return e.into_response();
                    }
                }
            }
            next.run(req).await
        })
        .await
}

/// Tenants on the ClickHouse-compatible endpoint: only INSERTs named in the `query` URL parameter
/// (so they are checked before the body is read); row formats the gateway passes through unparsed
/// cannot carry a stamped tenant, so they are refused for tables with a tenant column. (Their rows
/// are still charged: `chcompat` counts them and calls [`charge`] before forwarding.)
async fn clickhouse_compat(
    app: &App,
    params: &HashMap<String, String>,
    header_db: Option<String>,
) -> Result<(), GatewayError> {
    let Some(query) = params.get("query") else {
        return Err(GatewayError::BadRequest(
            "with authentication on, send the INSERT in the `query` URL parameter".into(),
        ));
    };
    let Some((insert, _)) = crate::chcompat::parse_insert(query) else {
        return Err(GatewayError::Forbidden(
            "tenants may only INSERT through the gateway".into(),
        ));
    };
    let db = insert
        .database
        .clone()
        .or_else(|| params.get("database").cloned())
        .or(header_db)
        .unwrap_or_else(|| "default".into());
    let schema = app.schema(&db, &insert.table, false).await?;
    let stamped = schema
        .columns
        .iter()
        .any(|c| c.column.name == app.cfg.auth.tenant_column && !c.computed);
    if stamped && !insert.format.eq_ignore_ascii_case("JSONEachRow") {
        return Err(GatewayError::Forbidden(format!(
            "{db}.{} has a `{}` column the gateway must stamp; send FORMAT JSONEachRow",
            insert.table, app.cfg.auth.tenant_column
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
