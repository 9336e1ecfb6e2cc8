//! Fault tests on the shared rig: a ClickHouse replica or a Keeper node down, a migrator killed
//! mid-version (aborted in-process, and a real `chgate migrate up` process SIGKILLed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chgate_migrations::ddl::DdlSettings;
use chgate_migrations::plan::Status;
use chgate_migrations::{Error, Progress};

use crate::live::{
    applied_count, exclusive, ledger_rows, migrator, options, quiet, shared, tables_on, wait_up,
    write_dir, Restart,
};

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
async fn sigkilled_cli_process_mid_migration_is_resumed_by_the_next_up() {
    const STATEMENTS: u32 = 30;
    let rig = chgate_harness::rig().await;
    let _g = shared().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Thirty statements, killed once two are recorded: the rest take seconds (each ON CLUSTER
    // DDL waits for every host), so the kill lands mid-migration even when the poll is slow
    // (with ten, a loaded machine once saw the first up finish before the poll saw statement 2).
    let stmts: Vec<String> = (1..=STATEMENTS)
        .map(|i| {
            format!(
                "CREATE TABLE IF NOT EXISTS ${{database}}.t{i} ON CLUSTER ${{cluster}} (x UInt8) ENGINE = Memory;"
            )
        })
        .collect();
    write_dir(dir.path(), &[("V1__many.sql", &stmts.join("\n"))]);
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
    assert!(
        killed_at < STATEMENTS,
        "killed before the end (at {killed_at})"
    );
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
        STATEMENTS as usize + 1,
        "every table and the ledger"
    );
    migrator(rig, &opts).verify().await.expect("verify passes");
}
