//! Shard-aware writes place every row on the same shard the Distributed table would.

use chgate_gateway::encode::Format;
use chgate_gateway::writer::WriteMode;
use chgate_harness::rig;

use crate::support::{gateway, http, migrated_db, per_shard_counts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_aware_placement_equals_distributed_placement_on_100k_series() {
    let rig = rig().await;
    let series = 100_000;
    let mut dbs = Vec::new();
    for mode in [WriteMode::Distributed, WriteMode::ShardAware] {
        let db = migrated_db(rig, "gw_place");
        let gw = gateway(rig, &db, mode, Format::Native).await;
        for chunk in 0..10 {
            let body: String = (chunk * series / 10..(chunk + 1) * series / 10)
                .map(|i| format!("place,host=h{i},dc=d{} value={i} 1700000000\n", i % 7))
                .collect();
            let resp = http()
                .post(format!("{}/write?precision=s", gw.url))
                .body(body)
                .send()
                .await
                .expect("post");
            assert_eq!(
                resp.status(),
                204,
                "{mode:?}: {}",
                resp.text().await.unwrap_or_default()
            );
        }
        gw.shutdown().await;
        let counts = per_shard_counts(rig, &format!("{db}.samples_local"), "1").await;
        assert_eq!(
            counts.iter().sum::<u64>(),
            series as u64,
            "{mode:?}: {counts:?}"
        );
        dbs.push((db, counts));
    }
    assert_eq!(dbs[0].1, dbs[1].1, "same number of rows per shard");
    // Same series on the same shard: compare the order-independent hash of series ids per shard.
    let nodes = rig.nodes();
    for shard in 1..=rig.topology().cluster.shards {
        let node = (0..nodes.len())
            .find(|&i| nodes[i].shard == shard)
            .expect("node");
        let mut sums = Vec::new();
        for (db, _) in &dbs {
            let sql = format!(
                "SELECT groupBitXor(cityHash64(series_id)), sum(series_id) FROM {db}.samples_local"
            );
            sums.push(
                rig.clickhouse(node)
                    .query(&sql)
                    .await
                    .expect("sum")
                    .trim()
                    .to_owned(),
            );
        }
        assert_eq!(
            sums[0], sums[1],
            "shard {shard}: distributed vs shard-aware series sets differ"
        );
    }
}
