//! Keeper ensemble configs: `zoo.cfg` for ZooKeeper 3.8 (the local rig's stand-in) and
//! `keeper_config.xml` for ClickHouse Keeper (pods). Both describe the same ids, hosts and ports,
//! so ClickHouse servers see the same `<zookeeper>` section whichever runs.

use std::fmt::Write as _;
use std::path::Path;

use super::{xml_escape, Addressing};
use crate::model::KeeperNode;
use crate::Topology;

/// Four-letter-word commands the readiness checks use (`srvr` for the leader, `ruok`, `mntr`).
pub const FOUR_LETTER_WORDS: &str = "srvr,ruok,mntr,stat";

/// Renders ZooKeeper 3.8's `zoo.cfg` for `node` on the local rig, keeping its data in `data_dir`.
pub fn zoo_cfg(t: &Topology, node: &KeeperNode, data_dir: &Path) -> String {
    zoo_cfg_for(t, node, Addressing::Local, data_dir)
}

/// Renders `zoo.cfg` for `node` with the given addressing: pods (ZooKeeper as the Keeper stand-in
/// in `chgate deploy --images local`) listen on every address at the pod ports and name their
/// peers by pod name.
pub fn zoo_cfg_for(t: &Topology, node: &KeeperNode, a: Addressing, data_dir: &Path) -> String {
    let mut c = String::from("# rendered by chgate from the topology; do not edit\n");
    let _ = writeln!(c, "tickTime=2000\ninitLimit=10\nsyncLimit=5");
    let _ = writeln!(c, "dataDir={}", data_dir.display());
    let _ = writeln!(
        c,
        "clientPort={}\nclientPortAddress={}",
        a.keeper_ports(node).0,
        a.bind(t)
    );
    let _ = writeln!(c, "maxClientCnxns=200\nadmin.enableServer=false");
    let _ = writeln!(c, "4lw.commands.whitelist={FOUR_LETTER_WORDS}");
    let _ = writeln!(c, "autopurge.snapRetainCount=3\nautopurge.purgeInterval=1");
    let _ = writeln!(c, "reconfigEnabled=false\nstandaloneEnabled=false");
    if a == Addressing::Pods {
        // A pod's own name resolves to its pod address; bind the quorum ports on all of them.
        let _ = writeln!(c, "quorumListenOnAllIPs=true");
    }
    for k in t.keeper_nodes() {
        let election = match a {
            Addressing::Local => k.election_port,
            Addressing::Pods => super::POD_KEEPER_ELECTION_PORT,
        };
        let _ = writeln!(
            c,
            "server.{}={}:{}:{}",
            k.id,
            a.host(t, &k.name),
            a.keeper_ports(&k).1,
            election
        );
    }
    c
}

/// Renders ClickHouse Keeper's config for `node` (the pods' Keeper, same ensemble).
pub fn keeper_xml(t: &Topology, node: &KeeperNode, a: Addressing, data_dir: &Path) -> String {
    let (client, _) = a.keeper_ports(node);
    let d = xml_escape(&data_dir.display().to_string());
    let mut x = String::from("<?xml version=\"1.0\"?>\n<!-- rendered by chgate from the topology; do not edit -->\n<clickhouse>\n");
    let _ = writeln!(x, "  <listen_host>{}</listen_host>", xml_escape(&a.bind(t)));
    let _ = writeln!(
        x,
        "  <logger>\n    <level>information</level>\n    <console>1</console>\n  </logger>\n  <keeper_server>\n    \
         <tcp_port>{client}</tcp_port>\n    <server_id>{}</server_id>\n    <log_storage_path>{d}/coordination/log</log_storage_path>\n    \
         <snapshot_storage_path>{d}/coordination/snapshots</snapshot_storage_path>\n    <four_letter_word_white_list>{FOUR_LETTER_WORDS}</four_letter_word_white_list>\n    \
         <coordination_settings>\n      <operation_timeout_ms>10000</operation_timeout_ms>\n      <session_timeout_ms>{}</session_timeout_ms>\n    </coordination_settings>\n    <raft_configuration>",
        node.id, t.keeper.session_timeout_ms
    );
    for k in t.keeper_nodes() {
        let _ = writeln!(
            x,
            "      <server><id>{}</id><hostname>{}</hostname><port>{}</port></server>",
            k.id,
            xml_escape(&a.host(t, &k.name)),
            a.keeper_ports(&k).1
        );
    }
    x.push_str("    </raft_configuration>\n  </keeper_server>\n</clickhouse>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_cfg_lists_the_ensemble_and_binds_loopback() {
        let t = Topology::default();
        let k = &t.keeper_nodes()[1];
        let c = zoo_cfg(&t, k, Path::new("/s/keeper-2/data"));
        assert!(c.contains("clientPort=18182\nclientPortAddress=127.0.0.1"));
        assert!(c.contains("server.1=127.0.0.1:18281:18381"));
        assert!(c.contains("server.3=127.0.0.1:18283:18383"));
        assert!(c.contains("admin.enableServer=false"));
    }

    #[test]
    fn four_letter_words_that_chgate_status_sends_are_whitelisted() {
        // `chgate status` reads `mntr` and readiness reads `srvr`; ZooKeeper 3.5+ answers a word
        // outside `4lw.commands.whitelist` with "is not executed because it is not in the whitelist".
        let t = Topology::default();
        let c = zoo_cfg(&t, &t.keeper_nodes()[0], Path::new("/d"));
        let line = c
            .lines()
            .find_map(|l| l.strip_prefix("4lw.commands.whitelist="))
            .expect("whitelist line");
        for word in ["mntr", "srvr", "ruok"] {
            assert!(line.split(',').any(|w| w == word), "{word} in {line}");
        }
    }

    #[test]
    fn keeper_xml_is_a_drop_in_for_the_same_ensemble() {
        let t = Topology::default();
        let k = &t.keeper_nodes()[0];
        let x = keeper_xml(
            &t,
            k,
            Addressing::Pods,
            Path::new("/var/lib/clickhouse-keeper"),
        );
        assert!(x.contains("<tcp_port>9181</tcp_port>") && x.contains("<server_id>1</server_id>"));
        assert_eq!(x.matches("<server><id>").count(), 3);
        assert!(x.contains("<hostname>keeper-2</hostname><port>9234</port>"));
    }

    #[test]
    fn zoo_cfg_for_pods_names_peers_and_uses_pod_ports() {
        let t = Topology::default();
        let k = &t.keeper_nodes()[0];
        let c = zoo_cfg_for(&t, k, Addressing::Pods, Path::new("/var/lib/zookeeper"));
        assert!(c.contains("clientPort=9181\nclientPortAddress=0.0.0.0"));
        assert!(c.contains("server.3=keeper-3:9234:9334"));
        assert!(c.contains("quorumListenOnAllIPs=true"));
        assert_eq!(
            zoo_cfg(&t, k, Path::new("/d")),
            zoo_cfg_for(&t, k, Addressing::Local, Path::new("/d"))
        );
    }
}
