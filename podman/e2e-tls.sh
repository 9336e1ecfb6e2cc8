#!/usr/bin/env bash
# End-to-end test of `chgate deploy` with [tls] (root, podman 4.3; not part of scripts/test.sh —
# run it by hand, about 2 min with cached images):
#
#   podman/e2e-tls.sh        # topology podman/e2e-tls.toml; or CHGATE_E2E_TOPOLOGY=...
#
# 1. offline images (podman/images/build.sh), 2. clean slate (`deploy down --volumes`),
# 3. `deploy up --images local` (ClickHouse HTTPS, PostgreSQL SSL, HAProxy's TLS front; the
#    migrations run over HTTPS / SSL verified against the CA),
# 4. checks, every TLS connection verified against the topology's CA (curl --cacert):
#    the staged key copies are owned by the pod users and not world-readable; ClickHouse answers
#    over HTTPS on every node; a write through HAProxy's TLS front -> ambassador -> gateway ->
#    ClickHouse (the gateway speaks HTTPS to ClickHouse, trusting the CA from /etc/chgate/tls)
#    is found on both replicas of its shard; a client with another CA is refused; a 10 s
#    loadgen run verified on every replica, after which the gateways' pooled connections to
#    ClickHouse are on its HTTPS port,
# 5. `deploy down` leaves no pod and no staged copy.
# Set CHGATE to skip the cargo build (the host-side CLI and the binary in the gateway image).
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
cd "$ROOT"
TOPO="${CHGATE_E2E_TOPOLOGY:-$ROOT/podman/e2e-tls.toml}"
[ -n "${CHGATE:-}" ] || build_chgate
C() { "$CHGATE" --config "$TOPO" "$@"; }
T0=$SECONDS
trap 'rc=$?; if [ $rc != 0 ]; then echo "e2e-tls failed; removing its pods" >&2; C deploy down >&2 || true; fi' EXIT
json() { C topology --json | python3 -c "import json,sys; t=json.load(sys.stdin); $1"; }

step "1/5 offline images"
podman/images/build.sh --chgate "${CHGATE_IMAGE_BIN:-$CHGATE}"

step "2/5 clean slate"
C deploy down --volumes

step "3/5 chgate deploy up --images local (with [tls])"
s=$SECONDS; C deploy up --images local --timeout "${CHGATE_E2E_TIMEOUT:-300}"; DEPLOY_S=$((SECONDS - s))
C deploy status --images local

step "4/5 TLS checks (verified against the CA)"
STATE="$(json 'print(t["state_dir"])')"
CA="$STATE/tls/ca.crt"
PW="$(cat "$STATE/secrets/clickhouse_password")"
toml() { python3 -c "import tomllib,sys; t=tomllib.load(open(sys.argv[1],'rb')); $1" "$TOPO"; }
LISTEN="$(toml 'print(t.get("network",{}).get("listen","127.0.0.1"))')"
for d in "$STATE"/pods-tls/*; do
    stat -c '%n %U(%u) %a' "$d/tls.key"
    [ "$(stat -c %a "$d/tls.key")" = 400 ] && [ "$(stat -c %u "$d/tls.key")" = "$(basename "$d")" ] \
        || { echo "$d/tls.key: wrong owner or mode" >&2; exit 1; }
done
while read -r name port; do
    v="$(curl -sS --fail --cacert "$CA" -u "default:$PW" "https://$LISTEN:$port/?query=SELECT%20version()")"
    echo "ClickHouse $name over HTTPS (CA-verified): $v"
done < <(json '[print(n["name"], n["https_port"]) for n in t["clickhouse"]]')
TLS_PORT="$(toml 'n=t.get("network",{}); print(t["tls"].get("haproxy_gateway_port") or n.get("base_port",18000)+443)')"
curl -sS -o /dev/null -w 'TLS handshake verified: %{ssl_verify_result} (0 = ok), HTTP %{http_code}\n' \
    --cacert "$CA" "https://$LISTEN:$TLS_PORT/healthz"
openssl s_client -connect "$LISTEN:$TLS_PORT" -CAfile "$CA" -verify_return_error </dev/null 2>/dev/null \
    | grep -E '^(Verify return code|    Protocol|    Cipher)' || true
if curl -sS -o /dev/null --cacert /etc/ssl/certs/ca-certificates.crt "https://$LISTEN:$TLS_PORT/healthz" 2>/dev/null; then
    echo "a client without the topology's CA was accepted" >&2; exit 1
fi
echo "a client trusting only the system CAs is refused (certificate not verified): ok"
MARK="e2etls$RANDOM$RANDOM"
curl -sS --fail --cacert "$CA" -X POST --data-binary "$MARK,host=tls value=1 $(date +%s)000000000" \
    "https://$LISTEN:$TLS_PORT/write" -w 'write through HAProxy TLS -> gateway -> ClickHouse HTTPS: HTTP %{http_code}\n'
# The row, on both replicas of its shard (queried over HTTPS, CA-verified).
found=0
for _ in $(seq 30); do
    found=0
    while read -r name port; do
        db="$(curl -sS --fail --cacert "$CA" -u "default:$PW" "https://$LISTEN:$port/" \
            --data-binary "SELECT database FROM system.tables WHERE name = 'samples_local' LIMIT 1")"
        n="$(curl -sS --fail --cacert "$CA" -u "default:$PW" "https://$LISTEN:$port/" \
            --data-binary "SELECT count() FROM $db.samples_local WHERE startsWith(metric, '$MARK')")"
        found=$((found + n))
    done < <(json '[print(n["name"], n["https_port"]) for n in t["clickhouse"]]')
    [ "$found" = 2 ] && break
    sleep 1
done
[ "$found" = 2 ] || { echo "the TLS write was found $found times (want 2: both replicas of one shard)" >&2; exit 1; }
echo "the row written over TLS is on both replicas of its shard"
C loadgen run --duration 10s --concurrency 4 --no-progress | tee /tmp/e2e-tls-load.txt
grep -q 'verified rows' /tmp/e2e-tls-load.txt || { echo "load not verified" >&2; exit 1; }
# The gateways' pooled connections to ClickHouse end on its HTTPS port (8443 = 0x20FB), not 8123.
est() { podman exec "$1" sh -c 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null' | awk -v p=":$2\$" '$2 ~ p && $4 == "01"' | wc -l; }
https_conns=0
while read -r name _; do https_conns=$((https_conns + $(est "$name-clickhouse" 20FB))); done \
    < <(json '[print(n["name"], n["https_port"]) for n in t["clickhouse"]]')
echo "established connections on ClickHouse's HTTPS port (gateway pools): $https_conns"
[ "$https_conns" -gt 0 ] || { echo "no connection on ClickHouse's HTTPS port: the gateways do not use TLS" >&2; exit 1; }

step "5/5 chgate deploy down"
C deploy down
left="$(podman pod ps -q --filter label=app.kubernetes.io/managed-by=chgate | wc -l)"
[ "$left" = 0 ] || { echo "$left chgate pods left after down" >&2; exit 1; }
[ ! -e "$STATE/pods-tls" ] || { echo "staged TLS copies left after down" >&2; exit 1; }
echo "deploy up (pods + migrations) with [tls] in ${DEPLOY_S} s; TLS e2e passed in $((SECONDS - T0)) s"
