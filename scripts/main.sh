#!/usr/bin/env bash
# The main job: install what is missing, bring up the local stack from chgate.toml, and print
# its status. (Later parts extend this same command: migrate, provision, serve, load, verify.)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SECONDS=0
ensure_debian_packages
build_chgate
step "bringing the local stack up (chgate local up)"
"$CHGATE" --config chgate.toml local up
if "$CHGATE" --help | grep -q '^  migrate'; then
    step "applying migrations (chgate migrate up)"
    "$CHGATE" --config chgate.toml migrate up
fi
step "status (chgate local status)"
"$CHGATE" --config chgate.toml local status
step "done in ${SECONDS}s — stop everything with: $CHGATE local down"
