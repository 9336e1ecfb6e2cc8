//! `chgate local smoke`: push a small, uniquely named sample through HAProxy with every protocol
//! the gateway speaks, then count the rows on every replica of every shard and print a table.
//! Exit code 1 when any protocol's rows are missing, duplicated or not replicated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use chgate_gateway::protocol::{remote_write, Sample};
use chgate_localstack::probe::clickhouse_client;
use chgate_topology::LoadedTopology;

/// Samples per protocol.
const N: usize = 20;

struct Push {
    protocol: &'static str,
    metric: String,
    path: String,
    content_type: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
}

fn pushes(run: &str, db: &str, now_s: i64) -> Vec<Push> {
    let m = |p: &str| format!("smoke_{run}_{p}");
    let lp: String = (0..N)
        .map(|i| format!("{},host=h{i} value={i} {}\n", m("influx"), now_s))
        .collect();
    let rw: Vec<Sample> = (0..N)
        .map(|i| Sample {
            metric: m("remote_write"),
            labels: vec![("host".into(), format!("h{i}"))],
            timestamp_ms: now_s * 1000,
            value: i as f64,
        })
        .collect();
    let points: Vec<String> = (0..N)
        .map(|i| format!("{{\"asDouble\":{i},\"timeUnixNano\":\"{}\",\"attributes\":[{{\"key\":\"host\",\"value\":{{\"stringValue\":\"h{i}\"}}}}]}}", now_s * 1_000_000_000))
        .collect();
    let otlp = format!(
        "{{\"resourceMetrics\":[{{\"resource\":{{}},\"scopeMetrics\":[{{\"metrics\":[{{\"name\":\"{}\",\"gauge\":{{\"dataPoints\":[{}]}}}}]}}]}}]}}",
        m("otlp"),
        points.join(",")
    );
    let row = |p: &str, i: usize| {
        format!(
            "{{\"metric\":\"{}\",\"series_id\":{},\"timestamp\":{now_s},\"value\":{i}}}\n",
            m(p),
            1_000_000 + i
        )
    };
    let ndjson: String = (0..N).map(|i| row("ndjson", i)).collect();
    let insert: String = format!("INSERT INTO {db}.samples FORMAT JSONEachRow\n")
        + &(0..N).map(|i| row("clickhouse", i)).collect::<String>();
    vec![
        Push {
            protocol: "arrow",
            metric: m("arrow"),
            path: format!("/ingest/{db}/samples"),
            content_type: "application/vnd.apache.arrow.stream",
            encoding: None,
            body: arrow_body(&m("arrow"), now_s),
        },
        Push {
            protocol: "influx",
            metric: m("influx"),
            path: "/write?precision=s".into(),
            content_type: "text/plain",
            encoding: None,
            body: lp.into_bytes(),
        },
        Push {
            protocol: "remote_write",
            metric: m("remote_write"),
            path: "/api/v1/write".into(),
            content_type: "application/x-protobuf",
            encoding: Some("snappy"),
            body: remote_write::encode(&rw),
        },
        Push {
            protocol: "otlp",
            metric: m("otlp"),
            path: "/v1/metrics".into(),
            content_type: "application/json",
            encoding: None,
            body: otlp.into_bytes(),
        },
        Push {
            protocol: "ndjson",
            metric: m("ndjson"),
            path: format!("/ingest/{db}/samples"),
            content_type: "application/x-ndjson",
            encoding: None,
            body: ndjson.into_bytes(),
        },
        Push {
            protocol: "clickhouse",
            metric: m("clickhouse"),
            path: "/".into(),
            content_type: "text/plain",
            encoding: None,
            body: insert.into_bytes(),
        },
    ]
}

/// An Arrow IPC stream of `N` samples of `metric` (columns named as in the samples table).
fn arrow_body(metric: &str, now_s: i64) -> Vec<u8> {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, Float64Array, RecordBatch, StringArray, TimestampSecondArray, UInt64Array,
    };
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let schema = Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        Field::new("series_id", DataType::UInt64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Second, None),
            false,
        ),
        Field::new("value", DataType::Float64, false),
    ]));
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![metric; N])),
        Arc::new(UInt64Array::from(
            (0..N as u64).map(|i| 2_000_000 + i).collect::<Vec<_>>(),
        )),
        Arc::new(TimestampSecondArray::from(vec![now_s; N])),
        Arc::new(Float64Array::from(
            (0..N).map(|i| i as f64).collect::<Vec<_>>(),
        )),
    ];
    let mut out = Vec::new();
    if let Ok(batch) = RecordBatch::try_new(schema.clone(), arrays) {
        if let Ok(mut w) = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema) {
            let _ = w.write(&batch).and_then(|()| w.finish());
        }
    }
    out
}

/// Runs the smoke check.
pub async fn run(loaded: &LoadedTopology) -> anyhow::Result<bool> {
    let t = &loaded.topology;
    let db = &t.cluster.database;
    let password = t.clickhouse.password.resolve(&loaded.state_dir)?;
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let run = format!("{:x}", now_s);
    let base = format!("http://{}:{}", t.network.listen, t.haproxy_gateway_port());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let nodes = t.clickhouse_nodes();
    let plan = pushes(&run, db, now_s);
    for p in &plan {
        let mut req = http
            .post(format!("{base}{}", p.path))
            .header("Content-Type", p.content_type)
            .body(p.body.clone());
        if let Some(e) = p.encoding {
            req = req.header("Content-Encoding", e);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{}: POST {base}{}", p.protocol, p.path))?;
        let status = resp.status();
        if !status.is_success() {
            bail!(
                "{}: gateway answered {status}: {}",
                p.protocol,
                resp.text().await.unwrap_or_default()
            );
        }
    }
    let clients = nodes
        .iter()
        .map(|n| clickhouse_client(t, n.http_port, &password).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for c in &clients {
        c.execute(&format!("SYSTEM SYNC REPLICA {db}.samples_local"))
            .await?;
    }
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    println!("rows per replica of {db}.samples_local, run {run} ({N} sent per protocol)");
    println!(
        "{:<14} {}  {:>6}  result",
        "PROTOCOL",
        names.iter().map(|n| format!("{n:>8}")).collect::<String>(),
        "TOTAL"
    );
    let mut all_ok = true;
    for p in &plan {
        let mut counts = Vec::new();
        for c in &clients {
            let n: u64 = c
                .query(&format!(
                    "SELECT count() FROM {db}.samples_local WHERE metric = '{}'",
                    p.metric
                ))
                .await?
                .trim()
                .parse()?;
            counts.push(n);
        }
        // Each shard's replicas must agree; the shard totals must add up to what was sent.
        let mut total = 0;
        let mut ok = true;
        for shard in 1..=t.cluster.shards {
            let c: Vec<u64> = nodes
                .iter()
                .zip(&counts)
                .filter(|(n, _)| n.shard == shard)
                .map(|(_, c)| *c)
                .collect();
            ok &= c.windows(2).all(|w| w[0] == w[1]);
            total += c.first().copied().unwrap_or(0);
        }
        ok &= total == N as u64;
        all_ok &= ok;
        println!(
            "{:<14} {}  {:>6}  {}",
            p.protocol,
            counts.iter().map(|c| format!("{c:>8}")).collect::<String>(),
            total,
            if ok { "ok" } else { "MISMATCH" }
        );
    }
    Ok(all_ok)
}
