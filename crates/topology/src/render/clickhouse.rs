//! ClickHouse server config (`config.xml`) and users (`users.xml`) for one node.

use std::fmt::Write as _;
use std::path::Path;

use super::{xml_escape, Addressing};
use crate::model::ClickHouseNode;
use crate::Topology;

/// Environment variable the server reads the cluster password from (`from_env`), so the rendered
/// files never hold it in plain text.
pub const PASSWORD_ENV: &str = "CHGATE_CLICKHOUSE_PASSWORD";

/// Environment variable holding the hex SHA-256 of the password, for `users.xml` rendered by
/// [`users_xml_from_env`] (pods: the value comes from a Secret, the ConfigMap holds no hash).
pub const PASSWORD_SHA256_ENV: &str = "CHGATE_CLICKHOUSE_PASSWORD_SHA256";

/// Config root element: `<yandex>` for 18.x servers, `<clickhouse>` for 22.x and later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigRoot {
    /// `<yandex>`, understood by every version (18.16 knows only this one).
    Yandex,
    /// `<clickhouse>`, the modern spelling.
    ClickHouse,
}

impl ConfigRoot {
    fn tag(self) -> &'static str {
        match self {
            ConfigRoot::Yandex => "yandex",
            ConfigRoot::ClickHouse => "clickhouse",
        }
    }
}

/// Inputs that are not in the topology: where the node keeps its files and how it is addressed.
#[derive(Debug, Clone, Copy)]
pub struct NodeContext<'a> {
    /// Directory for data/, tmp/, log/ of this node.
    pub dir: &'a Path,
    /// Local rig or pods.
    pub addressing: Addressing,
    /// Root element.
    pub root: ConfigRoot,
}

/// Renders `config.xml` for `node`.
pub fn config_xml(t: &Topology, node: &ClickHouseNode, cx: NodeContext<'_>) -> String {
    let (http, tcp, interserver) = cx.addressing.clickhouse_ports(node);
    let dir = cx.dir.display().to_string();
    let mut x = String::new();
    let _ = writeln!(
        x,
        "<?xml version=\"1.0\"?>\n<!-- rendered by chgate from the topology; do not edit -->"
    );
    let _ = writeln!(x, "<{}>", cx.root.tag());
    let _ = writeln!(
        x,
        "  <logger>\n    <level>information</level>\n    <log>{d}/log/clickhouse-server.log</log>\n    \
         <errorlog>{d}/log/clickhouse-server.err.log</errorlog>\n    <size>100M</size>\n    <count>3</count>\n  </logger>",
        d = xml_escape(&dir)
    );
    let _ = writeln!(
        x,
        "  <listen_host>{}</listen_host>",
        xml_escape(&cx.addressing.bind(t))
    );
    let _ = writeln!(
        x,
        "  <http_port>{http}</http_port>\n  <tcp_port>{tcp}</tcp_port>"
    );
    let _ = writeln!(
        x,
        "  <interserver_http_port>{interserver}</interserver_http_port>"
    );
    x.push_str(&https(t, node, cx.addressing));
    let host = cx.addressing.host(t, &node.name);
    let _ = writeln!(
        x,
        "  <interserver_http_host>{}</interserver_http_host>",
        xml_escape(&host)
    );
    let _ = writeln!(
        x,
        "  <path>{d}/data/</path>\n  <tmp_path>{d}/tmp/</tmp_path>\n  <user_files_path>{d}/user_files/</user_files_path>\n  \
         <format_schema_path>{d}/format_schemas/</format_schema_path>",
        d = xml_escape(&dir)
    );
    x.push_str(
        "  <users_config>users.xml</users_config>\n  <default_profile>default</default_profile>\n  \
         <default_database>default</default_database>\n  <timezone>UTC</timezone>\n  \
         <max_connections>1024</max_connections>\n  <keep_alive_timeout>10</keep_alive_timeout>\n  \
         <max_concurrent_queries>100</max_concurrent_queries>\n  \
         <mark_cache_size>67108864</mark_cache_size>\n  <uncompressed_cache_size>0</uncompressed_cache_size>\n",
    );
    x.push_str(&remote_servers(t, cx.addressing));
    x.push_str(&zookeeper(t, cx.addressing));
    let _ = writeln!(
        x,
        "  <macros>\n    <cluster>{}</cluster>\n    <shard>{}</shard>\n    <replica>{}</replica>\n  </macros>",
        xml_escape(&t.cluster.name),
        node.shard,
        xml_escape(&node.name)
    );
    let _ = writeln!(
        x,
        "  <distributed_ddl>\n    <path>{}</path>\n  </distributed_ddl>",
        xml_escape(&t.clickhouse.ddl_queue_path)
    );
    let _ = writeln!(x, "</{}>", cx.root.tag());
    x
}

/// Container HTTPS port of ClickHouse with [`Addressing::Pods`].
pub const POD_HTTPS_PORT: u16 = 8443;
/// Where pods mount the `[tls]` files (a Kubernetes TLS Secret: `ca.crt`, `tls.crt`, `tls.key`).
pub const POD_TLS_DIR: &str = "/etc/chgate/tls";

/// `<https_port>` and the `<openSSL><server>` certificate config when the topology has `[tls]`
/// (ClickHouse 18.16 serves HTTPS from this as modern versions do). Only file paths are
/// rendered, never key material.
fn https(t: &Topology, node: &ClickHouseNode, a: Addressing) -> String {
    let Some(tls) = &t.tls else {
        return String::new();
    };
    let (port, cert, key) = match a {
        Addressing::Local => (
            node.https_port.unwrap_or(POD_HTTPS_PORT),
            tls.cert.display().to_string(),
            tls.key.display().to_string(),
        ),
        Addressing::Pods => (
            POD_HTTPS_PORT,
            format!("{POD_TLS_DIR}/tls.crt"),
            format!("{POD_TLS_DIR}/tls.key"),
        ),
    };
    format!(
        "  <https_port>{port}</https_port>\n  <openSSL>\n    <server>\n      \
         <certificateFile>{}</certificateFile>\n      <privateKeyFile>{}</privateKeyFile>\n      \
         <verificationMode>none</verificationMode>\n      <loadDefaultCAFile>false</loadDefaultCAFile>\n      \
         <cacheSessions>true</cacheSessions>\n      <disableProtocols>sslv2,sslv3</disableProtocols>\n      \
         <preferServerCiphers>true</preferServerCiphers>\n    </server>\n  </openSSL>\n",
        xml_escape(&cert),
        xml_escape(&key)
    )
}

/// `<remote_servers>`: one cluster, every shard with `internal_replication` so the Distributed
/// table writes each block to one replica and replication does the rest.
fn remote_servers(t: &Topology, a: Addressing) -> String {
    let mut x = format!(
        "  <remote_servers>\n    <{}>\n",
        xml_escape(&t.cluster.name)
    );
    let nodes = t.clickhouse_nodes();
    for shard in 1..=t.cluster.shards {
        x.push_str("      <shard>\n        <internal_replication>true</internal_replication>\n");
        for n in nodes.iter().filter(|n| n.shard == shard) {
            let _ = writeln!(
                x,
                "        <replica><host>{}</host><port>{}</port><user>{}</user><password from_env=\"{PASSWORD_ENV}\"/></replica>",
                xml_escape(&a.host(t, &n.name)),
                a.clickhouse_ports(n).1,
                xml_escape(&t.clickhouse.user)
            );
        }
        x.push_str("      </shard>\n");
    }
    let _ = writeln!(
        x,
        "    </{}>\n  </remote_servers>",
        xml_escape(&t.cluster.name)
    );
    x
}

fn zookeeper(t: &Topology, a: Addressing) -> String {
    let mut x = String::from("  <zookeeper>\n");
    for k in t.keeper_nodes() {
        let _ = writeln!(
            x,
            "    <node index=\"{}\"><host>{}</host><port>{}</port></node>",
            k.id,
            xml_escape(&a.host(t, &k.name)),
            a.keeper_ports(&k).0
        );
    }
    let _ = writeln!(
        x,
        "    <session_timeout_ms>{}</session_timeout_ms>\n  </zookeeper>",
        t.keeper.session_timeout_ms
    );
    x
}

/// Renders `users.xml`: the chgate account (SHA-256 of its password, loopback/cluster networks
/// only) and a `default` account that is locked to the same password, never open.
pub fn users_xml(
    t: &Topology,
    password_sha256_hex: &str,
    a: Addressing,
    root: ConfigRoot,
) -> String {
    let element = format!("<password_sha256_hex>{password_sha256_hex}</password_sha256_hex>");
    users_xml_with(t, &element, a, root)
}

/// Renders `users.xml` like [`users_xml`], but the password hash is read by the server from the
/// environment variable [`PASSWORD_SHA256_ENV`] (`from_env`), so the file holds no credential.
pub fn users_xml_from_env(t: &Topology, a: Addressing, root: ConfigRoot) -> String {
    let element = format!("<password_sha256_hex from_env=\"{PASSWORD_SHA256_ENV}\"/>");
    users_xml_with(t, &element, a, root)
}

fn users_xml_with(t: &Topology, password_element: &str, a: Addressing, root: ConfigRoot) -> String {
    let networks = match a {
        Addressing::Local => "<ip>127.0.0.0/8</ip><ip>::1</ip>",
        Addressing::Pods => "<ip>::/0</ip>",
    };
    let user = |name: &str| {
        format!(
            "    <{n}>\n      {password_element}\n      \
             <networks>{networks}</networks>\n      <profile>default</profile>\n      <quota>default</quota>\n    </{n}>\n",
            n = xml_escape(name)
        )
    };
    let mut x = format!(
        "<?xml version=\"1.0\"?>\n<!-- rendered by chgate from the topology; do not edit -->\n<{r}>\n  <profiles>\n    \
         <default>\n      <max_memory_usage>4000000000</max_memory_usage>\n      <load_balancing>in_order</load_balancing>\n    \
         </default>\n  </profiles>\n  <users>\n",
        r = root.tag()
    );
    x.push_str(&user(&t.clickhouse.user));
    if t.clickhouse.user != "default" {
        x.push_str(&user("default"));
    }
    let _ = write!(
        x,
        "  </users>\n  <quotas>\n    <default></default>\n  </quotas>\n</{}>\n",
        root.tag()
    );
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_first() -> String {
        let t = Topology::default();
        let n = &t.clickhouse_nodes()[2];
        let cx = NodeContext {
            dir: Path::new("/s/ch-s2r1"),
            addressing: Addressing::Local,
            root: ConfigRoot::Yandex,
        };
        config_xml(&t, n, cx)
    }

    #[test]
    fn tls_adds_https_port_and_certificate_paths_only_when_configured() {
        assert!(!render_first().contains("https_port"));
        let t = Topology {
            tls: Some(crate::model::TlsSection {
                ca: "/s/tls/ca.crt".into(),
                cert: "/s/tls/server.crt".into(),
                key: "/s/tls/server.key".into(),
                clickhouse_https_port: None,
                haproxy_gateway_port: None,
            }),
            ..Topology::default()
        };
        let n = &t.clickhouse_nodes()[2];
        assert_eq!(n.https_port, Some(18000 + 1201 + 2));
        let local = NodeContext {
            dir: Path::new("/s/ch-s2r1"),
            addressing: Addressing::Local,
            root: ConfigRoot::Yandex,
        };
        let x = config_xml(&t, n, local);
        assert!(x.contains("<https_port>19203</https_port>"), "{x}");
        assert!(x.contains("<certificateFile>/s/tls/server.crt</certificateFile>"));
        assert!(x.contains("<privateKeyFile>/s/tls/server.key</privateKeyFile>"));
        assert!(!x.contains("PRIVATE KEY"), "paths only, never key material");
        let pods = config_xml(
            &t,
            n,
            NodeContext {
                addressing: Addressing::Pods,
                ..local
            },
        );
        assert!(pods.contains("<https_port>8443</https_port>"));
        assert!(pods.contains("/etc/chgate/tls/tls.key"));
    }

    #[test]
    fn config_has_macros_cluster_and_keeper() {
        let x = render_first();
        assert!(x.contains("<yandex>") && x.ends_with("</yandex>\n"));
        assert!(x.contains("<shard>2</shard>") && x.contains("<replica>ch-s2r1</replica>"));
        assert!(x.contains("<cluster>chgate</cluster>"));
        assert_eq!(
            x.matches("<internal_replication>true</internal_replication>")
                .count(),
            2
        );
        assert_eq!(x.matches("<replica><host>127.0.0.1</host>").count(), 4);
        assert_eq!(x.matches("<node index=").count(), 3);
        assert!(x.contains("<http_port>18123</http_port>"));
        assert!(x.contains("<path>/clickhouse/task_queue/ddl</path>"));
    }

    #[test]
    fn config_never_holds_the_password() {
        let x = render_first();
        assert!(x.contains(&format!("from_env=\"{PASSWORD_ENV}\"")));
        assert!(!x.contains("<password>"));
    }

    #[test]
    fn users_store_only_the_hash_and_lock_default() {
        let x = users_xml(
            &Topology::default(),
            "ab12",
            Addressing::Local,
            ConfigRoot::Yandex,
        );
        assert_eq!(
            x.matches("<password_sha256_hex>ab12</password_sha256_hex>")
                .count(),
            2
        );
        assert!(x.contains("<default>\n      <password_sha256_hex>"));
        assert!(!x.contains("<password>"));
    }

    #[test]
    fn users_from_env_hold_no_hash() {
        let t = Topology::default();
        let x = users_xml_from_env(&t, Addressing::Pods, ConfigRoot::Yandex);
        let want = format!("<password_sha256_hex from_env=\"{PASSWORD_SHA256_ENV}\"/>");
        assert_eq!(x.matches(&want).count(), 2, "{x}");
        assert!(x.contains("<ip>::/0</ip>"));
        assert_eq!(
            users_xml(&t, "ab", Addressing::Local, ConfigRoot::Yandex),
            users_xml_with(
                &t,
                "<password_sha256_hex>ab</password_sha256_hex>",
                Addressing::Local,
                ConfigRoot::Yandex
            )
        );
    }

    #[test]
    fn pods_use_names_and_standard_ports() {
        let t = Topology::default();
        let n = &t.clickhouse_nodes()[0];
        let cx = NodeContext {
            dir: Path::new("/var/lib/clickhouse"),
            addressing: Addressing::Pods,
            root: ConfigRoot::ClickHouse,
        };
        let x = config_xml(&t, n, cx);
        assert!(x.contains("<host>ch-s2r2</host><port>9000</port>"));
        assert!(x.contains("<host>keeper-3</host><port>9181</port>"));
        assert!(x.starts_with("<?xml") && x.contains("<clickhouse>"));
    }
}
