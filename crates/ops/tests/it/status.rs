//! `chgate status` on the healthy rig: every component reported, JSON parseable, exit 0.

use std::time::Duration;

use chgate_harness::{chgate_bin, topology_path};

use crate::common::{fixture, wait_healthy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_every_component_of_a_healthy_rig_and_exits_0() {
    let f = fixture("ops_status").await;
    let _g = f.rig.shared().await;
    wait_healthy(&f.ops, Duration::from_secs(60)).await;
    // Other tests' ON CLUSTER DDL (shared guard) can leave a table on one replica for a moment:
    // healthy must come within a bounded wait, not necessarily at the first call.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let out = std::process::Command::new(chgate_bin())
            .arg("--config")
            .arg(topology_path())
            .args(["status", "--json"])
            .output()
            .expect("run chgate status");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.code() == Some(0) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline && out.status.code() == Some(2),
            "chgate status exit {:?}:\n{text}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let t = f.rig.topology();
    let hosts = v["clickhouse"].as_array().expect("clickhouse");
    assert_eq!(hosts.len() as u32, t.cluster.shards * t.cluster.replicas);
    for h in hosts {
        assert_eq!(h["up"], true, "{h}");
        assert!(
            h["version"]
                .as_str()
                .is_some_and(|s| s.starts_with("18.16")),
            "{h}"
        );
        assert!(h["parts_to_throw_insert"].as_u64() > Some(0), "{h}");
        let mine = h["replicas"]
            .as_array()
            .expect("replicas")
            .iter()
            .filter(|r| r["database"] == f.db.as_str())
            .count();
        assert!(
            mine >= 2,
            "{}: samples_local and series_local of {} listed: {h}",
            h["name"],
            f.db
        );
    }
    let keeper = v["keeper"]["nodes"].as_array().expect("keeper");
    assert_eq!(keeper.len() as u32, t.keeper.nodes);
    assert!(v["keeper"]["leader"].is_string());
    assert!(keeper.iter().all(|k| k["znode_count"].as_u64() > Some(0)));
    assert_eq!(v["postgres"]["up"], true);
    let gws = v["gateways"].as_array().expect("gateways");
    assert_eq!(gws.len() as u32, t.gateway.instances);
    assert!(gws.iter().all(|g| g["ready"] == true));
    let servers = v["haproxy"]["servers"].as_array().expect("haproxy");
    assert_eq!(
        servers
            .iter()
            .filter(|s| s["backend"] == "gateways" && s["status"] == "UP")
            .count() as u32,
        t.gateway.instances
    );
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0));
    crate::common::drop_db(f.rig, &f.db).await;
}
