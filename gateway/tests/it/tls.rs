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
