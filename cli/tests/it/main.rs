//! The `chgate` binary as a user runs it: topology errors name the field, help teaches.

use std::process::Command;

fn chgate(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chgate"))
        .args(args)
        .output()
        .expect("runs chgate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn with_topology(text: &str, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("chgate.toml");
    std::fs::write(&path, text).expect("write");
    let mut all = vec!["--config", path.to_str().expect("utf8 path")];
    all.extend_from_slice(args);
    chgate(&all)
}

#[test]
fn zero_replicas_is_rejected_naming_the_field() {
    let (ok, out) = with_topology("[cluster]\nreplicas = 0\n", &["topology"]);
    assert!(!ok, "must fail: {out}");
    assert!(out.contains("cluster.replicas"), "{out}");
}

#[test]
fn port_clash_is_rejected_naming_both_fields() {
    let (ok, out) = with_topology("[postgres]\nport = 18404\n", &["local", "status"]);
    assert!(!ok, "must fail: {out}");
    assert!(
        out.contains("postgres.port") && out.contains("haproxy.stats_port"),
        "{out}"
    );
}

#[test]
fn inline_secret_is_rejected_without_echoing_it() {
    let (ok, out) = with_topology("[clickhouse]\npassword = \"hunter2\"\n", &["topology"]);
    assert!(
        !ok && out.contains("inline secrets are not allowed"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
}

#[test]
fn the_shipped_example_prints_the_default_layout() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../chgate.toml");
    let (ok, out) = chgate(&["--config", example, "topology"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("ch-s2r2") && out.contains("http 18124"),
        "{out}"
    );
}

#[test]
fn local_help_lists_every_subcommand() {
    let (ok, out) = chgate(&["local", "--help"]);
    assert!(ok, "{out}");
    for sub in ["up", "down", "status", "logs", "stop", "start"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(sub)),
            "missing {sub}: {out}"
        );
    }
}
