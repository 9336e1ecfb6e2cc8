//! `podman kube play` accepts the rendered manifests: every component (Grafana excepted: no
//! offline image exists) is created from the offline images with `--start=false`, under names
//! prefixed for this test so a running deployment on the host is never touched. Needs podman as
//! root and the images of podman/images/build.sh (scripts/test.sh builds them; cached).

use std::collections::BTreeSet;
use std::process::Command;

use chgate_podman::deploy::podman_yaml;
use chgate_podman::manifest::{Component, Manifest, Object};
use chgate_podman::secrets::{SecretValues, SECRET_NAME};
use chgate_podman::{podman, Images};
use chgate_topology::Secret;
use serde_json::Value;

/// Renames every pod, ConfigMap, claim and the Secret (and every reference to them).
fn prefixed(m: &Manifest, prefix: &str) -> Manifest {
    let mut names: BTreeSet<String> = m
        .objects
        .iter()
        .filter(|o| o.kind != "Service")
        .map(|o| o.name.clone())
        .collect();
    names.insert(SECRET_NAME.to_owned());
    fn walk(v: &mut Value, names: &BTreeSet<String>, prefix: &str) {
        match v {
            Value::String(s) if names.contains(s.as_str()) => *s = format!("{prefix}{s}"),
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, names, prefix)),
            Value::Object(o) => o.values_mut().for_each(|x| walk(x, names, prefix)),
            _ => {}
        }
    }
    let objects = m
        .objects
        .iter()
        .map(|o| {
            let mut value = o.value.clone();
            walk(&mut value, &names, prefix);
            Object {
                name: format!("{prefix}{}", o.name),
                value,
                ..o.clone()
            }
        })
        .collect();
    Manifest { objects }
}

struct Cleanup {
    prefix: String,
    pods: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.pods {
            let _ = podman::podman(&["pod", "rm", "-f", p], None);
        }
        for v in &self.volumes {
            let _ = podman::podman(&["volume", "rm", "-f", v], None);
        }
        let _ = podman::podman(
            &["secret", "rm", &format!("{}{SECRET_NAME}", self.prefix)],
            None,
        );
    }
}

#[test]
fn podman_kube_play_creates_every_offline_component() {
    let status = Command::new("podman").arg("--version").output();
    assert!(
        status.is_ok_and(|o| o.status.success()),
        "podman is required (chgate deploy setup installs it)"
    );
    let images = Images::local();
    chgate_podman::deploy::check_images(&images)
        .expect("offline images missing: run podman/images/build.sh");
    let prefix = format!("t{}-", std::process::id());
    let m = prefixed(&crate::build(&images), &prefix);
    let mut cleanup = Cleanup {
        prefix: prefix.clone(),
        pods: Vec::new(),
        volumes: m
            .objects
            .iter()
            .filter(|o| o.kind == "ConfigMap" || o.kind == "PersistentVolumeClaim")
            .map(|o| o.name.clone())
            .collect(),
    };
    let values = SecretValues::new(Secret::new("a"), Secret::new("b"), Secret::new("c"));
    podman::replace_secret(&format!("{prefix}{SECRET_NAME}"), &values.podman_payload())
        .expect("podman secret");
    for c in Component::ORDER {
        if c == Component::Grafana {
            continue;
        }
        let pods = m.pods(c);
        cleanup.pods.extend(pods.iter().cloned());
        let yaml = podman_yaml(&m, c, &|_| false, None);
        podman::podman(
            &["kube", "play", "--start=false", "-"],
            Some(yaml.as_bytes()),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.as_str()));
        for p in &pods {
            let out = podman::podman(
                &["pod", "inspect", "--format", "{{.NumContainers}}", p],
                None,
            )
            .unwrap_or_else(|e| panic!("pod {p} was not created: {e}"));
            let want = m
                .objects
                .iter()
                .find(|o| o.kind == "Pod" && &o.name == p)
                .and_then(|o| o.value["spec"]["containers"].as_array().map(Vec::len))
                .unwrap_or(0);
            assert_eq!(
                out.trim(),
                (want + 1).to_string(),
                "{p}: containers + infra"
            );
        }
    }
    // A ConfigMap became a volume holding the rendered file.
    let cm = format!("{prefix}chgate-ch-s1r1-config");
    let mount = podman::podman(
        &["volume", "inspect", "--format", "{{.Mountpoint}}", &cm],
        None,
    )
    .expect("config volume");
    let xml = std::fs::read_to_string(std::path::Path::new(mount.trim()).join("config.xml"))
        .expect("config.xml in the volume");
    assert!(xml.contains("<host>ch-s2r2</host>"), "{xml}");
}
