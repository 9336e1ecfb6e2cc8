//! series_id oracle: ClickHouse's own `cityHash64` (chdb-core, ClickHouse in-process) on 50
//! generated series keys and on keys of every length 0..=300 (all CityHash branches).
//! Needs `python3` with `chdb` importable (`pip install chdb-core`); fails loudly without.

use std::io::Write;
use std::process::{Command, Stdio};

use chgate_gateway::protocol::series::{series_id, series_id_of_key, series_key};

/// Deterministic keys: names and values of varied lengths with quotes, backslashes, newlines
/// and non-ASCII text, so escaping and every CityHash length branch are covered.
fn generated() -> Vec<(String, Vec<(String, String)>)> {
    let values = [
        "",
        "a",
        "x\"y",
        "back\\slash",
        "new\nline",
        "zürich",
        "200",
        "/api/v1/write",
    ];
    (0..50)
        .map(|i: usize| {
            let metric = format!("metric_{}{}", i, "x".repeat(i * 3 % 70));
            let labels = (0..i % 5)
                .map(|j| {
                    let v = format!(
                        "{}{}",
                        values[(i + j) % values.len()],
                        "v".repeat(i * j % 40)
                    );
                    (format!("l{j}"), v)
                })
                .collect();
            (metric, labels)
        })
        .collect()
}

/// Reads one `x<hex>` key per line (the `x` keeps the empty key), prints one hash per line.
const SCRIPT: &str = r#"
import sys
import chdb
keys = [line.strip()[1:] for line in sys.stdin if line.strip()]
sql = "SELECT cityHash64(unhex(k)) FROM (SELECT arrayJoin([" + ",".join("'%s'" % k for k in keys) + "]) AS k)"
# arrayJoin keeps the array order.
print(str(chdb.query(sql, "TSV")).strip())
"#;

/// `cityHash64` of each key, computed by ClickHouse (chdb) in one query.
fn clickhouse_city_hash64(keys: &[String]) -> Vec<u64> {
    let input: String = keys
        .iter()
        .map(|k| format!("x{}\n", hex(k.as_bytes())))
        .collect();
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed for the chdb oracle test");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("write keys to python3");
    let out = child.wait_with_output().expect("python3 runs");
    assert!(
        out.status.success(),
        "chdb oracle failed (pip install chdb-core?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let want: Vec<u64> = stdout
        .lines()
        .map(|l| l.trim().parse().expect("a UInt64 per line"))
        .collect();
    assert_eq!(want.len(), keys.len(), "{stdout}");
    want
}

#[test]
fn series_id_equals_clickhouse_city_hash64() {
    let series = generated();
    let keys: Vec<String> = series.iter().map(|(m, l)| series_key(m, l)).collect();
    let lengths: Vec<usize> = keys.iter().map(String::len).collect();
    assert!(lengths.iter().any(|&n| n <= 16) && lengths.iter().any(|&n| n > 64));
    let want = clickhouse_city_hash64(&keys);
    for (((metric, labels), key), want) in series.iter().zip(&keys).zip(want) {
        assert_eq!(series_id(metric, labels), want, "key {key:?}");
    }
}

/// Every key length 0..=300, so each CityHash branch and its edges (16/17, 32/33, 64/65,
/// 128/129 bytes) are checked against ClickHouse.
#[test]
fn city_hash64_equals_clickhouse_for_every_length() {
    let keys: Vec<String> = (0..=300usize)
        .map(|n| {
            (0..n)
                .map(|i| char::from(b'!' + ((i * 7 + n) % 90) as u8))
                .collect()
        })
        .collect();
    let want = clickhouse_city_hash64(&keys);
    for (key, want) in keys.iter().zip(want) {
        assert_eq!(series_id_of_key(key), want, "length {}", key.len());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
