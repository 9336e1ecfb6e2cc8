//! The SQL side of one provisioning run: lock, read the current rows, write the plan, in one
//! transaction.

use tokio_postgres::{Row, Transaction};

use super::plan::{CurrentRow, Plan, RowAction, SecretRow, SecretsAction, SECRET_TYPE};
use super::schema::GrafanaTables;
use crate::crypto::{self, encrypt_to_text, Keyring, Wrapping};
use crate::datasource::{DatasourceSpec, ACCESS, ORG_ID, PLUGIN_TYPE};
use crate::GrafanaError;

/// Advisory lock key (two int4 halves): serialises concurrent `chgate grafana provision` runs
/// against the same database, so three at once still leave one row and one version bump.
const LOCK_KEY: (i32, i32) = (0x6368_6761, 0x6766_6e61); // "chga" "gfna"

/// `updated`/`created` are `timestamp without time zone` holding UTC, as Grafana writes them.
const NOW_UTC: &str = "(now() AT TIME ZONE 'UTC')";

fn q(table: &'static str) -> impl Fn(tokio_postgres::Error) -> GrafanaError {
    move |source| GrafanaError::Query { table, source }
}

/// Takes the transaction-scoped advisory lock.
///
/// # Errors
/// [`GrafanaError::Query`].
pub async fn lock(tx: &Transaction<'_>) -> Result<(), GrafanaError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_KEY.0, &LOCK_KEY.1],
    )
    .await
    .map_err(q("pg_advisory_xact_lock"))?;
    Ok(())
}

fn to_current(r: &Row) -> CurrentRow {
    CurrentRow {
        id: r.get("id"),
        version: r.get("version"),
        uid: r.get("uid"),
        name: r.get("name"),
        kind: r.get("type"),
        access: r.get("access"),
        url: r.get("url"),
        user: r.get("user"),
        database: r.get("database"),
        basic_auth: r.get("basic_auth"),
        with_credentials: r.get("with_credentials"),
        read_only: r.get("read_only"),
        json_data: r.get("json_data"),
        secure_json_data: r.get("secure_json_data"),
    }
}

/// Reads the row with the spec's uid.
///
/// # Errors
/// [`GrafanaError::NameTaken`] when another datasource (other uid) already has the spec's name;
/// [`GrafanaError::Query`].
pub async fn read_current(
    tx: &Transaction<'_>,
    spec: &DatasourceSpec,
) -> Result<Option<CurrentRow>, GrafanaError> {
    let rows = tx
        .query(
            // Every column cast, so a Grafana that widens a type cannot make a read panic.
            "SELECT id::bigint AS id, version::int4 AS version, uid::text, name::text, \
             type::text, access::text, url::text, \"user\"::text, database::text, \
             basic_auth::bool AS basic_auth, with_credentials::bool AS with_credentials, \
             read_only::bool AS read_only, json_data::text AS json_data, \
             secure_json_data::text AS secure_json_data \
             FROM data_source WHERE org_id = $1 AND (uid = $2 OR name = $3)",
            &[&ORG_ID, &spec.uid, &spec.name],
        )
        .await
        .map_err(q("data_source"))?;
    let rows: Vec<CurrentRow> = rows.iter().map(to_current).collect();
    if let Some(other) = rows.iter().find(|r| r.uid != spec.uid) {
        return Err(GrafanaError::NameTaken {
            name: spec.name.clone(),
            other_uid: other.uid.clone(),
        });
    }
    Ok(rows.into_iter().next())
}

/// Reads the `secrets` rows under the spec's name and the current row's name.
///
/// # Errors
/// [`GrafanaError::Query`].
pub async fn read_secrets(
    tx: &Transaction<'_>,
    spec: &DatasourceSpec,
    current: Option<&CurrentRow>,
) -> Result<Vec<SecretRow>, GrafanaError> {
    let old = current.map_or(spec.name.as_str(), |c| c.name.as_str());
    let rows = tx
        .query(
            "SELECT id::bigint, namespace::text, value::text FROM secrets \
             WHERE org_id = $1 AND type = $2 AND namespace IN ($3, $4) ORDER BY id",
            &[&ORG_ID, &SECRET_TYPE, &spec.name, &old],
        )
        .await
        .map_err(q("secrets"))?;
    Ok(rows
        .iter()
        .map(|r| SecretRow {
            id: r.get(0),
            namespace: r.get(1),
            value: r.get(2),
        })
        .collect())
}

/// Envelope data-key ids referenced by the stored values.
fn envelope_ids(current: Option<&CurrentRow>, secrets: &[SecretRow]) -> Vec<String> {
    let sjd = current
        .and_then(|c| c.secure_json_data.as_deref())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v["password"].as_str().map(str::to_owned));
    let texts = sjd
        .map(|t| (t, Wrapping::SecureJsonData))
        .into_iter()
        .chain(
            secrets
                .iter()
                .filter_map(|r| r.value.clone().map(|v| (v, Wrapping::SecretsTable))),
        );
    let mut ids: Vec<String> = texts
        .filter_map(|(t, w)| crypto::unwrap_text(&t, w).ok())
        .filter_map(|raw| crypto::split_envelope(&raw).map(|(id, _)| id))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Adds to `keys` the data keys (provider `secretKey.v1`) that Grafana's stored values use, so
/// values Grafana re-encrypted with envelope encryption still compare equal.
///
/// # Errors
/// [`GrafanaError::Query`].
pub async fn load_data_keys(
    tx: &Transaction<'_>,
    current: Option<&CurrentRow>,
    secrets: &[SecretRow],
    keys: &mut Keyring,
) -> Result<(), GrafanaError> {
    let ids = envelope_ids(current, secrets);
    if ids.is_empty() {
        return Ok(());
    }
    let rows = tx
        .query(
            "SELECT name::text, provider::text, encrypted_data FROM data_keys \
             WHERE name = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(q("data_keys"))?;
    for r in rows {
        let (id, provider, data): (String, String, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
        // Other providers (cloud KMS) need credentials chgate does not have: such values stay
        // unreadable and are rewritten in the legacy format, which every Grafana reads.
        if provider == "secretKey.v1" && keys.add_encrypted_data_key(&id, &data).is_err() {
            tracing::debug!(data_key = %id, "data key not decryptable with the secret_key");
        }
    }
    Ok(())
}

fn secure_json(spec: &DatasourceSpec, key: &str) -> String {
    let enc = encrypt_to_text(
        spec.password.expose().as_bytes(),
        key,
        Wrapping::SecureJsonData,
    );
    serde_json::json!({ "password": enc }).to_string()
}

/// Inserts the datasource with version 1; it becomes the org default only when the org has no
/// datasource yet, as Grafana's own `AddDataSource` does.
async fn insert(
    tx: &Transaction<'_>,
    spec: &DatasourceSpec,
    tables: &GrafanaTables,
    key: &str,
) -> Result<i32, GrafanaError> {
    let mut cols = String::from(
        "org_id, version, type, name, access, url, \"user\", database, basic_auth, is_default, \
         json_data, created, updated, with_credentials, secure_json_data, read_only, uid",
    );
    let mut vals = format!(
        "$1, 1, $2, $3, $4, '', '', '', false, \
         NOT EXISTS (SELECT 1 FROM data_source WHERE org_id = $1), \
         $5, {NOW_UTC}, {NOW_UTC}, false, $6, true, $7"
    );
    if tables.data_source_has("is_prunable") {
        cols.push_str(", is_prunable");
        vals.push_str(", false");
    }
    let sql = format!("INSERT INTO data_source ({cols}) VALUES ({vals}) RETURNING version");
    let json = spec.json_data().to_string();
    let secure = secure_json(spec, key);
    let row = tx
        .query_one(
            &sql,
            &[
                &ORG_ID,
                &PLUGIN_TYPE,
                &spec.name,
                &ACCESS,
                &json,
                &secure,
                &spec.uid,
            ],
        )
        .await
        .map_err(q("data_source"))?;
    Ok(row.get(0))
}

/// Rewrites the managed columns and bumps `version`; leaves `is_default` to the user.
async fn update(
    tx: &Transaction<'_>,
    spec: &DatasourceSpec,
    id: i64,
    new_secure: Option<String>,
) -> Result<i32, GrafanaError> {
    let sql = format!(
        "UPDATE data_source SET version = version + 1, name = $2, type = $3, access = $4, \
         url = '', \"user\" = '', database = '', basic_auth = false, with_credentials = false, \
         read_only = true, json_data = $5, secure_json_data = COALESCE($6, secure_json_data), \
         updated = {NOW_UTC} WHERE id = $1::bigint RETURNING version"
    );
    let json = spec.json_data().to_string();
    let row = tx
        .query_one(
            &sql,
            &[&id, &spec.name, &PLUGIN_TYPE, &ACCESS, &json, &new_secure],
        )
        .await
        .map_err(q("data_source"))?;
    Ok(row.get(0))
}

async fn write_secrets(
    tx: &Transaction<'_>,
    spec: &DatasourceSpec,
    action: &SecretsAction,
    key: &str,
) -> Result<(), GrafanaError> {
    let SecretsAction::Write {
        update_id,
        delete_ids,
    } = action
    else {
        return Ok(());
    };
    let plain = super::plan::secrets_plaintext(spec);
    let value = encrypt_to_text(&plain, key, Wrapping::SecretsTable);
    if !delete_ids.is_empty() {
        tx.execute(
            "DELETE FROM secrets WHERE id = ANY($1::bigint[])",
            &[delete_ids],
        )
        .await
        .map_err(q("secrets"))?;
    }
    let written = match update_id {
        Some(id) => {
            let sql = format!(
                "UPDATE secrets SET namespace = $2, type = $3, value = $4, updated = {NOW_UTC} \
                 WHERE id = $1::bigint"
            );
            tx.execute(&sql, &[id, &spec.name, &SECRET_TYPE, &value])
                .await
        }
        None => {
            let sql = format!(
                "INSERT INTO secrets (org_id, namespace, type, value, created, updated) \
                 VALUES ($1, $2, $3, $4, {NOW_UTC}, {NOW_UTC})"
            );
            tx.execute(&sql, &[&ORG_ID, &spec.name, &SECRET_TYPE, &value])
                .await
        }
    };
    written.map_err(q("secrets"))?;
    Ok(())
}

/// Writes `plan`; returns the datasource's version afterwards (`None` when the row was kept).
///
/// # Errors
/// [`GrafanaError::Query`].
pub async fn execute(
    tx: &Transaction<'_>,
    spec: &DatasourceSpec,
    tables: &GrafanaTables,
    plan: &Plan,
    key: &str,
) -> Result<Option<i32>, GrafanaError> {
    let version = match &plan.row {
        RowAction::Keep => None,
        RowAction::Insert => Some(insert(tx, spec, tables, key).await?),
        RowAction::Update { id, reencrypt } => {
            let secure = reencrypt.then(|| secure_json(spec, key));
            Some(update(tx, spec, *id, secure).await?)
        }
    };
    if tables.secrets.is_some() {
        write_secrets(tx, spec, &plan.secrets, key).await?;
    }
    Ok(version)
}
