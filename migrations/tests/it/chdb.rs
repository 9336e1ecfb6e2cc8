//! chdb oracle: every shipped statement (modern and fallback) parses on ClickHouse 26.x and its
//! non-replicated twin creates (runs `tests/chdb_oracle.py`; fails when chdb-core is missing).

use std::process::Command;

use chgate_migrations::source::{MigrationSet, Variant};
use chgate_migrations::sql::{self, Placeholders, Token};

/// The statement as a single-server table: no `ON CLUSTER`, `Replicated*MergeTree(path, replica,
/// rest)` → `*MergeTree(rest)`, `Distributed(c, db, t, key)` → `Merge(db, '^t$')` plus a check that
/// `key` is a valid expression over `db.t`.
fn twin(stmt: &str) -> (String, Vec<String>) {
    let tokens = sql::tokenize(stmt).expect("shipped SQL tokenizes");
    let mut out = String::new();
    let mut checks = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let sig_from = |k: usize| -> Vec<(usize, Token<'_>)> {
            tokens
                .iter()
                .copied()
                .enumerate()
                .skip(k)
                .filter(|(_, t)| t.is_significant())
                .take(3)
                .collect()
        };
        let t = tokens[i];
        if t.is_word("ON") {
            let next = sig_from(i + 1);
            if next.first().is_some_and(|(_, n)| n.is_word("CLUSTER")) {
                i = next[1].0 + 1;
                continue;
            }
        }
        let engine = t.text;
        let is_engine = engine.ends_with("MergeTree") && engine.starts_with("Replicated")
            || engine == "Distributed";
        if is_engine
            && sig_from(i + 1)
                .first()
                .is_some_and(|(_, n)| n.is_punct('('))
        {
            let open = sig_from(i + 1)[0].0;
            let (args, close) = args(&tokens, open);
            if engine == "Distributed" {
                out.push_str(&format!("Merge({}, '^{}$')", args[1], args[2]));
                if let Some(key) = args.get(3) {
                    checks.push(format!("SELECT {key} FROM {}.{} LIMIT 0", args[1], args[2]));
                }
            } else {
                out.push_str(&format!(
                    "{}({})",
                    &engine["Replicated".len()..],
                    args[2..].join(", ")
                ));
            }
            i = close + 1;
            continue;
        }
        out.push_str(t.text);
        i += 1;
    }
    (out, checks)
}

/// Top-level arguments of the parenthesis at `open`, and the index of its `)`.
fn args(tokens: &[Token<'_>], open: usize) -> (Vec<String>, usize) {
    let (mut depth, mut cur, mut out) = (0, String::new(), Vec::new());
    for (k, t) in tokens.iter().enumerate().skip(open + 1) {
        if t.is_punct(')') && depth == 0 {
            out.push(cur.trim().to_owned());
            return (out, k);
        }
        if t.is_punct(',') && depth == 0 {
            out.push(std::mem::take(&mut cur).trim().to_owned());
            continue;
        }
        depth += usize::from(t.is_punct('('));
        depth -= usize::from(t.is_punct(')'));
        cur.push_str(t.text);
    }
    panic!("unbalanced engine arguments in {tokens:?}");
}

#[test]
fn twin_strips_cluster_and_replication() {
    let (t, checks) = twin(
        "CREATE TABLE IF NOT EXISTS d.x ON CLUSTER c (a UInt8) \
         ENGINE = ReplicatedReplacingMergeTree('/p/{shard}', '{replica}', a) ORDER BY a",
    );
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        t,
        "CREATE TABLE IF NOT EXISTS d.x (a UInt8) ENGINE = ReplacingMergeTree(a) ORDER BY a"
    );
    assert!(checks.is_empty());
    let (t, checks) =
        twin("CREATE TABLE d.y ON CLUSTER c AS d.x ENGINE = Distributed(c, d, x, cityHash64(a))");
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(t, "CREATE TABLE d.y AS d.x ENGINE = Merge(d, '^x$')");
    assert_eq!(checks, vec!["SELECT cityHash64(a) FROM d.x LIMIT 0"]);
}

#[test]
fn every_shipped_statement_parses_and_its_twin_creates_on_chdb() {
    let set = MigrationSet::embedded().expect("shipped migrations load");
    let mut items = Vec::new();
    // Each variant in its own database: both create the same table names. Fallback files must
    // work on modern servers too (a cluster upgraded after a fallback ran keeps those tables).
    for (variant, db) in [
        (Variant::Modern, "chgate_chdb_modern"),
        (Variant::Fallback, "chgate_chdb_fallback"),
    ] {
        let ph = Placeholders::new(db, "chgate", "/clickhouse", 30).expect("placeholders");
        let create = format!("CREATE DATABASE IF NOT EXISTS {db}");
        items.push(serde_json::json!({
            "file": "(setup)", "statement": 0, "sql": create, "twin": create, "checks": [],
        }));
        for m in &set.migrations {
            let file = m.file(variant).unwrap_or(&m.modern);
            for st in &file.statements {
                let sql = ph.apply(&st.sql).expect("placeholders apply");
                let (twin, checks) = twin(&sql);
                items.push(serde_json::json!({
                    "file": file.file_name, "statement": st.index + 1,
                    "sql": sql, "twin": twin, "checks": checks,
                }));
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("statements.json");
    std::fs::write(&input, serde_json::to_vec_pretty(&items).expect("json")).expect("write");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb_oracle.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&input)
        .output()
        .expect("python3 must be installed to run the chdb oracle");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chdb oracle failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("{} statements, 0 failures", items.len())),
        "{stdout}"
    );
    eprintln!("{stdout}");
}
