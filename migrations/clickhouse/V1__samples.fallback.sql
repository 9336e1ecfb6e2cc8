-- Fallback of V1__samples.sql for servers older than 20.1 (the 18.16 test rig): no DateTime64
-- (second precision), no CODECs, plain String instead of LowCardinality, no TTL (added in 19.6).

CREATE TABLE IF NOT EXISTS ${database}.samples_local ON CLUSTER ${cluster}
(
    tenant      String,
    metric      String,
    series_id   UInt64,
    timestamp   DateTime('UTC'),
    value       Float64
)
ENGINE = ReplicatedMergeTree('${keeper_root}/tables/{shard}/${database}/samples_local', '{replica}')
PARTITION BY toDate(timestamp)
ORDER BY (tenant, metric, series_id, timestamp)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS ${database}.samples ON CLUSTER ${cluster}
AS ${database}.samples_local
ENGINE = Distributed(${cluster}, ${database}, samples_local, series_id);
