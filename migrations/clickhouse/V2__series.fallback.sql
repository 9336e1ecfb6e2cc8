-- Fallback of V2__series.sql for servers older than 20.1: plain String, no CODECs, no TTL.

CREATE TABLE IF NOT EXISTS ${database}.series_local ON CLUSTER ${cluster}
(
    tenant       String,
    metric       String,
    series_id    UInt64,
    label_names  Array(String),
    label_values Array(String),
    last_seen    DateTime('UTC')
)
ENGINE = ReplicatedReplacingMergeTree('${keeper_root}/tables/{shard}/${database}/series_local', '{replica}', last_seen)
ORDER BY (tenant, metric, series_id);

CREATE TABLE IF NOT EXISTS ${database}.series ON CLUSTER ${cluster}
AS ${database}.series_local
ENGINE = Distributed(${cluster}, ${database}, series_local, series_id);
