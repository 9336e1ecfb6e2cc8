//! TLS on the gateway listener: rows sent over HTTPS land; plain HTTP to it does not work.

use std::time::Duration;

use chgate_gateway::config::{GatewayConfig, TlsConfig};
use chgate_harness::tls::TestCa;
use chgate_harness::{rig, Rig};
use chgate_topology::Topology;

use crate::support::{migrated_db, samples_with};

/// A gateway serving HTTPS on an ephemeral port until [`HttpsGateway::stop`].
struct HttpsGateway {
    port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), chgate_gateway::run::RunError>>,
}

impl HttpsGateway {
    /// Starts a gateway with `cfg` whose listener serves `pki`'s server certificate, writing to
    /// `topology`'s ClickHouse.
    async fn start(rig: &Rig, topology: Topology, pki: &TestCa, cfg: GatewayConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cfg = GatewayConfig {
            tls: Some(TlsConfig {
                cert: pki.cert(),
                key: pki.key(),
            }),
            ..cfg
        };
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let password = rig.clickhouse_password();
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            chgate_gateway::run::serve_on(listener, cfg, &topology, &password, stop).await
        });
        HttpsGateway { port, stop, task }
    }

    /// Posts two Influx lines of `metric` over HTTPS with `client`.
    async fn write(&self, client: &reqwest::Client, metric: &str) -> reqwest::Response {
        post_two_lines(client, self.port, metric).await
    }

    /// Stops the gateway; panics when it ended with an error.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("gateway ran");
    }
}

/// An HTTPS client trusting only `ca_pem`.
fn https_client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("pem"))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Posts two Influx lines of `metric` to `https://127.0.0.1:port/write`.
async fn post_two_lines(client: &reqwest::Client, port: u16, metric: &str) -> reqwest::Response {
    client
        .post(format!("https://127.0.0.1:{port}/write?precision=s"))
        .body(format!(
            "{metric},host=a value=1 1700000000\n{metric},host=b value=2 1700000000\n"
        ))
        .send()
        .await
        .expect("https post")
}

/// Panics with the body unless the answer is 204.
async fn assert_no_content(resp: reqwest::Response) {
    assert_eq!(
        resp.status(),
        204,
        "{}",
        resp.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_takes_rows_with_a_certificate_the_client_trusts() {
    let rig = rig().await;
    let db = migrated_db(rig, "gw_tls");
    let pki = TestCa::new();
    let cfg = GatewayConfig {
        database: Some(db.clone()),
        ..GatewayConfig::default()
    };
    let gw = HttpsGateway::start(rig, rig.topology().clone(), &pki, cfg).await;
    let client = https_client(pki.ca_pem().as_bytes());
    assert_no_content(gw.write(&client, "tls_probe").await).await;
    assert_eq!(samples_with(rig, &db, "metric", "tls_probe").await, 2);
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", gw.port))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served"
    );
    gw.stop().await;
}

/// The gateway's topology with every ClickHouse HTTP port pointing at a closed port: the only
/// way to reach ClickHouse is the `[tls]` HTTPS port.
fn https_only(t: &chgate_topology::Topology) -> chgate_topology::Topology {
    let mut t = t.clone();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    t.clickhouse.http_port = Some(port);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_end_to_end_client_to_gateway_to_clickhouse_over_https() {
    let rig = rig().await;
    let rig_tls = rig
        .topology()
        .tls
        .clone()
        .expect("the test rig's topology has [tls] (crates/harness/rig.toml)");
    let db = migrated_db(rig, "gw_tls_e2e");
    let pki = TestCa::new();
    let mut cfg = GatewayConfig {
        database: Some(db.clone()),
        insert_attempts: 2,
        ..GatewayConfig::default()
    };
    cfg.batch.max_age = Duration::from_millis(50);
    let client = https_client(pki.ca_pem().as_bytes());

    // 1. HTTPS client -> gateway (rustls, test CA) -> ClickHouse over HTTPS only (rig CA).
    let gw = HttpsGateway::start(rig, https_only(rig.topology()), &pki, cfg.clone()).await;
    assert_no_content(gw.write(&client, "tls_e2e").await).await;
    gw.stop().await;
    assert_eq!(samples_with(rig, &db, "metric", "tls_e2e").await, 2);

    // 2. The gateway verifies ClickHouse's certificate: trusting another CA, nothing is written.
    let mut wrong = https_only(rig.topology());
    let mut tls = rig_tls.clone();
    tls.ca = pki.ca();
    wrong.tls = Some(tls);
    let gw = HttpsGateway::start(rig, wrong, &pki, cfg).await;
    let resp = gw.write(&client, "tls_wrong_ca").await;
    assert!(
        resp.status().is_server_error(),
        "an untrusted ClickHouse certificate must fail the insert, got {}",
        resp.status()
    );
    let _ = gw.stop.send(());
    let _ = gw.task.await;
    assert_eq!(samples_with(rig, &db, "metric", "tls_wrong_ca").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_terminates_tls_in_front_of_the_rigs_gateways() {
    let rig = rig().await;
    let tls = rig.topology().tls.clone().expect("the test rig has [tls]");
    let port = rig
        .topology()
        .haproxy_gateway_tls_port()
        .expect("HAProxy TLS front");
    let db = rig.topology().cluster.database.clone();
    {
        let _ddl = rig.shared().await;
        rig.migrate(&db);
    }
    let client = https_client(&std::fs::read(&tls.ca).expect("rig CA"));
    let metric = rig.unique_name("haproxy_tls");
    assert_no_content(post_two_lines(&client, port, &metric).await).await;
    assert_eq!(samples_with(rig, &db, "metric", &metric).await, 2);
    // Without the CA the certificate is not trusted.
    let untrusted = reqwest::Client::new()
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        untrusted.is_err(),
        "a client without the rig's CA must not connect"
    );
}
