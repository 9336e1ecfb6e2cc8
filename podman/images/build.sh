#!/usr/bin/env bash
# Offline image builder for `chgate deploy --images local`: no registry needed, only Debian's
# package mirror (the host's apt sources are copied into the base image).
#
#   podman/images/build.sh [--chgate PATH] [--rebuild] [--only "clickhouse keeper ..."]
#   (--chgate: the binary put into the gateway image; default target/release/chgate)
#
# 1. base: `debootstrap --variant=minbase bookworm`, cached as a tarball in $CHGATE_IMAGE_CACHE
#    (default /var/tmp/chgate-images) so reruns skip it; imported as localhost/chgate-base:bookworm.
# 2. clickhouse (18.16), keeper (ZooKeeper 3.8), postgres (15), haproxy (2.6): `podman build` of
#    the Containerfiles beside this script; an image whose recipe is unchanged (label
#    io.chgate.recipe = hash of its Containerfile and inputs) is kept.
# 3. gateway: the given chgate binary, stripped, on the same base.
# Prints each step's time; run as root (podman as root, see README "Deploy as pods").
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${CHGATE_IMAGE_CACHE:-/var/tmp/chgate-images}"
CHGATE="${CHGATE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/chgate}"
ONLY="clickhouse keeper postgres haproxy gateway"
REBUILD=0
while [ $# -gt 0 ]; do
    case "$1" in
        --chgate) CHGATE="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --rebuild) REBUILD=1; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (podman and debootstrap need it)" >&2; exit 1; }
[ -x "$CHGATE" ] || { echo "build.sh: chgate binary $CHGATE not found; build it (cargo build --release -p chgate) or pass --chgate" >&2; exit 1; }
T0=$SECONDS
say() { printf '==> %s\n' "$*" >&2; }
timed() { local s=$SECONDS; "$@"; say "    ($((SECONDS - s)) s)"; }

# podman, runc, debootstrap, netavark; /etc/containers/containers.conf; the pods' network.
# (CHGATE_SETUP_BIN: another chgate for this step, e.g. when the image's binary is older.)
"${CHGATE_SETUP_BIN:-$CHGATE}" --config "$ROOT/chgate.toml" deploy setup

base() {
    local tar="$CACHE/bookworm-minbase.tar" root
    mkdir -p "$CACHE"
    if [ ! -s "$tar" ] || [ "$REBUILD" = 1 ]; then
        say "base: debootstrap --variant=minbase bookworm (cache: $tar)"
        root="$(mktemp -d "$CACHE/root.XXXXXX")"
        # Same mirror as the host: its first http(s) URI of Debian bookworm.
        local mirror
        mirror="$(grep -rhoE 'https?://[^ ]*debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -1)"
        debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1 \
            || { echo "debootstrap failed; see $CACHE/debootstrap.log" >&2; exit 1; }
        # apt inside the images reaches Debian exactly as the host does: its sources and any
        # apt.conf.d settings (proxy, snapshot validity) are copied in.
        rm -f "$root/etc/apt/sources.list"
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do
            [ -f "$f" ] && grep -qE 'debian' "$f" && cp "$f" "$root/etc/apt/${f#/etc/apt/}"
        done
        for f in /etc/apt/apt.conf.d/*; do
            grep -qiE 'proxy|Check-Valid-Until|Check-Date' "$f" 2>/dev/null && cp "$f" "$root/etc/apt/apt.conf.d/"
        done
        # Packaged services must not start inside a build.
        printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
        chmod 755 "$root/usr/sbin/policy-rc.d"
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
        rm -rf "$root"
    fi
    local sum; sum="$(sha256sum "$tar" | cut -c1-16)"
    if [ "$(podman image inspect --format '{{index .Labels "io.chgate.recipe"}}' localhost/chgate-base:bookworm 2>/dev/null || true)" != "$sum" ]; then
        say "base: podman import"
        podman import -q --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change "LABEL=io.chgate.recipe=$sum" --change 'CMD=["/bin/bash"]' \
            "$tar" localhost/chgate-base:bookworm >/dev/null
    fi
}

# build NAME CONTEXT_DIR RECIPE_INPUTS...
build() {
    local name="$1" ctx="$2"; shift 2
    local image="localhost/chgate/$name:local"
    local recipe
    recipe="$( (podman image inspect --format '{{.Id}}' localhost/chgate-base:bookworm; cat "$@") | sha256sum | cut -c1-16)"
    if [ "$REBUILD" = 0 ] && [ "$(podman image inspect --format '{{index .Labels "io.chgate.recipe"}}' "$image" 2>/dev/null || true)" = "$recipe" ]; then
        say "$name: $image is up to date"
        return
    fi
    say "$name: building $image"
    podman build -q --network host --pull=never --label "io.chgate.recipe=$recipe" \
        -f "$HERE/$name.Containerfile" -t "$image" "$ctx" >/dev/null
}

timed base
for name in $ONLY; do
    case "$name" in
        clickhouse|haproxy) timed build "$name" "$HERE" "$HERE/$name.Containerfile" ;;
        keeper) timed build zookeeper "$HERE" "$HERE/zookeeper.Containerfile"
                podman tag localhost/chgate/zookeeper:local localhost/chgate/keeper:local ;;
        postgres) timed build postgres "$HERE" "$HERE/postgres.Containerfile" "$HERE/postgres-entrypoint.sh" ;;
        gateway)
            ctx="$(mktemp -d)"
            strip -o "$ctx/chgate" "$CHGATE"
            timed build gateway "$ctx" "$HERE/gateway.Containerfile" "$ctx/chgate"
            rm -rf "$ctx" ;;
        *) echo "build.sh: unknown image $name" >&2; exit 2 ;;
    esac
done
say "images ready in $((SECONDS - T0)) s:"
podman images --filter reference='localhost/chgate/*' --format '    {{.Repository}}:{{.Tag}}  {{.Size}}' >&2
