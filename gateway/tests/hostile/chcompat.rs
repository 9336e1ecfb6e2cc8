//! ClickHouse-compatible `POST /?query=INSERT … FORMAT …`: mutated queries and rows, SQL in
//! identifiers, `INSERT` into system tables, statements that are not inserts, passthrough formats
//! with garbage rows (ClickHouse's own parser answers; the gateway must map that to 4xx).

use rand::rngs::StdRng;
use rand::Rng;

use crate::gen::{self, nasty};
use crate::{assert_canaries, post, Case, Suite, CASES};

const CANARY: &str = "canary_chcompat";

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn insert(query: &str, body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    post(&format!("/?query={}", enc(query)), &[], body)
}

pub fn generate(rng: &mut StdRng, i: usize, db: &str) -> Case {
    let q = format!(
        "INSERT INTO {db}.samples (metric, series_id, timestamp, value) FORMAT JSONEachRow"
    );
    let good =
        format!("{{\"metric\":\"m\",\"series_id\":{i},\"timestamp\":1700000000,\"value\":1}}\n");
    if i.is_multiple_of(50) {
        let body = format!(
            "{{\"metric\":\"{CANARY}\",\"series_id\":{i},\"timestamp\":{},\"value\":{i}}}\n",
            1_700_000_000 + i
        );
        return Case {
            kind: "canary",
            request: insert(&q, body.into_bytes()),
            canary_rows: Some(1),
        };
    }
    let (kind, query, body): (&'static str, String, Vec<u8>) = match rng.gen_range(0..9) {
        0..=1 => (
            "mutated_rows",
            q,
            gen::mutate(rng, good.repeat(2).as_bytes()),
        ),
        2..=3 => {
            let m = gen::mutate(rng, q.as_bytes());
            (
                "mutated_query",
                String::from_utf8_lossy(&m).into_owned(),
                good.into_bytes(),
            )
        }
        4 => {
            let t = [
                "system.tables",
                "system.query_log",
                "system.settings",
                "INFORMATION_SCHEMA.tables",
                "system.zookeeper",
            ][i % 5];
            (
                "insert_into_system",
                format!("INSERT INTO {t} FORMAT JSONEachRow"),
                good.into_bytes(),
            )
        }
        5 => {
            let t = format!("{db}.samples{}", nasty(rng));
            (
                "sql_in_identifiers",
                format!("INSERT INTO {t} FORMAT JSONEachRow"),
                good.into_bytes(),
            )
        }
        6 => {
            let s = [
                format!("DROP TABLE {db}.samples"),
                format!("ALTER TABLE {db}.samples DELETE WHERE 1"),
                "SYSTEM SHUTDOWN".into(),
                format!("INSERT INTO {db}.samples SELECT * FROM system.numbers"),
                "CREATE TABLE x (a UInt8) ENGINE=Memory".into(),
                format!("OPTIMIZE TABLE {db}.samples"),
            ][i % 6]
                .clone();
            ("not_an_insert", s, Vec::new())
        }
        7 => {
            let f = ["TSV", "CSV", "RowBinary", "Native", "TabSeparatedWithNames"][i % 5];
            (
                "passthrough_garbage",
                format!(
                    "INSERT INTO {db}.samples (metric, series_id, timestamp, value) FORMAT {f}"
                ),
                gen::bytes(rng, 512),
            )
        }
        _ => (
            "unknown_format",
            format!(
                "INSERT INTO {db}.samples FORMAT {}",
                ["Parquet", "XML", "Pretty", "Values"][i % 4]
            ),
            good.into_bytes(),
        ),
    };
    Case::hostile(kind, insert(&query, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_insert_hostile_inputs() {
    let suite = Suite::new("hostile_chc").await;
    let db = suite.db.clone();
    let report = suite
        .run("clickhouse_insert", 0x5c5c, CASES, |rng, i| {
            generate(rng, i, &db)
        })
        .await;
    assert_canaries(&report, suite.metric_rows(CANARY).await);
    let system = report.kinds.get("insert_into_system").expect("ran");
    assert_eq!(system.1, 0, "nothing was inserted into a system table");
}
