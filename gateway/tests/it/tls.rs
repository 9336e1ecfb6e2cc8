//! TLS on the gateway listener: rows sent over HTTPS land; plain HTTP to it does not work.

use std::process::Command;
use std::time::Duration;

use chgate_gateway::config::{GatewayConfig, TlsConfig};
use chgate_harness::rig;

use crate::support::{migrated_db, per_shard_counts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_takes_rows_with_a_certificate_the_client_trusts() {
    let rig = rig().await;
    let db = migrated_db(rig, "gw_tls");
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = (dir.path().join("gw.crt"), dir.path().join("gw.key"));
    // A throwaway CA and a leaf for 127.0.0.1 signed by it (webpki refuses a self-signed leaf).
    let p = |name: &str| dir.path().join(name);
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    let steps: [Vec<String>; 3] = [
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=chgate-test-ca -keyout ca.key -out ca.crt".split(' ').map(String::from).collect(),
        "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout gw.key -out gw.csr".split(' ').map(String::from).collect(),
        "x509 -req -in gw.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out gw.crt -extfile ext.cnf".split(' ').map(String::from).collect(),
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let cfg = GatewayConfig {
        database: Some(db.clone()),
        tls: Some(TlsConfig {
            cert: cert.clone(),
            key,
        }),
        ..GatewayConfig::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (topology, password) = (rig.topology().clone(), rig.clickhouse_password());
    let server = tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        chgate_gateway::run::serve_on(listener, cfg, &topology, &password, stop).await
    });
    let ca = reqwest::Certificate::from_pem(&std::fs::read(p("ca.crt")).expect("ca")).expect("pem");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let body = "tls_probe,host=a value=1 1700000000\ntls_probe,host=b value=2 1700000000\n";
    let resp = client
        .post(format!("https://127.0.0.1:{port}/write?precision=s"))
        .body(body)
        .send()
        .await
        .expect("https post");
    assert_eq!(
        resp.status(),
        204,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    assert_eq!(
        per_shard_counts(rig, &format!("{db}.samples_local"), "1")
            .await
            .iter()
            .sum::<u64>(),
        2
    );
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served"
    );
    let _ = tx.send(());
    server.await.expect("join").expect("gateway ran");
}

/// A throwaway CA and a leaf for 127.0.0.1 signed by it (rcgen): (CA PEM, leaf PEM, leaf key PEM).
fn test_ca() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "chgate test CA");
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).expect("leaf");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
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
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = test_ca();
    for (name, pem) in [("ca.crt", &ca), ("gw.crt", &cert), ("gw.key", &key)] {
        std::fs::write(dir.path().join(name), pem).expect("write");
    }
    let start = |topology: chgate_topology::Topology| {
        let dir = dir.path().to_owned();
        let db = db.clone();
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let mut cfg = GatewayConfig {
                database: Some(db),
                insert_attempts: 2,
                tls: Some(TlsConfig {
                    cert: dir.join("gw.crt"),
                    key: dir.join("gw.key"),
                }),
                ..GatewayConfig::default()
            };
            cfg.batch.max_age = Duration::from_millis(50);
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let password = rig.clickhouse_password();
            let task = tokio::spawn(async move {
                let stop = async {
                    let _ = rx.await;
                };
                chgate_gateway::run::serve_on(listener, cfg, &topology, &password, stop).await
            });
            (port, tx, task)
        }
    };
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("pem"))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");

    // 1. HTTPS client -> gateway (rustls, test CA) -> ClickHouse over HTTPS only (rig CA).
    let (port, stop, task) = start(https_only(rig.topology())).await;
    let resp = client
        .post(format!("https://127.0.0.1:{port}/write?precision=s"))
        .body("tls_e2e,host=a value=1 1700000000\ntls_e2e,host=b value=2 1700000000\n")
        .send()
        .await
        .expect("https post");
    assert_eq!(
        resp.status(),
        204,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let _ = stop.send(());
    task.await.expect("join").expect("gateway ran");
    let rows = |m: &'static str| {
        let db = db.clone();
        async move {
            per_shard_counts(
                rig,
                &format!("{db}.samples_local"),
                &format!("metric = '{m}'"),
            )
            .await
            .iter()
            .sum::<u64>()
        }
    };
    assert_eq!(rows("tls_e2e").await, 2);

    // 2. The gateway verifies ClickHouse's certificate: trusting another CA, nothing is written.
    let mut wrong = https_only(rig.topology());
    let mut tls = rig_tls.clone();
    tls.ca = dir.path().join("ca.crt");
    wrong.tls = Some(tls);
    let (port, stop, task) = start(wrong).await;
    let resp = client
        .post(format!("https://127.0.0.1:{port}/write?precision=s"))
        .body("tls_wrong_ca,host=a value=1 1700000000\n")
        .send()
        .await
        .expect("https post");
    assert!(
        resp.status().is_server_error(),
        "an untrusted ClickHouse certificate must fail the insert, got {}",
        resp.status()
    );
    let _ = stop.send(());
    let _ = task.await;
    assert_eq!(rows("tls_wrong_ca").await, 0);
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
    let ca = std::fs::read(&tls.ca).expect("rig CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let metric = rig.unique_name("haproxy_tls");
    let resp = client
        .post(format!("https://127.0.0.1:{port}/write?precision=s"))
        .body(format!(
            "{metric},host=a value=1 1700000000\n{metric},host=b value=2 1700000000\n"
        ))
        .send()
        .await
        .expect("https post through HAProxy");
    assert_eq!(
        resp.status(),
        204,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let n: u64 = per_shard_counts(
        rig,
        &format!("{db}.samples_local"),
        &format!("metric = '{metric}'"),
    )
    .await
    .iter()
    .sum();
    assert_eq!(n, 2);
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
