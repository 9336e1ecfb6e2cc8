//! HAProxy config: a gateway frontend (health checks on `/readyz`), a Grafana frontend (checks on
//! `/api/health`) and the stats page. Validate the result with `haproxy -c -f`.

use std::fmt::Write as _;

use super::Addressing;
use crate::Topology;

/// Container port of a gateway in pods.
pub const POD_GATEWAY_PORT: u16 = 8428;
/// Container port of Grafana in pods.
pub const POD_GRAFANA_PORT: u16 = 3000;

/// Pods come and go with new addresses: resolve server names through the pod's DNS at run time,
/// and start even while a server's pod does not exist yet (Grafana pods are skipped offline).
const POD_RESOLVERS: &str =
    "resolvers pods\n    parse-resolv-conf\n    hold valid 5s\n    hold nx 5s\n\n";
const POD_DEFAULT_SERVER: &str = "    default-server init-addr last,libc,none resolvers pods\n";

/// One frontend and its health-checked backend.
struct Front {
    name: &'static str,
    port: u16,
    balance: &'static str,
    check: &'static str,
}

fn front<'a>(
    c: &mut String,
    bind: &str,
    f: &Front,
    servers: impl Iterator<Item = (&'a crate::Instance, u16)>,
    t: &Topology,
    a: Addressing,
) {
    let _ = write!(
        c,
        "frontend {n}\n    bind {bind}:{}\n    default_backend {n}s\n\n\
         backend {n}s\n    balance {}\n    option httpchk GET {}\n    http-check expect status 200\n",
        f.port,
        f.balance,
        f.check,
        n = f.name
    );
    if a == Addressing::Pods {
        c.push_str(POD_DEFAULT_SERVER);
    }
    for (inst, port) in servers {
        let _ = writeln!(
            c,
            "    server {} {}:{port} check inter 2s fall 2 rise 2",
            inst.name,
            a.host(t, &inst.name)
        );
    }
    c.push('\n');
}

/// Renders `haproxy.cfg`.
pub fn haproxy_cfg(t: &Topology, a: Addressing) -> String {
    let bind = a.bind(t);
    let mut c = String::from("# rendered by chgate from the topology; do not edit\n");
    c.push_str(
        "global\n    maxconn 4096\n    log stderr format short local0 info\n\n\
         defaults\n    mode http\n    log global\n    option dontlognull\n    timeout connect 3s\n    \
         timeout client 60s\n    timeout server 60s\n    timeout http-request 30s\n    retries 2\n    \
         option redispatch\n\n",
    );
    if a == Addressing::Pods {
        c.push_str(POD_RESOLVERS);
    }
    let _ = write!(
        c,
        "frontend stats\n    bind {bind}:{}\n    no log\n    stats enable\n    stats uri /\n    stats refresh 5s\n    \
         stats show-legends\n\n",
        t.haproxy_stats_port()
    );
    let gateway = Front {
        name: "gateway",
        port: t.haproxy_gateway_port(),
        balance: "leastconn",
        check: "/readyz",
    };
    front(
        &mut c,
        &bind,
        &gateway,
        t.gateways()
            .iter()
            .map(|g| (g, a.instance_port(g, POD_GATEWAY_PORT))),
        t,
        a,
    );
    if let (Some(tls), Some(port)) = (&t.tls, t.haproxy_gateway_tls_port()) {
        // TLS terminated here, to the same gateway backend as the plain front.
        let pem = match a {
            Addressing::Local => tls.haproxy_pem().display().to_string(),
            Addressing::Pods => format!("{}/haproxy.pem", super::clickhouse::POD_TLS_DIR),
        };
        let _ = write!(
            c,
            "frontend gateway_tls\n    bind {bind}:{port} ssl crt {pem}\n    default_backend gateways\n\n"
        );
    }
    let grafana = Front {
        name: "grafana",
        port: t.haproxy_grafana_port(),
        balance: "roundrobin",
        check: "/api/health",
    };
    front(
        &mut c,
        &bind,
        &grafana,
        t.grafanas()
            .iter()
            .map(|g| (g, a.instance_port(g, POD_GRAFANA_PORT))),
        t,
        a,
    );
    c
}

/// Renders the ambassador HAProxy that runs beside a gateway in its pod (TCP mode): the gateway
/// keeps to loopback (it refuses a plain-HTTP non-loopback listener) and reads the same topology
/// as on the local rig, so the ambassador maps the topology's loopback ports of every ClickHouse
/// node to that node's pod, and publishes the gateway on the pod port [`POD_GATEWAY_PORT`].
pub fn gateway_ambassador_cfg(t: &Topology, gateway: &crate::Instance) -> String {
    let a = Addressing::Pods;
    let listen = t.network.listen;
    let mut c = String::from("# rendered by chgate from the topology; do not edit\n");
    c.push_str(
        "global\n    maxconn 4096\n    log stderr format short local0 warning\n\n\
         defaults\n    mode tcp\n    log global\n    timeout connect 3s\n    timeout client 120s\n    \
         timeout server 120s\n\n",
    );
    c.push_str(POD_RESOLVERS);
    let _ = write!(
        c,
        "listen gateway\n    bind {}:{POD_GATEWAY_PORT}\n    server {} {listen}:{}\n\n",
        a.bind(t),
        gateway.name,
        gateway.port
    );
    for n in t.clickhouse_nodes() {
        let _ = write!(
            c,
            "listen {name}\n    bind {listen}:{port}\n    server {name} {name}:{pod_port} init-addr last,libc,none resolvers pods\n\n",
            name = n.name,
            port = n.http_port,
            pod_port = a.clickhouse_ports(&n).0
        );
        if let Some(https) = n.https_port {
            // With [tls] the gateway talks HTTPS to ClickHouse; TCP mode passes it through.
            let _ = write!(
                c,
                "listen {name}-https\n    bind {listen}:{https}\n    server {name} {name}:{pod_port} init-addr last,libc,none resolvers pods\n\n",
                name = n.name,
                pod_port = super::clickhouse::POD_HTTPS_PORT
            );
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_adds_an_https_gateway_front_only_with_tls() {
        let plain = haproxy_cfg(&Topology::default(), Addressing::Local);
        assert!(!plain.contains("ssl crt"));
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
        let c = haproxy_cfg(&t, Addressing::Local);
        assert!(
            c.contains("frontend gateway_tls\n    bind 127.0.0.1:18443 ssl crt /s/tls/haproxy.pem\n    default_backend gateways"),
            "{c}"
        );
        assert!(c.contains("frontend gateway\n"), "the plain front stays");
    }

    #[test]
    fn both_frontends_have_health_checked_servers() {
        let c = haproxy_cfg(&Topology::default(), Addressing::Local);
        assert!(c.contains("bind 127.0.0.1:18428") && c.contains("bind 127.0.0.1:18300"));
        assert!(
            c.contains("option httpchk GET /readyz")
                && c.contains("option httpchk GET /api/health")
        );
        assert_eq!(c.matches("server gateway-").count(), 2);
        assert_eq!(c.matches("server grafana-").count(), 3);
        assert!(c.contains("bind 127.0.0.1:18404\n    no log\n    stats enable"));
        assert!(!c.contains("resolvers"), "local rig resolves nothing");
    }

    #[test]
    fn pods_resolve_servers_at_run_time() {
        let c = haproxy_cfg(&Topology::default(), Addressing::Pods);
        assert!(c.contains("resolvers pods\n    parse-resolv-conf"));
        assert_eq!(c.matches("default-server init-addr").count(), 2);
        assert!(c.contains("server gateway-2 gateway-2:8428 check"));
        assert!(c.contains("bind 0.0.0.0:18428"));
    }

    #[test]
    fn ambassador_maps_topology_ports_to_pods() {
        let t = Topology::default();
        let g = &t.gateways()[1];
        let c = gateway_ambassador_cfg(&t, g);
        assert!(c.contains("bind 0.0.0.0:8428\n    server gateway-2 127.0.0.1:18442"));
        assert!(c.contains("bind 127.0.0.1:18124\n    server ch-s2r2 ch-s2r2:8123"));
        assert_eq!(c.matches("listen ch-").count(), 4);
    }
}
