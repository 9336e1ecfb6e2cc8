-- chgate:min-server-version 20.1
-- Series and their labels, for Grafana's label lookups. One row per (tenant, metric, series_id);
-- the gateway re-inserts a series now and then to refresh last_seen, and ReplacingMergeTree keeps
-- the newest row. Labels are two parallel arrays sorted by label name.

CREATE TABLE IF NOT EXISTS ${database}.series_local ON CLUSTER ${cluster}
(
    tenant       LowCardinality(String),
    metric       LowCardinality(String),
    series_id    UInt64,
    label_names  Array(LowCardinality(String)),
    label_values Array(String)              CODEC(ZSTD(3)),
    last_seen    DateTime('UTC')            CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('${keeper_root}/tables/{shard}/${database}/series_local', '{replica}', last_seen)
ORDER BY (tenant, metric, series_id)
TTL last_seen + INTERVAL ${ttl_days} DAY;

CREATE TABLE IF NOT EXISTS ${database}.series ON CLUSTER ${cluster}
AS ${database}.series_local
ENGINE = Distributed(${cluster}, ${database}, series_local, series_id);
