-- V1 V1__samples.sql (modern, sha256:6e148a3a20c13c5e15674396d8d9dbc5e609b6c9f3536b28fa71fc562ca60ed2)
CREATE TABLE IF NOT EXISTS metrics.samples_local ON CLUSTER chgate
(
    tenant      LowCardinality(String)      CODEC(ZSTD(1)),
    metric      LowCardinality(String)      CODEC(ZSTD(1)),
    series_id   UInt64                      CODEC(ZSTD(1)),
    timestamp   DateTime64(3, 'UTC')        CODEC(DoubleDelta, ZSTD(1)),
    value       Float64                     CODEC(Gorilla, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/metrics/samples_local', '{replica}')
PARTITION BY toDate(timestamp)
ORDER BY (tenant, metric, series_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS metrics.samples ON CLUSTER chgate
AS metrics.samples_local
ENGINE = Distributed(chgate, metrics, samples_local, series_id);

-- V1 V1__samples.fallback.sql (fallback, sha256:79c03f41dfeeeb1b9ffb824501519fb932f8e63681961a870a75cd08acd39980)
CREATE TABLE IF NOT EXISTS metrics.samples_local ON CLUSTER chgate
(
    tenant      String,
    metric      String,
    series_id   UInt64,
    timestamp   DateTime('UTC'),
    value       Float64
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/metrics/samples_local', '{replica}')
PARTITION BY toDate(timestamp)
ORDER BY (tenant, metric, series_id, timestamp)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS metrics.samples ON CLUSTER chgate
AS metrics.samples_local
ENGINE = Distributed(chgate, metrics, samples_local, series_id);

-- V2 V2__series.sql (modern, sha256:c33102d4831df652f51bedff924fbe548621e5d9eb4e0d157dee6777cbf3993c)
CREATE TABLE IF NOT EXISTS metrics.series_local ON CLUSTER chgate
(
    tenant       LowCardinality(String),
    metric       LowCardinality(String),
    series_id    UInt64,
    label_names  Array(LowCardinality(String)),
    label_values Array(String)              CODEC(ZSTD(3)),
    last_seen    DateTime('UTC')            CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/metrics/series_local', '{replica}', last_seen)
ORDER BY (tenant, metric, series_id)
TTL last_seen + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS metrics.series ON CLUSTER chgate
AS metrics.series_local
ENGINE = Distributed(chgate, metrics, series_local, series_id);

-- V2 V2__series.fallback.sql (fallback, sha256:4288d37b27b09bd2debebb2c5f07276e902e81f31c642d89de2d0f0df425f0cc)
CREATE TABLE IF NOT EXISTS metrics.series_local ON CLUSTER chgate
(
    tenant       String,
    metric       String,
    series_id    UInt64,
    label_names  Array(String),
    label_values Array(String),
    last_seen    DateTime('UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/metrics/series_local', '{replica}', last_seen)
ORDER BY (tenant, metric, series_id);

CREATE TABLE IF NOT EXISTS metrics.series ON CLUSTER chgate
AS metrics.series_local
ENGINE = Distributed(chgate, metrics, series_local, series_id);

