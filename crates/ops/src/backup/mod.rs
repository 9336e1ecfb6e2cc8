//! `chgate backup create | list | restore`.
//!
//! A backup is one directory `<target>/<id>/` holding `manifest.json` ([`Manifest`]: versions,
//! sha256 of every file, row counts), `postgres/<database>.dump` (`pg_dump -Fc`) and
//! `clickhouse/shard-<n>/<database>/<table>/<part>/…` (frozen parts of one replica per shard).
//! Restore checks every checksum before touching a server, recreates missing databases and
//! tables (`ON CLUSTER`, from the `SHOW CREATE TABLE` text in the manifest), attaches the parts on
//! one replica of each shard (replication copies them to the others) and then compares the row
//! count of every table on every replica with the manifest.
//!
//! The target is a local directory. For object storage, sync that directory (`aws s3 sync`,
//! `rclone`) after `create` and back before `restore`; the manifest's checksums detect a bad copy.

pub mod clickhouse;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{io, Error, Ops, Result};

/// Manifest format version.
pub const FORMAT: u32 = 1;

/// What a backup holds; `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// Backup id (directory name), `YYYYMMDDTHHMMSSZ`.
    pub id: String,
    /// UTC time the backup started, RFC 3339.
    pub created: String,
    /// chgate version that wrote it.
    pub chgate_version: String,
    /// Cluster name.
    pub cluster: String,
    /// ClickHouse part, when backed up.
    pub clickhouse: Option<clickhouse::ClickHouseBackup>,
    /// PostgreSQL part, when backed up.
    pub postgres: Option<postgres::PostgresBackup>,
    /// Seconds the backup took.
    pub duration_s: f64,
}

/// One file of a backup, relative to the backup directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Path relative to the backup directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256, hex.
    pub sha256: String,
}

/// What to back up.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Parent directory of backups (default `<state_dir>/backups`).
    pub target: PathBuf,
    /// ClickHouse databases (default: the topology's `cluster.database`); empty = skip ClickHouse.
    pub databases: Vec<String>,
    /// Back up PostgreSQL (chgate's and Grafana's databases).
    pub postgres: bool,
}

/// What to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Restore the ClickHouse part.
    pub clickhouse: bool,
    /// Restore the PostgreSQL part.
    pub postgres: bool,
}

/// A restore's outcome: per table and shard, rows wanted and found on each replica.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    /// ClickHouse tables checked.
    pub clickhouse: Vec<clickhouse::TableCheck>,
    /// PostgreSQL tables checked: (database.table, rows wanted, rows found).
    pub postgres: Vec<(String, u64, u64)>,
}

/// The default parent directory of backups.
pub fn default_target(ops: &Ops) -> PathBuf {
    ops.state_dir().join("backups")
}

/// Takes a backup; returns its manifest (also written as `manifest.json`).
///
/// # Errors
/// Any server or file error, naming the host, table or path.
pub async fn create(ops: &Ops, opts: &CreateOptions, progress: &dyn Fn(&str)) -> Result<Manifest> {
    let started = std::time::Instant::now();
    let now = SystemTime::now();
    let id = unique_id(&opts.target, now);
    let dir = opts.target.join(&id);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut m = Manifest {
        format: FORMAT,
        id: id.clone(),
        created: rfc3339(now),
        chgate_version: env!("CARGO_PKG_VERSION").into(),
        cluster: ops.topology().cluster.name.clone(),
        clickhouse: None,
        postgres: None,
        duration_s: 0.0,
    };
    if opts.postgres {
        progress("postgres: pg_dump");
        m.postgres = Some(postgres::dump(ops, &dir).await?);
    }
    if !opts.databases.is_empty() {
        m.clickhouse = Some(clickhouse::backup(ops, &opts.databases, &dir, progress).await?);
    }
    m.duration_s = started.elapsed().as_secs_f64();
    write_manifest(&dir, &m)?;
    Ok(m)
}

/// Restores backup `id` from `target` and verifies it by row counts.
///
/// # Errors
/// [`Error::Backup`] for a missing or corrupt backup (nothing is changed then),
/// [`Error::Verify`] when row counts differ after the restore, or any server error.
pub async fn restore(
    ops: &Ops,
    target: &Path,
    id: &str,
    opts: &RestoreOptions,
    progress: &dyn Fn(&str),
) -> Result<RestoreReport> {
    let dir = target.join(id);
    let m = read_manifest(&dir)?;
    progress("checking checksums");
    verify_files(&dir, &m)?;
    let mut report = RestoreReport::default();
    if opts.postgres {
        if let Some(pg) = &m.postgres {
            report.postgres = postgres::restore(ops, &dir, pg, progress).await?;
        }
    }
    if opts.clickhouse {
        if let Some(c) = &m.clickhouse {
            report.clickhouse = clickhouse::restore(ops, &dir, c, progress).await?;
        }
    }
    let mut bad: Vec<String> = report
        .clickhouse
        .iter()
        .filter(|c| !c.ok())
        .map(ToString::to_string)
        .collect();
    bad.extend(
        report
            .postgres
            .iter()
            .filter(|(_, want, got)| want != got)
            .map(|(t, want, got)| format!("postgres {t}: {got} rows, backup has {want}")),
    );
    if bad.is_empty() {
        Ok(report)
    } else {
        Err(Error::Verify { mismatches: bad })
    }
}

/// Every backup under `target`, oldest first (directories without a readable manifest skipped).
///
/// # Errors
/// [`Error::Io`] when `target` exists but cannot be read.
pub fn list(target: &Path) -> Result<Vec<Manifest>> {
    if !target.exists() {
        return Ok(Vec::new());
    }
    let mut out: Vec<Manifest> = std::fs::read_dir(target)
        .map_err(io(target))?
        .flatten()
        .filter_map(|e| read_manifest(&e.path()).ok())
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(m).map_err(|e| Error::Backup {
        backup: m.id.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&path, text).map_err(io(&path))
}

/// Reads `<dir>/manifest.json`.
///
/// # Errors
/// [`Error::Backup`] when missing or unreadable.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let bad = |reason: String| Error::Backup {
        backup: dir.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| bad(format!("manifest: {e}")))?;
    if m.format != FORMAT {
        return Err(bad(format!(
            "manifest format {} (this chgate reads {FORMAT})",
            m.format
        )));
    }
    Ok(m)
}

/// Every file the manifest names, with its checksum.
pub fn all_files(m: &Manifest) -> Vec<&FileSum> {
    let mut out: Vec<&FileSum> = Vec::new();
    if let Some(pg) = &m.postgres {
        out.extend(pg.databases.iter().map(|d| &d.file));
    }
    if let Some(c) = &m.clickhouse {
        for s in &c.shards {
            for t in &s.tables {
                for p in &t.parts {
                    out.extend(p.files.iter());
                }
            }
        }
    }
    out
}

/// Checks size and sha256 of every file the manifest names.
///
/// # Errors
/// [`Error::Backup`] naming each missing or changed file.
pub fn verify_files(dir: &Path, m: &Manifest) -> Result<()> {
    let mut bad = Vec::new();
    for f in all_files(m) {
        match sum_file(dir, &dir.join(&f.path)) {
            Ok(got) if got == *f => {}
            Ok(got) => bad.push(format!(
                "{}: sha256 {} size {}, manifest says {} size {}",
                f.path, got.sha256, got.size, f.sha256, f.size
            )),
            Err(e) => bad.push(format!("{}: {e}", f.path)),
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::Backup {
            backup: m.id.clone(),
            reason: format!(
                "{} file(s) missing or changed:\n{}",
                bad.len(),
                bad.join("\n")
            ),
        })
    }
}

/// Size and sha256 of `path`, named relative to `base`.
///
/// # Errors
/// [`Error::Io`].
pub fn sum_file(base: &Path, path: &Path) -> Result<FileSum> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let size = std::io::copy(&mut f, &mut h).map_err(io(path))?;
    Ok(FileSum {
        path: path
            .strip_prefix(base)
            .unwrap_or(path)
            .display()
            .to_string(),
        size,
        sha256: hex::encode(h.finalize()),
    })
}

/// Total bytes of the files a manifest names.
pub fn total_bytes(m: &Manifest) -> u64 {
    all_files(m).iter().map(|f| f.size).sum()
}

fn unique_id(target: &Path, now: SystemTime) -> String {
    // 2025-11-25T22:33:20Z -> 20251125T223320Z
    let base = rfc3339(now).replace(['-', ':'], "");
    let mut id = base.clone();
    let mut n = 1;
    while target.join(&id).exists() {
        n += 1;
        id = format!("{base}-{n}");
    }
    id
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_utc_timestamps_and_unique_in_a_target() {
        let tmp = tempfile::tempdir().expect("tmp");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_110_000);
        let id = unique_id(tmp.path(), t);
        assert_eq!(id, "20251125T223320Z");
        std::fs::create_dir(tmp.path().join(&id)).expect("mkdir");
        assert_eq!(unique_id(tmp.path(), t), "20251125T223320Z-2");
    }

    #[test]
    fn a_changed_or_missing_file_fails_verification_naming_it() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("postgres")).expect("mkdir");
        let f = dir.join("postgres/chgate.dump");
        std::fs::write(&f, b"dump").expect("write");
        let sum = sum_file(dir, &f).expect("sum");
        assert_eq!(sum.path, "postgres/chgate.dump");
        let m = Manifest {
            format: FORMAT,
            id: "x".into(),
            created: String::new(),
            chgate_version: String::new(),
            cluster: "c".into(),
            clickhouse: None,
            postgres: Some(postgres::PostgresBackup {
                server_version: "15".into(),
                databases: vec![postgres::DatabaseDump {
                    database: "chgate".into(),
                    file: sum,
                    tables: vec![],
                }],
            }),
            duration_s: 0.0,
        };
        verify_files(dir, &m).expect("intact");
        std::fs::write(&f, b"dumq").expect("write");
        let e = verify_files(dir, &m).expect_err("changed").to_string();
        assert!(e.contains("postgres/chgate.dump: sha256"), "{e}");
        std::fs::remove_file(&f).expect("rm");
        assert!(verify_files(dir, &m).is_err());
        write_manifest(dir, &m).expect("write");
        assert_eq!(read_manifest(dir).expect("read").cluster, "c");
    }
}
