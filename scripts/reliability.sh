#!/usr/bin/env bash
# The gateway fault suite at full size (issue 7) against the live test rig, written to
# bench/RELIABILITY.md. One command:
#
#   scripts/reliability.sh            # rig from crates/harness/rig.toml (CHGATE_TEST_TOPOLOGY overrides)
#
# The rig is started (or attached to) by the tests themselves; every case stops and starts its own
# servers under the harness's exclusive guard. Takes about 8-10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/chgate-target}"
export CHGATE_TEST_TOPOLOGY="${CHGATE_TEST_TOPOLOGY:-$PWD/crates/harness/rig.toml}"
cargo build -q -p chgate --bin chgate
export CHGATE_BIN="${CHGATE_BIN:-$CARGO_TARGET_DIR/debug/chgate}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
CHGATE_FAULTS=full CHGATE_FAULTS_REPORT="$out" \
  cargo test -q -p chgate-gateway --test faults -- --test-threads=1 2>&1 | tee "$out/log"
took=$(( $(date +%s) - start ))
report=bench/RELIABILITY.md
{
  cat <<'HEAD'
# Gateway reliability — the fault suite

Produced by `scripts/reliability.sh` (do not edit by hand): `cargo test -p chgate-gateway --test faults`
with `CHGATE_FAULTS=full` against the live rig (4 ClickHouse 18.16 in 2 shards x 2 replicas, 3
ZooKeeper 3.8), each case with its own `chgate serve` process (`ack = "spooled"`, `write_mode =
"shard-aware"`, `batch.max_age = 50ms`, breaker 3 failures / 1 s) and its own database
(`events_local` ReplicatedMergeTree + `events` Distributed by `key`).

Load: 4 closed-loop clients, 200 NDJSON rows per request with unique keys, 20 ms pause. A client
resends a request unchanged only when it was answered 429/503 (after its `Retry-After`); a request
without a response (gateway killed) is **not** resent — its outcome is unknown, so the
reconciliation stays exact. **lost** = acked keys not found in ClickHouse (every key is looked
up); **duplicated** = `count() - uniqExact(key)` over all shards, after `SYSTEM SYNC REPLICA` on
every replica and a check that both replicas of each shard hold the same rows. "stored" may exceed
"acked": rows whose request was spooled but whose answer never reached the client are delivered too.
Max latency = slowest acked request from first send to 2xx (resends after 429/503 included).

HEAD
  echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), Linux $(uname -r), suite time ${took} s."
  echo
  echo "| case | fault | rows sent | acked | stored | distinct keys | lost | duplicated | max latency | notes |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  cat "$out"/case-*.md 2>/dev/null | sort -t'|' -k2,2n
  echo
  grep -E '^test result|^test .* (ok|FAILED)$' "$out/log" | sed 's/^/    /' || true
  cat <<'TAIL'

## Why there are no duplicates: the exactly-once argument and its assumptions

- With `ack = "spooled"` a batch is split per shard, each shard's rows encoded once as a
  `RowBinary` block, and the blocks (plus their row offsets) fsynced into the spool *before* any
  request of the batch is acked. Every later send of a block — a retry after a timeout, a replica
  failover, a replay after a crash — sends those exact bytes to a replica of the same shard.
- ClickHouse's replicated tables drop a block whose hash (per inserted part) is already recorded
  in Keeper under `blocks/`. 18.16 has no `insert_deduplication_token`, so this block-hash
  deduplication is what makes resends exactly-once there; servers >= 22.2 also get
  `insert_deduplication_token` = a hash of the block bytes, which makes the same guarantee explicit.
- Assumption 1 — the dedup window: Keeper keeps the hashes of the last
  `replicated_deduplication_window` blocks per table (100 by default on 18.16; newer servers also
  bound it by `replicated_deduplication_window_seconds`, default 1 week). A resend is deduplicated
  only while its original is inside that window. The gateway keeps resends close: delivery is
  FIFO per shard, a replay happens at start before any new block of that lane, and delivered
  blocks are marked in the spool (an unsynced marker; a marker lost with the page cache costs at
  most one resend, never a skipped block). With `flushes_in_flight = 2` per table, at most a few
  blocks per table and shard can be "in doubt" at a crash — far below 100. Operators who insert
  into the same tables from many other writers at high block rates should raise
  `replicated_deduplication_window` accordingly.
- Assumption 2 — distinct data: two *different* batches with identical bytes would be deduplicated
  too (the hash cannot tell). Metrics rows carry timestamps and series ids, and the suite's rows
  carry unique keys, so identical blocks are resends.
- Assumption 3 — the bad-row split is deterministic (halving by row count), so a split that is
  interrupted by a crash resends the same sub-blocks.
- The dead-letter replay (`chgate dlq replay`) goes through the Distributed table with
  `insert_distributed_sync=1`; the same entry replayed twice produces the same per-shard blocks and
  is deduplicated (case 7 replays every entry twice).

`ack = "inserted"` (the default) keeps nothing on the gateway: a 2xx means ClickHouse has the rows;
a 429/503 means the client still owns them. Case 8 uses it for the memory check.
TAIL
} > "$report"
echo "wrote $report"
grep -q 'test result: ok' "$out/log"
