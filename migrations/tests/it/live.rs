//! Live tests on the shared rig (2x2 ClickHouse 18.16, 3 ZooKeeper). Each test has its own
//! database and its own lock path. Tests that stop a server take the exclusive side of [`FAULT`],
//! every other test the shared side, so no test sees a node another test stopped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chgate_harness::Rig;
use chgate_migrations::ddl::DdlSettings;
use chgate_migrations::lock::{Holder, KeeperLock, LockSettings};
use chgate_migrations::plan::{LedgerRow, Status};
use chgate_migrations::{Error, Migrator, Options, Progress};
use chgate_topology::LoadedTopology;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static FAULT: RwLock<()> = RwLock::const_new(());

/// For tests that need every server up.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    let g = FAULT.read().await;
    wait_all_up(chgate_harness::rig().await).await;
    g
}

/// For tests that stop servers.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    let g = FAULT.write().await;
    wait_all_up(chgate_harness::rig().await).await;
    g
}

/// A fault test restarts what it stopped without waiting; the next test waits here. Starting a
/// running service is a no-op, so this also heals a node some other test process left down.
async fn wait_all_up(rig: &Rig) {
    for k in rig.topology().keeper_nodes() {
        rig.start_node(&k.name);
    }
    for (i, n) in rig.nodes().iter().enumerate() {
        rig.start_node(&n.name);
        wait_up(rig, i).await;
    }
}

pub fn loaded(rig: &Rig) -> LoadedTopology {
    LoadedTopology {
        topology: rig.topology().clone(),
        state_dir: rig.state_dir().to_owned(),
    }
}

/// Options for a test: own database, own lock path, short waits.
pub fn options(rig: &Rig, prefix: &str) -> Options {
    let db = rig.unique_name(prefix);
    Options {
        lock_path: format!("/chgate/test/{db}/lock"),
        database: Some(db),
        ddl: DdlSettings {
            server_wait: Duration::from_secs(20),
            extra_wait: Duration::from_secs(5),
        },
        lock_timeout: Duration::from_secs(40),
        session_timeout: Duration::from_secs(6),
        ..Options::default()
    }
}

pub fn migrator(rig: &Rig, opts: &Options) -> Migrator {
    Migrator::new(&loaded(rig), opts.clone()).expect("migrator builds")
}

pub fn quiet(_: &Progress) {}

/// Every ledger row, read on node `i` after it fetched what the quorum wrote (as the migrator
/// reads it: a quorum write is on 2 replicas, not necessarily on node `i`).
pub async fn ledger_rows(rig: &Rig, db: &str, i: usize) -> Vec<LedgerRow> {
    rig.clickhouse(i)
        .execute(&format!("SYSTEM SYNC REPLICA {db}.chgate_migrations"))
        .await
        .expect("sync the ledger replica");
    rig.clickhouse(i)
        .rows::<LedgerRow>(&format!(
            "SELECT version, name, variant, checksum, done_checksum, statements_total, statement_index, status, \
             pending_hosts, ddl_tasks, error, applied_by, fencing_token, event_seq, \
             toString(event_time) AS event_time, duration_ms FROM {db}.chgate_migrations \
             ORDER BY version, fencing_token, event_seq"
        ))
        .await
        .expect("ledger readable with SQL")
}

pub fn applied_count(rows: &[LedgerRow]) -> BTreeMap<u32, usize> {
    let mut m = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == Status::Applied) {
        *m.entry(r.version).or_default() += 1;
    }
    m
}

pub async fn tables_on(rig: &Rig, i: usize, db: &str) -> Vec<String> {
    let text = rig
        .clickhouse(i)
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name"
        ))
        .await
        .expect("system.tables");
    text.lines().map(str::to_owned).collect()
}

pub fn write_dir(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write migration");
    }
}

/// Waits until node `i` answers again after a restart.
pub async fn wait_up(rig: &Rig, i: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while rig.clickhouse(i).execute("SELECT 1").await.is_err() {
        assert!(
            Instant::now() < deadline,
            "node {i} did not come back:\n{}",
            rig.log_tail(&rig.nodes()[i].name)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Starts a stopped node again when dropped, so a failing assertion does not leave it down.
pub struct Restart<'a>(pub &'a Rig, pub &'a str);

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        self.0.start_node(self.1);
    }
}

#[tokio::test]
async fn fresh_cluster_up_creates_everything_verify_passes_status_applied() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let opts = options(rig, "mig_fresh");
    let db = opts.database.clone().expect("db");
    let m = migrator(rig, &opts);
    let started = Instant::now();
    let report = m.up(None, &quiet).await.expect("up succeeds");
    eprintln!("up took {:.1} s\n{report}", started.elapsed().as_secs_f64());
    assert_eq!(report.plan.steps.len(), 2);
    for i in 0..4 {
        assert_eq!(
            tables_on(rig, i, &db).await,
            vec![
                "chgate_migrations",
                "samples",
                "samples_local",
                "series",
                "series_local"
            ],
            "node {i}"
        );
    }
    assert_eq!(m.verify().await.expect("verify passes"), 5);
    let status = m.status().await.expect("status");
    eprintln!("{status}");
    assert!(
        status.lines.iter().all(|l| l.state == "applied"),
        "{status}"
    );
    for (host, view) in &status.per_host {
        let view = view.as_ref().expect("every host answers");
        assert_eq!(
            view.values().filter(|s| **s == Status::Applied).count(),
            2,
            "{host}"
        );
    }
    assert_eq!(
        applied_count(&ledger_rows(rig, &db, 3).await),
        BTreeMap::from([(1, 1), (2, 1)])
    );
    // The fallback ran on 18.16 and data flows through the Distributed table.
    let c = rig.clickhouse(0);
    c.execute(&format!(
        "INSERT INTO {db}.samples (tenant, metric, series_id, timestamp, value) \
         VALUES ('t', 'up', 1, now(), 1), ('t', 'up', 2, now(), 2)"
    ))
    .await
    .expect("insert through Distributed");
    let rerun = m.up(None, &quiet).await.expect("second up");
    assert!(rerun.plan.is_empty(), "nothing left to do:\n{rerun}");
}

#[tokio::test]
async fn dry_run_plan_changes_nothing() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let opts = options(rig, "mig_dry");
    let db = opts.database.clone().expect("db");
    let m = migrator(rig, &opts);
    let report = m.plan(None).await.expect("plan");
    eprintln!("{report}");
    let text = report.to_string();
    assert!(
        text.contains("V1 samples (V1__samples.fallback.sql, fallback)"),
        "{text}"
    );
    assert!(text.contains("ch-s2r2"), "plan names the hosts: {text}");
    for i in 0..4 {
        let n = rig
            .clickhouse(i)
            .query(&format!(
                "SELECT count() FROM system.databases WHERE name = '{db}'"
            ))
            .await
            .expect("query");
        assert_eq!(n.trim(), "0", "dry run created the database on node {i}");
    }
    let zk = chgate_migrations::lock::connect(&rig.keeper_hosts(), Duration::from_secs(6))
        .await
        .expect("keeper");
    assert!(
        zk.check_stat(&opts.lock_path)
            .await
            .expect("stat")
            .is_none(),
        "dry run touched the lock"
    );
}

#[tokio::test]
async fn two_concurrent_ups_apply_each_version_exactly_once() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let opts = options(rig, "mig_race");
    let db = opts.database.clone().expect("db");
    let (a, b) = (migrator(rig, &opts), migrator(rig, &opts));
    let (ra, rb) = tokio::join!(a.up(None, &quiet), b.up(None, &quiet));
    let ra = ra.expect("first up");
    let rb = rb.expect("second up waits for the lock, then finds nothing to do");
    let ran: usize = [&ra, &rb].iter().map(|r| r.plan.steps.len()).sum();
    assert_eq!(ran, 2, "the two versions ran once in total");
    assert!(
        ra.plan.is_empty() || rb.plan.is_empty(),
        "exactly one applied"
    );
    let rows = ledger_rows(rig, &db, 2).await;
    assert_eq!(applied_count(&rows), BTreeMap::from([(1, 1), (2, 1)]));
    let tokens: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.fencing_token).collect();
    assert_eq!(tokens.len(), 1, "one holder wrote every row: {rows:#?}");
}

#[tokio::test]
async fn a_second_up_waits_for_the_lock_and_then_names_the_holder() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let mut opts = options(rig, "mig_lock");
    let settings = LockSettings {
        keeper_hosts: rig.keeper_hosts(),
        path: opts.lock_path.clone(),
        timeout: Duration::from_secs(5),
        session_timeout: Duration::from_secs(6),
    };
    let mut holder = Holder::this_process("test holder");
    holder.host = "release-host-a".into();
    let held = KeeperLock::acquire(&settings, &holder)
        .await
        .expect("first lock");
    opts.lock_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = migrator(rig, &opts)
        .up(None, &quiet)
        .await
        .expect_err("lock is held");
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited");
    let msg = err.to_string();
    assert!(matches!(err, Error::LockTimeout { .. }), "{msg}");
    assert!(
        msg.contains("release-host-a") && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    held.release().await.expect("release");
    migrator(rig, &opts)
        .up(None, &quiet)
        .await
        .expect("lock free again");
}

#[tokio::test]
async fn losing_the_lock_node_is_detected_before_the_next_statement() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let opts = options(rig, "mig_lost");
    let settings = LockSettings {
        keeper_hosts: rig.keeper_hosts(),
        path: opts.lock_path.clone(),
        timeout: Duration::from_secs(5),
        session_timeout: Duration::from_secs(6),
    };
    let lock = KeeperLock::acquire(&settings, &Holder::this_process("t"))
        .await
        .expect("lock");
    lock.check().await.expect("held");
    let zk = chgate_migrations::lock::connect(&rig.keeper_hosts(), Duration::from_secs(6))
        .await
        .expect("keeper");
    let children = zk.list_children(&opts.lock_path).await.expect("children");
    for c in children {
        zk.delete(&format!("{}/{c}", opts.lock_path), None)
            .await
            .expect("delete");
    }
    let err = lock.check().await.expect_err("node gone");
    assert!(matches!(err, Error::LockLost { .. }), "{err}");
    let next = KeeperLock::acquire(&settings, &Holder::this_process("t"))
        .await
        .expect("relock");
    assert!(
        next.fencing_token() > lock.fencing_token(),
        "fencing token grows"
    );
}

#[tokio::test]
async fn editing_an_applied_file_is_refused_naming_the_file() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 =
        "CREATE TABLE IF NOT EXISTS ${database}.a ON CLUSTER ${cluster} (x UInt8) ENGINE = Memory;";
    write_dir(dir.path(), &[("V1__a.sql", v1)]);
    let mut opts = options(rig, "mig_drift");
    opts.dir = Some(dir.path().to_owned());
    migrator(rig, &opts).up(None, &quiet).await.expect("up");
    write_dir(dir.path(), &[("V1__a.sql", &v1.replace("UInt8", "UInt16"))]);
    for err in [
        migrator(rig, &opts)
            .plan(None)
            .await
            .expect_err("plan refuses"),
        migrator(rig, &opts)
            .up(None, &quiet)
            .await
            .expect_err("up refuses"),
    ] {
        let msg = err.to_string();
        assert!(
            matches!(err, Error::ChecksumDrift { version: 1, .. }),
            "{msg}"
        );
        assert!(msg.contains("V1__a.sql"), "{msg}");
    }
}

#[tokio::test]
async fn a_failing_statement_names_the_host_and_the_rerun_resumes_there() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = "CREATE TABLE IF NOT EXISTS ${database}.b ON CLUSTER ${cluster} (x NoSuchType) ENGINE = Memory;";
    let a =
        "CREATE TABLE IF NOT EXISTS ${database}.a ON CLUSTER ${cluster} (x UInt8) ENGINE = Memory;";
    write_dir(dir.path(), &[("V1__ab.sql", &format!("{a}\n{bad}"))]);
    let mut opts = options(rig, "mig_fail");
    opts.dir = Some(dir.path().to_owned());
    let db = opts.database.clone().expect("db");
    let err = migrator(rig, &opts)
        .up(None, &quiet)
        .await
        .expect_err("bad type");
    let msg = err.to_string();
    assert!(
        matches!(err, Error::HostFailed { statement: 2, .. }),
        "{msg}"
    );
    assert!(msg.contains("ch-s"), "names the node: {msg}");
    let rows = ledger_rows(rig, &db, 0).await;
    let last = rows.last().expect("rows");
    assert_eq!(
        (last.status, last.statement_index),
        (Status::Failed, 1),
        "{rows:#?}"
    );
    assert!(last.error.contains("NoSuchType"), "{}", last.error);
    let status = migrator(rig, &opts).status().await.expect("status");
    assert_eq!(status.lines[0].state, "failed", "{status}");
    // Fix the failed statement (statement 1 already ran and is unchanged): the rerun resumes at 2.
    write_dir(
        dir.path(),
        &[(
            "V1__ab.sql",
            &format!("{a}\n{}", bad.replace("NoSuchType", "UInt8")),
        )],
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = {
        let seen = Arc::clone(&seen);
        move |p: &Progress| {
            if let Progress::Statement { index, .. } = p {
                seen.lock().expect("lock").push(*index);
            }
        }
    };
    migrator(rig, &opts)
        .up(None, &record)
        .await
        .expect("fixed rerun");
    assert_eq!(*seen.lock().expect("lock"), vec![1]);
    assert_eq!(
        applied_count(&ledger_rows(rig, &db, 3).await),
        BTreeMap::from([(1, 1)])
    );
}

#[tokio::test]
async fn up_to_a_version_stops_there_and_verify_expects_only_its_tables() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let opts = options(rig, "mig_to");
    let db = opts.database.clone().expect("db");
    let m = migrator(rig, &opts);
    let report = m.up(Some(1), &quiet).await.expect("up --to 1");
    assert_eq!(report.plan.steps.len(), 1);
    assert_eq!(m.verify().await.expect("verify after V1"), 3);
    assert_eq!(
        tables_on(rig, 3, &db).await,
        vec!["chgate_migrations", "samples", "samples_local"]
    );
    let plan = m.plan(None).await.expect("plan");
    assert_eq!(plan.plan.up_to_date, vec![1]);
    assert_eq!(plan.plan.steps.len(), 1);
    m.up(None, &quiet).await.expect("up");
    assert_eq!(m.verify().await.expect("verify after V2"), 5);
}

#[tokio::test]
async fn up_refuses_unsafe_ddl_before_touching_the_cluster() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_dir(
        dir.path(),
        &[(
            "V1__local_only.sql",
            "CREATE TABLE IF NOT EXISTS ${database}.a (x UInt8) ENGINE = Memory;",
        )],
    );
    let mut opts = options(rig, "mig_lint");
    opts.dir = Some(dir.path().to_owned());
    let db = opts.database.clone().expect("db");
    let err = migrator(rig, &opts)
        .up(None, &quiet)
        .await
        .expect_err("lint refuses");
    let msg = err.to_string();
    assert!(matches!(err, Error::Lint { count: 1, .. }), "{msg}");
    assert!(
        msg.contains("V1__local_only.sql:1: statement 1: [on-cluster]"),
        "{msg}"
    );
    let n = rig
        .clickhouse(0)
        .query(&format!(
            "SELECT count() FROM system.databases WHERE name = '{db}'"
        ))
        .await
        .expect("query");
    assert_eq!(n.trim(), "0", "nothing was created");
}
