//! `series_key` / `series_id`: the series identity of migrations/SCHEMA.md (`series_id`).
//!
//! `series_key` is the Prometheus text form `metric{a="1",b="x"}` with labels in the order given
//! (callers pass them sorted by name, as [`super::Sample::labels`] is), label values escaped as
//! in the Prometheus text format (`\\`, `\"`, `\n`), and no braces when there are no labels.
//! `series_id = cityHash64(series_key)`, ClickHouse's `cityHash64(String)` (CityHash v1.0.2),
//! so SQL can compute the same id: `SELECT cityHash64('up{job="api"}')`.

/// Appends the series key of `metric` + `labels` to `out` (reuse one buffer in hot loops).
/// Labels may be owned (`(String, String)`, as in a `Sample`) or borrowed (`(&str, &str)`, as
/// in a `SampleRef`).
pub fn write_series_key<N: AsRef<str>, V: AsRef<str>>(
    out: &mut String,
    metric: &str,
    labels: &[(N, V)],
) {
    out.push_str(metric);
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name.as_ref());
        out.push_str("=\"");
        push_escaped(out, value.as_ref());
        out.push('"');
    }
    out.push('}');
}

/// Appends `value` escaped as in the Prometheus text format (`\\`, `\"`, `\n`).
pub(crate) fn push_escaped(out: &mut String, value: &str) {
    if memchr::memchr3(b'\\', b'"', b'\n', value.as_bytes()).is_none() {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The series key `metric{a="1",b="x"}`; `labels` must be sorted by name (as in a `Sample`).
pub fn series_key<N: AsRef<str>, V: AsRef<str>>(metric: &str, labels: &[(N, V)]) -> String {
    let cap = metric.len()
        + labels
            .iter()
            .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 4)
            .sum::<usize>()
        + 2;
    let mut out = String::with_capacity(cap);
    write_series_key(&mut out, metric, labels);
    out
}

/// `cityHash64(series_key(metric, labels))` exactly as ClickHouse computes it; the sharding key
/// of the `samples` and `series` tables.
pub fn series_id<N: AsRef<str>, V: AsRef<str>>(metric: &str, labels: &[(N, V)]) -> u64 {
    series_id_of_key(&series_key(metric, labels))
}

/// `cityHash64(key)` for an already built series key.
pub fn series_id_of_key(key: &str) -> u64 {
    super::cityhash::city_hash_64(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn key_forms() {
        assert_eq!(series_key::<&str, &str>("up", &[]), "up");
        assert_eq!(series_key("up", &[("job", "api")]), r#"up{job="api"}"#);
        assert_eq!(series_key("up", &l(&[("job", "api")])), r#"up{job="api"}"#);
        assert_eq!(
            series_key("m", &l(&[("a", "1"), ("b", "x\\y\"z\nw")])),
            r#"m{a="1",b="x\\y\"z\nw"}"#
        );
    }

    /// Verified against ClickHouse 26.9 (chdb-core 26.9.0), each key sent as hex to avoid SQL
    /// escaping: `python3 -c "import chdb; k=b'up'; print(chdb.query(f\"SELECT
    /// cityHash64(unhex('{k.hex()}'))\", 'CSV'))"`.
    #[test]
    fn ids_match_clickhouse() {
        let long = "x".repeat(200);
        let cases: &[(&str, u64)] = &[
            ("up", 15141577472833707455),
            (r#"up{job="api"}"#, 1012785975844414611),
            (
                r#"http_requests_total{code="200",instance="127.0.0.1:9090",job="prometheus"}"#,
                5763275824679822701,
            ),
            (r#"m{a="x\\y\"z\nw"}"#, 1865360837157227533),
            (
                r#"fixture_influx_count{host="h0",region="eu"}"#,
                18094128742279963978,
            ),
            (r#"température{ville="Zürich"}"#, 5026032944329769971),
            (&long, 9758507529356734270),
        ];
        for (key, want) in cases {
            assert_eq!(series_id_of_key(key), *want, "{key}");
        }
    }
}
