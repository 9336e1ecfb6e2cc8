#!/usr/bin/env bash
# End-to-end test of `chgate deploy` on this machine, one command (root, podman 4.3):
#
#   podman/e2e.sh            # topology podman/e2e.toml (base port 21000); or CHGATE_E2E_TOPOLOGY=...
#
# 1. builds the offline images (podman/images/build.sh; cached in /var/tmp and podman storage),
# 2. removes any previous deployment of the topology with its volumes,
# 3. `chgate deploy up --images local`: Keeper (ZooKeeper 3.8), ClickHouse 2x2 (18.16), PostgreSQL,
#    gateways, HAProxy as pods, then migrations and Grafana provisioning (--missing-ok),
# 4. a 20 s load through HAProxy -> gateway -> ClickHouse, rows verified on every replica,
# 5. a 45 s load during which the ClickHouse server of ch-s1r2 and a Keeper follower are killed
#    (SIGKILL; the pods' restartPolicy brings them back): no request may fail, every acked row
#    must be found once on both replicas of its shard, the killed pods must be running again,
# 6. `chgate deploy down` must leave no chgate pod.
# Prints the figures (image build, deploy, rows) at the end. Set CHGATE to skip the cargo build.
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
cd "$ROOT"
TOPO="${CHGATE_E2E_TOPOLOGY:-$ROOT/podman/e2e.toml}"
[ -n "${CHGATE:-}" ] || build_chgate
C() { "$CHGATE" --config "$TOPO" "$@"; }
LOG="$(mktemp -d /tmp/chgate-e2e.XXXXXX)"
T0=$SECONDS
# A failed run leaves no pods behind (data volumes stay for a look; `deploy down --volumes`).
trap 'rc=$?; if [ $rc != 0 ]; then echo "e2e failed; removing its pods (logs: $LOG)" >&2; C deploy down >&2 || true; fi' EXIT

step "1/6 offline images (podman/images/build.sh)"
s=$SECONDS; podman/images/build.sh --chgate "$CHGATE"; IMAGES_S=$((SECONDS - s))

step "2/6 clean slate (chgate deploy down --volumes)"
s=$SECONDS; C deploy down --volumes; DOWN0_S=$((SECONDS - s))

step "3/6 chgate deploy up --images local"
s=$SECONDS; C deploy up --images local | tee "$LOG/up.txt"; DEPLOY_S=$((SECONDS - s))
C deploy status --images local

step "4/6 20 s load through HAProxy, verified on every replica"
C loadgen run --duration 20s --concurrency 8 --no-progress | tee "$LOG/load.txt"

step "5/6 45 s load; kill ClickHouse ch-s1r2 at 10 s and a Keeper follower at 20 s"
restarts() { podman inspect --format '{{.RestartCount}}' "$1"; }
# One Keeper pod dies, the quorum (2 of 3, leader included) stays: kill a follower. (Killing the
# leader forces an election, during which ClickHouse 18.16's replicated tables are readonly.)
victim=""
# Keeper name and client port (the pod's loopback hostPort) from the topology.
while read -r k port; do
    if [ -z "$victim" ] && exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        printf 'srvr' >&3; grep -q 'Mode: follower' <&3 && victim="$k"; exec 3<&-
    fi
done < <(C topology --json | python3 -c 'import json,sys; [print(k["name"], k["client_port"]) for k in json.load(sys.stdin)["keeper"]]')
[ -n "$victim" ] || { echo "no Keeper follower found" >&2; exit 1; }
ch_before=$(restarts ch-s1r2-clickhouse); k_before=$(restarts "$victim-keeper")
# Clients retry 503s (Retry-After) as a real writer would.
C loadgen run --duration 45s --concurrency 8 --retries 10 --no-progress > "$LOG/fault.txt" 2>&1 &
LG=$!
sleep 10; kill -9 "$(podman inspect --format '{{.State.Pid}}' ch-s1r2-clickhouse)"; echo "killed ch-s1r2 (clickhouse-server)"
sleep 10; kill -9 "$(podman inspect --format '{{.State.Pid}}' "$victim-keeper")"; echo "killed $victim (Keeper follower)"
wait "$LG" || { cat "$LOG/fault.txt"; echo "load during faults failed" >&2; exit 1; }
cat "$LOG/fault.txt"
[ "$(restarts ch-s1r2-clickhouse)" -gt "$ch_before" ] || { echo "ch-s1r2 was not restarted" >&2; exit 1; }
[ "$(restarts "$victim-keeper")" -gt "$k_before" ] || { echo "$victim was not restarted" >&2; exit 1; }
for _ in $(seq 60); do C deploy status --images local > "$LOG/status.txt" 2>&1 && break; sleep 2; done
cat "$LOG/status.txt"
C deploy status --images local > /dev/null || { echo "pods not healthy after the faults" >&2; exit 1; }

step "6/6 chgate deploy down"
s=$SECONDS; C deploy down; DOWN_S=$((SECONDS - s))
left="$(podman pod ps -q --filter label=app.kubernetes.io/managed-by=chgate | wc -l)"
[ "$left" = 0 ] || { echo "$left chgate pods left after down" >&2; exit 1; }

step "figures"
echo "images built in ${IMAGES_S} s; deploy up (pods + migrations) in ${DEPLOY_S} s; down in ${DOWN_S} s (first clean-up ${DOWN0_S} s)"
grep -E "^(keeper|clickhouse|postgres|grafana|gateway|haproxy) " "$LOG/up.txt" || true
echo "load:        $(grep -E 'throughput' "$LOG/load.txt" | sed 's/  */ /g')"
echo "             $(grep -E 'verified rows' "$LOG/load.txt" | sed 's/  */ /g')"
echo "with faults: $(grep -E 'requests ok' "$LOG/fault.txt" | sed 's/  */ /g'); $(grep -E 'latency' "$LOG/fault.txt" | sed 's/  */ /g')"
echo "             $(grep -E 'verified rows' "$LOG/fault.txt" | sed 's/  */ /g')"
echo "end-to-end test passed in $((SECONDS - T0)) s (logs: $LOG)"
