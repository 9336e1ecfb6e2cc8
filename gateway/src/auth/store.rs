//! The tenants' PostgreSQL tables (`migrations/postgres/`): the gateway's token lookup and the
//! administration behind `chgate tenant`.

use std::time::Duration;

use chgate_migrations::pg_tls::{self, ConnectError};
use chgate_topology::{LoadedTopology, Secret};
use tokio_postgres::Client;

use super::token::{self, NewToken};

/// Why a PostgreSQL operation failed. Messages name the server and the step, never a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Connecting failed.
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect {
        /// `host:port/database`.
        target: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("PostgreSQL {context}: {source}")]
    Query {
        /// What was being done.
        context: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// PostgreSQL did not answer in time.
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(Duration),
    /// The named tenant does not exist.
    #[error("tenant `{0}` does not exist (see `chgate tenant list`)")]
    UnknownTenant(String),
    /// An argument is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The `[tls] ca` file for PostgreSQL could not be used.
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    /// The topology's password reference could not be read.
    #[error(transparent)]
    Topology(#[from] chgate_topology::TopologyError),
}

/// Where the tenants' tables live.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Role.
    pub user: String,
    /// Its password.
    pub password: Secret,
    /// Database holding `gateway_tenants` (the topology's `postgres.database`).
    pub database: String,
    /// CA to verify the server with; TLS is then required (the topology's `[tls] ca`).
    pub ca: Option<std::path::PathBuf>,
}

impl PgSettings {
    /// From the topology's `[postgres]` section; `database` overrides its `database`.
    ///
    /// # Errors
    /// [`StoreError::Topology`] when the password reference cannot be read.
    pub fn from_topology(
        loaded: &LoadedTopology,
        database: Option<&str>,
    ) -> Result<Self, StoreError> {
        let t = &loaded.topology;
        Ok(PgSettings {
            host: t.network.listen.to_string(),
            port: t.postgres_port(),
            user: t.postgres.user.clone(),
            password: t.postgres.password.resolve(&loaded.state_dir)?,
            database: database.unwrap_or(&t.postgres.database).to_owned(),
            ca: t.tls.as_ref().map(|tls| tls.ca.clone()),
        })
    }

    /// Connects (5 s timeout); over TLS, verified against `ca`, when one is set (no fallback
    /// to plain text).
    ///
    /// # Errors
    /// [`StoreError::Connect`], [`StoreError::Tls`].
    pub async fn connect(&self) -> Result<Client, StoreError> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(self.password.expose())
            .dbname(&self.database)
            .connect_timeout(Duration::from_secs(5));
        pg_tls::connect(&cfg, self.ca.as_deref())
            .await
            .map_err(|e| match e {
                ConnectError::Postgres(source) => StoreError::Connect {
                    target: format!("{}:{}/{}", self.host, self.port, self.database),
                    source,
                },
                ConnectError::Ca(reason) => StoreError::Tls(reason),
            })
    }
}

fn q(context: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError + '_ {
    move |source| StoreError::Query {
        context: context.to_owned(),
        source,
    }
}

/// A table grant: `database.table`, or every table of `database` when `table` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Database.
    pub database: String,
    /// Table, `None` = all.
    pub table: Option<String>,
}

impl Grant {
    /// Parses `db.table`, `db.*` or `db`.
    ///
    /// # Errors
    /// A message naming the bad grant.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (db, table) = s.split_once('.').unwrap_or((s, "*"));
        let ok = |x: &str| {
            !x.is_empty()
                && x.len() <= 128
                && x.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if !ok(db) || !(table == "*" || ok(table)) {
            return Err(format!(
                "grant `{s}`: expected DATABASE.TABLE or DATABASE.* (letters, digits, _)"
            ));
        }
        Ok(Grant {
            database: db.to_owned(),
            table: (table != "*").then(|| table.to_owned()),
        })
    }

    /// Whether this grant covers `db.table`.
    pub fn allows(&self, db: &str, table: &str) -> bool {
        self.database == db && !matches!(self.table.as_deref(), Some(t) if t != table)
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            self.database,
            self.table.as_deref().unwrap_or("*")
        )
    }
}

/// Per-tenant limits; `None` = the gateway's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    /// Rows (samples) per second.
    pub rows_per_second: Option<u64>,
    /// Largest request body after decompression, bytes.
    pub max_body_bytes: Option<u64>,
}

/// What the gateway needs to know about one token.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Tenant id.
    pub tenant_id: i64,
    /// Tenant name (stamped into `tenant` columns).
    pub tenant: String,
    /// False when the tenant is disabled or the token revoked or expired.
    pub active: bool,
    /// The token's salt.
    pub salt: Vec<u8>,
    /// `SHA-256(salt || secret)`.
    pub secret_hash: Vec<u8>,
    /// Tables the tenant may write.
    pub grants: Vec<Grant>,
    /// Limits.
    pub quota: Quota,
}

const LOOKUP: &str = "
SELECT t.tenant_id, n.name,
       NOT n.disabled AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()),
       t.salt, t.secret_hash, q.max_samples_per_second, q.max_body_bytes,
       COALESCE((SELECT array_agg(g.database_name || '.' || g.table_name ORDER BY 1)
                 FROM gateway_grants g WHERE g.tenant_id = t.tenant_id), '{}')
FROM gateway_tokens t
JOIN gateway_tenants n ON n.id = t.tenant_id
LEFT JOIN gateway_quotas q ON q.tenant_id = t.tenant_id
WHERE t.key_id = $1";

/// Looks a token up by its public key id.
///
/// # Errors
/// [`StoreError::Query`].
pub async fn lookup(client: &Client, key_id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let Some(row) = client
        .query_opt(LOOKUP, &[&key_id])
        .await
        .map_err(q("token lookup"))?
    else {
        return Ok(None);
    };
    let grants: Vec<String> = row.get(7);
    let u = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    Ok(Some(TokenRecord {
        tenant_id: row.get(0),
        tenant: row.get(1),
        active: row.get(2),
        salt: row.get::<_, Option<Vec<u8>>>(3).unwrap_or_default(),
        secret_hash: row.get::<_, Option<Vec<u8>>>(4).unwrap_or_default(),
        grants: grants.iter().filter_map(|g| Grant::parse(g).ok()).collect(),
        quota: Quota {
            rows_per_second: u(row.get(5)),
            max_body_bytes: u(row.get(6)),
        },
    }))
}

/// `chgate tenant create`: the tenant, its grants and quota, and a first token, in one
/// transaction. Returns the token (show it once).
///
/// # Errors
/// [`StoreError::Invalid`] for a bad name or a tenant that exists; [`StoreError::Query`].
pub async fn create_tenant(
    client: &mut Client,
    name: &str,
    grants: &[Grant],
    quota: &Quota,
) -> Result<NewToken, StoreError> {
    let tx = client.transaction().await.map_err(q("begin"))?;
    let exists = tx
        .query_opt("SELECT 1 FROM gateway_tenants WHERE name = $1", &[&name])
        .await
        .map_err(q("gateway_tenants"))?;
    if exists.is_some() {
        return Err(StoreError::Invalid(format!(
            "tenant `{name}` already exists; use `chgate tenant token {name}` for another token"
        )));
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO gateway_tenants (name) VALUES ($1) RETURNING id",
            &[&name],
        )
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) if db.code().code() == "23514" => StoreError::Invalid(format!(
                "tenant name `{name}`: use 1-64 of a-z 0-9 _ - starting with a letter or digit"
            )),
            _ => q("insert tenant")(e),
        })?
        .get(0);
    for g in grants {
        tx.execute(
            "INSERT INTO gateway_grants (tenant_id, database_name, table_name) VALUES ($1, $2, $3)",
            &[&id, &g.database, &g.table.as_deref().unwrap_or("*")],
        )
        .await
        .map_err(q("insert grant"))?;
    }
    if quota != &Quota::default() {
        let i = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        tx.execute(
            "INSERT INTO gateway_quotas (tenant_id, max_samples_per_second, max_body_bytes) \
             VALUES ($1, $2, $3)",
            &[&id, &i(quota.rows_per_second), &i(quota.max_body_bytes)],
        )
        .await
        .map_err(q("insert quota"))?;
    }
    let token = insert_token(&tx, id, "created with the tenant", None).await?;
    tx.commit().await.map_err(q("commit"))?;
    Ok(token)
}

async fn insert_token(
    tx: &tokio_postgres::Transaction<'_>,
    tenant_id: i64,
    description: &str,
    expires_in: Option<Duration>,
) -> Result<NewToken, StoreError> {
    let t = token::generate();
    let secs = expires_in.map(|d| d.as_secs_f64());
    tx.execute(
        "INSERT INTO gateway_tokens (tenant_id, key_id, salt, secret_hash, description, expires_at) \
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::float8 IS NULL THEN NULL \
                 ELSE now() + make_interval(secs => $6::float8) END)",
        &[
            &tenant_id,
            &t.key_id,
            &t.salt.as_slice(),
            &t.secret_hash.as_slice(),
            &description,
            &secs,
        ],
    )
    .await
    .map_err(q("insert token"))?;
    Ok(t)
}

async fn tenant_id(
    client: &impl tokio_postgres::GenericClient,
    name: &str,
) -> Result<i64, StoreError> {
    client
        .query_opt("SELECT id FROM gateway_tenants WHERE name = $1", &[&name])
        .await
        .map_err(q("gateway_tenants"))?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::UnknownTenant(name.to_owned()))
}

/// `chgate tenant token`: another token for an existing tenant.
///
/// # Errors
/// [`StoreError::UnknownTenant`], [`StoreError::Query`].
pub async fn add_token(
    client: &mut Client,
    name: &str,
    description: &str,
    expires_in: Option<Duration>,
) -> Result<NewToken, StoreError> {
    let tx = client.transaction().await.map_err(q("begin"))?;
    let id = tenant_id(&tx, name).await?;
    let t = insert_token(&tx, id, description, expires_in).await?;
    tx.commit().await.map_err(q("commit"))?;
    Ok(t)
}

/// `chgate tenant revoke`: one token (by key id) or, without one, every token of the tenant and
/// the tenant itself (disabled). Returns how many tokens were revoked now.
///
/// # Errors
/// [`StoreError::UnknownTenant`], [`StoreError::Invalid`] for an unknown key id.
pub async fn revoke(client: &Client, name: &str, key_id: Option<&str>) -> Result<u64, StoreError> {
    let id = tenant_id(client, name).await?;
    match key_id {
        Some(k) => {
            let exists = client
                .query_opt(
                    "SELECT 1 FROM gateway_tokens WHERE tenant_id = $1 AND key_id = $2",
                    &[&id, &k],
                )
                .await
                .map_err(q("gateway_tokens"))?;
            if exists.is_none() {
                return Err(StoreError::Invalid(format!(
                    "tenant `{name}` has no token with key id `{k}`"
                )));
            }
            client
                .execute(
                    "UPDATE gateway_tokens SET revoked_at = now() \
                     WHERE tenant_id = $1 AND key_id = $2 AND revoked_at IS NULL",
                    &[&id, &k],
                )
                .await
                .map_err(q("revoke token"))
        }
        None => {
            client
                .execute(
                    "UPDATE gateway_tenants SET disabled = true WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(q("disable tenant"))?;
            client
                .execute(
                    "UPDATE gateway_tokens SET revoked_at = now() \
                     WHERE tenant_id = $1 AND revoked_at IS NULL",
                    &[&id],
                )
                .await
                .map_err(q("revoke tokens"))
        }
    }
}

/// One line of `chgate tenant list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantInfo {
    /// Name.
    pub name: String,
    /// Disabled (revoked as a whole).
    pub disabled: bool,
    /// Tokens neither revoked nor expired.
    pub active_tokens: i64,
    /// Key ids of the active tokens (public; the secrets are not stored).
    pub key_ids: Vec<String>,
    /// Grants, `db.table` / `db.*`.
    pub grants: Vec<String>,
    /// Rows per second, when set.
    pub rows_per_second: Option<i64>,
    /// Body limit, when set.
    pub max_body_bytes: Option<i64>,
}

/// Every tenant, by name.
///
/// # Errors
/// [`StoreError::Query`].
pub async fn list(client: &Client) -> Result<Vec<TenantInfo>, StoreError> {
    let rows = client
        .query(
            "SELECT n.name, n.disabled,
                    COALESCE((SELECT array_agg(t.key_id ORDER BY t.id) FROM gateway_tokens t
                      WHERE t.tenant_id = n.id AND t.key_id IS NOT NULL AND t.revoked_at IS NULL
                        AND (t.expires_at IS NULL OR t.expires_at > now())), '{}'),
                    COALESCE((SELECT array_agg(g.database_name || '.' || g.table_name ORDER BY 1)
                      FROM gateway_grants g WHERE g.tenant_id = n.id), '{}'),
                    q.max_samples_per_second, q.max_body_bytes
             FROM gateway_tenants n LEFT JOIN gateway_quotas q ON q.tenant_id = n.id
             ORDER BY n.name",
            &[],
        )
        .await
        .map_err(q("list tenants"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let key_ids: Vec<String> = r.get(2);
            TenantInfo {
                name: r.get(0),
                disabled: r.get(1),
                active_tokens: key_ids.len() as i64,
                key_ids,
                grants: r.get(3),
                rows_per_second: r.get(4),
                max_body_bytes: r.get(5),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_and_match() {
        let g = Grant::parse("metrics.samples").expect("ok");
        assert!(g.allows("metrics", "samples"));
        assert!(!g.allows("metrics", "series"));
        let all = Grant::parse("metrics").expect("ok");
        assert_eq!(all, Grant::parse("metrics.*").expect("ok"));
        assert!(all.allows("metrics", "anything"));
        assert!(!all.allows("system", "tables"));
        for bad in ["", "a.b.c", "../x", "db.t;DROP", "db.`t`", ".t"] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(all.to_string(), "metrics.*");
    }
}
