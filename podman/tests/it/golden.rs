//! Golden files: the rendered manifests of the default topology, per image set and component,
//! under `podman/tests/golden/`. Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p chgate-podman --test it golden` and review the diff.

use std::path::PathBuf;

use chgate_podman::manifest::Component;
use chgate_podman::{yaml, Images};

fn golden_dir(set: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(set)
}

fn check(set: &str, images: &Images) {
    let m = crate::build(images);
    let dir = golden_dir(set);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for c in Component::ORDER {
        let docs: Vec<_> = m.group(c).map(|o| o.value.clone()).collect();
        let text = yaml::to_yaml_stream(&docs);
        let path = dir.join(c.file_name());
        if update {
            std::fs::create_dir_all(&dir).expect("golden dir");
            std::fs::write(&path, &text).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
        if want != text {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "rendered manifests differ from {stale:?}; if intended, regenerate with UPDATE_GOLDEN=1 and review the diff"
    );
}

#[test]
fn local_images_match_golden_files() {
    check("local", &Images::local());
}

#[test]
fn official_images_match_golden_files() {
    check("official", &Images::official());
}
