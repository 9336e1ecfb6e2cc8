//! `provision` against Grafana's real table layout in a fresh database on the rig's PostgreSQL.

use std::time::{Duration, Instant};

use chgate_grafana::store::plan::{Drift, PasswordDrift, SecretsDrift};
use chgate_grafana::store::schema;
use chgate_grafana::{provision, GrafanaError, Mode, Outcome, PgTarget, WaitSettings};
use chgate_topology::Secret;

use crate::common::{
    captured_logs, create_tables, fresh_db, py_decrypt, python, rig_secret_key, rig_spec,
    rig_target, Layout, TestDb,
};

const NO_WAIT: WaitSettings = WaitSettings {
    wait: Duration::ZERO,
    poll: Duration::from_millis(100),
};

async fn run(
    db: &TestDb,
    spec: &chgate_grafana::DatasourceSpec,
    key: &Secret,
    mode: Mode,
) -> Outcome {
    provision(&db.target, spec, key, mode, NO_WAIT)
        .await
        .unwrap_or_else(|e| panic!("provision: {e}"))
}

#[tokio::test]
async fn twice_is_one_row_same_version_and_a_port_change_bumps_the_version() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (mut spec, key) = (rig_spec(rig), rig_secret_key(rig));

    let first = run(&db, &spec, &key, Mode::Apply).await;
    assert_eq!(first.written_version, Some(1));
    assert_eq!(
        first.drift,
        vec![Drift::Missing, Drift::Secrets(SecretsDrift::Missing)]
    );
    let rows = db.datasources().await;
    assert_eq!(rows.len(), 1);
    let (id, uid, _, version) = rows[0].clone();
    assert_eq!((uid.as_str(), version), (spec.uid.as_str(), 1));
    let stored = db.stored_password_text().await;

    let second = run(&db, &spec, &key, Mode::Apply).await;
    assert_eq!(
        second.written_version, None,
        "second run must change nothing"
    );
    assert!(second.drift.is_empty(), "{:?}", second.drift);
    assert_eq!(db.datasources().await, rows, "row untouched");
    assert_eq!(
        db.stored_password_text().await,
        stored,
        "ciphertext not rewritten"
    );

    spec.port += 1;
    let third = run(&db, &spec, &key, Mode::Apply).await;
    assert_eq!(third.written_version, Some(2));
    assert!(matches!(&third.drift[..], [Drift::Field { field, .. }] if field == "jsonData.port"));
    let after = db.datasources().await;
    assert_eq!(
        after,
        vec![(id, uid, spec.name.clone(), 2)],
        "same id and uid, version + 1"
    );
    db.drop().await;
}

#[tokio::test]
async fn stored_password_decrypts_independently_in_both_tables_and_no_plaintext_is_stored() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    run(&db, &spec, &key, Mode::Apply).await;

    let pw = spec.password.expose();
    let text = db.stored_password_text().await;
    assert_eq!(py_decrypt(key.expose(), &text, "secure_json_data"), pw);
    let secrets = db.secrets().await;
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].0, spec.name, "namespace is the datasource name");
    let json = py_decrypt(key.expose(), &secrets[0].1, "secrets_table");
    let v: serde_json::Value = serde_json::from_str(&json).expect("secrets value is JSON");
    assert_eq!(v, serde_json::json!({ "password": pw }));

    let everything = db.all_rows_text().await;
    assert!(!everything.contains(pw), "plaintext password stored");
    assert!(!everything.contains(key.expose()), "secret_key stored");
    db.drop().await;
}

#[tokio::test]
async fn missing_tables_wait_then_fail_plainly_and_are_never_created() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Empty).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    let wait = WaitSettings {
        wait: Duration::from_secs(2),
        poll: Duration::from_millis(200),
    };
    let start = Instant::now();
    let err = provision(&db.target, &spec, &key, Mode::Apply, wait)
        .await
        .expect_err("no Grafana tables");
    assert!(
        start.elapsed() >= Duration::from_millis(1800),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, GrafanaError::TablesMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("Grafana's tables do not exist") && msg.contains(&db.name),
        "{msg}"
    );
    let tables = db
        .client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .expect("count");
    assert_eq!(
        tables.get::<_, i64>(0),
        0,
        "provision must not create Grafana's tables"
    );
    db.drop().await;
}

#[tokio::test]
async fn provisioning_reaches_postgres_over_tls_verified_against_the_topology_ca() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    assert!(
        db.target.ca.is_some(),
        "the test rig's topology has [tls] (crates/harness/rig.toml): {:?}",
        db.target
    );
    // The connection `provision` itself uses.
    let c = schema::connect(&db.target).await.expect("connect over TLS");
    let row = c
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    let (ssl, version): (bool, Option<String>) = (row.get(0), row.get(1));
    assert!(ssl, "provisioning's session is encrypted ({version:?})");
    drop(c);
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    let out = run(&db, &spec, &key, Mode::Apply).await;
    assert_eq!(out.written_version, Some(1));

    // Trusting another CA: refused, with no fallback to plain text (and nothing written).
    let other = chgate_harness::tls::TestCa::new();
    let wrong = PgTarget {
        ca: Some(other.ca()),
        ..db.target.clone()
    };
    let err = provision(&wrong, &spec, &key, Mode::Apply, NO_WAIT)
        .await
        .expect_err("untrusted server certificate");
    assert!(
        matches!(err, GrafanaError::Connect { .. }) && err.to_string().contains("TLS"),
        "{err}"
    );
    let missing = PgTarget {
        ca: Some(other.absent()),
        ..db.target.clone()
    };
    let err = provision(&missing, &spec, &key, Mode::Apply, NO_WAIT)
        .await
        .expect_err("no CA file");
    assert!(
        matches!(err, GrafanaError::Tls(_)) && err.to_string().contains("absent.crt"),
        "{err}"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_missing_database_is_reported_as_grafana_not_started() {
    let rig = chgate_harness::rig().await;
    let name = rig.unique_name("nodb");
    let target = rig_target(rig).with_database(&name);
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    let err = provision(&target, &spec, &key, Mode::Check, NO_WAIT)
        .await
        .expect_err("no database");
    assert!(matches!(err, GrafanaError::TablesMissing { .. }), "{err}");
    assert!(err.to_string().contains(&name), "{err}");
}

#[tokio::test]
async fn tables_appearing_during_the_wait_are_used() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Empty).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    let wait = WaitSettings {
        wait: Duration::from_secs(20),
        poll: Duration::from_millis(200),
    };
    let late = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        create_tables(&db.client, Layout::Full).await;
    };
    let (out, ()) = tokio::join!(provision(&db.target, &spec, &key, Mode::Apply, wait), late);
    assert_eq!(
        out.expect("provisioned after Grafana started")
            .written_version,
        Some(1)
    );
    db.drop().await;
}

#[tokio::test]
async fn three_concurrent_runs_leave_exactly_one_row() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    let go = || provision(&db.target, &spec, &key, Mode::Apply, NO_WAIT);
    let (a, b, c) = tokio::join!(go(), go(), go());
    let outs: Vec<Outcome> = [a, b, c]
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("concurrent run failed: {e}")))
        .collect();
    let writes: Vec<_> = outs.iter().filter_map(|o| o.written_version).collect();
    assert_eq!(
        writes,
        vec![1],
        "exactly one run inserts, the others find it done"
    );
    assert_eq!(db.datasources().await.len(), 1);
    assert_eq!(db.secrets().await.len(), 1);
    db.drop().await;
}

#[tokio::test]
async fn check_reports_drift_without_writing() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (mut spec, key) = (rig_spec(rig), rig_secret_key(rig));

    let out = run(&db, &spec, &key, Mode::Check).await;
    assert_eq!(
        out.drift,
        vec![Drift::Missing, Drift::Secrets(SecretsDrift::Missing)]
    );
    assert_eq!(out.written_version, None);
    assert!(db.datasources().await.is_empty(), "check must not insert");

    run(&db, &spec, &key, Mode::Apply).await;
    let before = db.all_rows_text().await;
    spec.port += 7;
    spec.password = Secret::new("rotated-password");
    let out = run(&db, &spec, &key, Mode::Check).await;
    assert!(out
        .drift
        .iter()
        .any(|d| matches!(d, Drift::Field { field, .. } if field == "jsonData.port")));
    assert!(out
        .drift
        .contains(&Drift::Password(PasswordDrift::Different)));
    assert!(out.drift.contains(&Drift::Secrets(SecretsDrift::Stale)));
    assert_eq!(db.all_rows_text().await, before, "check must not write");
    db.drop().await;
}

#[tokio::test]
async fn rename_keeps_uid_and_moves_the_secrets_row() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (mut spec, key) = (rig_spec(rig), rig_secret_key(rig));
    run(&db, &spec, &key, Mode::Apply).await;
    let (id, uid, _, _) = db.datasources().await[0].clone();

    spec.name = "ClickHouse (renamed)".into();
    let out = run(&db, &spec, &key, Mode::Apply).await;
    assert_eq!(out.written_version, Some(2));
    assert_eq!(
        db.datasources().await,
        vec![(id, uid, spec.name.clone(), 2)]
    );
    let secrets = db.secrets().await;
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    assert_eq!(secrets[0].0, spec.name, "secret follows the new name");
    assert!(run(&db, &spec, &key, Mode::Apply).await.drift.is_empty());
    db.drop().await;
}

#[tokio::test]
async fn a_stale_secrets_row_cannot_win() {
    // Grafana reads the secrets table before secure_json_data: a leftover row with another
    // password would silently override ours.
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    let stale = chgate_grafana::crypto::encrypt_to_text(
        br#"{"password":"old-password"}"#,
        key.expose(),
        chgate_grafana::crypto::Wrapping::SecretsTable,
    );
    for _ in 0..2 {
        db.client
            .execute(
                "INSERT INTO secrets (org_id, namespace, type, value, created, updated) \
                 VALUES (1, $1, 'datasource', $2, now(), now())",
                &[&spec.name, &stale],
            )
            .await
            .expect("stale rows");
    }
    let out = run(&db, &spec, &key, Mode::Apply).await;
    assert!(out
        .drift
        .contains(&Drift::Secrets(SecretsDrift::Duplicates(2))));
    let secrets = db.secrets().await;
    assert_eq!(secrets.len(), 1);
    let json = py_decrypt(key.expose(), &secrets[0].1, "secrets_table");
    assert!(json.contains(spec.password.expose()) && !json.contains("old-password"));
    db.drop().await;
}

#[tokio::test]
async fn a_name_held_by_another_uid_is_refused() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    db.client
        .execute(
            "INSERT INTO data_source (org_id, version, type, name, access, url, basic_auth, \
             is_default, json_data, created, updated, uid) \
             VALUES (1, 1, 'prometheus', $1, 'proxy', '', false, true, '{}', now(), now(), 'someone')",
            &[&spec.name],
        )
        .await
        .expect("other datasource");
    let err = provision(&db.target, &spec, &key, Mode::Apply, NO_WAIT)
        .await
        .expect_err("name taken");
    assert!(
        matches!(&err, GrafanaError::NameTaken { other_uid, .. } if other_uid == "someone"),
        "{err}"
    );
    assert_eq!(db.datasources().await.len(), 1);
    db.drop().await;
}

#[tokio::test]
async fn grafana_without_a_secrets_table_is_provisioned_through_secure_json_data() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::DataSourceOnly).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    let out = run(&db, &spec, &key, Mode::Apply).await;
    assert!(!out.secrets_table);
    assert_eq!(out.written_version, Some(1));
    let text = db.stored_password_text().await;
    assert_eq!(
        py_decrypt(key.expose(), &text, "secure_json_data"),
        spec.password.expose()
    );
    db.drop().await;
}

#[tokio::test]
async fn logs_never_contain_the_password_or_the_secret_key() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (mut spec, key) = (rig_spec(rig), rig_secret_key(rig));
    run(&db, &spec, &key, Mode::Apply).await;
    spec.password = Secret::new("second-password-xyz");
    run(&db, &spec, &key, Mode::Check).await;
    run(&db, &spec, &key, Mode::Apply).await;
    // Every test of this binary logs into the same capture: none may leak a secret.
    let logs = captured_logs();
    assert!(
        logs.contains("grafana datasource drift"),
        "expected drift logs:\n{logs}"
    );
    assert!(
        logs.contains("secure_json_data.password: Different (value not shown)"),
        "{logs}"
    );
    for secret in [
        rig.clickhouse_password().expose(),
        "second-password-xyz",
        key.expose(),
    ] {
        assert!(
            !logs.contains(secret),
            "a secret leaked into the logs:\n{logs}"
        );
    }
    db.drop().await;
}

/// Envelope-encrypts `plaintext` as Grafana 9+ does (independent Python implementation): returns
/// the data key as stored in `data_keys.encrypted_data` and the column text.
fn envelope(key: &Secret, plaintext: &str, wrapping: &str, key_id: &str) -> (Vec<u8>, String) {
    use base64::Engine as _;
    let out = python(&serde_json::json!({
        "op": "envelope_encrypt", "secret_key": key.expose(), "plaintext": plaintext,
        "wrapping": wrapping, "key_id": key_id
    }))
    .expect("python envelope-encrypts");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let stored_key = base64::engine::general_purpose::STANDARD
        .decode(v["data_key_b64"].as_str().expect("key"))
        .expect("b64");
    (stored_key, v["text"].as_str().expect("text").to_owned())
}

/// Rewrites both stored values the way Grafana does with envelope encryption; the data keys go
/// into `data_keys` only when `store_keys`.
async fn grafana_reencrypts_with_envelope(db: &TestDb, key: &Secret, pw: &str, store_keys: bool) {
    let (k1, sjd) = envelope(key, pw, "secure_json_data", "kid-sjd");
    let json = serde_json::json!({ "password": pw }).to_string();
    let (k2, secret) = envelope(key, &json, "secrets_table", "kid-sec");
    let sjd = serde_json::json!({ "password": sjd }).to_string();
    let c = &db.client;
    c.execute("UPDATE data_source SET secure_json_data = $1", &[&sjd])
        .await
        .expect("envelope secure_json_data");
    c.execute("UPDATE secrets SET value = $1", &[&secret])
        .await
        .expect("envelope secrets value");
    if !store_keys {
        return;
    }
    for (id, k) in [("kid-sjd", k1), ("kid-sec", k2)] {
        c.execute(
            "INSERT INTO data_keys (name, active, scope, provider, encrypted_data, created, \
             updated, label) VALUES ($1, true, 'root', 'secretKey.v1', $2, now(), now(), $1)",
            &[&id, &k],
        )
        .await
        .expect("data key");
    }
}

#[tokio::test]
async fn values_grafana_reencrypted_with_envelope_encryption_still_compare_equal() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    run(&db, &spec, &key, Mode::Apply).await;
    grafana_reencrypts_with_envelope(&db, &key, spec.password.expose(), true).await;
    let out = run(&db, &spec, &key, Mode::Apply).await;
    assert!(
        out.drift.is_empty(),
        "envelope values must be read: {:?}",
        out.drift
    );
    assert_eq!(out.written_version, None);
    assert_eq!(db.datasources().await[0].3, 1, "no version bump");
    db.drop().await;
}

#[tokio::test]
async fn envelope_values_with_an_unknown_data_key_are_rewritten_readably() {
    let rig = chgate_harness::rig().await;
    let db = fresh_db(rig, Layout::Full).await;
    let (spec, key) = (rig_spec(rig), rig_secret_key(rig));
    run(&db, &spec, &key, Mode::Apply).await;
    grafana_reencrypts_with_envelope(&db, &key, spec.password.expose(), false).await;
    let out = run(&db, &spec, &key, Mode::Apply).await;
    assert!(
        out.drift
            .contains(&Drift::Password(PasswordDrift::Unreadable)),
        "{:?}",
        out.drift
    );
    assert!(out.drift.contains(&Drift::Secrets(SecretsDrift::Stale)));
    assert_eq!(out.written_version, Some(2));
    let text = db.stored_password_text().await;
    assert_eq!(
        py_decrypt(key.expose(), &text, "secure_json_data"),
        spec.password.expose()
    );
    assert!(run(&db, &spec, &key, Mode::Apply).await.drift.is_empty());
    db.drop().await;
}
