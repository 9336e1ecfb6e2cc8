//! ClickHouse HTTP compatibility: what existing ClickHouse clients send.

use chgate_gateway::chcompat::count::{self, CsvDialect};
use chgate_gateway::encode::Format;
use chgate_gateway::types::ColumnType;
use chgate_gateway::writer::WriteMode;
use chgate_harness::{rig, Rig};

use crate::support::{gateway, http, per_shard_counts};

/// Creates `db` with `kv_local (k UInt64, v String)` (replicated) and `kv` (Distributed by `k`).
pub async fn kv_table(rig: &Rig, db: &str) {
    let t = rig.topology();
    let (cluster, root) = (&t.cluster.name, &t.clickhouse.keeper_root);
    let _ddl = rig.shared().await;
    for sql in [
        format!("CREATE DATABASE {db} ON CLUSTER {cluster}"),
        format!(
            "CREATE TABLE {db}.kv_local ON CLUSTER {cluster} (k UInt64, v String) \
             ENGINE = ReplicatedMergeTree('{root}/tables/{{shard}}/{db}/kv_local', '{{replica}}') ORDER BY k"
        ),
        format!("CREATE TABLE {db}.kv ON CLUSTER {cluster} AS {db}.kv_local ENGINE = Distributed({cluster}, {db}, kv_local, k)"),
    ] {
        rig.clickhouse(0).execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_in_clickhouse_formats_and_read_only_queries_pass_everything_else_refused() {
    let rig = rig().await;
    let db = rig.unique_name("gw_chc");
    kv_table(rig, &db).await;
    let gw = gateway(rig, &db, WriteMode::Distributed, Format::Native).await;
    let client = http();
    // RowBinary with the query in the URL, as clickhouse-rs sends it.
    let mut rb = Vec::new();
    for k in 0u64..10 {
        rb.extend_from_slice(&k.to_le_bytes());
        rb.push(2);
        rb.extend_from_slice(format!("r{}", k % 10).as_bytes());
    }
    let resp = client
        .post(format!("{}/?database={db}", gw.url))
        .query(&[("query", "INSERT INTO kv (k, v) FORMAT RowBinary")])
        .body(rb)
        .send()
        .await
        .expect("rowbinary");
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    // JSONEachRow with the query at the start of the body.
    let body = format!("INSERT INTO {db}.kv FORMAT JSONEachRow\n{{\"k\":100,\"v\":\"j\"}}\n{{\"k\":101,\"v\":\"j\"}}\n");
    let resp = client
        .post(format!("{}/", gw.url))
        .body(body)
        .send()
        .await
        .expect("json");
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    // TSV pass-through.
    let resp = client
        .post(format!("{}/", gw.url))
        .query(&[("query", format!("INSERT INTO {db}.kv FORMAT TSV"))])
        .body("200\tt\n201\tt\n")
        .send()
        .await
        .expect("tsv");
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let shards = per_shard_counts(rig, &format!("{db}.kv_local"), "1").await;
    assert_eq!(shards.iter().sum::<u64>(), 14, "{shards:?}");
    // Client libraries' metadata queries are forwarded read-only.
    let v = client
        .get(format!("{}/", gw.url))
        .query(&[("query", "SELECT version()")])
        .send()
        .await
        .expect("version");
    assert_eq!(v.status(), 200);
    assert!(
        v.text().await.unwrap_or_default().trim().starts_with("18."),
        "forwarded to the rig's 18.16"
    );
    // Anything else is refused with the reason.
    let drop = client
        .post(format!("{}/", gw.url))
        .body(format!("DROP TABLE {db}.kv"))
        .send()
        .await
        .expect("drop");
    assert_eq!(drop.status(), 400);
    assert!(drop
        .text()
        .await
        .unwrap_or_default()
        .contains("only ingests"));
    let exists = rig
        .clickhouse(0)
        .query(&format!("EXISTS TABLE {db}.kv"))
        .await
        .expect("exists");
    assert_eq!(exists.trim(), "1", "DROP was not executed");
    gw.shutdown().await;
}

/// The row counters that charge tenants' pass-through inserts against bodies ClickHouse itself
/// writes: several blocks, strings with newlines, quotes and backslashes, `Nullable`, `Array`,
/// `LowCardinality` (the server's dictionary form), `FixedString`, `Decimal`, `UUID`, `Enum8`.
/// Every format must count exactly the rows selected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_counters_count_bodies_clickhouse_writes_exactly() {
    let rig = rig().await;
    let t = rig.topology();
    let node = &rig.nodes()[0];
    let url = format!("http://{}:{}/", t.network.listen, node.http_port);
    let password = rig.clickhouse_password();
    let columns = [
        ("k", "UInt64", "number"),
        (
            "s",
            "String",
            "concat('a', toString(number), if(number % 5 = 0, '\\n\"q\\\\,\\'', ''))",
        ),
        (
            "n",
            "Nullable(Int32)",
            "if(number % 3 = 0, NULL, toInt32(number))",
        ),
        (
            "a",
            "Array(String)",
            "arrayMap(x -> toString(x), range(number % 4))",
        ),
        (
            "lc",
            "LowCardinality(String)",
            "toLowCardinality(toString(number % 7))",
        ),
        ("f", "FixedString(3)", "toFixedString('abc', 3)"),
        ("d", "Decimal(18, 2)", "toDecimal64(number, 2)"),
        ("u", "UUID", "generateUUIDv4()"),
        (
            "e",
            "Enum8('a' = 1, 'b' = 2)",
            "CAST('b' AS Enum8('a' = 1, 'b' = 2))",
        ),
    ];
    let select: Vec<String> = columns
        .iter()
        .map(|(name, _, expr)| format!("{expr} AS {name}"))
        .collect();
    let types: Vec<ColumnType> = columns
        .iter()
        .map(|(_, ty, _)| ColumnType::parse(ty).expect("type"))
        .collect();
    let pairs: Vec<(&str, &ColumnType)> = columns
        .iter()
        .map(|(name, _, _)| *name)
        .zip(&types)
        .collect();
    let want = 1000u64;
    let sql = format!(
        "SELECT {} FROM system.numbers LIMIT {want}",
        select.join(", ")
    );
    let client = http();
    for format in [
        "Native",
        "RowBinary",
        "TSV",
        "TSVWithNames",
        "CSV",
        "CSVWithNames",
    ] {
        let resp = client
            .post(&url)
            .basic_auth(&t.clickhouse.user, Some(password.expose()))
            // Small blocks: the Native body has many, each with its own dictionary.
            .query(&[("max_block_size", "97")])
            .body(format!("{sql} FORMAT {format}"))
            .send()
            .await
            .expect("select");
        assert_eq!(resp.status(), 200, "{format}");
        let body = resp.bytes().await.expect("body");
        let counted = match format {
            "Native" => count::native(&body).expect("Native body"),
            "RowBinary" => count::row_binary(&body, &pairs).expect("RowBinary body"),
            "TSV" => count::tsv(&body, 0),
            "TSVWithNames" => count::tsv(&body, 1),
            "CSV" => count::csv(&body, CsvDialect::default(), 0),
            _ => count::csv(&body, CsvDialect::default(), 1),
        };
        assert_eq!(counted, want, "{format}: {} bytes", body.len());
    }
}
