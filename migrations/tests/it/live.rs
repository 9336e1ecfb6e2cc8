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

/// A fault test restarts what it stopped without waiting; the next test waits here.
async fn wait_all_up(rig: &Rig) {
    for i in 0..rig.nodes().len() {
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

fn quiet(_: &Progress) {}

/// Every ledger row, read on node `i`.
pub async fn ledger_rows(rig: &Rig, db: &str, i: usize) -> Vec<LedgerRow> {
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

fn applied_count(rows: &[LedgerRow]) -> BTreeMap<u32, usize> {
    let mut m = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == Status::Applied) {
        *m.entry(r.version).or_default() += 1;
    }
    m
}

async fn tables_on(rig: &Rig, i: usize, db: &str) -> Vec<String> {
    let text = rig
        .clickhouse(i)
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name"
        ))
        .await
        .expect("system.tables");
    text.lines().map(str::to_owned).collect()
}

fn write_dir(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write migration");
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
async fn killed_between_statements_the_rerun_resumes_at_the_next_statement() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_dir(
        dir.path(),
        &[(
            "V1__three.sql",
            "CREATE TABLE IF NOT EXISTS ${database}.a ON CLUSTER ${cluster} (x UInt8) ENGINE = Memory;\n\
             CREATE TABLE IF NOT EXISTS ${database}.b ON CLUSTER ${cluster} (x UInt8) ENGINE = Memory;\n\
             CREATE TABLE IF NOT EXISTS ${database}.c ON CLUSTER ${cluster} (x UInt8) ENGINE = Memory;\n",
        )],
    );
    let mut opts = options(rig, "mig_kill");
    opts.dir = Some(dir.path().to_owned());
    let db = opts.database.clone().expect("db");
    let m = Arc::new(migrator(rig, &opts));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let first = {
        let m = Arc::clone(&m);
        tokio::spawn(async move {
            let stop_after_first = move |p: &Progress| {
                if let Progress::Statement { index: 0, .. } = p {
                    if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                        let _ = tx.send(());
                    }
                    // Stall here as a crashing process would: the task is aborted meanwhile.
                    std::thread::sleep(Duration::from_millis(300));
                }
            };
            m.up(None, &stop_after_first).await
        })
    };
    rx.await.expect("first statement done");
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    let rows = ledger_rows(rig, &db, 1).await;
    let last = rows.last().expect("ledger has rows");
    assert_eq!(
        (last.status, last.statement_index),
        (Status::Progress, 1),
        "{rows:#?}"
    );
    assert_eq!(tables_on(rig, 3, &db).await, vec!["a", "chgate_migrations"]);
    // Rerun: the killed holder's session expires, the lock frees, the run resumes at statement 2.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = {
        let seen = Arc::clone(&seen);
        move |p: &Progress| {
            if let Progress::Statement { index, .. } = p {
                seen.lock().expect("lock").push(*index);
            }
        }
    };
    let report = migrator(rig, &opts)
        .up(None, &record)
        .await
        .expect("rerun completes");
    eprintln!("{report}");
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![1, 2],
        "statement 1 did not run again"
    );
    let rows = ledger_rows(rig, &db, 0).await;
    assert_eq!(applied_count(&rows), BTreeMap::from([(1, 1)]));
    assert_eq!(
        tables_on(rig, 2, &db).await,
        vec!["a", "b", "c", "chgate_migrations"]
    );
    migrator(rig, &opts).verify().await.expect("verify passes");
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

/// Waits until node `i` answers again after a restart.
async fn wait_up(rig: &Rig, i: usize) {
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
struct Restart<'a>(&'a Rig, &'a str);

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        self.0.start_node(self.1);
    }
}

#[tokio::test]
async fn replica_down_is_refused_by_name_then_pending_with_the_flag_then_finished() {
    let rig = chgate_harness::rig().await;
    let _g = exclusive().await;
    let mut opts = options(rig, "mig_down");
    opts.ddl = DdlSettings {
        server_wait: Duration::from_secs(3),
        extra_wait: Duration::from_secs(1),
    };
    let db = opts.database.clone().expect("db");
    // Stop the first replica: it is also the node a healthy run would coordinate through.
    rig.stop_node("ch-s1r1");
    let restart = Restart(rig, "ch-s1r1");
    let err = migrator(rig, &opts)
        .plan(None)
        .await
        .expect_err("pre-flight refuses");
    let msg = err.to_string();
    assert!(matches!(err, Error::Preflight { .. }), "{msg}");
    assert!(
        msg.contains("ch-s1r1") && msg.contains("unreachable"),
        "{msg}"
    );
    assert!(msg.contains("ch-s2r2      18.16.1    ok"), "{msg}");
    let err = migrator(rig, &opts)
        .up(None, &quiet)
        .await
        .expect_err("up refuses too");
    assert!(matches!(err, Error::Preflight { .. }), "{err}");

    opts.allow_unavailable = true;
    let report = migrator(rig, &opts)
        .up(None, &quiet)
        .await
        .expect("up with --allow-unavailable");
    assert_eq!(report.plan.steps.len(), 2);
    let status = migrator(rig, &opts)
        .status()
        .await
        .expect("status with a node down");
    eprintln!("{status}");
    assert!(
        status.lines.iter().all(|l| l.state == "pending"),
        "{status}"
    );
    assert!(
        status.lines[0].detail.contains("pending on ch-s1r1"),
        "{status}"
    );
    assert!(
        status.per_host[0].1.is_none(),
        "ch-s1r1 is reported unreachable"
    );
    let rows = ledger_rows(rig, &db, 1).await;
    assert!(
        !rows.is_empty(),
        "ledger readable on the surviving replica of shard 1"
    );

    drop(restart);
    wait_up(rig, 0).await;
    opts.ddl.extra_wait = Duration::from_secs(30);
    let report = migrator(rig, &opts)
        .up(None, &quiet)
        .await
        .expect("up finishes the pending hosts");
    assert!(
        report.plan.steps.iter().all(|s| s.statements.is_empty()),
        "nothing re-ran:\n{report}"
    );
    let rows = ledger_rows(rig, &db, 0).await;
    assert_eq!(
        applied_count(&rows),
        BTreeMap::from([(1, 1), (2, 1)]),
        "{rows:#?}"
    );
    assert_eq!(
        migrator(rig, &opts).verify().await.expect("verify passes"),
        5
    );
}

#[tokio::test]
async fn up_works_and_the_ledger_stays_readable_with_one_keeper_node_down() {
    let rig = chgate_harness::rig().await;
    let _g = exclusive().await;
    let opts = options(rig, "mig_zk");
    let db = opts.database.clone().expect("db");
    rig.stop_node("keeper-2");
    let restart = Restart(rig, "keeper-2");
    let result = migrator(rig, &opts).up(None, &quiet).await;
    let status = migrator(rig, &opts).status().await;
    drop(restart);
    result.expect("up with 2 of 3 Keeper nodes");
    let status = status.expect("status");
    assert!(
        status.lines.iter().all(|l| l.state == "applied"),
        "{status}"
    );
    assert_eq!(
        applied_count(&ledger_rows(rig, &db, 3).await),
        BTreeMap::from([(1, 1), (2, 1)])
    );
}

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
    let (client, conn) = tokio_postgres::connect(
        &rig.postgres_dsn()
            .replace("dbname=postgres", &format!("dbname={}", target.database)),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect");
    tokio::spawn(conn);
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

#[tokio::test]
async fn sigkilled_cli_process_mid_migration_is_resumed_by_the_next_up() {
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let stmts: Vec<String> = (1..=10)
        .map(|i| {
            format!(
                "CREATE TABLE IF NOT EXISTS ${{database}}.t{i} ON CLUSTER ${{cluster}} (x UInt8) ENGINE = Memory;"
            )
        })
        .collect();
    write_dir(dir.path(), &[("V1__ten.sql", &stmts.join("\n"))]);
    let mut opts = options(rig, "mig_sigkill");
    opts.dir = Some(dir.path().to_owned());
    let db = opts.database.clone().expect("db");
    let up = || {
        let mut cmd = std::process::Command::new(chgate_harness::chgate_bin());
        cmd.arg("--config")
            .arg(chgate_harness::topology_path())
            .args(["migrate", "up", "--skip-postgres", "--lock-timeout", "60s"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--database", &db, "--lock-path", &opts.lock_path]);
        cmd
    };
    let mut child = up()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn chgate");
    let c = rig.clickhouse(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = loop {
        let done = c
            .query(&format!(
                "SELECT max(statement_index) FROM {db}.chgate_migrations"
            ))
            .await
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .unwrap_or(0);
        if done >= 2 {
            child.kill().expect("SIGKILL");
            break done;
        }
        assert!(Instant::now() < deadline, "the first up made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = child.wait();
    assert!(killed_at < 10, "killed before the end (at {killed_at})");
    let started = Instant::now();
    let out = up().output().expect("rerun");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rerun failed: {stderr}");
    eprintln!(
        "killed after statement {killed_at}; rerun took {:.1} s (waits for the dead session's lock)\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    let rows = ledger_rows(rig, &db, 3).await;
    assert_eq!(applied_count(&rows), BTreeMap::from([(1, 1)]), "{rows:#?}");
    let second_token = rows.iter().map(|r| r.fencing_token).max().expect("rows");
    let resumed_from = rows
        .iter()
        .filter(|r| r.fencing_token == second_token && r.status == Status::Progress)
        .map(|r| r.statement_index)
        .min()
        .expect("second run made progress rows");
    assert!(
        resumed_from > killed_at,
        "the rerun resumed after the recorded statements (killed at {killed_at}, resumed with {resumed_from})"
    );
    assert_eq!(
        tables_on(rig, 0, &db).await.len(),
        11,
        "ten tables and the ledger"
    );
    migrator(rig, &opts).verify().await.expect("verify passes");
}
