//! Prometheus 2.42 (Debian's package) configured with `remote_write` to the gateway lands its own
//! series: the real client, not a captured body.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chgate_gateway::encode::Format;
use chgate_gateway::writer::WriteMode;
use chgate_harness::rig;

use crate::support::{count, gateway, migrated_db};

/// Kills the Prometheus child when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_lands_its_own_series() {
    let rig = rig().await;
    let db = migrated_db(rig, "gw_promreal");
    let gw = gateway(rig, &db, WriteMode::ShardAware, Format::Native).await;
    let dir = tempfile::tempdir().expect("tmp");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    probe: {db}\n\
         scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
         remote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n",
        gw.url
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
    let child = Command::new("/usr/bin/prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start /usr/bin/prometheus (Debian package prometheus)");
    let _child = Child(child);
    let sql = format!("SELECT count() FROM {db}.samples WHERE metric = 'prometheus_build_info'");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if count(rig, 0, &sql).await > 0 {
            break;
        }
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "no prometheus_build_info from Prometheus in 90s; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let labelled = format!(
        "SELECT count() FROM {db}.series WHERE metric = 'up' AND label_values[indexOf(label_names, 'probe')] = '{db}' \
         AND label_values[indexOf(label_names, 'job')] = 'self'"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(rig, 0, &labelled).await == 0 {
        assert!(
            Instant::now() < deadline,
            "series `up` with Prometheus's labels did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    gw.shutdown().await;
}
