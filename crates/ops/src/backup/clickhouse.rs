//! ClickHouse backup and restore, one replica per shard.
//!
//! Method by server version ([`Method::for_version`]):
//! - **Freeze** (servers before 22.8, e.g. the 18.16 rig): per table `SYSTEM SYNC REPLICA` (the
//!   replica holds every part its shard acknowledged), `SYSTEM STOP MERGES` (the part set cannot
//!   change under us), `ALTER TABLE … FREEZE` (hard links under `shadow/N/`), the row count of
//!   each frozen part from `system.parts`, `SYSTEM START MERGES`, then a copy of the frozen parts
//!   with a sha256 of every file. Restore copies the parts into `detached/` of one replica per
//!   shard and runs `ALTER TABLE … ATTACH PARTITION ID`; the other replicas fetch them. Reading
//!   `shadow/` needs the server's filesystem: chgate must run on the server host (the local rig).
//! - **BackupSql** (22.8+): `BACKUP TABLE … TO Disk('backups', '<id>/shard-N/<db>/<table>')` and
//!   `RESTORE TABLE … FROM …` on one replica per shard; the server needs a disk named `backups`
//!   in `<storage_configuration>` and `<backups><allowed_disk>backups</allowed_disk></backups>`.
//!
//! Point in time: per table and shard. For one instant across tables, stop the writers first.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chgate_clickhouse_http::{quote, quote_ident, Client, ServerVersion};
use chgate_topology::ClickHouseNode;
use serde::{Deserialize, Serialize};

use super::{sum_file, FileSum};
use crate::{ch, count, io, Error, Ops, Result};

/// How a shard's tables are copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `ALTER TABLE … FREEZE` + shadow copy + `ATTACH PARTITION`.
    Freeze,
    /// The server's `BACKUP` / `RESTORE` statements.
    BackupSql,
}

impl Method {
    /// `BACKUP`/`RESTORE` arrived in 22.8 (production-ready); older servers freeze.
    pub fn for_version(v: ServerVersion) -> Method {
        if (v.major, v.minor) >= (22, 8) {
            Method::BackupSql
        } else {
            Method::Freeze
        }
    }
}

/// The ClickHouse part of a manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClickHouseBackup {
    /// Databases backed up.
    pub databases: Vec<String>,
    /// One entry per shard.
    pub shards: Vec<ShardBackup>,
}

/// One shard, copied from one of its replicas.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardBackup {
    /// Shard number.
    pub shard: u32,
    /// The replica the copy came from.
    pub source_replica: String,
    /// Its `version()`.
    pub server_version: String,
    /// How it was copied.
    pub method: Method,
    /// Every table of the databases, data tables first.
    pub tables: Vec<TableBackup>,
}

/// One table of one shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableBackup {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// Engine (`ReplicatedMergeTree`, `Distributed`, ...).
    pub engine: String,
    /// `SHOW CREATE TABLE` text (macros unexpanded), to recreate it.
    pub create: String,
    /// Rows on this shard at backup time (0 for tables without data).
    pub rows: u64,
    /// Frozen parts (Freeze method).
    pub parts: Vec<PartBackup>,
    /// Server-side location (BackupSql method).
    pub server_backup: Option<String>,
    /// Keeper path of a replicated table.
    pub zookeeper_path: Option<String>,
    /// Set when the table replicates across shards (one Keeper path for the whole cluster, like
    /// the migration ledger): its data was copied with that earlier shard and is restored once.
    pub same_as_shard: Option<u32>,
}

/// One frozen data part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartBackup {
    /// Part name (`20261125_1_1_0`).
    pub name: String,
    /// Partition id for `ATTACH PARTITION ID`.
    pub partition_id: String,
    /// Rows.
    pub rows: u64,
    /// Its files.
    pub files: Vec<FileSum>,
}

/// Restore verification of one table on one replica.
#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    /// Shard.
    pub shard: u32,
    /// Replica node.
    pub replica: String,
    /// `database.table`.
    pub table: String,
    /// Rows in the backup.
    pub want: u64,
    /// Rows found after the restore.
    pub got: u64,
}

impl TableCheck {
    /// Counts equal.
    pub fn ok(&self) -> bool {
        self.want == self.got
    }
}

impl fmt::Display for TableCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shard {} {} {}: {} rows, backup has {}",
            self.shard, self.replica, self.table, self.got, self.want
        )
    }
}

const DDL_TIMEOUT: Duration = Duration::from_secs(120);

/// Nodes of each shard, shard-major.
fn shards(ops: &Ops) -> Vec<(u32, Vec<ClickHouseNode>)> {
    let mut out: Vec<(u32, Vec<ClickHouseNode>)> = Vec::new();
    for n in ops.topology().clickhouse_nodes() {
        match out.last_mut() {
            Some((s, v)) if *s == n.shard => v.push(n),
            _ => out.push((n.shard, vec![n])),
        }
    }
    out
}

/// The first replica of the shard that answers, with its client and version.
async fn pick(
    ops: &Ops,
    nodes: &[ClickHouseNode],
) -> Result<(ClickHouseNode, Client, ServerVersion)> {
    let mut why = Vec::new();
    for n in nodes {
        let c = ops.client(n, DDL_TIMEOUT)?;
        match c.version().await {
            Ok(v) => return Ok((n.clone(), c, v)),
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(Error::NotFound(format!(
        "no replica of the shard answers: {}",
        why.join("; ")
    )))
}

#[derive(Deserialize)]
struct TableRow {
    name: String,
    engine: String,
}

#[derive(Deserialize)]
struct Statement {
    statement: String,
}

#[derive(Deserialize)]
struct PartRow {
    name: String,
    partition_id: String,
    rows: u64,
}

/// Backs up `databases` into `<dir>/clickhouse/`.
///
/// # Errors
/// Server or file errors naming the host and table.
pub async fn backup(
    ops: &Ops,
    databases: &[String],
    dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<ClickHouseBackup> {
    let mut out = ClickHouseBackup {
        databases: databases.to_vec(),
        shards: Vec::new(),
    };
    for (shard, nodes) in shards(ops) {
        let (node, c, version) = pick(ops, &nodes).await?;
        let method = Method::for_version(version);
        let mut sb = ShardBackup {
            shard,
            source_replica: node.name.clone(),
            server_version: version.to_string(),
            method,
            tables: Vec::new(),
        };
        for db in databases {
            let tables = list_tables(&c, db).await?;
            if tables.is_empty() {
                progress(&format!(
                    "shard {shard} ({}): database {db} has no tables",
                    node.name
                ));
            }
            for t in tables {
                let zk = zookeeper_path(&c, db, &t.name).await?;
                if let Some(first) = shared_with(&out.shards, zk.as_deref()) {
                    progress(&format!(
                        "shard {shard}: {db}.{} replicates cluster-wide; copied with shard {}",
                        t.name, first.0
                    ));
                    let mut tb = first.1.clone();
                    tb.parts.clear();
                    tb.same_as_shard = Some(first.0);
                    sb.tables.push(tb);
                    continue;
                }
                progress(&format!("shard {shard} ({}): {db}.{}", node.name, t.name));
                let mut tb = backup_table(ops, &node, &c, db, &t, method, dir, shard).await?;
                tb.zookeeper_path = zk;
                sb.tables.push(tb);
            }
        }
        out.shards.push(sb);
    }
    Ok(out)
}

/// The earlier shard (and its table) that already holds the table with Keeper path `zk`.
fn shared_with<'a>(done: &'a [ShardBackup], zk: Option<&str>) -> Option<(u32, &'a TableBackup)> {
    let zk = zk?;
    done.iter().find_map(|s| {
        s.tables
            .iter()
            .find(|t| t.zookeeper_path.as_deref() == Some(zk) && t.same_as_shard.is_none())
            .map(|t| (s.shard, t))
    })
}

async fn zookeeper_path(c: &Client, db: &str, table: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Zk {
        zookeeper_path: String,
    }
    let rows: Vec<Zk> = c
        .rows(&format!(
            "SELECT zookeeper_path FROM system.replicas WHERE database = {} AND table = {}",
            quote(db),
            quote(table)
        ))
        .await
        .map_err(ch(format!("zookeeper_path of {db}.{table}")))?;
    Ok(rows.into_iter().next().map(|z| z.zookeeper_path))
}

/// Tables of `db`, data tables (`*MergeTree`) first so a restore creates them before the
/// `Distributed` tables and views that read them.
async fn list_tables(c: &Client, db: &str) -> Result<Vec<TableRow>> {
    let mut tables: Vec<TableRow> = c
        .rows(&format!(
            "SELECT name, engine FROM system.tables WHERE database = {} ORDER BY name",
            quote(db)
        ))
        .await
        .map_err(ch(format!("list tables of {db}")))?;
    tables.sort_by_key(|t| !t.engine.ends_with("MergeTree"));
    Ok(tables)
}

#[allow(clippy::too_many_arguments)]
async fn backup_table(
    ops: &Ops,
    node: &ClickHouseNode,
    c: &Client,
    db: &str,
    t: &TableRow,
    method: Method,
    dir: &Path,
    shard: u32,
) -> Result<TableBackup> {
    let full = format!("{}.{}", quote_ident(db), quote_ident(&t.name));
    let create: Vec<Statement> = c
        .rows(&format!("SHOW CREATE TABLE {full}"))
        .await
        .map_err(ch(format!("SHOW CREATE TABLE {full} on {}", node.name)))?;
    let mut tb = TableBackup {
        database: db.to_owned(),
        table: t.name.clone(),
        engine: t.engine.clone(),
        create: create
            .into_iter()
            .next()
            .map(|s| s.statement)
            .unwrap_or_default(),
        rows: 0,
        parts: Vec::new(),
        server_backup: None,
        zookeeper_path: None,
        same_as_shard: None,
    };
    if !t.engine.ends_with("MergeTree") {
        return Ok(tb);
    }
    if t.engine.starts_with("Replicated") {
        c.query_with(
            &format!("SYSTEM SYNC REPLICA {full}"),
            &[("receive_timeout", "60")],
        )
        .await
        .map_err(ch(format!("SYSTEM SYNC REPLICA {full} on {}", node.name)))?;
    }
    match method {
        Method::Freeze => {
            let dest = dir.join("clickhouse").join(format!("shard-{shard}"));
            tb.parts = freeze_copy(ops, node, c, db, &t.name, &dest, dir).await?;
            tb.rows = tb.parts.iter().map(|p| p.rows).sum();
        }
        Method::BackupSql => {
            let loc = format!(
                "Disk('backups', {})",
                quote(&format!("{}/shard-{shard}/{db}/{}", backup_id(dir), t.name))
            );
            tb.rows = count(c, &full).await?;
            c.execute(&format!("BACKUP TABLE {full} TO {loc}"))
                .await
                .map_err(ch(format!("BACKUP TABLE {full} on {}", node.name)))?;
            tb.server_backup = Some(loc);
        }
    }
    Ok(tb)
}

fn backup_id(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// FREEZE with merges stopped, copy the shadow, drop the shadow.
async fn freeze_copy(
    ops: &Ops,
    node: &ClickHouseNode,
    c: &Client,
    db: &str,
    table: &str,
    dest: &Path,
    base: &Path,
) -> Result<Vec<PartBackup>> {
    let full = format!("{}.{}", quote_ident(db), quote_ident(table));
    let on = |what: &str| format!("{what} {full} on {}", node.name);
    c.execute(&format!("SYSTEM STOP MERGES {full}"))
        .await
        .map_err(ch(on("SYSTEM STOP MERGES")))?;
    let frozen = async {
        c.execute(&format!("ALTER TABLE {full} FREEZE"))
            .await
            .map_err(ch(on("ALTER TABLE FREEZE")))?;
        let parts: Vec<PartRow> = c
            .rows(&format!(
                "SELECT name, partition_id, toUInt64(rows) AS rows FROM system.parts \
                 WHERE database = {} AND table = {} AND active",
                quote(db),
                quote(table)
            ))
            .await
            .map_err(ch(on("read parts of")))?;
        Ok::<_, Error>(parts)
    }
    .await;
    // Merges resume whatever happened; the frozen hard links do not change.
    let restarted = c.execute(&format!("SYSTEM START MERGES {full}")).await;
    let parts = frozen?;
    restarted.map_err(ch(on("SYSTEM START MERGES")))?;
    let data = ops.local_data_dir(&node.name)?;
    let shadow_root = data.join("shadow");
    let inc =
        std::fs::read_to_string(shadow_root.join("increment.txt")).map_err(io(&shadow_root))?;
    let shadow = shadow_root.join(inc.trim());
    let src = shadow.join("data").join(db).join(table);
    let result = copy_parts(&src, &dest.join(db).join(table), base, &parts);
    let _ = std::fs::remove_dir_all(&shadow);
    result
}

fn copy_parts(src: &Path, dest: &Path, base: &Path, parts: &[PartRow]) -> Result<Vec<PartBackup>> {
    let mut out = Vec::new();
    if !src.exists() {
        return Ok(out); // an empty table freezes nothing
    }
    for entry in std::fs::read_dir(src).map_err(io(src))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let row = parts
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::Backup {
                backup: backup_id(base),
                reason: format!(
                    "frozen part {name} of {} is not an active part",
                    src.display()
                ),
            })?;
        let to = dest.join(&name);
        let files = copy_dir(&entry.path(), &to, base)?;
        out.push(PartBackup {
            name,
            partition_id: row.partition_id.clone(),
            rows: row.rows,
            files,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Copies the files of one part directory (flat) and sums each copy.
fn copy_dir(from: &Path, to: &Path, base: &Path) -> Result<Vec<FileSum>> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    let mut sums = Vec::new();
    for f in std::fs::read_dir(from).map_err(io(from))?.flatten() {
        let target = to.join(f.file_name());
        std::fs::copy(f.path(), &target).map_err(io(&f.path()))?;
        sums.push(sum_file(base, &target)?);
    }
    sums.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(sums)
}

/// `CREATE TABLE db.t …` from `SHOW CREATE TABLE` as `CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c …`.
///
/// # Errors
/// [`Error::Backup`] when the text is not a `CREATE TABLE`.
pub fn on_cluster_create(create: &str, cluster: &str) -> Result<String> {
    let bad = || Error::Backup {
        backup: String::new(),
        reason: format!("not a CREATE TABLE statement: {create}"),
    };
    let rest = create
        .trim()
        .strip_prefix("CREATE TABLE ")
        .ok_or_else(bad)?;
    let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
    let mut in_quote = false;
    let end = rest
        .char_indices()
        .find(|&(_, ch)| {
            if ch == '`' {
                in_quote = !in_quote;
            }
            !in_quote && (ch.is_whitespace() || ch == '(')
        })
        .map_or(rest.len(), |(i, _)| i);
    let (name, tail) = rest.split_at(end);
    if name.is_empty() {
        return Err(bad());
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {}{}{tail}",
        quote_ident(cluster),
        if tail.starts_with(' ') { "" } else { " " }
    ))
}

/// Restores the ClickHouse part of a backup and checks row counts on every replica.
///
/// # Errors
/// [`Error::Backup`] when a target table already holds rows, or server and file errors.
pub async fn restore(
    ops: &Ops,
    dir: &Path,
    b: &ClickHouseBackup,
    progress: &dyn Fn(&str),
) -> Result<Vec<TableCheck>> {
    let all = shards(ops);
    let first = all.first().map(|(_, n)| n.clone()).unwrap_or_default();
    let (_, coord, _) = pick(ops, &first).await?;
    create_schema(ops, &coord, b, progress).await?;
    let mut checks = Vec::new();
    for sb in &b.shards {
        let nodes = all
            .iter()
            .find(|(s, _)| *s == sb.shard)
            .map(|(_, n)| n.clone())
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "shard {} of the backup is not in the topology",
                    sb.shard
                ))
            })?;
        let (node, c, _) = pick(ops, &nodes).await?;
        let data = sb.tables.iter().filter(|t| t.same_as_shard.is_none());
        for t in data.filter(|t| t.engine.ends_with("MergeTree")) {
            progress(&format!(
                "shard {} ({}): restoring {}.{} ({} rows)",
                sb.shard, node.name, t.database, t.table, t.rows
            ));
            restore_table(ops, &node, &c, dir, sb, t).await?;
        }
        for n in &nodes {
            checks.extend(check_replica(ops, n, sb).await?);
        }
    }
    Ok(checks)
}

/// Creates missing databases and tables `ON CLUSTER` from the manifest (shard 1's copy).
async fn create_schema(
    ops: &Ops,
    c: &Client,
    b: &ClickHouseBackup,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let cluster = &ops.topology().cluster.name;
    let on = quote_ident(cluster);
    for db in &b.databases {
        c.execute(&format!(
            "CREATE DATABASE IF NOT EXISTS {} ON CLUSTER {on}",
            quote_ident(db)
        ))
        .await
        .map_err(ch(format!("CREATE DATABASE {db} ON CLUSTER")))?;
    }
    let mut done = BTreeSet::new();
    for t in b.shards.iter().flat_map(|s| s.tables.iter()) {
        let key = format!("{}.{}", t.database, t.table);
        if !done.insert(key.clone()) {
            continue;
        }
        let exists = c
            .query(&format!(
                "SELECT count() FROM system.tables WHERE database = {} AND name = {}",
                quote(&t.database),
                quote(&t.table)
            ))
            .await
            .map_err(ch(format!("look up {key}")))?;
        if exists.trim() == "1" {
            continue;
        }
        progress(&format!("creating {key} ON CLUSTER"));
        let sql = on_cluster_create(&t.create, cluster)?;
        c.execute(&sql)
            .await
            .map_err(ch(format!("create {key} ON CLUSTER")))?;
    }
    Ok(())
}

async fn restore_table(
    ops: &Ops,
    node: &ClickHouseNode,
    c: &Client,
    dir: &Path,
    sb: &ShardBackup,
    t: &TableBackup,
) -> Result<()> {
    let full = format!("{}.{}", quote_ident(&t.database), quote_ident(&t.table));
    let have = count(c, &full).await?;
    if have > 0 {
        return Err(Error::Backup {
            backup: backup_id(dir),
            reason: format!(
                "{full} on {} already holds {have} rows; restore only into empty tables \
                 (DROP TABLE … ON CLUSTER or TRUNCATE it first)",
                node.name
            ),
        });
    }
    if let Some(loc) = &t.server_backup {
        return c
            .execute(&format!(
                "RESTORE TABLE {full} FROM {loc} SETTINGS allow_non_empty_tables = 0"
            ))
            .await
            .map_err(ch(format!("RESTORE TABLE {full} on {}", node.name)));
    }
    let detached = ops
        .local_data_dir(&node.name)?
        .join("data")
        .join(&t.database)
        .join(&t.table)
        .join("detached");
    std::fs::create_dir_all(&detached).map_err(io(&detached))?;
    let src = dir
        .join("clickhouse")
        .join(format!("shard-{}", sb.shard))
        .join(&t.database)
        .join(&t.table);
    let mut partitions = BTreeSet::new();
    for p in &t.parts {
        copy_into_detached(&src.join(&p.name), &detached.join(&p.name))?;
        partitions.insert(p.partition_id.clone());
    }
    for pid in partitions {
        c.execute(&format!(
            "ALTER TABLE {full} ATTACH PARTITION ID {}",
            quote(&pid)
        ))
        .await
        .map_err(ch(format!(
            "ATTACH PARTITION ID {pid} of {full} on {}",
            node.name
        )))?;
    }
    Ok(())
}

/// Copies a part into `detached/`, owned like `detached/` itself (the server's user).
fn copy_into_detached(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    let owner = std::fs::metadata(to.parent().unwrap_or(to)).map_err(io(to))?;
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = (owner.uid(), owner.gid());
    std::os::unix::fs::chown(to, Some(uid), Some(gid)).map_err(io(to))?;
    for f in std::fs::read_dir(from).map_err(io(from))?.flatten() {
        let target: PathBuf = to.join(f.file_name());
        std::fs::copy(f.path(), &target).map_err(io(&f.path()))?;
        std::os::unix::fs::chown(&target, Some(uid), Some(gid)).map_err(io(&target))?;
    }
    Ok(())
}

/// Row counts of every data table of the shard on replica `n`, after it caught up.
async fn check_replica(ops: &Ops, n: &ClickHouseNode, sb: &ShardBackup) -> Result<Vec<TableCheck>> {
    let c = ops.client(n, DDL_TIMEOUT)?;
    let mut out = Vec::new();
    for t in sb.tables.iter().filter(|t| t.engine.ends_with("MergeTree")) {
        let full = format!("{}.{}", quote_ident(&t.database), quote_ident(&t.table));
        if t.engine.starts_with("Replicated") {
            c.query_with(
                &format!("SYSTEM SYNC REPLICA {full}"),
                &[("receive_timeout", "60")],
            )
            .await
            .map_err(ch(format!("SYSTEM SYNC REPLICA {full} on {}", n.name)))?;
        } else if n.name != sb.source_replica {
            continue; // a plain MergeTree table lives on the replica it was copied from only
        }
        out.push(TableCheck {
            shard: sb.shard,
            replica: n.name.clone(),
            table: format!("{}.{}", t.database, t.table),
            want: t.rows,
            got: count(&c, &full).await?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_follows_the_server_version() {
        let v = |s| ServerVersion::parse(s).expect("version");
        assert_eq!(Method::for_version(v("18.16.1")), Method::Freeze);
        assert_eq!(Method::for_version(v("22.7.1")), Method::Freeze);
        assert_eq!(Method::for_version(v("22.8.1")), Method::BackupSql);
        assert_eq!(Method::for_version(v("26.9.1.1")), Method::BackupSql);
    }

    #[test]
    fn show_create_becomes_an_idempotent_on_cluster_create() {
        let s = "CREATE TABLE db.t ( id UInt64) ENGINE = ReplicatedMergeTree('/p/{shard}', '{replica}') ORDER BY id";
        assert_eq!(
            on_cluster_create(s, "chgate").expect("create"),
            "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER `chgate` ( id UInt64) ENGINE = ReplicatedMergeTree('/p/{shard}', '{replica}') ORDER BY id"
        );
        let q = "CREATE TABLE `my db`.`t x`(id UInt64) ENGINE = Memory";
        assert_eq!(
            on_cluster_create(q, "c").expect("create"),
            "CREATE TABLE IF NOT EXISTS `my db`.`t x` ON CLUSTER `c` (id UInt64) ENGINE = Memory"
        );
        assert!(on_cluster_create("CREATE VIEW v AS SELECT 1", "c").is_err());
    }

    #[test]
    fn frozen_parts_are_copied_with_checksums_and_row_counts() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("shadow/1/data/db/t");
        std::fs::create_dir_all(src.join("p1_1_1_0")).expect("mkdir");
        std::fs::write(src.join("p1_1_1_0/id.bin"), b"abc").expect("write");
        let base = tmp.path().join("backup");
        let parts = [PartRow {
            name: "p1_1_1_0".into(),
            partition_id: "p1".into(),
            rows: 3,
        }];
        let out =
            copy_parts(&src, &base.join("clickhouse/shard-1/db/t"), &base, &parts).expect("copy");
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].rows, out[0].partition_id.as_str()), (3, "p1"));
        assert_eq!(
            out[0].files[0].path,
            "clickhouse/shard-1/db/t/p1_1_1_0/id.bin"
        );
        assert_eq!(out[0].files[0].size, 3);
        let e = copy_parts(&src, &base.join("x"), &base, &[]).expect_err("unknown part");
        assert!(e.to_string().contains("p1_1_1_0"), "{e}");
    }
}
