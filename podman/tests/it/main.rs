//! Integration tests of chgate-podman: golden files of the rendered manifests, a Kubernetes
//! schema check of every object (kubernetes-validate, strict, against the published core/v1
//! schemas), `podman kube play` of every component with the offline images, and `[tls]`
//! (Secret, read-only mounts, paths, podman's per-user copies).

mod golden;
mod kube_play;
mod schema;
mod tls;

use chgate_podman::{manifest, Images};
use chgate_topology::Topology;

/// The topology the golden files and checks use: the shipped defaults (chgate.toml).
pub fn topology() -> Topology {
    Topology::default()
}

/// The manifest of the default topology with the given image set.
pub fn build(images: &Images) -> manifest::Manifest {
    manifest::build(&topology(), images).expect("the default topology renders")
}
