//! Backup of a loaded cluster, drop the tables, restore: row counts per shard and replica equal.

use std::time::Instant;

use chgate_ops::backup::{self, CreateOptions, RestoreOptions};
use chgate_ops::Error;

use crate::common::{drop_db, fixture, load, local_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_drop_tables_restore_gives_equal_row_counts_per_shard() {
    let f = fixture("ops_backup").await;
    let _g = f.rig.shared().await;
    let (rig, db) = (f.rig, f.db.as_str());
    // Load through HAProxy and the gateways: 20 batches of 1000 rows.
    load(rig, db, "load", 20, 1000).await;
    let nodes = rig.nodes();
    let mut before = Vec::new();
    for i in 0..nodes.len() {
        before.push(local_rows(rig, i, db).await);
    }
    assert_eq!(before.iter().step_by(2).sum::<u64>(), 20_000, "{before:?}");

    let tmp = tempfile::tempdir().expect("tmp");
    let opts = CreateOptions {
        target: tmp.path().to_owned(),
        databases: vec![db.to_owned()],
        postgres: true,
    };
    let m = backup::create(&f.ops, &opts, &|m| eprintln!("[backup] {m}"))
        .await
        .expect("backup");
    let ch = m.clickhouse.as_ref().expect("clickhouse part");
    for s in &ch.shards {
        let rows: u64 = s
            .tables
            .iter()
            .filter(|t| t.table == "samples_local")
            .map(|t| t.rows)
            .sum();
        let i = nodes
            .iter()
            .position(|n| n.name == s.source_replica)
            .expect("node");
        assert_eq!(rows, before[i], "manifest rows of shard {}", s.shard);
    }
    eprintln!(
        "backup {}: {} bytes in {:.2}s",
        m.id,
        backup::total_bytes(&m),
        m.duration_s
    );

    // `chgate backup list` sees it.
    let out = std::process::Command::new(chgate_harness::chgate_bin())
        .arg("--config")
        .arg(chgate_harness::topology_path())
        .args(["backup", "list", "--json", "--dir"])
        .arg(tmp.path())
        .output()
        .expect("run chgate backup list");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json list");
    assert_eq!(listed[0]["id"], m.id.as_str(), "{listed}");

    // Drop every table of the database on every host, then restore.
    let c = rig.clickhouse(0);
    for t in [
        "samples",
        "series",
        "samples_local",
        "series_local",
        "chgate_migrations",
    ] {
        let sql = format!(
            "DROP TABLE {db}.{t} ON CLUSTER {}",
            rig.topology().cluster.name
        );
        c.execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let started = Instant::now();
    let only_ch = RestoreOptions {
        clickhouse: true,
        postgres: false,
    };
    let report = backup::restore(&f.ops, tmp.path(), &m.id, &only_ch, &|m| {
        eprintln!("[restore] {m}")
    })
    .await
    .expect("restore verified");
    eprintln!("restore in {:.2}s", started.elapsed().as_secs_f64());
    for (i, want) in before.iter().enumerate() {
        assert_eq!(
            local_rows(rig, i, db).await,
            *want,
            "rows on {}",
            nodes[i].name
        );
    }
    let checked = report
        .clickhouse
        .iter()
        .filter(|c| c.table.ends_with(".samples_local"))
        .count();
    assert_eq!(
        checked,
        nodes.len(),
        "every replica verified: {:?}",
        report.clickhouse
    );
    let total = c
        .query(&format!("SELECT count() FROM {db}.samples"))
        .await
        .expect("distributed count");
    assert_eq!(total.trim(), "20000");

    // A second restore into the now full tables is refused, naming the table.
    let again = backup::restore(&f.ops, tmp.path(), &m.id, &only_ch, &|_| {}).await;
    match again {
        Err(Error::Backup { reason, .. }) => assert!(reason.contains("already holds"), "{reason}"),
        other => panic!("restore into full tables: {other:?}"),
    }
    drop_db(rig, db).await;
}
