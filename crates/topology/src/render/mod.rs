//! Config renderers: one function per file a server reads, all driven by the [`Topology`].
//!
//! [`Addressing`] chooses between the local rig (every process on the loopback address, ports
//! from the topology's layout) and pods (each server its own host name, standard container ports),
//! so `chgate local` and `chgate deploy` render from the same code.

pub mod clickhouse;
pub mod haproxy;
pub mod keeper;

use crate::model::{ClickHouseNode, Instance, KeeperNode};
use crate::Topology;

/// Where the rendered configs will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// All processes on `network.listen`, ports from the topology's layout.
    Local,
    /// One pod per server, reachable by its name, container-standard ports.
    Pods,
}

/// ClickHouse container ports (http, tcp, interserver) used with [`Addressing::Pods`].
pub const POD_CLICKHOUSE_PORTS: (u16, u16, u16) = (8123, 9000, 9009);
/// Keeper container ports (client, raft) used with [`Addressing::Pods`].
pub const POD_KEEPER_PORTS: (u16, u16) = (9181, 9234);
/// ZooKeeper's leader-election port with [`Addressing::Pods`] (ClickHouse Keeper has none).
pub const POD_KEEPER_ELECTION_PORT: u16 = 9334;

impl Addressing {
    /// Host other processes use to reach a named server.
    pub fn host(self, t: &Topology, name: &str) -> String {
        match self {
            Addressing::Local => t.network.listen.to_string(),
            Addressing::Pods => name.to_owned(),
        }
    }

    /// Address a server binds to.
    pub fn bind(self, t: &Topology) -> String {
        match self {
            Addressing::Local => t.network.listen.to_string(),
            Addressing::Pods => "0.0.0.0".to_owned(),
        }
    }

    /// (http, tcp, interserver) ports of a ClickHouse node.
    pub fn clickhouse_ports(self, n: &ClickHouseNode) -> (u16, u16, u16) {
        match self {
            Addressing::Local => (n.http_port, n.tcp_port, n.interserver_port),
            Addressing::Pods => POD_CLICKHOUSE_PORTS,
        }
    }

    /// (client, peer) ports of a Keeper node.
    pub fn keeper_ports(self, k: &KeeperNode) -> (u16, u16) {
        match self {
            Addressing::Local => (k.client_port, k.peer_port),
            Addressing::Pods => POD_KEEPER_PORTS,
        }
    }

    /// Port of a gateway or Grafana instance.
    pub fn instance_port(self, i: &Instance, pod_port: u16) -> u16 {
        match self {
            Addressing::Local => i.port,
            Addressing::Pods => pod_port,
        }
    }
}

/// Escapes text for an XML element or attribute.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_covers_markup() {
        assert_eq!(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
