//! NDJSON into any table: types converted, defaults applied, bad rows named, nothing partial.

use chgate_gateway::encode::Format;
use chgate_gateway::writer::WriteMode;
use chgate_harness::rig;

use crate::support::{gateway, http, per_shard_counts};

async fn create(rig: &chgate_harness::Rig, db: &str) {
    let t = rig.topology();
    let (cluster, root) = (&t.cluster.name, &t.clickhouse.keeper_root);
    for sql in [
        format!("CREATE DATABASE {db} ON CLUSTER {cluster}"),
        format!(
            "CREATE TABLE {db}.events_local ON CLUSTER {cluster} (id UInt64, name String, score Float64, \
             tags Array(String), maybe Nullable(Int32), at DateTime, kind Enum8('a' = 1, 'b' = 2), \
             note String DEFAULT 'none') \
             ENGINE = ReplicatedMergeTree('{root}/tables/{{shard}}/{db}/events_local', '{{replica}}') ORDER BY id"
        ),
        format!("CREATE TABLE {db}.events ON CLUSTER {cluster} AS {db}.events_local ENGINE = Distributed({cluster}, {db}, events_local, id)"),
    ] {
        rig.clickhouse(0).execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_rows_land_on_both_shards_and_replicas_with_their_values_in_both_formats() {
    let rig = rig().await;
    for format in [Format::Native, Format::RowBinary] {
        let db = rig.unique_name("gw_ndjson");
        create(rig, &db).await;
        let gw = gateway(rig, &db, WriteMode::Distributed, format).await;
        let body: String = (0i64..100)
            .map(|i| {
                let maybe = if i % 2 == 0 { "null".to_owned() } else { (-i).to_string() };
                format!(
                    "{{\"id\":{i},\"name\":\"n{i}\",\"score\":{i}.5,\"tags\":[\"x\",\"y{i}\"],\"maybe\":{maybe},\"at\":\"2024-01-02 03:04:05\",\"kind\":\"b\"}}\n"
                )
            })
            .collect();
        let resp = http()
            .post(format!("{}/ingest/{db}/events", gw.url))
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("post");
        let status = resp.status();
        assert_eq!(
            status,
            200,
            "{format:?}: {}",
            resp.text().await.unwrap_or_default()
        );
        let shards = per_shard_counts(rig, &format!("{db}.events_local"), "1").await;
        assert!(
            shards.iter().all(|&n| n > 0),
            "{format:?}: both shards got rows: {shards:?}"
        );
        assert_eq!(shards.iter().sum::<u64>(), 100, "{format:?}");
        let row = rig
            .clickhouse(3)
            .query(&format!(
                "SELECT name, score, tags, maybe, toString(at), kind, note FROM {db}.events WHERE id = 7 FORMAT TSV"
            ))
            .await
            .expect("select");
        assert_eq!(
            row.trim(),
            "n7\t7.5\t['x','y7']\t-7\t2024-01-02 03:04:05\tb\tnone",
            "{format:?}"
        );
        let nulls = rig
            .clickhouse(0)
            .query(&format!(
                "SELECT count() FROM {db}.events WHERE isNull(maybe)"
            ))
            .await
            .expect("q");
        assert_eq!(nulls.trim(), "50", "{format:?}");
        gw.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_is_named_and_nothing_of_the_request_is_written() {
    let rig = rig().await;
    let db = rig.unique_name("gw_bad");
    create(rig, &db).await;
    let gw = gateway(rig, &db, WriteMode::Distributed, Format::Native).await;
    let url = format!("{}/ingest/{db}/events", gw.url);
    let good = "{\"id\":1,\"name\":\"a\",\"score\":1,\"tags\":[],\"maybe\":null,\"at\":0,\"kind\":\"a\"}\n";
    let cases = [
        (
            format!("{good}{{\"id\":2,\"nme\":\"typo\"}}\n"),
            "line 2: unknown column `nme`",
        ),
        (
            format!("{good}{good}{{\"id\":\"x\"}}\n"),
            "line 3: column `id` (UInt64)",
        ),
        (
            format!("{good}{{\"id\":3,\"kind\":\"c\"}}\n"),
            "line 2: column `kind`",
        ),
        ("{not json\n".to_owned(), "line 1: invalid JSON"),
    ];
    for (body, want) in cases {
        let resp = http()
            .post(&url)
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 400);
        let text = resp.text().await.unwrap_or_default();
        assert!(text.contains(want), "want {want:?} in {text:?}");
    }
    let resp = http()
        .post(format!("{}/ingest/{db}/nope", gw.url))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 404);
    assert!(resp
        .text()
        .await
        .unwrap_or_default()
        .contains(&format!("{db}.nope")));
    assert_eq!(
        per_shard_counts(rig, &format!("{db}.events_local"), "1")
            .await
            .iter()
            .sum::<u64>(),
        0,
        "nothing partial"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_ipc_stream_rows_land_on_both_shards_with_their_values() {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, Int32Array, RecordBatch, StringArray, TimestampSecondArray, UInt64Array,
    };
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let rig = rig().await;
    let db = rig.unique_name("gw_arrow");
    create(rig, &db).await;
    let gw = gateway(rig, &db, WriteMode::ShardAware, Format::Native).await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("maybe", DataType::Int32, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Second, None), false),
    ]));
    let n = 64u64;
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from((0..n).collect::<Vec<_>>())),
        Arc::new(StringArray::from(
            (0..n).map(|i| format!("a{i}")).collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            (0..n)
                .map(|i| (i % 3 != 0).then_some(i as i32))
                .collect::<Vec<_>>(),
        )),
        Arc::new(TimestampSecondArray::from(
            (0..n).map(|i| 1_700_000_000 + i as i64).collect::<Vec<_>>(),
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
    let mut body = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut body, &schema).expect("writer");
        w.write(&batch).expect("write");
        w.finish().expect("finish");
    }
    let resp = http()
        .post(format!("{}/ingest/{db}/events", gw.url))
        .header("Content-Type", "application/vnd.apache.arrow.stream")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let shards = per_shard_counts(rig, &format!("{db}.events_local"), "1").await;
    assert_eq!(shards.iter().sum::<u64>(), n, "{shards:?}");
    assert!(shards.iter().all(|&c| c > 0), "{shards:?}");
    let row = rig
        .clickhouse(2)
        .query(&format!("SELECT name, maybe, toUnixTimestamp(at), note FROM {db}.events WHERE id = 5 FORMAT TSV"))
        .await
        .expect("select");
    assert_eq!(row.trim(), "a5\t5\t1700000005\tnone");
    let nulls = rig
        .clickhouse(1)
        .query(&format!(
            "SELECT count() FROM {db}.events WHERE isNull(maybe)"
        ))
        .await
        .expect("q");
    assert_eq!(nulls.trim(), "22");
    gw.shutdown().await;
}
