//! PostgreSQL sessions of `chgate local status`'s probe and of the harness on a `[tls]` rig: TLS,
//! verified against the topology CA (`pg_stat_ssl` of the session itself).

use chgate_harness::rig;
use chgate_harness::tls::TestCa;
use chgate_localstack::probe;

/// `pg_stat_ssl.ssl` of `client`'s own session.
async fn encrypted(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_probe_and_harness_sessions_are_tls_verified_against_the_topology_ca() {
    let rig = rig().await;
    let t = rig.topology();
    assert!(
        t.tls.is_some(),
        "the test rig's topology has [tls] (crates/harness/rig.toml)"
    );
    let pw = rig.postgres_password();
    let version = probe::postgres(t, &pw).await.expect("probe");
    assert!(version.starts_with("15"), "{version}");
    // The session the probe opens, and the harness's setup session.
    let probe_session = probe::postgres_client(t, &pw, "postgres")
        .await
        .expect("probe session");
    assert!(
        encrypted(&probe_session).await,
        "the probe's session is TLS"
    );
    assert!(
        encrypted(&rig.postgres("postgres").await).await,
        "the harness's session is TLS"
    );

    // Forced to plain text (the same topology without [tls]), the check sees it: the rig's
    // PostgreSQL still accepts plain-text logins, so only the client side makes the difference.
    let mut plain = t.clone();
    plain.tls = None;
    let plain_session = probe::postgres_client(&plain, &pw, "postgres")
        .await
        .expect("plain-text session");
    assert!(
        !encrypted(&plain_session).await,
        "a plain-text session reads ssl = false"
    );

    // Trusting another CA, the probe fails: the certificate is verified, with no fallback.
    let other = TestCa::new();
    let mut wrong = t.clone();
    wrong.tls.as_mut().expect("[tls]").ca = other.ca();
    let e = probe::postgres(&wrong, &pw)
        .await
        .expect_err("a server not signed by the trusted CA");
    assert!(e.starts_with("postgres:"), "{e}");
}
