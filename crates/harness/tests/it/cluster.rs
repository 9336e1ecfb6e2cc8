//! The ClickHouse cluster of the rig behaves as a 2x2 cluster through Keeper.

use std::time::{Duration, Instant};

use chgate_clickhouse_http::Client;
use chgate_harness::{rig, Rig};

async fn count(c: &Client, sql: &str) -> u64 {
    c.query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .trim()
        .parse()
        .unwrap_or(u64::MAX)
}

/// Creates `db` with a replicated local table and a Distributed table over it, ON CLUSTER.
async fn create_tables(rig: &Rig, db: &str) {
    let t = rig.topology();
    let (cluster, root) = (&t.cluster.name, &t.clickhouse.keeper_root);
    let c = rig.clickhouse(0);
    let ddl = [
        format!("CREATE DATABASE {db} ON CLUSTER {cluster}"),
        format!(
            "CREATE TABLE {db}.events_local ON CLUSTER {cluster} (id UInt64, d Date DEFAULT today()) \
             ENGINE = ReplicatedMergeTree('{root}/tables/{{shard}}/{db}/events_local', '{{replica}}') \
             PARTITION BY d ORDER BY id"
        ),
        format!(
            "CREATE TABLE {db}.events ON CLUSTER {cluster} AS {db}.events_local \
             ENGINE = Distributed({cluster}, {db}, events_local, intHash64(id))"
        ),
    ];
    for sql in &ddl {
        let out = c
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}\n{}", rig.log_tail("ch-s1r1")));
        // 18.16 answers ON CLUSTER with one row per host: host, port, status, error, remaining, active.
        let ok_rows = out
            .lines()
            .filter(|l| l.split('\t').nth(2) == Some("0"))
            .count();
        assert_eq!(
            ok_rows, 4,
            "every host reports status 0 for `{sql}`:\n{out}"
        );
    }
}

/// Best-effort cleanup of a test's database on every host.
async fn drop_db(rig: &Rig, db: &str) {
    let sql = format!(
        "DROP DATABASE {db} ON CLUSTER {}",
        rig.topology().cluster.name
    );
    rig.clickhouse(0).execute(&sql).await.ok();
}

async fn wait_count(c: &Client, sql: &str, want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = count(c, sql).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: `{sql}` gave {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cluster_ddl_reaches_all_hosts_and_distributed_rows_land_on_both_shards_and_replicas() {
    let rig = rig().await;
    let _guard = rig.shared().await;
    let db = rig.unique_name("it_cluster");
    create_tables(rig, &db).await;
    for i in 0..4 {
        let tables = count(
            &rig.clickhouse(i),
            &format!("SELECT count() FROM system.tables WHERE database = '{db}'"),
        )
        .await;
        assert_eq!(tables, 2, "node {i} has both tables");
    }
    let rows = 1000u64;
    rig.clickhouse(0)
        .query_with(
            &format!("INSERT INTO {db}.events (id) SELECT number FROM system.numbers LIMIT {rows}"),
            &[("insert_distributed_sync", "1")],
        )
        .await
        .expect("insert through Distributed");
    // Shard-local counts: each shard holds a non-empty part, together all rows, and both replicas
    // of a shard agree.
    let nodes = rig.nodes();
    let mut per_shard = Vec::new();
    for shard in 1..=2 {
        let replicas: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].shard == shard)
            .collect();
        let first = count(
            &rig.clickhouse(replicas[0]),
            &format!("SELECT count() FROM {db}.events_local"),
        )
        .await;
        assert!(
            first > 0 && first < rows,
            "shard {shard} holds part of the rows: {first}"
        );
        for &r in &replicas[1..] {
            let sql = format!("SELECT count() FROM {db}.events_local");
            wait_count(&rig.clickhouse(r), &sql, first, &nodes[r].name).await;
        }
        per_shard.push(first);
    }
    assert_eq!(
        per_shard.iter().sum::<u64>(),
        rows,
        "no row lost or duplicated: {per_shard:?}"
    );
    assert_eq!(
        count(
            &rig.clickhouse(3),
            &format!("SELECT count() FROM {db}.events")
        )
        .await,
        rows
    );
    drop_db(rig, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_inserts_survive_one_keeper_node_down_and_the_node_rejoins() {
    let rig = rig().await;
    let _guard = rig.exclusive().await;
    let db = rig.unique_name("it_keeper");
    create_tables(rig, &db).await;
    let host = rig.topology().network.listen.to_string();
    let victim = rig.topology().keeper_nodes()[0].clone();
    rig.stop_node(&victim.name);
    // The servers whose Keeper session was on the stopped node lose it once ("Connection loss",
    // code 999; or the table is briefly read-only, 242) and reconnect to another node; a client
    // retries that, as the gateway does.
    let result = async {
        for batch in 0..3u64 {
            let sql = format!(
                "INSERT INTO {db}.events (id) SELECT number + {} FROM system.numbers LIMIT 100",
                batch * 100
            );
            let mut tries = 0;
            loop {
                match rig
                    .clickhouse(1)
                    .query_with(&sql, &[("insert_distributed_sync", "1")])
                    .await
                {
                    Err(e)
                        if [999, 225, 242, 209, 210, 319].contains(&e.code().unwrap_or(0))
                            && tries < 10 =>
                    {
                        tries += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    other => break other.map(drop)?,
                };
            }
        }
        Ok::<_, chgate_clickhouse_http::Error>(())
    }
    .await;
    rig.start_node(&victim.name);
    result.unwrap_or_else(|e| {
        panic!(
            "insert with {} down: {e}\n{}",
            victim.name,
            rig.log_tail("ch-s1r2")
        )
    });
    // The node rejoins the quorum as leader or follower.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match chgate_localstack::probe::keeper(&host, victim.client_port).await {
            Ok((mode, _)) if mode == "leader" || mode == "follower" => break,
            other => assert!(
                Instant::now() < deadline,
                "{} did not rejoin: {other:?}\n{}",
                victim.name,
                rig.log_tail(&victim.name)
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for i in 0..4 {
        wait_count(
            &rig.clickhouse(i),
            &format!("SELECT count() FROM {db}.events"),
            300,
            "all rows visible",
        )
        .await;
    }
    drop_db(rig, &db).await;
}
