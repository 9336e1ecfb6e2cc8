//! Pure validation: every rule names the offending field.

use std::collections::BTreeMap;

use crate::model::{port_at, Topology};
use crate::TopologyError;

/// Largest shard/replica/instance count accepted; keeps port layouts and test rigs sane.
const MAX_COUNT: u32 = 16;

fn invalid(field: &str, reason: impl Into<String>) -> TopologyError {
    TopologyError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Checks a parsed topology.
///
/// # Errors
/// The first problem found, as [`TopologyError::Invalid`] or [`TopologyError::PortClash`].
pub fn validate(t: &Topology) -> Result<(), TopologyError> {
    check_counts(t)?;
    check_names(t)?;
    if !t.network.listen.is_loopback() {
        return Err(invalid(
            "network.listen",
            "must be a loopback address (127.0.0.0/8 or ::1)",
        ));
    }
    check_ports(t)
}

fn check_counts(t: &Topology) -> Result<(), TopologyError> {
    let counts = [
        ("cluster.shards", t.cluster.shards, 1),
        ("cluster.replicas", t.cluster.replicas, 1),
        ("keeper.nodes", t.keeper.nodes, 1),
        ("gateway.instances", t.gateway.instances, 0),
        ("grafana.instances", t.grafana.instances, 0),
    ];
    for (field, value, min) in counts {
        if value < min {
            return Err(invalid(
                field,
                format!("must be at least {min}, got {value}"),
            ));
        }
        if value > MAX_COUNT {
            return Err(invalid(
                field,
                format!("must be at most {MAX_COUNT}, got {value}"),
            ));
        }
    }
    if t.keeper.nodes.is_multiple_of(2) {
        return Err(invalid(
            "keeper.nodes",
            format!(
                "must be odd so a majority quorum exists, got {}",
                t.keeper.nodes
            ),
        ));
    }
    if t.keeper.heap_mb < 64 {
        return Err(invalid("keeper.heap_mb", "must be at least 64"));
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_names(t: &Topology) -> Result<(), TopologyError> {
    let names = [
        ("cluster.name", &t.cluster.name),
        ("cluster.database", &t.cluster.database),
        ("clickhouse.user", &t.clickhouse.user),
        ("postgres.user", &t.postgres.user),
        ("postgres.database", &t.postgres.database),
        ("postgres.grafana_database", &t.postgres.grafana_database),
    ];
    for (field, value) in names {
        if !is_identifier(value) {
            return Err(invalid(
                field,
                format!("`{value}` is not a plain identifier [A-Za-z_][A-Za-z0-9_-]*"),
            ));
        }
    }
    for (field, path) in [
        ("clickhouse.keeper_root", &t.clickhouse.keeper_root),
        ("clickhouse.ddl_queue_path", &t.clickhouse.ddl_queue_path),
    ] {
        if !path.starts_with('/') || path.ends_with('/') {
            return Err(invalid(
                field,
                format!("`{path}` must be an absolute Keeper path without a trailing /"),
            ));
        }
    }
    Ok(())
}

/// Every port the topology uses, each with the field it comes from. Values may exceed 65535 here;
/// [`validate`] rejects that.
pub fn port_uses(t: &Topology) -> Vec<(u32, String)> {
    let b = t.network.base_port;
    let (c, k) = (&t.clickhouse, &t.keeper);
    let mut uses = Vec::new();
    for i in 0..t.cluster.shards * t.cluster.replicas {
        let node = format!("clickhouse node {}", i + 1);
        uses.push((
            port_at(c.http_port, b, 121, i),
            format!("clickhouse.http_port ({node})"),
        ));
        uses.push((
            port_at(c.tcp_port, b, 1001, i),
            format!("clickhouse.tcp_port ({node})"),
        ));
        uses.push((
            port_at(c.interserver_port, b, 1101, i),
            format!("clickhouse.interserver_port ({node})"),
        ));
        if let Some(tls) = &t.tls {
            uses.push((
                port_at(tls.clickhouse_https_port, b, 1201, i),
                format!("tls.clickhouse_https_port ({node})"),
            ));
        }
    }
    if let Some(tls) = &t.tls {
        uses.push((
            port_at(tls.haproxy_gateway_port, b, 443, 0),
            "tls.haproxy_gateway_port".to_owned(),
        ));
    }
    for i in 0..k.nodes {
        let node = format!("keeper node {}", i + 1);
        uses.push((
            port_at(k.client_port, b, 181, i),
            format!("keeper.client_port ({node})"),
        ));
        uses.push((
            port_at(k.peer_port, b, 281, i),
            format!("keeper.peer_port ({node})"),
        ));
        uses.push((
            port_at(k.election_port, b, 381, i),
            format!("keeper.election_port ({node})"),
        ));
    }
    for i in 0..t.gateway.instances {
        uses.push((
            port_at(t.gateway.port, b, 441, i),
            format!("gateway.port (gateway {})", i + 1),
        ));
    }
    for i in 0..t.grafana.instances {
        let g = format!("grafana {}", i + 1);
        uses.push((
            port_at(t.grafana.port, b, 301, i),
            format!("grafana.port ({g})"),
        ));
        uses.push((
            port_at(t.grafana.alerting_port, b, 394, i),
            format!("grafana.alerting_port ({g})"),
        ));
    }
    uses.push((
        port_at(t.postgres.port, b, 432, 0),
        "postgres.port".to_owned(),
    ));
    uses.push((
        port_at(t.haproxy.gateway_port, b, 428, 0),
        "haproxy.gateway_port".to_owned(),
    ));
    uses.push((
        port_at(t.haproxy.grafana_port, b, 300, 0),
        "haproxy.grafana_port".to_owned(),
    ));
    uses.push((
        port_at(t.haproxy.stats_port, b, 404, 0),
        "haproxy.stats_port".to_owned(),
    ));
    uses
}

fn check_ports(t: &Topology) -> Result<(), TopologyError> {
    let mut seen: BTreeMap<u32, String> = BTreeMap::new();
    for (port, field) in port_uses(t) {
        if port == 0 || port > u32::from(u16::MAX) {
            return Err(invalid(&field, format!("port {port} is outside 1..=65535")));
        }
        if let Some(first) = seen.get(&port) {
            return Err(TopologyError::PortClash {
                port,
                first: first.clone(),
                second: field,
            });
        }
        seen.insert(port, field);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_are_valid() {
        validate(&Topology::default()).expect("defaults validate");
    }

    #[test]
    fn zero_replicas_names_the_field() {
        let mut t = Topology::default();
        t.cluster.replicas = 0;
        let err = validate(&t).expect_err("rejected").to_string();
        assert!(err.contains("cluster.replicas"), "{err}");
    }

    #[test]
    fn even_keeper_count_is_rejected() {
        let mut t = Topology::default();
        t.keeper.nodes = 4;
        let err = validate(&t).expect_err("rejected").to_string();
        assert!(err.contains("keeper.nodes") && err.contains("odd"), "{err}");
    }

    #[test]
    fn port_clash_names_both_fields() {
        let mut t = Topology::default();
        t.postgres.port = Some(18121);
        let err = validate(&t).expect_err("rejected").to_string();
        assert!(err.contains("postgres.port"), "{err}");
        assert!(
            err.contains("clickhouse.http_port (clickhouse node 1)"),
            "{err}"
        );
    }

    #[test]
    fn port_overflow_is_rejected() {
        let mut t = Topology::default();
        t.network.base_port = 65000;
        let err = validate(&t).expect_err("rejected").to_string();
        assert!(err.contains("outside 1..=65535"), "{err}");
    }

    #[test]
    fn non_loopback_listen_is_rejected() {
        let mut t = Topology::default();
        t.network.listen = "10.0.0.1".parse().expect("ip");
        assert!(validate(&t)
            .expect_err("rejected")
            .to_string()
            .contains("network.listen"));
    }

    proptest! {
        /// Any shape the validator accepts yields pairwise-distinct ports on every node.
        #[test]
        fn accepted_layouts_have_distinct_ports(
            shards in 1u32..6, replicas in 1u32..4, keepers in 0u32..3, base in 1024u16..60000,
        ) {
            let mut t = Topology::default();
            t.cluster.shards = shards;
            t.cluster.replicas = replicas;
            t.keeper.nodes = keepers * 2 + 1;
            t.network.base_port = base;
            if validate(&t).is_ok() {
                let mut ports: Vec<u16> = t.clickhouse_nodes().iter()
                    .flat_map(|n| [n.http_port, n.tcp_port, n.interserver_port]).collect();
                ports.extend(t.keeper_nodes().iter().flat_map(|k| [k.client_port, k.peer_port, k.election_port]));
                let n = ports.len();
                ports.sort_unstable();
                ports.dedup();
                prop_assert_eq!(ports.len(), n);
            }
        }
    }
}
