# Shared by scripts/main.sh and scripts/test.sh: toolchain, build cache, Debian packages.
# Reuse a build cache outside the clone when one exists (a fresh clone must still build).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/chgate-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

step() { printf '\n==> %s\n' "$*" >&2; }

# Debian packages the rig and the tests need (chgate local up installs its own too; doing it here
# first lets the tests start from a machine that has nothing).
ensure_debian_packages() {
    local missing=()
    [ -x /usr/sbin/clickhouse-server ] || missing+=(clickhouse-server clickhouse-client)
    [ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
    [ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
    [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    # Prometheus itself, as a real remote_write client in the gateway's live tests.
    [ -x /usr/bin/prometheus ] || missing+=(prometheus)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "missing Debian packages: ${missing[*]}; run as root" >&2
            exit 1
        fi
        step "installing Debian packages: ${missing[*]}"
        # Keep packaged services from starting: the rig runs its own processes.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        rm -f /usr/sbin/policy-rc.d
    fi
}

build_chgate() {
    step "building chgate (release; cache in $CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release --locked -p chgate)
    CHGATE="$CARGO_TARGET_DIR/release/chgate"
    export CHGATE
}
