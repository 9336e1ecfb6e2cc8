-- chgate:min-server-version 20.1
-- Samples: one ReplicatedMergeTree table per shard plus the Distributed table the gateway and
-- Grafana use. Modern variant (DateTime64, LowCardinality, CODECs, TTL); servers older than 20.1
-- get V1__samples.fallback.sql instead. Column names are identical in both variants.

CREATE TABLE IF NOT EXISTS ${database}.samples_local ON CLUSTER ${cluster}
(
    tenant      LowCardinality(String)      CODEC(ZSTD(1)),
    metric      LowCardinality(String)      CODEC(ZSTD(1)),
    series_id   UInt64                      CODEC(ZSTD(1)),
    timestamp   DateTime64(3, 'UTC')        CODEC(DoubleDelta, ZSTD(1)),
    value       Float64                     CODEC(Gorilla, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('${keeper_root}/tables/{shard}/${database}/samples_local', '{replica}')
PARTITION BY toDate(timestamp)
ORDER BY (tenant, metric, series_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL ${ttl_days} DAY
SETTINGS index_granularity = 8192;

-- Sharded by series_id, so every sample of one series lands on one shard
-- (shard index = series_id % shards with equal weights; the gateway routes the same way).
CREATE TABLE IF NOT EXISTS ${database}.samples ON CLUSTER ${cluster}
AS ${database}.samples_local
ENGINE = Distributed(${cluster}, ${database}, samples_local, series_id);
