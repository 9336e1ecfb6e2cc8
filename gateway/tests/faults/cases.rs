//! The seven fault cases of issue 7, plus the overload RSS check. Each runs load against its own
//! gateway process and database, injects the fault, and ends with an exact reconciliation.

use std::time::{Duration, Instant};

use chgate_harness::{rig, Rig};
use rand::Rng as _;

use crate::support::{
    ddl, events_db, full, http, pick, query, reconcile, report, statuses, wait_clickhouse,
    GatewayProc, Load, Shape, Stats,
};

fn assert_exact(case: u32, s: &Stats, r: &crate::support::Reconciled, gw: &GatewayProc) {
    assert!(!s.acked.is_empty(), "case {case}: nothing was acked");
    assert_eq!(
        r.lost,
        0,
        "case {case}: acked rows lost; log:\n{}",
        gw.log_tail()
    );
    assert_eq!(r.duplicated, 0, "case {case}: duplicated rows");
    assert!(
        r.stored >= s.acked.len() as u64,
        "case {case}: stored {} < acked {}",
        r.stored,
        s.acked.len()
    );
}

/// A case's database, gateway (`ack = "spooled"`) and exclusive hold on the rig.
struct Setup {
    rig: &'static Rig,
    db: String,
    dir: tempfile::TempDir,
    gw: GatewayProc,
    _x: tokio::sync::RwLockWriteGuard<'static, ()>,
}

async fn setup(prefix: &str, extra_column: &str) -> Setup {
    let rig = rig().await;
    let db = events_db(rig, prefix, extra_column, "").await;
    let _x = rig.exclusive().await;
    let dir = tempfile::tempdir().expect("tmp");
    let gw = GatewayProc::start(dir.path(), &db, "spooled", "").await;
    Setup {
        rig,
        db,
        dir,
        gw,
        _x,
    }
}

/// Stops the load, waits for the spool to drain, reconciles and checks it is exact.
async fn finish(
    case: u32,
    rig: &Rig,
    db: &str,
    gw: &GatewayProc,
    load: Load,
    drain: Duration,
) -> (Stats, crate::support::Reconciled) {
    let s = load.stop().await;
    gw.wait_drained(drain).await;
    let r = reconcile(rig, db, &s.acked).await;
    assert_exact(case, &s, &r, gw);
    (s, r)
}

async fn stop_nodes(rig: &Rig, names: &[&str]) {
    for n in names {
        rig.stop_node(n);
    }
}

async fn start_nodes(rig: &Rig, names: &[&str]) {
    for n in names {
        rig.start_node(n);
    }
    for n in names.iter().filter(|n| n.starts_with("ch-")) {
        wait_clickhouse(rig, n).await;
    }
}

fn shard2_node(rig: &Rig) -> usize {
    rig.nodes()
        .iter()
        .position(|n| n.shard == 2 && n.replica == 2)
        .expect("shard 2")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case1_sigkill_gateway_under_load_loses_and_duplicates_nothing() {
    let Setup {
        rig,
        db,
        dir: _dir,
        mut gw,
        _x,
    } = setup("faults1", "").await;
    let load = Load::start(&gw.url, &db, Shape::default());
    let kills = pick(4, 20);
    for _ in 0..kills {
        let ms = rand::thread_rng().gen_range(200..1500);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        gw.restart().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Last, a graceful stop under load: SIGTERM flushes or spools within shutdown_deadline.
    let t = Instant::now();
    let status = gw.terminate();
    let term = t.elapsed();
    assert!(status.success(), "SIGTERM exit: {status}");
    assert!(
        term < Duration::from_secs(10),
        "stopped within the 5 s deadline: {term:?}"
    );
    let s = load.stop().await;
    gw.restart().await;
    gw.wait_drained(Duration::from_secs(60)).await;
    let r = reconcile(rig, &db, &s.acked).await;
    assert_exact(1, &s, &r, &gw);
    report(
        1,
        &format!("SIGKILL the gateway {kills}× at random points under load, restart"),
        &s,
        &r,
        &format!(
            "ack=spooled; then SIGTERM under load: clean exit in {} ms; {}",
            term.as_millis(),
            statuses(&s)
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case2_one_replica_of_each_shard_down_only_429_503() {
    let Setup {
        rig,
        db,
        dir: _dir,
        gw,
        _x,
    } = setup("faults2", "").await;
    let load = Load::start(&gw.url, &db, Shape::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Replica 1 is where each lane's first attempt goes: stopping it forces failover.
    let down = ["ch-s1r1", "ch-s2r1"];
    stop_nodes(rig, &down).await;
    tokio::time::sleep(pick(Duration::from_secs(5), Duration::from_secs(20))).await;
    start_nodes(rig, &down).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s, r) = finish(2, rig, &db, &gw, load, Duration::from_secs(60)).await;
    assert!(
        s.unexpected().is_empty(),
        "only 2xx/429/503: {}",
        statuses(&s)
    );
    report(
        2,
        "stop replica 1 of both shards during load, restart",
        &s,
        &r,
        &statuses(&s),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case3_shard1_down_spools_its_rows_while_shard2_keeps_ingesting() {
    let Setup {
        rig,
        db,
        dir: _dir,
        gw,
        _x,
    } = setup("faults3", "").await;
    let load = Load::start(&gw.url, &db, Shape::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = ["ch-s1r1", "ch-s1r2"];
    stop_nodes(rig, &down).await;
    let s2 = shard2_node(rig);
    let count2 = format!("SELECT count() FROM {db}.events_local");
    let (acked0, shard2_0) = (load.acked(), query(rig, s2, &count2).await);
    let outage = pick(Duration::from_secs(8), Duration::from_secs(30));
    tokio::time::sleep(outage).await;
    let (acked1, shard2_1) = (load.acked(), query(rig, s2, &count2).await);
    let spooled = gw.metric("chgate_spool_bytes").await;
    let breaker = gw.metric("chgate_shard_breaker_open{shard=\"1\"}").await;
    start_nodes(rig, &down).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s, r) = finish(3, rig, &db, &gw, load, Duration::from_secs(120)).await;
    let (n0, n1): (u64, u64) = (shard2_0.parse().expect("n"), shard2_1.parse().expect("n"));
    assert!(acked1 > acked0, "acks continued while shard 1 was down");
    assert!(n1 > n0, "shard 2 kept ingesting: {n0} -> {n1}");
    assert!(spooled > 0.0, "shard 1's rows waited in the spool");
    report(
        3,
        &format!("stop both replicas of shard 1 for {} s", outage.as_secs()),
        &s,
        &r,
        &format!(
            "during the outage: {} rows acked, shard 2 +{} rows, spool {:.0} KiB pending, shard-1 breaker open = {breaker}; {}",
            acked1 - acked0,
            n1 - n0,
            spooled / 1024.0,
            statuses(&s)
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case4_keeper_minority_is_invisible_majority_is_backpressure_without_loss() {
    let Setup {
        rig,
        db,
        dir: _dir,
        gw,
        _x,
    } = setup("faults4", "").await;
    let load = Load::start(&gw.url, &db, Shape::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = load.snapshot();
    rig.stop_node("keeper-1");
    tokio::time::sleep(pick(Duration::from_secs(5), Duration::from_secs(15))).await;
    let one_down = load.snapshot();
    let errors = |a: &Stats, b: &Stats| {
        (b.status(429) + b.status(503) + b.no_response)
            - (a.status(429) + a.status(503) + a.no_response)
    };
    let minority_errors = errors(&before, &one_down);
    rig.stop_node("keeper-2");
    let t = Instant::now();
    let mut max_spool = 0f64;
    while t.elapsed() < pick(Duration::from_secs(8), Duration::from_secs(20)) {
        max_spool = max_spool.max(gw.metric("chgate_spool_bytes").await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let two_down = load.snapshot();
    start_nodes(rig, &["keeper-1", "keeper-2"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s, r) = finish(4, rig, &db, &gw, load, Duration::from_secs(180)).await;
    assert_eq!(minority_errors, 0, "1 of 3 Keeper nodes down is invisible");
    assert!(max_spool > 0.0, "inserts were held back in the spool");
    report(
        4,
        "stop 1 of 3 ZooKeeper nodes, then 2 of 3, restart",
        &s,
        &r,
        &format!(
            "1 down: 0 errors, {} rows acked; 2 down: spool peaked at {:.0} KiB, {} rows acked; {}",
            one_down.acked.len() - before.acked.len(),
            max_spool / 1024.0,
            two_down.acked.len() - one_down.acked.len(),
            statuses(&s)
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case5_too_many_parts_gives_429_then_recovers_without_loss() {
    let rig = rig().await;
    let db = events_db(
        rig,
        "faults5",
        "",
        "SETTINGS parts_to_throw_insert = 8, parts_to_delay_insert = 1000",
    )
    .await;
    let _x = rig.exclusive().await;
    let nodes = rig.nodes().len();
    for i in 0..nodes {
        rig.clickhouse(i)
            .execute(&format!("SYSTEM STOP MERGES {db}.events_local"))
            .await
            .expect("stop merges");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let gw = GatewayProc::start(dir.path(), &db, "spooled", "").await;
    let load = Load::start(&gw.url, &db, Shape::default());
    let t = Instant::now();
    while load.snapshot().status(429) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no 429 while parts pile up; log:\n{}",
            gw.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(pick(Duration::from_secs(3), Duration::from_secs(10))).await;
    for i in 0..nodes {
        rig.clickhouse(i)
            .execute(&format!("SYSTEM START MERGES {db}.events_local"))
            .await
            .expect("start merges");
    }
    let recovering = load.snapshot();
    // Recovered: acks flow again without new 429s.
    let t = Instant::now();
    loop {
        let before = load.snapshot();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = load.snapshot();
        if now.status(429) == before.status(429) && now.acked.len() > before.acked.len() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no recovery after merges resumed"
        );
    }
    let recovery = t.elapsed();
    let (s, r) = finish(5, rig, &db, &gw, load, Duration::from_secs(120)).await;
    assert!(s.unexpected().is_empty(), "{}", statuses(&s));
    report(
        5,
        "parts_to_throw_insert = 8 with merges stopped, then merges resumed",
        &s,
        &r,
        &format!(
            "{} × 429 before merges resumed; recovered {} s after; {}",
            recovering.status(429),
            recovery.as_secs(),
            statuses(&s)
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case6_corrupt_spool_tail_is_truncated_reported_and_the_rest_replayed() {
    let Setup {
        rig,
        db,
        dir: _dir,
        mut gw,
        _x,
    } = setup("faults6", "").await;
    // Shard 1 down: its blocks stay in the spool, so the restart has something to replay.
    let down = ["ch-s1r1", "ch-s1r2"];
    stop_nodes(rig, &down).await;
    let load = Load::start(&gw.url, &db, Shape::default());
    tokio::time::sleep(pick(Duration::from_secs(3), Duration::from_secs(8))).await;
    let s = load.stop().await;
    let pending = gw.metric("chgate_spool_bytes").await;
    // With spooled acks a down shard only grows the spool: still ready, and /readyz says why.
    let ready = http()
        .get(format!("{}/readyz", gw.url))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let state: serde_json::Value = ready.json().await.expect("readyz JSON");
    assert_eq!(state["ack"], "spooled", "{state}");
    assert_eq!(
        state["shards"][0]["reachable"],
        serde_json::json!([]),
        "{state}"
    );
    assert_ne!(state["shards"][0]["breaker"], "closed", "{state}");
    assert_eq!(state["shards"][1]["breaker"], "closed", "{state}");
    assert!(
        state["spool"]["pending_bytes"].as_u64() > Some(0),
        "{state}"
    );
    gw.kill();
    // A crash in the middle of appending a record leaves a torn tail: a record header that
    // promises more bytes than were written (that record was never acked).
    let last = std::fs::read_dir(&gw.spool)
        .expect("spool dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .max()
        .expect("a segment");
    let mut torn = b"CGS1\x01".to_vec();
    torn.extend_from_slice(&200u32.to_le_bytes());
    torn.extend_from_slice(&4000u32.to_le_bytes());
    torn.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    torn.extend_from_slice(b"{\"id\":1,\"lane\":");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .expect("open segment");
    std::io::Write::write_all(&mut f, &torn).expect("corrupt");
    drop(f);
    start_nodes(rig, &down).await;
    gw.restart().await;
    let truncated = gw.metric("chgate_spool_truncated_total").await;
    let cut = gw.metric("chgate_spool_truncated_bytes_total").await;
    gw.wait_drained(Duration::from_secs(120)).await;
    let r = reconcile(rig, &db, &s.acked).await;
    assert_exact(6, &s, &r, &gw);
    assert!(pending > 0.0, "blocks were pending at the crash");
    assert_eq!(truncated, 1.0, "the torn tail was reported");
    assert_eq!(cut, torn.len() as f64);
    report(
        6,
        "shard 1 down, SIGKILL, torn record appended to the last segment, restart",
        &s,
        &r,
        &format!(
            "{:.0} KiB pending at the crash replayed; tail truncated once ({cut} bytes, chgate_spool_truncated_total = {truncated})",
            pending / 1024.0
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case7_poison_rows_go_to_the_dlq_and_replay_once_after_the_fix() {
    let Setup {
        rig,
        db,
        dir,
        gw,
        _x,
    } = setup("faults7", ", chk UInt8 DEFAULT throwIf(v = 13)").await;
    let shape = Shape {
        poison_every: 97,
        ..Shape::default()
    };
    let load = Load::start(&gw.url, &db, shape);
    tokio::time::sleep(pick(Duration::from_secs(3), Duration::from_secs(10))).await;
    let s = load.stop().await;
    gw.wait_drained(Duration::from_secs(180)).await;
    let bad = s.acked.iter().filter(|k| *k % 97 == 0).count() as u64;
    let good: Vec<u64> = s.acked.iter().copied().filter(|k| k % 97 != 0).collect();
    let before_fix = reconcile(rig, &db, &good).await;
    assert_eq!(before_fix.lost, 0, "good rows stored");
    assert_eq!(
        before_fix.stored,
        good.len() as u64,
        "only good rows stored"
    );
    // The gauge follows the directory every 5 s; the delivery path bumps it at once.
    assert_eq!(gw.metric("chgate_dlq_rows").await, bad as f64);
    let dlq = gw.spool.join("dlq");
    let copy = dir.path().join("dlq-copy");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for e in std::fs::read_dir(&dlq).expect("dlq") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, copy.join(p.file_name().expect("name"))).expect("copy");
    }
    let chgate = |args: &[&str]| {
        let out = std::process::Command::new(chgate_harness::chgate_bin())
            .arg("--config")
            .arg(chgate_harness::topology_path())
            .arg("dlq")
            .args(args)
            .output()
            .expect("run chgate dlq");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let dlq_s = dlq.to_str().expect("utf8");
    let (ok, listing) = chgate(&["--dir", dlq_s, "list"]);
    assert!(
        ok && (listing.contains("395") || listing.contains("throwIf")),
        "{listing}"
    );
    let first = std::fs::read_dir(&dlq)
        .expect("dlq")
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .next()
        .expect("an entry");
    let (ok, shown) = chgate(&["--dir", dlq_s, "show", &first]);
    assert!(
        ok && shown.contains("\"v\":13"),
        "show prints the rows: {shown}"
    );
    let (ok, kept) = chgate(&["--dir", dlq_s, "replay", "--all"]);
    assert!(
        !ok && kept.contains("still rejects"),
        "replay before the fix keeps the rows: {kept}"
    );
    let cluster = rig.topology().cluster.name.clone();
    // (This test holds the exclusive guard, so every server is up for the ON CLUSTER DDL.)
    ddl(
        rig,
        &format!(
            "ALTER TABLE {db}.events_local ON CLUSTER {cluster} MODIFY COLUMN chk UInt8 DEFAULT 0"
        ),
    )
    .await;
    // 18.16 refuses ON CLUSTER for a non-replicated table on a replicated cluster: node by node.
    for i in 0..rig.nodes().len() {
        rig.clickhouse(i)
            .execute(&format!(
                "ALTER TABLE {db}.events MODIFY COLUMN chk UInt8 DEFAULT 0"
            ))
            .await
            .expect("alter the Distributed table");
    }
    let (ok, out) = chgate(&["--dir", dlq_s, "replay", "--all"]);
    assert!(ok, "{out}");
    // Replaying the same entries again (as after a crash mid-replay) stores nothing twice.
    let (ok, out) = chgate(&["--dir", copy.to_str().expect("utf8"), "replay", "--all"]);
    assert!(ok, "{out}");
    let r = reconcile(rig, &db, &s.acked).await;
    assert_exact(7, &s, &r, &gw);
    assert_eq!(r.stored, s.acked.len() as u64);
    report(
        7,
        "1 in 97 rows rejected by the table (throwIf default); fix, `chgate dlq replay` twice",
        &s,
        &r,
        &format!(
            "before the fix: {} good rows stored, {bad} rows in the DLQ; after replay (twice): all stored once",
            before_fix.stored
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case8_rss_stays_bounded_with_3x_the_sustainable_rate_offered() {
    let rig = rig().await;
    let db = events_db(rig, "faults8", "", "").await;
    let _x = rig.exclusive().await;
    let dir = tempfile::tempdir().expect("tmp");
    let budget: u64 = 32 << 20;
    let gw = GatewayProc::start(
        dir.path(),
        &db,
        "inserted",
        &format!("memory_budget_bytes = {budget}\nmax_body_bytes = 4194304"),
    )
    .await;
    let idle_kib = gw.rss_kib();
    // Sustainable rate: the most a closed loop gets through (enough clients that the gateway,
    // not the clients' round trips, is the limit; 32 x ~250 KB stays inside the budget).
    let shape = Shape {
        clients: 32,
        rows: 5000,
        pause: Duration::ZERO,
        poison_every: 0,
    };
    let probe = Load::start(&gw.url, &db, shape);
    tokio::time::sleep(pick(Duration::from_secs(5), Duration::from_secs(10))).await;
    let secs = probe.elapsed().as_secs_f64();
    let closed = probe.stop().await;
    let sustainable = closed.acked.len() as f64 / secs;
    // Offer 3x that, open loop: one request of `rows` every tick, not waiting for answers.
    let rows_per_tick = ((sustainable * 3.0) / 20.0).max(1.0) as u64;
    let endpoint = format!("{}/ingest/{db}/events", gw.url);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = http();
    let t = Instant::now();
    let run_for = pick(Duration::from_secs(8), Duration::from_secs(20));
    let mut next_key = 1_000_000_000u64;
    let mut peak_kib = 0u64;
    let mut offered = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while t.elapsed() < run_for {
        tick.tick().await;
        // A tick's rows go as requests of at most `shape.rows` (the closed loop's size), so a
        // fast machine's 3x rate is offered as more requests, not as bodies over the 4 MiB limit.
        let tick_end = next_key + rows_per_tick;
        while next_key < tick_end {
            let keys = next_key..tick_end.min(next_key + shape.rows);
            next_key = keys.end;
            offered += keys.end - keys.start;
            let body: String = keys
                .clone()
                .map(|k| format!("{{\"key\":{k},\"v\":1,\"payload\":\"p{k}\"}}\n"))
                .collect();
            let (client, endpoint, tx) = (client.clone(), endpoint.clone(), tx.clone());
            tokio::spawn(async move {
                let r = client
                    .post(endpoint)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await;
                let _ = tx.send((r.map(|r| r.status().as_u16()).unwrap_or(0), keys));
            });
        }
        peak_kib = peak_kib.max(gw.rss_kib());
    }
    drop(tx);
    let mut acked = closed.acked.clone();
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    while let Some((status, keys)) = rx.recv().await {
        *statuses.entry(status).or_default() += 1;
        if (200..300).contains(&status) {
            acked.extend(keys);
        }
        peak_kib = peak_kib.max(gw.rss_kib());
    }
    let r = reconcile(rig, &db, &acked).await;
    assert_eq!(r.lost, 0);
    assert_eq!(r.duplicated, 0);
    let s429 = statuses.get(&429).copied().unwrap_or(0);
    assert!(s429 > 0, "3x overload is refused with 429: {statuses:?}");
    let limit_kib = idle_kib + 4 * budget / 1024 + 64 * 1024;
    assert!(
        peak_kib < limit_kib,
        "peak RSS {peak_kib} KiB over {limit_kib} KiB (idle {idle_kib} KiB); {statuses:?}"
    );
    let s = Stats {
        sent: closed.sent + offered,
        acked,
        ..Stats::default()
    };
    let note = format!(
        "ack=inserted, memory_budget 32 MiB: sustainable {sustainable:.0} rows/s (closed loop), offered {:.0} rows/s; peak RSS {} MiB (idle {} MiB); responses {statuses:?}",
        rows_per_tick as f64 * 20.0,
        peak_kib / 1024,
        idle_kib / 1024
    );
    report(
        8,
        "3x the sustainable rate offered (RSS check)",
        &s,
        &r,
        &note,
    );
    if !full() {
        eprintln!("{note}");
    }
}
