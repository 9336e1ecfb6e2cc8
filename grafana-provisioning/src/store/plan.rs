//! Pure decision logic: compare Grafana's current rows with the desired datasource and decide
//! what to write. No I/O; every branch is unit-tested here.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::crypto::{Keyring, Wrapping};
use crate::datasource::{DatasourceSpec, ACCESS, PLUGIN_TYPE};

/// `secrets.type` Grafana uses for datasource secrets (`kvstore.DataSourceSecretType`).
pub const SECRET_TYPE: &str = "datasource";

/// The columns of a `data_source` row that chgate manages, as read from the database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentRow {
    /// Row id.
    pub id: i64,
    /// Grafana's optimistic-locking version.
    pub version: i32,
    /// uid.
    pub uid: String,
    /// name.
    pub name: String,
    /// type (plugin id).
    pub kind: String,
    /// access mode.
    pub access: String,
    /// url (unused by the ClickHouse plugin; must be empty).
    pub url: String,
    /// `user` column (unused by the plugin; must be empty).
    pub user: Option<String>,
    /// `database` column (unused by the plugin; must be empty).
    pub database: Option<String>,
    /// basic_auth.
    pub basic_auth: bool,
    /// with_credentials.
    pub with_credentials: bool,
    /// read_only (provisioned: not editable in the UI).
    pub read_only: Option<bool>,
    /// json_data text.
    pub json_data: Option<String>,
    /// secure_json_data text.
    pub secure_json_data: Option<String>,
}

/// One row of Grafana's `secrets` table for a datasource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    /// Row id.
    pub id: i64,
    /// The datasource name the secret belongs to.
    pub namespace: String,
    /// RawStd-base64 of the encrypted JSON object.
    pub value: Option<String>,
}

/// Why the stored password does not match (never carries a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordDrift {
    /// No `password` in `secure_json_data`.
    Missing,
    /// Stored, but not decryptable with the `secret_key` in the legacy format.
    Unreadable,
    /// Decrypts, to a different value (or the secret_key changed).
    Different,
    /// `secure_json_data` holds other keys chgate does not manage.
    ExtraKeys,
}

/// Why the `secrets` table disagrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretsDrift {
    /// No row for the datasource; Grafana would fall back to `secure_json_data`.
    Missing,
    /// The row decrypts to something else (or not at all): Grafana reads it first, so it would win.
    Stale,
    /// More than one row for the datasource.
    Duplicates(usize),
    /// A row under the datasource's previous name.
    OldName,
}

/// One difference between what is stored and what the topology wants.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Drift {
    /// No datasource with the uid exists.
    Missing,
    /// A plain column or jsonData key differs (values are not secret).
    Field {
        /// Column or `jsonData.key`.
        field: String,
        /// What is stored (`<none>` when absent).
        current: String,
        /// What chgate wants.
        desired: String,
    },
    /// The encrypted password.
    Password(PasswordDrift),
    /// The `secrets` table row.
    Secrets(SecretsDrift),
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Missing => f.write_str("datasource does not exist"),
            Drift::Field {
                field,
                current,
                desired,
            } => write!(f, "{field}: {current} -> {desired}"),
            Drift::Password(p) => write!(f, "secure_json_data.password: {p:?} (value not shown)"),
            Drift::Secrets(s) => write!(f, "secrets table row: {s:?}"),
        }
    }
}

/// What to do with the `data_source` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowAction {
    /// Insert a new row with version 1.
    Insert,
    /// Update row `id`, bumping its version; `reencrypt` when the stored password is not usable.
    Update {
        /// Row id.
        id: i64,
        /// Whether `secure_json_data` must be rewritten.
        reencrypt: bool,
    },
    /// Nothing to change.
    Keep,
}

/// What to do with the `secrets` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsAction {
    /// Table absent (older Grafana) or already right.
    Nothing,
    /// Write the row: update `update_id` (or insert when `None`), delete `delete_ids`.
    Write {
        /// Row to overwrite.
        update_id: Option<i64>,
        /// Stale duplicates and rows under an old name.
        delete_ids: Vec<i64>,
    },
}

/// The decision for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The `data_source` row.
    pub row: RowAction,
    /// The `secrets` table.
    pub secrets: SecretsAction,
    /// Every difference found, in a stable order.
    pub drift: Vec<Drift>,
}

impl Plan {
    /// True when nothing needs writing.
    pub fn is_noop(&self) -> bool {
        self.drift.is_empty()
    }
}

/// Decides what to write. `secrets` is `None` when Grafana's `secrets` table does not exist, else
/// the rows for the datasource under its desired and (if renamed) current names.
pub fn plan(
    spec: &DatasourceSpec,
    current: Option<&CurrentRow>,
    secrets: Option<&[SecretRow]>,
    keys: &Keyring,
) -> Plan {
    let mut drift = Vec::new();
    let mut reencrypt = true;
    match current {
        None => drift.push(Drift::Missing),
        Some(row) => {
            field_drift(spec, row, &mut drift);
            match password_drift(spec, row, keys) {
                Some(p) => drift.push(Drift::Password(p)),
                None => reencrypt = false,
            }
        }
    }
    let secrets_action = match secrets {
        None => SecretsAction::Nothing,
        Some(rows) => secrets_plan(spec, rows, keys, &mut drift),
    };
    let row = match current {
        None => RowAction::Insert,
        Some(_) if drift.is_empty() => RowAction::Keep,
        // Any change, even one only in the secrets table, bumps the version and `updated`:
        // Grafana caches datasource instances by them.
        Some(r) => RowAction::Update {
            id: r.id,
            reencrypt,
        },
    };
    Plan {
        row,
        secrets: secrets_action,
        drift,
    }
}

fn push_if(drift: &mut Vec<Drift>, field: &str, current: String, desired: String) {
    if current != desired {
        drift.push(Drift::Field {
            field: field.to_owned(),
            current,
            desired,
        });
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn field_drift(spec: &DatasourceSpec, row: &CurrentRow, drift: &mut Vec<Drift>) {
    push_if(drift, "name", row.name.clone(), spec.name.clone());
    push_if(drift, "type", row.kind.clone(), PLUGIN_TYPE.to_owned());
    push_if(drift, "access", row.access.clone(), ACCESS.to_owned());
    push_if(drift, "url", row.url.clone(), String::new());
    push_if(drift, "user", opt(&row.user), String::new());
    push_if(drift, "database", opt(&row.database), String::new());
    push_if(
        drift,
        "basic_auth",
        row.basic_auth.to_string(),
        "false".into(),
    );
    let wc = row.with_credentials.to_string();
    push_if(drift, "with_credentials", wc, "false".into());
    let ro = row.read_only.unwrap_or(false).to_string();
    push_if(drift, "read_only", ro, "true".into());
    json_drift(&spec.json_data(), row.json_data.as_deref(), drift);
}

/// Compares jsonData key by key, so the report names the key that changed.
fn json_drift(desired: &Value, current: Option<&str>, drift: &mut Vec<Drift>) {
    let current: Value = current
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let empty = serde_json::Map::new();
    let cur = current.as_object().unwrap_or(&empty);
    let want = desired.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = cur.keys().chain(want.keys()).collect();
    for k in keys {
        let show = |v: Option<&Value>| v.map_or_else(|| "<none>".to_owned(), Value::to_string);
        push_if(
            drift,
            &format!("jsonData.{k}"),
            show(cur.get(k)),
            show(want.get(k)),
        );
    }
}

fn password_drift(
    spec: &DatasourceSpec,
    row: &CurrentRow,
    keys: &Keyring,
) -> Option<PasswordDrift> {
    let parsed: Option<serde_json::Map<String, Value>> = row
        .secure_json_data
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    let Some(map) = parsed else {
        return Some(PasswordDrift::Missing);
    };
    let Some(text) = map.get("password").and_then(Value::as_str) else {
        return Some(PasswordDrift::Missing);
    };
    match keys.decrypt_text(text, Wrapping::SecureJsonData) {
        Err(_) => Some(PasswordDrift::Unreadable),
        Ok(pt) if pt != spec.password.expose().as_bytes() => Some(PasswordDrift::Different),
        Ok(_) if map.len() != 1 => Some(PasswordDrift::ExtraKeys),
        Ok(_) => None,
    }
}

/// The JSON object Grafana keeps encrypted in `secrets.value` for a datasource.
pub fn secrets_plaintext(spec: &DatasourceSpec) -> Vec<u8> {
    serde_json::json!({ "password": spec.password.expose() })
        .to_string()
        .into_bytes()
}

fn secret_row_ok(row: &SecretRow, spec: &DatasourceSpec, keys: &Keyring) -> bool {
    let Some(text) = row.value.as_deref() else {
        return false;
    };
    let Ok(pt) = keys.decrypt_text(text, Wrapping::SecretsTable) else {
        return false;
    };
    let want = serde_json::json!({ "password": spec.password.expose() });
    serde_json::from_slice::<Value>(&pt).is_ok_and(|v| v == want)
}

fn secrets_plan(
    spec: &DatasourceSpec,
    rows: &[SecretRow],
    keys: &Keyring,
    drift: &mut Vec<Drift>,
) -> SecretsAction {
    let (mine, old): (Vec<&SecretRow>, Vec<&SecretRow>) =
        rows.iter().partition(|r| r.namespace == spec.name);
    let mut delete_ids: Vec<i64> = old.iter().map(|r| r.id).collect();
    if !old.is_empty() {
        drift.push(Drift::Secrets(SecretsDrift::OldName));
    }
    if mine.len() > 1 {
        drift.push(Drift::Secrets(SecretsDrift::Duplicates(mine.len())));
    }
    // Keep the lowest id; Grafana's `Get` would pick an arbitrary one of duplicates.
    let mut sorted = mine.clone();
    sorted.sort_by_key(|r| r.id);
    let keep = sorted.first().copied();
    delete_ids.extend(sorted.iter().skip(1).map(|r| r.id));
    let keep_ok = keep.is_some_and(|r| secret_row_ok(r, spec, keys));
    match keep {
        None => drift.push(Drift::Secrets(SecretsDrift::Missing)),
        Some(_) if !keep_ok => drift.push(Drift::Secrets(SecretsDrift::Stale)),
        Some(_) => {}
    }
    if keep_ok && delete_ids.is_empty() {
        return SecretsAction::Nothing;
    }
    SecretsAction::Write {
        update_id: keep.map(|r| r.id),
        delete_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::encrypt_to_text;
    use chgate_topology::render::Addressing;
    use chgate_topology::{Secret, Topology};

    const KEY: &str = "sw2YcwTIb9zpOOhoPsMm";

    fn spec() -> DatasourceSpec {
        DatasourceSpec::from_topology(
            &Topology::default(),
            Addressing::Local,
            Secret::new("ch-pass"),
        )
    }

    fn good_row(s: &DatasourceSpec) -> CurrentRow {
        let pw = encrypt_to_text(b"ch-pass", KEY, Wrapping::SecureJsonData);
        CurrentRow {
            id: 7,
            version: 3,
            uid: s.uid.clone(),
            name: s.name.clone(),
            kind: PLUGIN_TYPE.into(),
            access: ACCESS.into(),
            url: String::new(),
            user: Some(String::new()),
            database: None,
            basic_auth: false,
            with_credentials: false,
            read_only: Some(true),
            json_data: Some(s.json_data().to_string()),
            secure_json_data: Some(serde_json::json!({ "password": pw }).to_string()),
        }
    }

    fn good_secret(s: &DatasourceSpec, id: i64) -> SecretRow {
        SecretRow {
            id,
            namespace: s.name.clone(),
            value: Some(encrypt_to_text(
                &secrets_plaintext(s),
                KEY,
                Wrapping::SecretsTable,
            )),
        }
    }

    #[test]
    fn missing_row_is_inserted() {
        let s = spec();
        let p = plan(&s, None, None, &Keyring::new(KEY));
        assert_eq!(p.row, RowAction::Insert);
        assert_eq!(p.drift, vec![Drift::Missing]);
    }

    #[test]
    fn matching_row_is_kept_even_though_ciphertexts_are_random() {
        let s = spec();
        let row = good_row(&s);
        let secrets = [good_secret(&s, 1)];
        let p = plan(&s, Some(&row), Some(&secrets), &Keyring::new(KEY));
        assert!(p.is_noop(), "{:?}", p.drift);
        assert_eq!(
            (p.row, p.secrets),
            (RowAction::Keep, SecretsAction::Nothing)
        );
    }

    #[test]
    fn changed_port_is_a_field_drift_naming_the_key_and_keeps_the_password() {
        let mut s = spec();
        let row = good_row(&s);
        s.port += 1;
        let p = plan(&s, Some(&row), None, &Keyring::new(KEY));
        assert_eq!(
            p.drift,
            vec![Drift::Field {
                field: "jsonData.port".into(),
                current: "19001".into(),
                desired: "19002".into()
            }]
        );
        assert_eq!(
            p.row,
            RowAction::Update {
                id: 7,
                reencrypt: false
            }
        );
    }

    #[test]
    fn password_drift_never_shows_the_value() {
        let s = spec();
        let mut row = good_row(&s);
        let other = encrypt_to_text(b"old-pass", KEY, Wrapping::SecureJsonData);
        row.secure_json_data = Some(serde_json::json!({ "password": other }).to_string());
        let p = plan(&s, Some(&row), None, &Keyring::new(KEY));
        assert_eq!(p.drift, vec![Drift::Password(PasswordDrift::Different)]);
        let shown = p.drift[0].to_string();
        assert!(
            !shown.contains("old-pass") && !shown.contains("ch-pass"),
            "{shown}"
        );
        assert_eq!(
            p.row,
            RowAction::Update {
                id: 7,
                reencrypt: true
            }
        );
    }

    #[test]
    fn plaintext_or_wrong_key_password_is_detected() {
        let s = spec();
        let mut row = good_row(&s);
        row.secure_json_data = Some(r#"{"password":"ch-pass"}"#.into());
        let p = plan(&s, Some(&row), None, &Keyring::new(KEY));
        assert!(matches!(
            p.drift[..],
            [Drift::Password(
                PasswordDrift::Unreadable | PasswordDrift::Different
            )]
        ));
        let row = good_row(&s);
        let p = plan(&s, Some(&row), None, &Keyring::new("another-secret-key"));
        assert!(!p.is_noop(), "a rotated secret_key must re-encrypt");
    }

    #[test]
    fn rename_moves_the_secrets_row() {
        let mut s = spec();
        let row = good_row(&s);
        let old = good_secret(&s, 4);
        s.name = "ClickHouse (renamed)".into();
        let p = plan(&s, Some(&row), Some(&[old]), &Keyring::new(KEY));
        assert!(p.drift.contains(&Drift::Secrets(SecretsDrift::OldName)));
        assert!(p.drift.contains(&Drift::Secrets(SecretsDrift::Missing)));
        assert_eq!(
            p.secrets,
            SecretsAction::Write {
                update_id: None,
                delete_ids: vec![4]
            }
        );
    }

    #[test]
    fn stale_and_duplicate_secret_rows_are_fixed_keeping_the_lowest_id() {
        let s = spec();
        let row = good_row(&s);
        let mut stale = good_secret(&s, 2);
        stale.value = Some(encrypt_to_text(
            br#"{"password":"old"}"#,
            KEY,
            Wrapping::SecretsTable,
        ));
        let dup = good_secret(&s, 9);
        let p = plan(&s, Some(&row), Some(&[dup, stale]), &Keyring::new(KEY));
        assert!(p.drift.contains(&Drift::Secrets(SecretsDrift::Stale)));
        assert!(p
            .drift
            .contains(&Drift::Secrets(SecretsDrift::Duplicates(2))));
        assert_eq!(
            p.secrets,
            SecretsAction::Write {
                update_id: Some(2),
                delete_ids: vec![9]
            }
        );
        assert!(
            matches!(p.row, RowAction::Update { .. }),
            "version bumps too"
        );
    }

    proptest::proptest! {
        // Encryption runs PBKDF2 (10000 rounds) per case: few cases.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn a_row_written_from_the_spec_is_a_noop_and_any_port_change_is_not(
            host in "[a-z0-9.-]{1,30}", port in 1u16..u16::MAX, user in "[a-z_]{1,12}",
            name in "[ -~]{1,60}", pw in "[ -~]{1,40}",
        ) {
            let mut s = spec();
            (s.host, s.port, s.username, s.name) = (host, port, user, name);
            s.password = Secret::new(pw.clone());
            let mut row = good_row(&s);
            let enc = encrypt_to_text(pw.as_bytes(), KEY, Wrapping::SecureJsonData);
            row.secure_json_data = Some(serde_json::json!({ "password": enc }).to_string());
            let secrets = [good_secret(&s, 1)];
            proptest::prop_assert!(plan(&s, Some(&row), Some(&secrets), &Keyring::new(KEY)).is_noop());
            s.port = port.wrapping_add(1).max(1);
            proptest::prop_assert!(!plan(&s, Some(&row), Some(&secrets), &Keyring::new(KEY)).is_noop());
        }
    }

    #[test]
    fn editable_row_and_extra_json_keys_are_drift() {
        let s = spec();
        let mut row = good_row(&s);
        row.read_only = Some(false);
        row.json_data = Some(
            serde_json::json!({"host": s.host, "port": s.port, "protocol": "native",
            "secure": false, "username": s.username, "defaultDatabase": "metrics",
            "tlsSkipVerify": false, "extra": 1})
            .to_string(),
        );
        let fields: Vec<String> = plan(&s, Some(&row), None, &Keyring::new(KEY))
            .drift
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            fields,
            vec!["read_only: false -> true", "jsonData.extra: 1 -> <none>"]
        );
    }
}
