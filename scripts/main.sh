#!/usr/bin/env bash
# The main job: install what is missing, bring up the local stack from chgate.toml (ClickHouse
# 2x2, ZooKeeper x3, PostgreSQL, gateways, HAProxy), apply the migrations, provision Grafana's
# datasource, push a sample with every protocol and print the rows found on every replica, run a
# 30 s load through HAProxy and print its summary (rows/s, latency, rows verified per replica).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS=0
ensure_debian_packages
build_chgate
step "bringing the local stack up (chgate local up)"
"$CHGATE" --config chgate.toml local up
step "applying migrations (chgate migrate up: ClickHouse ON CLUSTER + PostgreSQL)"
"$CHGATE" --config chgate.toml migrate up
step "Grafana: render provisioning files, provision the datasource where Grafana's tables exist"
"$CHGATE" --config chgate.toml grafana render --target local
"$CHGATE" --config chgate.toml grafana provision --missing-ok
step "pushing a sample with every protocol through HAProxy -> gateways (chgate local smoke)"
"$CHGATE" --config chgate.toml local smoke
step "a short load through HAProxy with end-to-end verification (chgate loadgen run, 30 s)"
"$CHGATE" --config chgate.toml loadgen run --duration 30s --concurrency 16 --no-progress
step "status (chgate local status)"
"$CHGATE" --config chgate.toml local status
step "done in ${SECONDS}s — stop everything with: $CHGATE local down"
