//! HAProxy config: a gateway frontend (health checks on `/readyz`), a Grafana frontend (checks on
//! `/api/health`) and the stats page. Validate the result with `haproxy -c -f`.

use std::fmt::Write as _;

use super::Addressing;
use crate::Topology;

/// Container port of a gateway in pods.
pub const POD_GATEWAY_PORT: u16 = 8428;
/// Container port of Grafana in pods.
pub const POD_GRAFANA_PORT: u16 = 3000;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
