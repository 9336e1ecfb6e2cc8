//! Migration files: naming, variants, checksums, and loading from the binary or a directory.
//!
//! A file is `V<n>__<name>.sql` (the default, "modern" variant) or `V<n>__<name>.fallback.sql`.
//! The modern file may start with the directive `-- chgate:min-server-version 20.1`; on a cluster
//! whose lowest server version is below it, the fallback file of the same version runs instead
//! (like a Liquibase precondition with an alternative, or a Flyway vendor folder). The ledger
//! records which variant ran and that file's checksum.
//!
//! Checksum: `sha256:<hex>` of the file text with CRLF normalised to LF, so a checkout on any
//! platform gives the same value. Placeholders (`${database}`, ...) are part of the hashed text;
//! their values are not, so a different database name is not drift.

use std::collections::BTreeMap;
use std::path::Path;

use chgate_clickhouse_http::ServerVersion;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::sql::{self, Statement};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Which file of a version runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    /// `V<n>__<name>.sql`.
    Modern,
    /// `V<n>__<name>.fallback.sql`, for servers below the modern file's minimum.
    Fallback,
}

impl Variant {
    /// `modern` / `fallback`, as stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Modern => "modern",
            Variant::Fallback => "fallback",
        }
    }

    /// Parses the ledger spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "modern" => Some(Variant::Modern),
            "fallback" => Some(Variant::Fallback),
            _ => None,
        }
    }
}

/// One `.sql` file, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFile {
    /// File name, e.g. `V1__samples.sql`.
    pub file_name: String,
    /// Full text.
    pub text: String,
    /// `sha256:<hex>` of the LF-normalised text.
    pub checksum: String,
    /// Its statements, in order.
    pub statements: Vec<Statement>,
}

/// One version: its modern file and optional fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Version number (1, 2, ...).
    pub version: u32,
    /// Name part of the file name.
    pub name: String,
    /// The default file.
    pub modern: SqlFile,
    /// Minimum server version of the modern file (`-- chgate:min-server-version`).
    pub min_server: Option<ServerVersion>,
    /// The file for older servers.
    pub fallback: Option<SqlFile>,
}

impl Migration {
    /// The variant to run on a cluster whose lowest version is `server`.
    ///
    /// # Errors
    /// [`Error::NoVariant`] when the server is too old and there is no fallback.
    pub fn choose(&self, server: ServerVersion) -> Result<Variant> {
        match (self.min_server, &self.fallback) {
            (Some(min), _) if server >= min => Ok(Variant::Modern),
            (None, _) => Ok(Variant::Modern),
            (Some(_), Some(_)) => Ok(Variant::Fallback),
            (Some(min), None) => Err(Error::NoVariant {
                file: self.modern.file_name.clone(),
                server: server.to_string(),
                required: min.to_string(),
            }),
        }
    }

    /// The file of a variant (`None` for a fallback that does not exist).
    pub fn file(&self, variant: Variant) -> Option<&SqlFile> {
        match variant {
            Variant::Modern => Some(&self.modern),
            Variant::Fallback => self.fallback.as_ref(),
        }
    }
}

/// All migrations of a source, sorted, versions 1..=n without gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSet {
    /// The migrations, version 1 first.
    pub migrations: Vec<Migration>,
}

/// `sha256:<hex>` of `text` with CRLF normalised to LF.
pub fn checksum(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n");
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(normalised.as_bytes()))
    )
}

/// Checksum of the first `n` statements of `file` (their text joined by `;\n`): lets a version
/// that failed at statement `n + 1` be fixed and resumed, while an edit of a statement that
/// already ran is still drift.
pub fn prefix_checksum(file: &SqlFile, n: usize) -> String {
    let done: Vec<&str> = file
        .statements
        .iter()
        .take(n)
        .map(|s| s.sql.as_str())
        .collect();
    checksum(&done.join(";\n"))
}

/// A parsed file name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileName {
    version: u32,
    name: String,
    variant: Variant,
}

fn parse_file_name(file: &str) -> Result<FileName> {
    let bad = |reason: &str| Error::FileName {
        file: file.to_owned(),
        reason: format!("{reason}; expected V<n>__<name>.sql or V<n>__<name>.fallback.sql"),
    };
    let stem = file
        .strip_suffix(".sql")
        .ok_or_else(|| bad("not a .sql file"))?;
    let (stem, variant) = match stem.strip_suffix(".fallback") {
        Some(s) => (s, Variant::Fallback),
        None => (stem, Variant::Modern),
    };
    let rest = stem
        .strip_prefix('V')
        .ok_or_else(|| bad("must start with `V`"))?;
    let (num, name) = rest
        .split_once("__")
        .ok_or_else(|| bad("needs `__` between version and name"))?;
    let version: u32 = num
        .parse()
        .ok()
        .filter(|v| *v > 0 && num.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad("version must be a positive integer"))?;
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        return Err(bad("name must be [a-z0-9_]+"));
    }
    Ok(FileName {
        version,
        name: name.to_owned(),
        variant,
    })
}

/// Reads `-- chgate:<key> <value>` directives from the file's leading comment lines.
fn directives(file: &str, text: &str) -> Result<Option<ServerVersion>> {
    let mut min = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        let Some(directive) = comment.trim().strip_prefix("chgate:") else {
            continue;
        };
        let syntax = |reason: String| Error::Syntax {
            file: file.to_owned(),
            line: i + 1,
            reason,
        };
        match directive.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["min-server-version", v] => {
                min =
                    Some(ServerVersion::parse(v).ok_or_else(|| {
                        syntax(format!("bad version {v:?} in min-server-version"))
                    })?);
            }
            _ => return Err(syntax(format!("unknown directive `chgate:{directive}`"))),
        }
    }
    Ok(min)
}

fn sql_file(file_name: &str, text: &str) -> Result<SqlFile> {
    let statements = sql::split(text).map_err(|e| Error::Syntax {
        file: file_name.to_owned(),
        line: sql::line_of(text, e.offset),
        reason: format!("unterminated {}", e.what),
    })?;
    if statements.is_empty() {
        return Err(Error::Syntax {
            file: file_name.to_owned(),
            line: 1,
            reason: "no statements".into(),
        });
    }
    Ok(SqlFile {
        file_name: file_name.to_owned(),
        text: text.to_owned(),
        checksum: checksum(text),
        statements,
    })
}

type Slot = (Option<(SqlFile, Option<ServerVersion>)>, Option<SqlFile>);

impl MigrationSet {
    /// Builds a set from `(file name, text)` pairs; other files than `*.sql` must be filtered out
    /// by the caller.
    ///
    /// # Errors
    /// [`Error::FileName`], [`Error::DuplicateVersion`], [`Error::Gap`], [`Error::Syntax`] (also
    /// for a fallback without its modern file, or one whose modern file declares no minimum).
    pub fn from_files(files: &[(String, String)]) -> Result<Self> {
        let mut by_version: BTreeMap<u32, (String, Slot)> = BTreeMap::new();
        for (file, text) in files {
            let parsed = parse_file_name(file)?;
            let entry = by_version
                .entry(parsed.version)
                .or_insert_with(|| (parsed.name.clone(), (None, None)));
            let duplicate = |other: &str| Error::DuplicateVersion {
                version: parsed.version,
                first: other.to_owned(),
                second: file.clone(),
            };
            if entry.0 != parsed.name {
                let other = entry.1 .0.as_ref().map(|m| m.0.file_name.clone());
                let other = other.or_else(|| entry.1 .1.as_ref().map(|f| f.file_name.clone()));
                return Err(duplicate(&other.unwrap_or_default()));
            }
            let f = sql_file(file, text)?;
            match parsed.variant {
                Variant::Modern => match &entry.1 .0 {
                    Some(prev) => return Err(duplicate(&prev.0.file_name)),
                    None => entry.1 .0 = Some((f, directives(file, text)?)),
                },
                Variant::Fallback => match &entry.1 .1 {
                    Some(prev) => return Err(duplicate(&prev.file_name)),
                    None => entry.1 .1 = Some(f),
                },
            }
        }
        let mut migrations = Vec::new();
        for (expected, (version, (name, (modern, fallback)))) in (1..).zip(by_version) {
            migrations.push(assemble(expected, version, name, modern, fallback)?);
        }
        Ok(MigrationSet { migrations })
    }

    /// The migrations compiled into this binary from `migrations/clickhouse/`.
    ///
    /// # Errors
    /// As [`MigrationSet::from_files`] (a broken shipped file fails the unit tests first).
    pub fn embedded() -> Result<Self> {
        let files: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        Self::from_files(&files)
    }

    /// Every `*.sql` file of `dir` (other files are ignored).
    ///
    /// # Errors
    /// [`Error::Io`], then as [`MigrationSet::from_files`].
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.ends_with(".sql") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            files.push((name, text));
        }
        files.sort();
        Self::from_files(&files)
    }

    /// The migration with `version`.
    pub fn get(&self, version: u32) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version == version)
    }

    /// Highest version (0 when empty).
    pub fn highest(&self) -> u32 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    /// Every file of the set (modern and fallback) with its version.
    pub fn files(&self) -> impl Iterator<Item = (u32, Variant, &SqlFile)> {
        self.migrations.iter().flat_map(|m| {
            std::iter::once((m.version, Variant::Modern, &m.modern)).chain(
                m.fallback
                    .as_ref()
                    .map(|f| (m.version, Variant::Fallback, f)),
            )
        })
    }
}

fn assemble(
    expected: u32,
    version: u32,
    name: String,
    modern: Option<(SqlFile, Option<ServerVersion>)>,
    fallback: Option<SqlFile>,
) -> Result<Migration> {
    let first_file = || {
        modern
            .as_ref()
            .map(|m| m.0.file_name.clone())
            .or_else(|| fallback.as_ref().map(|f| f.file_name.clone()))
            .unwrap_or_default()
    };
    if version != expected {
        return Err(Error::Gap {
            missing: expected,
            next_file: first_file(),
        });
    }
    let Some((modern, min_server)) = modern else {
        return Err(Error::Syntax {
            file: first_file(),
            line: 1,
            reason: format!("fallback without its modern file V{version}__{name}.sql"),
        });
    };
    if fallback.is_some() && min_server.is_none() {
        return Err(Error::Syntax {
            file: modern.file_name,
            line: 1,
            reason: "has a fallback file but no `-- chgate:min-server-version` directive, \
                     so the fallback would never run"
                .into(),
        });
    }
    Ok(Migration {
        version,
        name,
        modern,
        min_server,
        fallback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, text: &str) -> (String, String) {
        (name.to_owned(), text.to_owned())
    }

    #[test]
    fn shipped_migrations_load_with_fallbacks_for_18_16() {
        let set = MigrationSet::embedded().expect("shipped files are valid");
        assert!(set.migrations.len() >= 2);
        let old = ServerVersion::parse("18.16.1").expect("v");
        let new = ServerVersion::parse("26.9").expect("v");
        for m in &set.migrations {
            assert_eq!(m.choose(new).expect("modern"), Variant::Modern);
            assert!(m.choose(old).is_ok(), "{} has no path on 18.16", m.name);
        }
        assert_eq!(set.migrations[0].name, "samples");
        assert_eq!(set.migrations[0].modern.statements.len(), 2);
    }

    #[test]
    fn file_names_are_checked() {
        for bad in [
            "1__a.sql",
            "V1_a.sql",
            "V0__a.sql",
            "Vx__a.sql",
            "V1__A.sql",
            "V1__.sql",
            "V-1__a.sql",
        ] {
            let err = MigrationSet::from_files(&[f(bad, "SELECT 1")]).expect_err(bad);
            assert!(
                matches!(err, Error::FileName { ref file, .. } if file == bad),
                "{err}"
            );
        }
    }

    #[test]
    fn duplicates_and_gaps_are_named() {
        let err = MigrationSet::from_files(&[f("V1__a.sql", "S"), f("V01__b.sql", "S")])
            .expect_err("dup");
        assert!(err.to_string().contains("V1__a.sql") && err.to_string().contains("V01__b.sql"));
        let err =
            MigrationSet::from_files(&[f("V1__a.sql", "S"), f("V3__c.sql", "S")]).expect_err("gap");
        assert!(
            matches!(err, Error::Gap { missing: 2, ref next_file } if next_file == "V3__c.sql"),
            "{err}"
        );
    }

    #[test]
    fn fallback_needs_modern_with_directive() {
        let err = MigrationSet::from_files(&[f("V1__a.fallback.sql", "S")]).expect_err("orphan");
        assert!(err.to_string().contains("without its modern file"), "{err}");
        let err = MigrationSet::from_files(&[f("V1__a.sql", "S"), f("V1__a.fallback.sql", "S")])
            .expect_err("no directive");
        assert!(err.to_string().contains("min-server-version"), "{err}");
        let err = MigrationSet::from_files(&[f("V1__a.sql", "-- chgate:frobnicate\nS")])
            .expect_err("bad directive");
        assert!(matches!(err, Error::Syntax { line: 1, .. }), "{err}");
    }

    #[test]
    fn variant_choice_follows_min_version() {
        let set = MigrationSet::from_files(&[
            f("V1__a.sql", "-- chgate:min-server-version 20.1\nS1"),
            f("V1__a.fallback.sql", "S2"),
            f("V2__b.sql", "-- chgate:min-server-version 21.8\nS3"),
        ])
        .expect("valid");
        let v = |s| ServerVersion::parse(s).expect("v");
        assert_eq!(
            set.migrations[0].choose(v("20.1")).expect("ok"),
            Variant::Modern
        );
        assert_eq!(
            set.migrations[0].choose(v("19.9")).expect("ok"),
            Variant::Fallback
        );
        let err = set.migrations[1].choose(v("20.1")).expect_err("none");
        assert!(err.to_string().contains("V2__b.sql") && err.to_string().contains("21.8.0"));
    }

    #[test]
    fn checksum_is_named_stable_and_line_ending_independent() {
        assert_eq!(
            checksum("SELECT 1;\n"),
            checksum("SELECT 1;\r\n"),
            "CRLF checkout is not drift"
        );
        assert_ne!(checksum("SELECT 1;\n"), checksum("SELECT 2;\n"));
        // Pinned: changing the hash function would look like drift of every applied file.
        assert_eq!(
            checksum(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn from_dir_reads_only_sql_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("V1__a.sql"), "SELECT 1").expect("write");
        std::fs::write(dir.path().join("README.md"), "not sql").expect("write");
        let set = MigrationSet::from_dir(dir.path()).expect("loads");
        assert_eq!(set.highest(), 1);
        let err = MigrationSet::from_dir(&dir.path().join("missing")).expect_err("no dir");
        assert!(matches!(err, Error::Io { .. }));
    }
}
