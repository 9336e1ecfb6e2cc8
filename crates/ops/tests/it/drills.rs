//! Recovery drills, one per failure scenario of the architecture. Each stops processes, so it
//! holds `rig.exclusive()`; each checks that `chgate status` shows the degraded state during the
//! fault and healthy after, and that no acknowledged row is lost. The README runbook describes
//! the same steps with the `chgate` commands.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chgate_ops::rebuild;
use tokio::task::JoinHandle;

use crate::common::{
    count, drop_db, fixture, has_problem, http, load, local_rows, post, rows, snapshot,
    wait_healthy, wait_status, Fixture,
};

const BATCH: usize = 50;

/// A drill's fixture, once `chgate status` is healthy, with the rig to itself: the guard of
/// `rig.exclusive()` (the drill stops processes) is held until it is dropped.
async fn drill(prefix: &str) -> (Fixture, tokio::sync::RwLockWriteGuard<'static, ()>) {
    let f = fixture(prefix).await;
    let exclusive = f.rig.exclusive().await;
    wait_healthy(&f.ops, Duration::from_secs(60)).await;
    (f, exclusive)
}

/// `chgate status` (the binary) exits 2 and names `component` in its problem list.
fn assert_cli_degraded(component: &str) {
    let out = std::process::Command::new(chgate_harness::chgate_bin())
        .arg("--config")
        .arg(chgate_harness::topology_path())
        .arg("status")
        .output()
        .expect("run chgate status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("STATUS: DEGRADED") && text.contains(&format!("  {component}: ")),
        "{text}"
    );
}

/// Traffic through HAProxy while a drill runs: one batch of [`BATCH`] rows (its own metric
/// name) every `every`, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    task: JoinHandle<(Vec<String>, Vec<String>)>,
}

impl Load {
    fn start(f: &Fixture, prefix: &str, every: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, db, flag) = (f.rig.haproxy_gateway_url(), f.db.clone(), stop.clone());
        let prefix = prefix.to_owned();
        let task = tokio::spawn(async move {
            let http = http();
            let (mut acked, mut failed) = (Vec::new(), Vec::new());
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                let metric = format!("{prefix}{n}");
                n += 1;
                match post(&http, &url, &db, rows(&metric, BATCH)).await {
                    Ok(()) => acked.push(metric),
                    Err(e) => failed.push(format!("{metric}: {e}")),
                }
                tokio::time::sleep(every).await;
            }
            (acked, failed)
        });
        Load { stop, task }
    }

    /// Stops and returns (acknowledged metrics, failures).
    async fn finish(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("load task")
    }
}

/// Every acknowledged batch is in ClickHouse with all its rows (read through the Distributed
/// table after every replica synced).
async fn assert_acked_present(f: &Fixture, acked: &[String]) {
    // A gateway acking from its spool delivers later: wait until every spool is empty.
    wait_status(
        &f.ops,
        "gateway spools drained",
        Duration::from_secs(60),
        |s| s.gateways.iter().all(|g| g.spool_bytes == 0),
    )
    .await;
    for i in 0..f.rig.nodes().len() {
        local_rows(f.rig, i, &f.db).await;
    }
    let c = f.rig.clickhouse(0);
    let text = c
        .query(&format!(
            "SELECT metric, count() FROM {}.samples GROUP BY metric",
            f.db
        ))
        .await
        .expect("counts per batch");
    let got: std::collections::HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(m, n)| (m, n.parse().unwrap_or(0)))
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|m| got.get(m.as_str()).copied() != Some(BATCH as u64))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged batches missing or short: {lost:?}"
    );
}

/// Takes gateway `name` down (`crash`: SIGKILL, else SIGTERM), waits until status shows it out of HAProxy, restarts it and
/// waits until healthy again.
async fn gateway_out_and_back(f: &Fixture, name: &str, crash: bool) {
    if crash {
        f.rig.stack().kill_service(name).expect("kill gateway");
    } else {
        f.rig.stop_node(name);
    }
    let (_, took) = wait_status(
        &f.ops,
        "gateway out of HAProxy",
        Duration::from_secs(20),
        |s| {
            has_problem(s, name, "/readyz") && has_problem(s, "haproxy", &format!("{name} is DOWN"))
        },
    )
    .await;
    eprintln!("[drill gateway] HAProxy took {name} out {took:?} after it stopped (crash: {crash})");
    assert_cli_degraded(name);
    tokio::time::sleep(Duration::from_secs(1)).await;
    f.rig.start_node(name);
    let back = wait_healthy(&f.ops, Duration::from_secs(30)).await;
    eprintln!("[drill gateway] healthy {back:?} after {name} restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_gateway_killed_behind_haproxy() {
    let (f, _x) = drill("drill_gw").await;
    let started = Instant::now();
    let load = Load::start(&f, "stop", Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // SIGTERM, as an orchestrator stops an instance: in-flight requests drain, no error at all.
    gateway_out_and_back(&f, "gateway-1", false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (acked, failed) = load.finish().await;
    assert!(
        failed.is_empty(),
        "requests failed while a gateway stopped: {failed:?}"
    );
    assert!(acked.len() > 20, "traffic flowed: {} batches", acked.len());
    // SIGKILL, a crash: only the one request in flight on it may fail (this client sends one
    // at a time); HAProxy retries refused connections on the other gateway meanwhile.
    let load = Load::start(&f, "crash", Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    gateway_out_and_back(&f, "gateway-2", true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (acked2, failed2) = load.finish().await;
    assert!(
        failed2.len() <= 1,
        "more than the in-flight request failed in a crash: {failed2:?}"
    );
    let all: Vec<String> = acked.iter().chain(acked2.iter()).cloned().collect();
    assert_acked_present(&f, &all).await;
    eprintln!(
        "[drill gateway] stop: {} batches, 0 errors; crash: {} batches, failed {:?}; {:.1}s",
        acked.len(),
        acked2.len(),
        failed2,
        started.elapsed().as_secs_f64()
    );
    drop_db(f.rig, &f.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_clickhouse_node_killed_resyncs_from_its_replica() {
    let (f, _x) = drill("drill_ch").await;
    let started = Instant::now();
    let (rig, db) = (f.rig, f.db.as_str());
    // SIGKILL: a crash. Its Keeper session (and `is_active` znode) outlives it by the session
    // timeout, so the restarted replica reactivates only after that.
    rig.stack().kill_service("ch-s1r2").expect("kill ch-s1r2");
    let s = snapshot(&f.ops).await;
    assert!(has_problem(&s, "ch-s1r2", "down"), "{:#?}", s.problems);
    load(rig, db, "while_down", 10, 500).await;
    rig.start_node("ch-s1r2");
    let back = wait_healthy(&f.ops, Duration::from_secs(60)).await;
    let (a, b) = (local_rows(rig, 0, db).await, local_rows(rig, 1, db).await);
    assert_eq!(a, b, "ch-s1r1 and ch-s1r2 after the re-sync");
    let total = local_rows(rig, 2, db).await + a;
    assert_eq!(total, 5000, "every acknowledged row on the cluster");
    eprintln!(
        "[drill clickhouse] healthy {back:?} after restart; shard 1 {a} rows on both replicas; {:.1}s",
        started.elapsed().as_secs_f64()
    );
    drop_db(rig, db).await;
}

const GRAFANA_SCHEMA: &str =
    include_str!("../../../../grafana-provisioning/tests/it/grafana_schema.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_postgres_lost_and_restored_from_backup() {
    let (f, _x) = drill("drill_pg").await;
    let t = f.rig.topology().postgres.clone();
    // Grafana's schema as Grafana leaves it at first start, with our datasource row; a tenant.
    let graf = f.rig.postgres(&t.grafana_database).await;
    let exists: bool = graf
        .query_one("SELECT to_regclass('data_source') IS NOT NULL", &[])
        .await
        .expect("look up data_source")
        .get(0);
    if !exists {
        graf.batch_execute(GRAFANA_SCHEMA)
            .await
            .expect("grafana schema");
    }
    let uid = f.rig.unique_name("ds").replace('_', "");
    graf.execute(
        "INSERT INTO data_source (org_id, version, type, name, access, url, basic_auth, is_default, created, updated, uid, json_data) \
         VALUES (1, 1, 'grafana-clickhouse-datasource', $1, 'proxy', '', false, false, now(), now(), $1, '{}')",
        &[&uid],
    )
    .await
    .expect("datasource row");
    let tenant = f.rig.unique_name("t").replace('_', "-");
    let gw = f.rig.postgres(&t.database).await;
    gw.execute("INSERT INTO gateway_tenants (name) VALUES ($1)", &[&tenant])
        .await
        .expect("tenant row");
    drop((graf, gw));

    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tmp");
    let opts = chgate_ops::backup::CreateOptions {
        target: tmp.path().to_owned(),
        databases: vec![],
        postgres: true,
    };
    let m = chgate_ops::backup::create(&f.ops, &opts, &|_| {})
        .await
        .expect("backup");
    f.rig.stack().wipe_data("postgres").expect("wipe postgres");
    let s = snapshot(&f.ops).await;
    assert!(has_problem(&s, "postgres", "down"), "{:#?}", s.problems);
    f.rig.start_node("postgres"); // a fresh initdb: the databases are gone
    let (_, _) = wait_status(
        &f.ops,
        "postgres up but empty",
        Duration::from_secs(30),
        |s| s.postgres.up && has_problem(s, "postgres", "missing"),
    )
    .await;
    let only_pg = chgate_ops::backup::RestoreOptions {
        clickhouse: false,
        postgres: true,
    };
    let report = chgate_ops::backup::restore(&f.ops, tmp.path(), &m.id, &only_pg, &|_| {})
        .await
        .expect("restore verified");
    assert!(report
        .postgres
        .iter()
        .any(|(t, w, _)| t.ends_with("data_source") && *w >= 1));
    let graf = f.rig.postgres(&t.grafana_database).await;
    let n: i64 = graf
        .query_one("SELECT count(*) FROM data_source WHERE uid = $1", &[&uid])
        .await
        .expect("datasource back")
        .get(0);
    assert_eq!(n, 1, "datasource row restored");
    let gw = f.rig.postgres(&t.database).await;
    let n: i64 = gw
        .query_one(
            "SELECT count(*) FROM gateway_tenants WHERE name = $1",
            &[&tenant],
        )
        .await
        .expect("tenant back")
        .get(0);
    assert_eq!(n, 1, "tenant restored");
    let back = wait_healthy(&f.ops, Duration::from_secs(30)).await;
    eprintln!(
        "[drill postgres] restored {} tables, healthy {back:?} later; {:.1}s",
        report.postgres.len(),
        started.elapsed().as_secs_f64()
    );
    drop_db(f.rig, &f.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_keeper_quorum_lost_and_restarted() {
    let (f, _x) = drill("drill_keeper").await;
    let started = Instant::now();
    let load = Load::start(&f, "keeper", Duration::from_millis(100));
    tokio::time::sleep(Duration::from_secs(1)).await;
    f.rig.stop_node("keeper-1");
    f.rig.stop_node("keeper-2");
    let (s, took) = wait_status(&f.ops, "readonly replicas", Duration::from_secs(45), |s| {
        has_problem(s, "keeper", "no quorum")
            && s.clickhouse
                .iter()
                .any(|h| has_problem(s, &h.name, "readonly"))
    })
    .await;
    let ro: usize = s
        .clickhouse
        .iter()
        .map(|h| h.replicas.iter().filter(|r| r.is_readonly).count())
        .sum();
    eprintln!("[drill keeper] {ro} replicas readonly {took:?} after the quorum was lost");
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.rig.start_node("keeper-1");
    f.rig.start_node("keeper-2");
    let back = wait_healthy(&f.ops, Duration::from_secs(60)).await;
    eprintln!("[drill keeper] healthy {back:?} after the restart");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (acked, failed) = load.finish().await;
    assert!(!acked.is_empty(), "traffic flowed");
    assert_acked_present(&f, &acked).await;
    eprintln!(
        "[drill keeper] {} batches acknowledged (all present), {} refused during the outage; {:.1}s",
        acked.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    drop_db(f.rig, &f.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_replica_data_dir_wiped_and_rebuilt_from_its_peer() {
    let (f, _x) = drill("drill_wipe").await;
    let (rig, db) = (f.rig, f.db.as_str());
    load(rig, db, "w", 10, 1000).await;
    let peer_rows = local_rows(rig, 2, db).await;
    assert_eq!(local_rows(rig, 3, db).await, peer_rows);
    let started = Instant::now();
    rig.stack().wipe_data("ch-s2r2").expect("wipe ch-s2r2");
    rig.start_node("ch-s2r2");
    let (_, took) = wait_status(&f.ops, "ch-s2r2 empty", Duration::from_secs(60), |s| {
        has_problem(s, "ch-s2r2", "lacks replicated tables")
    })
    .await;
    eprintln!("[drill wipe] ch-s2r2 up and empty after {took:?}");
    assert_cli_degraded("ch-s2r2");
    let r = rebuild::rebuild_replica(&f.ops, "ch-s2r2", &|m| eprintln!("[rebuild] {m}"))
        .await
        .expect("rebuild consistent with the peer");
    let mine = format!("{db}.samples_local");
    assert!(r.attached.contains(&mine), "{r:?}");
    assert!(
        r.rows
            .iter()
            .any(|(t, p, me)| *t == mine && *p == peer_rows && *me == peer_rows),
        "{:?}",
        r.rows
    );
    let ledger = r
        .ledger
        .iter()
        .find(|(d, _, _)| d == db)
        .expect("ledger compared");
    assert!(!ledger.2.is_empty() && ledger.1 == ledger.2, "{ledger:?}");
    let c = rig.clickhouse(3);
    assert_eq!(
        count(&c, &format!("SELECT count() FROM {db}.samples_local")).await,
        peer_rows
    );
    let back = wait_healthy(&f.ops, Duration::from_secs(60)).await;
    eprintln!(
        "[drill wipe] rebuilt in {:.1}s ({} tables attached, {} created), healthy {back:?} later; {:.1}s total",
        r.duration_s,
        r.attached.len(),
        r.created.len(),
        started.elapsed().as_secs_f64()
    );
    drop_db(rig, db).await;
}
