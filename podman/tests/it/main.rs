//! Integration tests of chgate-podman.
