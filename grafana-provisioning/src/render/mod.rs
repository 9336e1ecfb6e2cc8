//! File renderers: the datasource provisioning YAML, the dashboard provider YAML, the starter
//! dashboards and one `grafana.ini` per instance, all from the topology.
//!
//! [`render_all`] returns the files as (relative path, contents); [`write_all`] writes them under
//! an output directory. The HAProxy frontend for the Grafana instances is rendered by
//! `chgate_topology::render::haproxy` (one renderer for the whole `haproxy.cfg`).

pub mod datasource_yaml;
pub mod ini;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chgate_topology::Topology;

use serde_json::Value;

use crate::datasource::{DatasourceSpec, ORG_ID, PLUGIN_TYPE};
use crate::GrafanaError;
pub use ini::IniSettings;

/// The starter dashboards shipped in `grafana-provisioning/dashboards/` (file name, JSON).
pub const DASHBOARDS: &[(&str, &str)] = &[
    (
        "chgate-ingest.json",
        include_str!("../../dashboards/chgate-ingest.json"),
    ),
    (
        "chgate-storage.json",
        include_str!("../../dashboards/chgate-storage.json"),
    ),
    (
        "chgate-keeper.json",
        include_str!("../../dashboards/chgate-keeper.json"),
    ),
];

/// Folder (title and uid) the dashboards are provisioned into.
pub const DASHBOARD_FOLDER: &str = "chgate";

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path relative to the output directory.
    pub path: PathBuf,
    /// Contents.
    pub contents: String,
}

/// Sets a shipped dashboard's datasource uid and its constant variables (`database`, `cluster`,
/// `shards`, `ddl_queue`) from the topology; output is pretty JSON with sorted keys. Text that
/// is not JSON is returned unchanged (the shipped files are checked by tests).
pub fn localize_dashboard(json: &str, t: &Topology, spec: &DatasourceSpec) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(json) else {
        return json.to_owned();
    };
    set_datasource_uid(&mut v, &spec.uid);
    let constants = [
        ("database", t.cluster.database.clone()),
        ("cluster", t.cluster.name.clone()),
        ("shards", t.cluster.shards.to_string()),
        ("ddl_queue", t.clickhouse.ddl_queue_path.clone()),
    ];
    if let Some(list) = v
        .pointer_mut("/templating/list")
        .and_then(Value::as_array_mut)
    {
        for var in list {
            let name = var.get("name").and_then(Value::as_str).unwrap_or_default();
            if let Some((_, value)) = constants.iter().find(|(n, _)| *n == name) {
                var["query"] = Value::from(value.as_str());
                var["current"] = serde_json::json!({ "text": value, "value": value });
            }
        }
    }
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_else(|_| json.to_owned());
    out.push('\n');
    out
}

/// Points every `{ "type": "grafana-clickhouse-datasource", "uid": .. }` reference at `uid`.
fn set_datasource_uid(v: &mut Value, uid: &str) {
    match v {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some(PLUGIN_TYPE)
                && map.contains_key("uid")
            {
                map.insert("uid".into(), Value::from(uid));
            }
            map.values_mut().for_each(|c| set_datasource_uid(c, uid));
        }
        Value::Array(items) => items.iter_mut().for_each(|c| set_datasource_uid(c, uid)),
        _ => {}
    }
}

/// Renders `dashboards/chgate.yaml`: a file provider reading the dashboards next to it.
pub fn dashboard_provider_yaml(provisioning_dir: &Path) -> String {
    let path = provisioning_dir.join("dashboards");
    let mut y = String::from("# rendered by chgate from the topology; do not edit\n");
    y.push_str("apiVersion: 1\n\nproviders:\n");
    let _ = writeln!(y, "  - name: {DASHBOARD_FOLDER:?}");
    let _ = writeln!(y, "    orgId: {ORG_ID}");
    let _ = writeln!(y, "    folder: {DASHBOARD_FOLDER:?}");
    let _ = writeln!(y, "    folderUid: {DASHBOARD_FOLDER:?}");
    y.push_str(
        "    type: file\n    disableDeletion: true\n    allowUiUpdates: false\n    \
         updateIntervalSeconds: 30\n    options:\n",
    );
    let path = serde_json::Value::from(path.to_string_lossy().as_ref()).to_string();
    let _ = writeln!(y, "      path: {path}");
    y.push_str("      foldersFromFilesStructure: false\n");
    y
}

/// Every file of a Grafana deployment: `datasources/<uid>.yaml`, `dashboards/chgate.yaml`, the
/// dashboards, and `instances/grafana-N.ini`.
pub fn render_all(t: &Topology, spec: &DatasourceSpec, s: &IniSettings) -> Vec<RenderedFile> {
    let mut files = vec![
        RenderedFile {
            path: PathBuf::from("datasources").join(format!("{}.yaml", spec.uid)),
            contents: datasource_yaml::datasource_yaml(spec),
        },
        RenderedFile {
            path: PathBuf::from("dashboards/chgate.yaml"),
            contents: dashboard_provider_yaml(&s.provisioning_dir),
        },
    ];
    files.extend(DASHBOARDS.iter().map(|(name, json)| RenderedFile {
        path: PathBuf::from("dashboards").join(name),
        contents: localize_dashboard(json, t, spec),
    }));
    files.extend((0..t.grafana.instances).map(|i| RenderedFile {
        path: PathBuf::from("instances").join(format!("grafana-{}.ini", i + 1)),
        contents: ini::grafana_ini(t, s, i),
    }));
    files
}

/// Writes `files` under `out`, creating directories; unchanged files are not rewritten.
///
/// # Errors
/// [`GrafanaError::Write`] naming the file.
pub fn write_all(out: &Path, files: &[RenderedFile]) -> Result<Vec<PathBuf>, GrafanaError> {
    let mut written = Vec::new();
    for f in files {
        let path = out.join(&f.path);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == f.contents) {
            continue;
        }
        let err = |source| GrafanaError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        std::fs::write(&path, &f.contents).map_err(err)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chgate_topology::render::Addressing;
    use chgate_topology::Secret;

    #[test]
    fn render_all_lists_every_file_once() {
        let t = Topology::default();
        let spec = DatasourceSpec::from_topology(&t, Addressing::Pods, Secret::new("x"));
        let files = render_all(&t, &spec, &IniSettings::pods());
        let names: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        assert_eq!(names.len(), 2 + DASHBOARDS.len() + 3, "{names:?}");
        assert!(names.contains(&"datasources/chgate-clickhouse.yaml".to_owned()));
        assert!(names.contains(&"instances/grafana-3.ini".to_owned()));
    }

    #[test]
    fn provider_points_at_the_dashboards_directory() {
        let y = dashboard_provider_yaml(Path::new("/etc/grafana/provisioning"));
        assert!(
            y.contains("path: \"/etc/grafana/provisioning/dashboards\"\n"),
            "{y}"
        );
        assert!(y.contains("disableDeletion: true\n"));
    }

    #[test]
    fn every_shipped_dashboard_is_json_with_uid_and_our_datasource() {
        for (name, json) in DASHBOARDS {
            let v: serde_json::Value = serde_json::from_str(json).expect(name);
            assert!(v["uid"].as_str().is_some_and(|u| !u.is_empty()), "{name}");
            assert!(json.contains("\"uid\": \"chgate-clickhouse\""), "{name}");
        }
    }

    #[test]
    fn dashboards_follow_the_topologys_datasource_uid() {
        let mut t = Topology::default();
        t.grafana.datasource_uid = "other-uid".into();
        let spec = DatasourceSpec::from_topology(&t, Addressing::Pods, Secret::new("x"));
        for f in render_all(&t, &spec, &IniSettings::pods()) {
            if f.path.extension().is_some_and(|e| e == "json") {
                assert!(
                    !f.contents.contains("chgate-clickhouse"),
                    "{}",
                    f.path.display()
                );
                assert!(f.contents.contains("\"uid\": \"other-uid\""));
            }
        }
    }
}
