//! temporary probe
#[tokio::test]
async fn probe_on_cluster_timeout() {
    let rig = chgate_harness::rig().await;
    let c = rig.clickhouse(0);
    let db = rig.unique_name("probe");
    rig.stop_node("ch-s1r2");
    let t0 = std::time::Instant::now();
    let r = c
        .query_with(
            &format!("CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER chgate"),
            &[
                ("wait_end_of_query", "1"),
                ("distributed_ddl_task_timeout", "3"),
            ],
        )
        .await;
    eprintln!("CREATE DB ({:?}): {r:?}", t0.elapsed());
    let r = c.query("SELECT name, value FROM system.zookeeper WHERE path = '/clickhouse/task_queue/ddl' ORDER BY name DESC LIMIT 2").await;
    eprintln!("queue: {r:?}");
    if let Ok(text) = &r {
        if let Some(first) = text.lines().next() {
            let task = first.split('\t').next().unwrap_or_default();
            let r = c.query(&format!("SELECT name, value FROM system.zookeeper WHERE path = '/clickhouse/task_queue/ddl/{task}'")).await;
            eprintln!("task children: {r:?}");
            let r = c.query(&format!("SELECT name, value FROM system.zookeeper WHERE path = '/clickhouse/task_queue/ddl/{task}/finished'")).await;
            eprintln!("finished: {r:?}");
        }
    }
    let r = c.query("SELECT * FROM system.macros").await;
    eprintln!("macros: {r:?}");
    rig.start_node("ch-s1r2");
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let r = rig
        .clickhouse(1)
        .query(&format!(
            "SELECT count() FROM system.databases WHERE name = '{db}'"
        ))
        .await;
    eprintln!("after restart: {r:?}");
}
