//! Modern ClickHouse (chdb-core, 26.9) decodes our Native and RowBinary bytes to the values we
//! meant, for modern types the 18.16 rig lacks: DateTime64, LowCardinality, Nullable, Array, Map,
//! Decimal, UUID, Enum.

use std::process::Command;

use chgate_gateway::convert::from_json;
use chgate_gateway::encode::{encode, Column, Format};
use chgate_gateway::types::ColumnType;
use serde_json::json;

const COLUMNS: &[(&str, &str)] = &[
    ("ts", "DateTime64(3, 'UTC')"),
    ("lc", "LowCardinality(String)"),
    ("n", "Nullable(Int32)"),
    ("arr", "Array(LowCardinality(String))"),
    ("m", "Map(String, Float64)"),
    ("d", "Decimal(18, 4)"),
    ("u", "UUID"),
    ("e", "Enum8('red' = 1, 'green' = 2)"),
    ("f", "FixedString(3)"),
    ("b", "Bool"),
];

fn rows() -> Vec<serde_json::Value> {
    (0..5)
        .map(|i| {
            let lc = ["alpha", "beta"][i % 2];
            let colour = ["red", "green"][i % 2];
            json!({
                "ts": format!("2024-05-0{} 10:20:30.{:03}", i + 1, i * 111),
                "lc": lc,
                "n": if i.is_multiple_of(2) { serde_json::Value::Null } else { json!(-(i as i64) * 1000) },
                "arr": (0..i).map(|j| format!("t{j}")).collect::<Vec<_>>(),
                "m": { "k": i as f64 * 1.5 },
                "d": format!("{i}.0125"),
                "u": format!("0000000{i}-0000-4000-8000-00000000000{i}"),
                "e": colour,
                "f": "abc",
                "b": i % 2 == 1,
            })
        })
        .collect()
}

fn expected(i: usize) -> String {
    let n = if i.is_multiple_of(2) {
        "\\N".to_owned()
    } else {
        (-(i as i64) * 1000).to_string()
    };
    let arr: Vec<String> = (0..i).map(|j| format!("'t{j}'")).collect();
    format!(
        "2024-05-0{}T10:20:30.{:03}\t{}\t{n}\t[{}]\t{{'k':{}}}\t{i}.0125\t0000000{i}-0000-4000-8000-00000000000{i}\t{}\tabc\t{}",
        i + 1,
        i * 111,
        ["alpha", "beta"][i % 2],
        arr.join(","),
        i as f64 * 1.5,
        ["red", "green"][i % 2],
        i % 2 == 1
    )
    .replace('T', " ")
}

#[test]
fn chdb_reads_back_our_native_and_rowbinary_bytes() {
    let columns: Vec<Column> = COLUMNS
        .iter()
        .map(|(n, t)| Column {
            name: (*n).into(),
            ty: ColumnType::parse(t).expect("type"),
            type_text: (*t).into(),
        })
        .collect();
    let values: Vec<Vec<_>> = rows()
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| from_json(&r[c.name.as_str()], &c.ty).expect("converts"))
                .collect()
        })
        .collect();
    let structure: Vec<String> = COLUMNS.iter().map(|(n, t)| format!("{n} {t}")).collect();
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    let dir = tempfile::tempdir().expect("tmp");
    for format in [Format::Native, Format::RowBinary] {
        let path = dir.path().join(format!("rows.{}", format.as_sql()));
        std::fs::write(&path, encode(format, &columns, &values)).expect("write");
        let out = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb_read.py"))
            .arg(&path)
            .arg(format.as_sql())
            .arg(structure.join(", "))
            .args(&names)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{format:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let got: Vec<&str> = text.lines().collect();
        let want: Vec<String> = (0..5).map(expected).collect();
        assert_eq!(got, want, "{format:?}");
    }
}
