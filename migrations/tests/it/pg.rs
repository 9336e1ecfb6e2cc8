//! The PostgreSQL side on the rig's PostgreSQL 15.

use crate::live::{loaded, shared};

#[tokio::test]
async fn postgres_side_bootstraps_databases_applies_once_and_reports_status() {
    use chgate_migrations::postgres::{self, PgTarget};
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let mut target = PgTarget::from_topology(&loaded(rig)).expect("pg target");
    target.database = rig.unique_name("mig_pg");
    target.grafana_database = rig.unique_name("mig_pg_grafana");
    let before = postgres::status(&target)
        .await
        .expect("status on a missing database");
    assert!(before.iter().all(|m| m.applied_on.is_none()), "{before:?}");
    let dry = postgres::up(&target, true).await.expect("dry run");
    assert_eq!(dry.len(), before.len());
    assert!(
        postgres::status(&target)
            .await
            .expect("status")
            .iter()
            .all(|m| m.applied_on.is_none()),
        "dry run applied nothing"
    );
    let applied = postgres::up(&target, false).await.expect("up");
    assert_eq!(applied.len(), before.len());
    assert!(postgres::up(&target, false)
        .await
        .expect("rerun")
        .is_empty());
    let after = postgres::status(&target).await.expect("status");
    assert!(after.iter().all(|m| m.applied_on.is_some()), "{after:?}");
    // The gateway's tables exist, tokens are stored hashed (32 bytes) only.
    let client = rig.postgres(&target.database).await;
    client
        .batch_execute(
            "INSERT INTO gateway_tenants (name) VALUES ('acme');
             INSERT INTO gateway_tokens (tenant_id, token_sha256)
               SELECT id, sha256('secret-token'::bytea) FROM gateway_tenants WHERE name = 'acme';",
        )
        .await
        .expect("tenant and token");
    let bad = client
        .batch_execute(
            "INSERT INTO gateway_tokens (tenant_id, token_sha256) VALUES (1, 'plain'::bytea)",
        )
        .await;
    assert!(bad.is_err(), "a non-hash token is refused");
    let grafana_db: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&target.grafana_database],
        )
        .await
        .expect("pg_database")
        .get(0);
    assert_eq!(grafana_db, 1, "Grafana's database was bootstrapped");
}
