#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/property tests, chdb oracle tests and live tests
# against the test rig (crates/harness/rig.toml: base port 28000, state in /tmp/chgate-test-rig),
# which this script starts first and stops at the end.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS=0
ensure_debian_packages
if ! python3 -c 'import chdb' 2>/dev/null; then
    step "installing the modern-ClickHouse oracle (pip install chdb-core)"
    python3 -m pip install -q chdb-core
fi
if ! python3 -c 'import cryptography, yaml' 2>/dev/null; then
    step "installing the independent Grafana-decryption checker's deps (pip install cryptography pyyaml)"
    python3 -m pip install -q cryptography pyyaml
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    step "installing the Kubernetes schema checker for the pod manifests (pip install kubernetes-validate)"
    python3 -m pip install -q kubernetes-validate
fi
if [ -f grafana-provisioning/schema-check/package.json ] && [ ! -d grafana-provisioning/schema-check/node_modules ]; then
    step "installing dashboard schema checker (npm ci)"
    (cd grafana-provisioning/schema-check && npm ci --silent --no-audit --no-fund)
fi
# Real-client request bodies live in the steering repo's shared/ folder beside this clone.
if [ -z "${CHGATE_FIXTURES:-}" ]; then
    for d in "$ROOT/../shared/fixtures/real-clients" /work/shared/fixtures/real-clients; do
        if [ -f "$d/README.md" ]; then export CHGATE_FIXTURES="$(cd "$d" && pwd)"; break; fi
    done
fi
[ -n "${CHGATE_FIXTURES:-}" ] || { echo "real-client fixtures (shared/fixtures/real-clients) not found; set CHGATE_FIXTURES" >&2; exit 1; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings
# The gateway fault suite is a `test = false` target (--all-targets leaves it out): lint it too.
cargo clippy --locked -p chgate-gateway --test faults -- -D warnings
build_chgate
# podman, containers.conf and the offline pod images for chgate-podman's `kube play` test
# (debootstrap base and every image are cached: seconds when nothing changed, ~4 min the first time).
step "offline pod images (podman/images/build.sh)"
podman/images/build.sh --chgate "$CHGATE"
# CHGATE_TEST_TOPOLOGY points the harness (and this script) at another rig, e.g. to run two
# suites side by side; the default is the harness's own rig.toml.
RIG="${CHGATE_TEST_TOPOLOGY:-crates/harness/rig.toml}"
export CHGATE_TEST_TOPOLOGY="$(cd "$(dirname "$RIG")" && pwd)/$(basename "$RIG")"
trap '"$CHGATE" --config "$RIG" local down >&2 || true' EXIT
# Start from an empty rig: test databases and Keeper paths left by earlier runs pile up in the
# state dir (about 45 databases a run), and a ClickHouse restarted by a drill then spends minutes
# loading their metadata. CHGATE_KEEP_RIG=1 keeps it (e.g. to look at a failed run's data).
if [ "${CHGATE_KEEP_RIG:-0}" != 1 ]; then
    RIG_STATE="$("$CHGATE" --config "$RIG" topology --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state_dir"])')"
    case "$RIG_STATE" in
        /tmp/*|/var/tmp/*) ;;
        *) echo "refusing to wipe the test rig's state_dir $RIG_STATE (not under /tmp or /var/tmp); set CHGATE_KEEP_RIG=1" >&2; exit 1 ;;
    esac
    step "wiping the test rig's state ($RIG_STATE) left by earlier runs"
    "$CHGATE" --config "$RIG" local down >&2 || true
    rm -rf "$RIG_STATE"
fi
step "starting the test rig"
"$CHGATE" --config "$RIG" local up --timeout 240
step "cargo test --workspace"
export CHGATE_BIN="$CHGATE"
cargo test --locked --workspace --no-fail-fast -- --test-threads 4
# Quick subset of the gateway fault suite (about 3 min): gateway SIGKILLs + SIGTERM, a torn spool
# tail with shard 1 down, poison rows through the DLQ, RSS under 3x overload. All seven cases at
# full size, written to bench/RELIABILITY.md: scripts/reliability.sh.
step "gateway fault suite (quick subset)"
cargo test --locked -p chgate-gateway --test faults -- --test-threads 1 case1 case6 case7 case8
step "end-to-end pods test (podman/e2e.sh: images cached, deploy up, load, kills, reconcile, down; ~3 min)"
podman/e2e.sh
step "all tests passed in ${SECONDS}s"
