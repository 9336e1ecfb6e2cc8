//! Every rendered object against the Kubernetes JSON schemas (core/v1, strict: unknown fields are
//! errors) with `kubernetes-validate` (PyPI; bundles the published schemas, works offline;
//! scripts/test.sh installs it). A deliberately broken manifest must fail the same check, so the
//! check itself is known to bite.

use std::path::Path;
use std::process::Command;

use chgate_podman::manifest::Component;
use chgate_podman::{yaml, Images};

/// Kubernetes version the manifests are checked against (oldest supported minor we target).
const KUBERNETES_VERSION: &str = "1.30.0";

pub(crate) fn validate(files: &[&Path]) -> (bool, String) {
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--no-warn", "-k", KUBERNETES_VERSION])
        .args(files)
        .output()
        .expect(
            "kubernetes-validate must be installed: python3 -m pip install kubernetes-validate",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write_all(dir: &Path, images: &Images) -> Vec<std::path::PathBuf> {
    let m = crate::build(images);
    Component::ORDER
        .iter()
        .map(|c| {
            let docs: Vec<_> = m.group(*c).map(|o| o.value.clone()).collect();
            let path = dir.join(c.file_name());
            std::fs::write(&path, yaml::to_yaml_stream(&docs)).expect("write");
            path
        })
        .collect()
}

#[test]
fn every_rendered_object_is_valid_kubernetes() {
    for images in [Images::local(), Images::official()] {
        let dir = tempfile::tempdir().expect("tmp");
        let files = write_all(dir.path(), &images);
        let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        let (ok, text) = validate(&refs);
        assert!(
            ok,
            "{:?} images: kubernetes-validate failed:\n{text}",
            images.flavor
        );
        let objects = crate::build(&images).objects.len();
        assert_eq!(
            text.matches(" passed for resource ").count(),
            objects,
            "every object checked:\n{text}"
        );
    }
}

#[test]
fn the_deploy_time_secret_is_valid_kubernetes() {
    use chgate_podman::secrets::SecretValues;
    use chgate_topology::Secret;
    let values = SecretValues::new(Secret::new("a"), Secret::new("b"), Secret::new("c"));
    let labels = serde_json::json!({"app.kubernetes.io/managed-by": "chgate"});
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("secret.yaml");
    std::fs::write(&path, yaml::to_yaml(&values.kubernetes_secret(&labels))).expect("write");
    let (ok, text) = validate(&[&path]);
    assert!(ok && text.contains("secret/chgate-secrets"), "{text}");
}

#[test]
fn the_check_rejects_a_broken_pod() {
    let m = crate::build(&Images::local());
    let mut pod = m
        .objects
        .iter()
        .find(|o| o.kind == "Pod")
        .expect("a pod")
        .value
        .clone();
    pod["spec"]["containers"][0]["portz"] = 1.into();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml::to_yaml(&pod)).expect("write");
    let (ok, text) = validate(&[&path]);
    assert!(!ok && text.contains("portz"), "{text}");
}
