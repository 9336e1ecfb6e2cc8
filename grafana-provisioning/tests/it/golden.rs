//! Golden files for the rendered provisioning tree, plus checks by the real consumers' parsers
//! (PyYAML for the YAML, `haproxy -c` for the HAProxy config). `UPDATE_GOLDEN=1` rewrites them.

use std::path::{Path, PathBuf};
use std::process::Command;

use chgate_grafana::render::{render_all, write_all, IniSettings, RenderedFile};
use chgate_grafana::DatasourceSpec;
use chgate_topology::render::{haproxy::haproxy_cfg, Addressing};
use chgate_topology::{Secret, Topology};

use crate::common::crate_dir;

fn render(a: Addressing, s: &IniSettings) -> Vec<RenderedFile> {
    let t = Topology::default();
    // The password value never reaches a file; a sentinel proves it.
    let spec = DatasourceSpec::from_topology(&t, a, Secret::new("SENTINEL-PASSWORD"));
    render_all(&t, &spec, s)
}

fn local_settings() -> IniSettings {
    IniSettings {
        addressing: Addressing::Local,
        provisioning_dir: PathBuf::from("/srv/chgate/grafana-provisioning"),
        secrets_dir: PathBuf::from("/srv/chgate/.chgate"),
    }
}

/// Compares `files` with the tree under `dir` (or rewrites it with `UPDATE_GOLDEN=1`).
fn assert_golden(dir: &Path, files: &[RenderedFile]) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        write_all(dir, files).expect("update golden files");
        return;
    }
    for f in files {
        let path = dir.join(&f.path);
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        assert_eq!(
            f.contents,
            want,
            "{} differs from its render",
            path.display()
        );
        assert!(
            !f.contents.contains("SENTINEL-PASSWORD"),
            "{}",
            path.display()
        );
    }
}

#[test]
fn committed_provisioning_files_are_the_pods_render_of_the_default_topology() {
    // grafana-provisioning/{datasources,dashboards,instances} are generated, never hand-edited.
    assert_golden(
        &crate_dir(),
        &render(Addressing::Pods, &IniSettings::pods()),
    );
}

#[test]
fn local_render_matches_its_golden_files() {
    let dir = crate_dir().join("tests/golden/local");
    assert_golden(&dir, &render(Addressing::Local, &local_settings()));
}

#[test]
fn rendered_yaml_and_ini_parse_into_what_grafana_reads() {
    let files = render(Addressing::Pods, &IniSettings::pods());
    let dir = tempfile::tempdir().expect("tmp");
    write_all(dir.path(), &files).expect("write");
    let script = r#"
import json, sys, yaml
ds = yaml.safe_load(open(sys.argv[1]))
pr = yaml.safe_load(open(sys.argv[2]))
d = ds["datasources"][0]
assert ds["apiVersion"] == 1, ds
assert d["uid"] == "chgate-clickhouse" and d["version"] == 1 and d["editable"] is False, d
assert d["type"] == "grafana-clickhouse-datasource", d
assert d["jsonData"]["port"] == 9000 and d["jsonData"]["protocol"] == "native", d
assert d["secureJsonData"]["password"] == "$__env{CHGATE_CLICKHOUSE_PASSWORD}", d
p = pr["providers"][0]
assert pr["apiVersion"] == 1 and p["type"] == "file", pr
assert p["options"]["path"] == "/etc/grafana/provisioning/dashboards", p
import configparser
ini = configparser.ConfigParser(interpolation=None)
ini.read_string(open(sys.argv[3]).read())
assert ini["database"]["type"] == "postgres", dict(ini["database"])
assert ini["remote_cache"]["type"] == "database"
assert ini["security"]["secret_key"].startswith("$__file{"), dict(ini["security"])
assert len(ini["unified_alerting"]["ha_peers"].split(",")) == 3
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir.path().join("datasources/chgate-clickhouse.yaml"))
        .arg(dir.path().join("dashboards/chgate.yaml"))
        .arg(dir.path().join("instances/grafana-1.ini"))
        .output()
        .expect("python3 with PyYAML");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn haproxy_accepts_the_rendered_config_with_the_grafana_frontend() {
    let t = Topology::default();
    for a in [Addressing::Local, Addressing::Pods] {
        let cfg = haproxy_cfg(&t, a);
        assert!(cfg.contains("option httpchk GET /api/health"));
        assert_eq!(cfg.matches("server grafana-").count(), t.grafanas().len());
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, &cfg).expect("write");
        let out = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("haproxy is installed");
        // Pod host names do not resolve here; `-c` still parses everything before resolving.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = out.status.success()
            || (a == Addressing::Pods && stderr.contains("could not resolve address"));
        assert!(ok, "haproxy -c rejected the {a:?} config:\n{stderr}\n{cfg}");
    }
}
