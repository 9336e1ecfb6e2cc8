//! `[tls]` is not deployable to pods yet (the pods would not get the CA, certificate and key):
//! `deploy::up` refuses such a topology before touching podman, with an error that names the
//! limitation and the files by path — never their contents.

use chgate_podman::deploy::{self, Settings};
use chgate_podman::{DeployError, Images};
use chgate_topology::model::TlsSection;
use chgate_topology::LoadedTopology;

const KEY_MARKER: &str = "-----BEGIN PRIVATE KEY-----\nTEST-KEY-MATERIAL";

fn tls_topology(dir: &std::path::Path) -> LoadedTopology {
    let file = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).expect("write tls file");
        p
    };
    let mut topology = crate::topology();
    topology.tls = Some(TlsSection {
        ca: file("ca.crt", "-----BEGIN CERTIFICATE-----\nCA"),
        cert: file("server.crt", "-----BEGIN CERTIFICATE-----\nSERVER"),
        key: file("server.key", KEY_MARKER),
        clickhouse_https_port: None,
        haproxy_gateway_port: None,
    });
    LoadedTopology {
        topology,
        state_dir: dir.to_owned(),
    }
}

#[test]
fn up_refuses_tls_before_touching_podman() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tls_topology(dir.path());
    // An image that does not exist: were `up` to get past the TLS check, it would fail on the
    // image (or on podman) instead of with `Unsupported`.
    let mut images = Images::local();
    images
        .set("clickhouse", "localhost/chgate-test-no-such-image:0")
        .expect("role");
    let settings = Settings::new(images);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let progress_lines = std::sync::Mutex::new(Vec::<String>::new());
    let progress = |l: &str| progress_lines.lock().expect("lock").push(l.to_owned());
    let err = rt
        .block_on(deploy::up(&loaded, &settings, &progress))
        .expect_err("a [tls] topology must be refused");
    assert!(
        matches!(&err, DeployError::Unsupported { feature, .. } if feature == "[tls]"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("chgate deploy does not support [tls]"),
        "{msg}"
    );
    assert!(
        msg.contains("server.key") && msg.contains("without the [tls] section"),
        "{msg}"
    );
    assert!(
        !msg.contains("TEST-KEY-MATERIAL"),
        "key material in the error: {msg}"
    );
    assert!(
        progress_lines.lock().expect("lock").is_empty(),
        "up did something before refusing"
    );
}

#[test]
fn topologies_without_tls_pass_the_check() {
    deploy::check_supported(&crate::topology()).expect("the default topology is deployable");
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tls_topology(dir.path());
    assert!(deploy::check_supported(&loaded.topology).is_err());
}
