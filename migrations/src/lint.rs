//! `chgate migrate lint`: refuses DDL that is unsafe on a replicated cluster.
//!
//! Rules (each finding names file, statement and line):
//! - `on-cluster`: DDL (`CREATE`, `DROP`, `ALTER`, `RENAME`, `TRUNCATE`) without `ON CLUSTER` would
//!   change one host only.
//! - `idempotent`: `CREATE` without `IF NOT EXISTS`, `DROP` without `IF EXISTS`, `ALTER ... ADD
//!   COLUMN` without `IF NOT EXISTS`, `DROP COLUMN` without `IF EXISTS`, and any `RENAME`. A
//!   migration killed mid-statement is resumed by re-running that statement, so each must be safe
//!   to run twice.
//! - `replicated-macros`: a `Replicated*MergeTree` needs an explicit Keeper path with `{shard}` and
//!   a replica name with `{replica}`, or replicas of different shards would share one log.
//! - `distributed-target`: `Distributed(cluster, db, table, ...)` must point at a table created by
//!   an earlier statement (of this or an earlier version).
//!
//! Files are linted with their placeholders replaced; modern files and the fallback chain (each
//! version's fallback, else its modern file) are checked as two separate histories.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};
use crate::source::{MigrationSet, SqlFile};
use crate::sql::{self, Placeholders, Token, TokenKind};

/// Which rule a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// DDL without `ON CLUSTER`.
    OnCluster,
    /// Not safe to run twice.
    Idempotent,
    /// Replicated engine without `{shard}` / `{replica}`.
    ReplicatedMacros,
    /// `Distributed` over a table not created before.
    DistributedTarget,
    /// Placeholder or tokenizer problem.
    Syntax,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::OnCluster => "on-cluster",
            Rule::Idempotent => "idempotent",
            Rule::ReplicatedMacros => "replicated-macros",
            Rule::DistributedTarget => "distributed-target",
            Rule::Syntax => "syntax",
        })
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// File name.
    pub file: String,
    /// 1-based statement number in the file.
    pub statement: usize,
    /// 1-based line of the statement.
    pub line: usize,
    /// The rule.
    pub rule: Rule,
    /// What to change.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: statement {}: [{}] {}",
            self.file, self.line, self.statement, self.rule, self.message
        )
    }
}

/// A table name as written: optional database and the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TableName {
    db: Option<String>,
    table: String,
}

impl TableName {
    fn matches(&self, other: &TableName) -> bool {
        self.table == other.table
            && match (&self.db, &other.db) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// What one statement does, as far as lint cares.
#[derive(Debug, Default)]
struct Analysis {
    problems: Vec<(Rule, String)>,
    created: Option<TableName>,
    dropped: Option<TableName>,
    distributed_over: Option<TableName>,
}

/// Lints every file of `set`.
pub fn lint(set: &MigrationSet, placeholders: &Placeholders) -> Vec<Finding> {
    let modern: Vec<&SqlFile> = set.migrations.iter().map(|m| &m.modern).collect();
    let fallback: Vec<&SqlFile> = set
        .migrations
        .iter()
        .map(|m| m.fallback.as_ref().unwrap_or(&m.modern))
        .collect();
    let mut out = BTreeSet::new();
    for chain in [modern, fallback] {
        out.extend(lint_chain(&chain, placeholders));
    }
    out.into_iter().collect()
}

/// Lints and turns findings into [`Error::Lint`].
///
/// # Errors
/// [`Error::Lint`] listing every finding.
pub fn check(set: &MigrationSet, placeholders: &Placeholders) -> Result<()> {
    let findings = lint(set, placeholders);
    if findings.is_empty() {
        return Ok(());
    }
    let report: Vec<String> = findings.iter().map(ToString::to_string).collect();
    Err(Error::Lint {
        count: findings.len(),
        report: report.join("\n"),
    })
}

/// Names of the tables the modern files of versions `..=up_to` create (and do not drop again),
/// with placeholders applied; `verify` expects each on every host.
pub fn created_tables(
    set: &MigrationSet,
    placeholders: &Placeholders,
    up_to: u32,
) -> BTreeSet<String> {
    let mut tables: Vec<TableName> = Vec::new();
    let files = set.migrations.iter().filter(|m| m.version <= up_to);
    for st in files.flat_map(|m| &m.modern.statements) {
        let Ok(sql) = placeholders.apply(&st.sql) else {
            continue;
        };
        let a = analyze(&sql);
        if let Some(d) = &a.dropped {
            tables.retain(|t| !t.matches(d));
        }
        tables.extend(a.created);
    }
    tables.into_iter().map(|t| t.table).collect()
}

fn lint_chain(files: &[&SqlFile], placeholders: &Placeholders) -> Vec<Finding> {
    let mut tables: Vec<TableName> = Vec::new();
    let mut out = Vec::new();
    for file in files {
        for st in &file.statements {
            let finding = |rule, message| Finding {
                file: file.file_name.clone(),
                statement: st.index + 1,
                line: st.line,
                rule,
                message,
            };
            let sql = match placeholders.apply(&st.sql) {
                Ok(s) => s,
                Err(e) => {
                    out.push(finding(Rule::Syntax, e));
                    continue;
                }
            };
            let a = analyze(&sql);
            if let Some(target) = &a.distributed_over {
                if !tables.iter().any(|t| t.matches(target)) {
                    out.push(finding(
                        Rule::DistributedTarget,
                        format!(
                            "Distributed over {}, which no earlier statement creates",
                            display(target)
                        ),
                    ));
                }
            }
            if let Some(d) = &a.dropped {
                tables.retain(|t| !t.matches(d));
            }
            tables.extend(a.created);
            out.extend(a.problems.into_iter().map(|(r, m)| finding(r, m)));
        }
    }
    out
}

fn display(t: &TableName) -> String {
    match &t.db {
        Some(db) => format!("{db}.{}", t.table),
        None => t.table.clone(),
    }
}

fn analyze(sql: &str) -> Analysis {
    let Ok(tokens) = sql::tokenize(sql) else {
        let mut a = Analysis::default();
        a.problems
            .push((Rule::Syntax, "unterminated literal or comment".into()));
        return a;
    };
    let sig: Vec<Token<'_>> = tokens.into_iter().filter(|t| t.is_significant()).collect();
    let mut a = Analysis::default();
    let Some(first) = sig.first() else {
        return a;
    };
    let verb = first.text.to_ascii_uppercase();
    let ddl = matches!(
        verb.as_str(),
        "CREATE" | "DROP" | "ALTER" | "RENAME" | "TRUNCATE"
    );
    if ddl && find_seq(&sig, &["ON", "CLUSTER"]).is_none() {
        a.problems.push((
            Rule::OnCluster,
            format!("{verb} without ON CLUSTER changes one host only; add ON CLUSTER ${{cluster}}"),
        ));
    }
    match verb.as_str() {
        "CREATE" => analyze_create(&sig, &mut a),
        "DROP" => analyze_drop(&sig, &mut a),
        "ALTER" => analyze_alter(&sig, &mut a),
        "RENAME" => a.problems.push((
            Rule::Idempotent,
            "RENAME cannot be re-run safely; create the new table and copy instead".into(),
        )),
        _ => {}
    }
    a
}

/// Index of the first token of `words` appearing consecutively in `sig`.
fn find_seq(sig: &[Token<'_>], words: &[&str]) -> Option<usize> {
    (0..sig.len()).find(|&i| words_at(sig, i, words))
}

fn words_at(sig: &[Token<'_>], i: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(k, w)| sig.get(i + k).is_some_and(|t| t.is_word(w)))
}

/// Object keyword after CREATE/DROP: returns (kind, index after it).
fn object_kind(sig: &[Token<'_>]) -> Option<(String, usize)> {
    let mut i = 1;
    while sig.get(i).is_some_and(|t| {
        t.is_word("OR")
            || t.is_word("REPLACE")
            || t.is_word("TEMPORARY")
            || t.is_word("MATERIALIZED")
    }) {
        i += 1;
    }
    let t = sig.get(i)?;
    Some((t.text.to_ascii_uppercase(), i + 1))
}

/// Reads `[db.]name` at `i`.
fn table_name_at(sig: &[Token<'_>], i: usize) -> Option<TableName> {
    let first = sig.get(i).filter(|t| is_name(t))?.unquoted();
    if sig.get(i + 1).is_some_and(|t| t.is_punct('.')) {
        let second = sig.get(i + 2).filter(|t| is_name(t))?.unquoted();
        return Some(TableName {
            db: Some(first),
            table: second,
        });
    }
    Some(TableName {
        db: None,
        table: first,
    })
}

fn is_name(t: &Token<'_>) -> bool {
    matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent)
}

fn analyze_create(sig: &[Token<'_>], a: &mut Analysis) {
    let Some((kind, mut i)) = object_kind(sig) else {
        return;
    };
    if words_at(sig, i, &["IF", "NOT", "EXISTS"]) {
        i += 3;
    } else {
        a.problems.push((
            Rule::Idempotent,
            format!("CREATE {kind} without IF NOT EXISTS fails when re-run"),
        ));
    }
    if kind != "TABLE" {
        return;
    }
    a.created = table_name_at(sig, i);
    if let Some(e) = find_seq(sig, &["ENGINE"]) {
        let eq = usize::from(sig.get(e + 1).is_some_and(|t| t.is_punct('=')));
        check_engine(sig, e + 1 + eq, a);
    }
}

fn check_engine(sig: &[Token<'_>], i: usize, a: &mut Analysis) {
    let Some(engine) = sig.get(i) else { return };
    let args = engine_args(sig, i + 1);
    if engine.text.starts_with("Replicated") && engine.text.ends_with("MergeTree") {
        let path = args.first().map(|g| joined(g)).unwrap_or_default();
        let replica = args.get(1).map(|g| joined(g)).unwrap_or_default();
        if !path.contains("{shard}") || !replica.contains("{replica}") {
            a.problems.push((
                Rule::ReplicatedMacros,
                format!(
                    "{} needs an explicit Keeper path with {{shard}} and a replica name with \
                     {{replica}}, e.g. ('${{keeper_root}}/tables/{{shard}}/db/t', '{{replica}}')",
                    engine.text
                ),
            ));
        }
    }
    if engine.text == "Distributed" {
        let arg = |k: usize| args.get(k).map(|g| joined(g));
        if let (Some(db), Some(table)) = (arg(1), arg(2)) {
            a.distributed_over = Some(TableName {
                db: Some(db),
                table,
            });
        }
    }
}

/// Top-level comma-separated argument groups of the `( ... )` starting at `i`.
fn engine_args<'a>(sig: &'a [Token<'a>], i: usize) -> Vec<Vec<Token<'a>>> {
    let mut out = Vec::new();
    if !sig.get(i).is_some_and(|t| t.is_punct('(')) {
        return out;
    }
    let (mut depth, mut cur) = (0usize, Vec::new());
    for t in &sig[i + 1..] {
        match t {
            t if t.is_punct('(') => depth += 1,
            t if t.is_punct(')') && depth == 0 => break,
            t if t.is_punct(')') => depth -= 1,
            t if t.is_punct(',') && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(*t);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn joined(group: &[Token<'_>]) -> String {
    group.iter().map(Token::unquoted).collect()
}

fn analyze_drop(sig: &[Token<'_>], a: &mut Analysis) {
    let Some((kind, i)) = object_kind(sig) else {
        return;
    };
    if words_at(sig, i, &["IF", "EXISTS"]) {
        if kind == "TABLE" {
            a.dropped = table_name_at(sig, i + 2);
        }
    } else {
        a.problems.push((
            Rule::Idempotent,
            format!("DROP {kind} without IF EXISTS fails when re-run"),
        ));
    }
}

fn analyze_alter(sig: &[Token<'_>], a: &mut Analysis) {
    for (i, t) in sig.iter().enumerate() {
        let (needs, what) = if t.is_word("ADD") && words_at(sig, i + 1, &["COLUMN"]) {
            (&["IF", "NOT", "EXISTS"][..], "ADD COLUMN")
        } else if t.is_word("DROP") && words_at(sig, i + 1, &["COLUMN"]) {
            (&["IF", "EXISTS"][..], "DROP COLUMN")
        } else {
            continue;
        };
        if !words_at(sig, i + 2, needs) {
            a.problems.push((
                Rule::Idempotent,
                format!(
                    "ALTER ... {what} without {} fails when re-run",
                    needs.join(" ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> MigrationSet {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        MigrationSet::from_files(&files).expect("valid set")
    }

    fn rules(files: &[(&str, &str)]) -> Vec<Rule> {
        lint(&set(files), &Placeholders::default())
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    #[test]
    fn shipped_migrations_are_lint_clean() {
        let set = MigrationSet::embedded().expect("valid");
        let findings = lint(&set, &Placeholders::default());
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn create_without_on_cluster_is_refused_with_file_and_line() {
        let f = lint(
            &set(&[(
                "V1__a.sql",
                "-- c\nCREATE TABLE IF NOT EXISTS db.t (a UInt8) ENGINE = Memory",
            )]),
            &Placeholders::default(),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].rule, f[0].line, f[0].statement),
            (Rule::OnCluster, 2, 1)
        );
        assert!(f[0]
            .to_string()
            .starts_with("V1__a.sql:2: statement 1: [on-cluster]"));
    }

    #[test]
    fn non_idempotent_ddl_is_refused() {
        let r = rules(&[(
            "V1__a.sql",
            "CREATE TABLE db.t ON CLUSTER c (a UInt8) ENGINE = Memory;\n\
             DROP TABLE db.t ON CLUSTER c;\n\
             ALTER TABLE db.t ON CLUSTER c ADD COLUMN b UInt8, DROP COLUMN IF EXISTS z;\n\
             RENAME TABLE db.t TO db.u ON CLUSTER c",
        )]);
        assert_eq!(r, vec![Rule::Idempotent; 4]);
    }

    #[test]
    fn replicated_engine_needs_shard_and_replica_macros() {
        let r = rules(&[(
            "V1__a.sql",
            "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c (a UInt8) \
             ENGINE = ReplicatedMergeTree('/ck/tables/db/t', '{replica}') ORDER BY a;\n\
             CREATE TABLE IF NOT EXISTS db.u ON CLUSTER c (a UInt8) \
             ENGINE = ReplicatedReplacingMergeTree ORDER BY a;\n\
             CREATE TABLE IF NOT EXISTS db.v ON CLUSTER c (a UInt8) \
             ENGINE = ReplicatedMergeTree('/ck/{shard}/v', '{replica}') ORDER BY a",
        )]);
        assert_eq!(r, vec![Rule::ReplicatedMacros; 2]);
    }

    #[test]
    fn distributed_must_point_at_an_earlier_table() {
        let missing = rules(&[(
            "V1__a.sql",
            "CREATE TABLE IF NOT EXISTS db.d ON CLUSTER c AS db.l \
             ENGINE = Distributed(c, db, l, rand())",
        )]);
        assert_eq!(missing, vec![Rule::DistributedTarget]);
        let ok = rules(&[
            (
                "V1__a.sql",
                "CREATE TABLE IF NOT EXISTS db.l ON CLUSTER c (a UInt8) ENGINE = Memory",
            ),
            (
                "V2__b.sql",
                "CREATE TABLE IF NOT EXISTS db.d ON CLUSTER c AS db.l \
                 ENGINE = Distributed(c, 'db', `l`, rand())",
            ),
        ]);
        assert!(ok.is_empty(), "{ok:?}");
        let dropped = rules(&[(
            "V1__a.sql",
            "CREATE TABLE IF NOT EXISTS db.l ON CLUSTER c (a UInt8) ENGINE = Memory;\
             DROP TABLE IF EXISTS db.l ON CLUSTER c;\
             CREATE TABLE IF NOT EXISTS db.d ON CLUSTER c AS db.l ENGINE = Distributed(c, db, l)",
        )]);
        assert_eq!(dropped, vec![Rule::DistributedTarget]);
    }

    #[test]
    fn keywords_inside_literals_do_not_count() {
        let r = rules(&[(
            "V1__a.sql",
            "CREATE TABLE IF NOT EXISTS db.t (c String DEFAULT 'ON CLUSTER x') ENGINE = Memory",
        )]);
        assert_eq!(r, vec![Rule::OnCluster]);
    }

    #[test]
    fn created_tables_of_the_shipped_schema() {
        let set = MigrationSet::embedded().expect("valid");
        let t = created_tables(&set, &Placeholders::default(), u32::MAX);
        assert_eq!(created_tables(&set, &Placeholders::default(), 1).len(), 2);
        let t: Vec<&str> = t.iter().map(String::as_str).collect();
        assert_eq!(
            t,
            vec!["samples", "samples_local", "series", "series_local"]
        );
    }

    #[test]
    fn unknown_placeholder_is_a_finding() {
        assert_eq!(
            rules(&[("V1__a.sql", "SELECT ${nope}")]),
            vec![Rule::Syntax]
        );
    }

    #[test]
    fn check_reports_count() {
        let err = check(
            &set(&[("V1__a.sql", "DROP TABLE t")]),
            &Placeholders::default(),
        )
        .expect_err("two problems");
        assert!(matches!(err, Error::Lint { count: 2, .. }), "{err}");
    }
}
