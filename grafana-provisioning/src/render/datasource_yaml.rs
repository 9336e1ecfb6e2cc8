//! The datasource as a Grafana file-provisioning YAML (`apiVersion: 1`), secrets as `$__env{}`.
//!
//! Every scalar is written as a JSON scalar: JSON strings, numbers and booleans are valid YAML
//! 1.2 flow scalars, so no YAML library is needed and no value can break the document.

use std::fmt::Write as _;

use serde_json::Value;

use crate::datasource::{DatasourceSpec, ACCESS, ORG_ID, PLUGIN_TYPE};

/// Version written into the YAML. Grafana updates a provisioned datasource only while the stored
/// version is not newer than this, so it stays 1 and the database upsert owns later versions.
pub const YAML_VERSION: i32 = 1;

fn scalar(s: &str) -> String {
    Value::from(s).to_string()
}

/// Renders `datasources/<uid>.yaml`.
pub fn datasource_yaml(spec: &DatasourceSpec) -> String {
    let mut y = String::from("# rendered by chgate from the topology; do not edit\n");
    y.push_str("apiVersion: 1\n\ndatasources:\n");
    let _ = writeln!(y, "  - name: {}", scalar(&spec.name));
    let _ = writeln!(y, "    uid: {}", scalar(&spec.uid));
    let _ = writeln!(y, "    type: {}", scalar(PLUGIN_TYPE));
    let _ = writeln!(y, "    access: {}", scalar(ACCESS));
    let _ = writeln!(y, "    orgId: {ORG_ID}");
    let _ = writeln!(y, "    version: {YAML_VERSION}");
    y.push_str("    isDefault: false\n    editable: false\n    jsonData:\n");
    if let Value::Object(map) = spec.json_data() {
        for (k, v) in map {
            let _ = writeln!(y, "      {k}: {v}");
        }
    }
    y.push_str("    secureJsonData:\n");
    let _ = writeln!(y, "      password: {}", scalar(&spec.password_env_ref()));
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use chgate_topology::render::Addressing;
    use chgate_topology::{Secret, Topology};

    #[test]
    fn yaml_has_the_required_keys_and_no_plaintext_secret() {
        let spec = DatasourceSpec::from_topology(
            &Topology::default(),
            Addressing::Pods,
            Secret::new("plain-PW-123"),
        );
        let y = datasource_yaml(&spec);
        for needle in [
            "apiVersion: 1\n",
            "uid: \"chgate-clickhouse\"",
            "version: 1\n",
            "editable: false\n",
            "password: \"$__env{CHGATE_CLICKHOUSE_PASSWORD}\"",
            "port: 9000\n",
        ] {
            assert!(y.contains(needle), "missing {needle:?} in\n{y}");
        }
        assert!(!y.contains("plain-PW-123"));
    }

    #[test]
    fn names_with_quotes_and_colons_stay_one_scalar() {
        let mut spec =
            DatasourceSpec::from_topology(&Topology::default(), Addressing::Pods, Secret::new("x"));
        spec.name = "a: \"b\" # c".into();
        let y = datasource_yaml(&spec);
        assert!(y.contains(r#"- name: "a: \"b\" # c""#), "{y}");
    }
}
