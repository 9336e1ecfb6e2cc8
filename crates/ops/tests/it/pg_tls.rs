//! `chgate backup`'s PostgreSQL connections on the rig (its topology has `[tls]`): the row-count
//! client and `pg_dump` are encrypted (`pg_stat_ssl` of their sessions) and refuse a server whose
//! certificate does not chain to the configured CA.

use std::time::{Duration, Instant};

use chgate_harness::tls::TestCa;
use chgate_harness::{rig, topology_path};
use chgate_ops::backup::postgres;
use chgate_ops::{Error, Ops};

use crate::common::ops;

const SSL_OF_PG_DUMP: &str = "SELECT s.ssl, s.version FROM pg_stat_activity a \
     JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.datname = $1 AND a.application_name = 'pg_dump'";

/// Runs `pg_dump` of `db` while `held` is locked, so that its session can be looked at: returns
/// (ssl, TLS version) of that session; panics unless the dump then succeeds.
async fn pg_dump_session(ops: &Ops, db: &str, file: &std::path::Path) -> (bool, Option<String>) {
    let observer = postgres::connect(ops, "postgres").await.expect("observer");
    let mut locker = postgres::connect(ops, db).await.expect("locker");
    let tx = locker.transaction().await.expect("begin");
    tx.batch_execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let dump = {
        let (ops, db, file) = (ops.clone(), db.to_owned(), file.to_owned());
        tokio::task::spawn_blocking(move || postgres::pg_dump(&ops, &db, &file))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let row = observer
            .query_opt(SSL_OF_PG_DUMP, &[&db])
            .await
            .expect("pg_stat_activity");
        if let Some(r) = row {
            break (r.get::<_, bool>(0), r.get::<_, Option<String>>(1));
        }
        if dump.is_finished() {
            panic!("pg_dump ended before waiting on the lock: {:?}", dump.await);
        }
        assert!(Instant::now() < deadline, "no pg_dump session in {db}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tx.rollback().await.expect("release the lock");
    dump.await
        .expect("pg_dump task")
        .expect("pg_dump with [tls] ca");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_reaches_postgres_over_tls_and_pg_dump_verifies_the_server() {
    let rig = rig().await;
    // Not while the PostgreSQL drill has the server down.
    let _g = rig.shared().await;
    let ops = ops();
    assert!(
        ops.pg_ca().is_some(),
        "the test rig's topology has [tls] (crates/harness/rig.toml)"
    );
    // The row-count / CREATE DATABASE client.
    let admin = postgres::connect(&ops, "postgres")
        .await
        .expect("connect over TLS");
    let own: bool = admin
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(own, "the backup's PostgreSQL client is encrypted");
    let db = rig.unique_name("ops_pgtls");
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create database");
    postgres::connect(&ops, &db)
        .await
        .expect("connect")
        .batch_execute("CREATE TABLE held (x int); INSERT INTO held VALUES (1)")
        .await
        .expect("table");

    // pg_dump's own session, caught while it waits on the lock.
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("held.dump");
    let (ssl, version) = pg_dump_session(&ops, &db, &file).await;
    assert!(ssl, "pg_dump's session is encrypted ({version:?})");
    let size = std::fs::metadata(&file).expect("dump file").len();
    assert!(size > 0, "dump written");

    // Trusting another CA, both refuse the server: TLS is verified, with no plain-text fallback.
    let other = TestCa::new();
    let mut loaded = chgate_topology::load(&topology_path()).expect("topology");
    loaded.topology.tls.as_mut().expect("[tls]").ca = other.ca();
    let wrong = Ops::new(&loaded).expect("ops");
    let (w, d, f) = (wrong.clone(), db.clone(), tmp.path().join("wrong.dump"));
    let e = tokio::task::spawn_blocking(move || postgres::pg_dump(&w, &d, &f))
        .await
        .expect("pg_dump task")
        .expect_err("pg_dump trusting another CA");
    // libpq says `SSL error: certificate verify failed`, or `SSL error: EVP lib` when the other
    // CA has the same name as the real one (as here: the signature check fails).
    assert!(
        matches!(&e, Error::Program { message, .. } if message.contains("SSL error")),
        "{e}"
    );
    let e = postgres::connect(&wrong, &db)
        .await
        .expect_err("client trusting another CA");
    assert!(
        matches!(&e, Error::Postgres { .. }) && e.to_string().contains("TLS"),
        "{e}"
    );
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .expect("drop database");
}
