//! `chgate migrate` -> PostgreSQL over TLS on the rig (its topology has `[tls]`).

use crate::live::loaded;

#[tokio::test]
async fn migrator_connects_to_postgres_over_tls_and_verifies_the_server() {
    use chgate_migrations::postgres::{self, PgTarget};
    let rig = chgate_harness::rig().await;
    let target = PgTarget::from_topology(&loaded(rig)).expect("pg target");
    assert!(
        target.ca.is_some(),
        "the test rig's topology has [tls] (crates/harness/rig.toml)"
    );
    assert!(
        postgres::connection_encrypted(&target)
            .await
            .expect("TLS connection"),
        "pg_stat_ssl says the session is encrypted"
    );
    // Trusting another CA, the server's certificate is refused: no plain-text fallback.
    let other = chgate_harness::tls::TestCa::new();
    let wrong = PgTarget {
        ca: Some(other.ca()),
        ..target
    };
    let e = postgres::connection_encrypted(&wrong)
        .await
        .expect_err("untrusted certificate");
    assert!(e.to_string().contains("connect to"), "{e}");
}
