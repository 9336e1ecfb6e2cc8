//! The dead-letter queue: rows ClickHouse rejected as bad data after the gateway had already
//! acked them (`ack = "spooled"`). Delivery splits a rejected block until the bad rows are
//! isolated, inserts the good ones, and stores the bad ones here with ClickHouse's reason.
//! Transient errors never reach it.
//!
//! One entry = `<id>.bin` (the rows, `RowBinary`, byte-exact) + `<id>.json` ([`DeadLetter`]),
//! in `<spool dir>/dlq`. `chgate dlq list | show | replay` reads it; replay sends the same bytes
//! to the logical table, so a replay that is retried after a crash is deduplicated by ClickHouse
//! like any other resent block.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::encode::Column;
use crate::types::ColumnType;

/// One dead-lettered set of rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Entry id (file stem).
    pub id: String,
    /// The logical table (`db.table`).
    pub table: String,
    /// The statement a replay runs (`INSERT INTO db.table (cols) FORMAT RowBinary`).
    pub replay_sql: String,
    /// Column names and server types.
    pub columns: Vec<(String, String)>,
    /// Rows in the entry.
    pub rows: u32,
    /// ClickHouse's reason for the first bad row.
    pub reason: String,
    /// When it was dead-lettered (ms since the epoch).
    pub created_ms: i64,
}

/// Errors of the dead-letter store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DlqError {
    /// A file could not be read or written.
    #[error("dead-letter queue {file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An entry's description is not valid JSON.
    #[error("dead-letter queue {file}: {message}")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// No entry with this id.
    #[error("no dead-letter entry `{0}` (see `chgate dlq list`)")]
    NotFound(String),
}

fn io(file: &Path) -> impl FnOnce(std::io::Error) -> DlqError + '_ {
    move |source| DlqError::Io {
        file: file.to_owned(),
        source,
    }
}

/// A dead-letter directory.
#[derive(Debug, Clone)]
pub struct Dlq {
    dir: PathBuf,
}

impl Dlq {
    /// The store in `dir` (created when missing).
    ///
    /// # Errors
    /// [`DlqError::Io`] when the directory cannot be created.
    pub fn open(dir: PathBuf) -> Result<Self, DlqError> {
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Dlq { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores rows durably (bytes first, then the description, both fsynced).
    ///
    /// # Errors
    /// [`DlqError::Io`].
    pub fn put(&self, entry: &DeadLetter, rows: &[u8]) -> Result<(), DlqError> {
        let write = |name: String, data: &[u8]| -> Result<(), DlqError> {
            let tmp = self.dir.join(format!("{name}.tmp"));
            let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(data)
                .and_then(|()| f.sync_all())
                .map_err(io(&tmp))?;
            let path = self.dir.join(name);
            fs::rename(&tmp, &path).map_err(io(&path))
        };
        write(format!("{}.bin", entry.id), rows)?;
        let json = serde_json::to_vec_pretty(entry).map_err(|e| DlqError::Corrupt {
            file: self.dir.join(&entry.id),
            message: e.to_string(),
        })?;
        write(format!("{}.json", entry.id), &json)
    }

    /// Every entry, oldest first.
    ///
    /// # Errors
    /// [`DlqError`] when the directory or a description cannot be read.
    pub fn list(&self) -> Result<Vec<DeadLetter>, DlqError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = e.map_err(io(&self.dir))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                out.push(read_meta(&path)?);
            }
        }
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    /// Rows in all entries.
    pub fn rows(&self) -> u64 {
        self.list()
            .map(|l| l.iter().map(|e| u64::from(e.rows)).sum())
            .unwrap_or(0)
    }

    /// One entry and its rows.
    ///
    /// # Errors
    /// [`DlqError::NotFound`] for an unknown id.
    pub fn get(&self, id: &str) -> Result<(DeadLetter, Vec<u8>), DlqError> {
        let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let meta = self.dir.join(format!("{id}.json"));
        if !valid || !meta.exists() {
            return Err(DlqError::NotFound(id.to_owned()));
        }
        let entry = read_meta(&meta)?;
        let bin = self.dir.join(format!("{id}.bin"));
        let rows = fs::read(&bin).map_err(io(&bin))?;
        Ok((entry, rows))
    }

    /// Deletes an entry (after a successful replay).
    ///
    /// # Errors
    /// [`DlqError::Io`].
    pub fn remove(&self, id: &str) -> Result<(), DlqError> {
        let meta = self.dir.join(format!("{id}.json"));
        fs::remove_file(&meta).map_err(io(&meta))?;
        let bin = self.dir.join(format!("{id}.bin"));
        fs::remove_file(&bin).map_err(io(&bin))
    }
}

fn read_meta(path: &Path) -> Result<DeadLetter, DlqError> {
    let text = fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&text).map_err(|e| DlqError::Corrupt {
        file: path.to_owned(),
        message: e.to_string(),
    })
}

/// Decodes `RowBinary` rows of `columns` into JSON objects (for `chgate dlq show`).
///
/// # Errors
/// A message naming the row and column where the bytes end or a type is unknown.
pub fn decode_rows(
    columns: &[(String, String)],
    mut data: &[u8],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    let cols: Vec<Column> = columns
        .iter()
        .map(|(n, t)| Column::parse(n, t).map_err(|e| format!("column `{n}`: {e}")))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    while !data.is_empty() {
        let mut row = serde_json::Map::new();
        for c in &cols {
            let v = value(&c.ty, &mut data).ok_or_else(|| {
                format!("row {}: column `{}` is cut short", out.len() + 1, c.name)
            })?;
            row.insert(c.name.clone(), v);
        }
        out.push(row);
    }
    Ok(out)
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = (data.get(..n)?, data.get(n..)?);
    *data = rest;
    Some(head)
}

fn le<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    take(data, N)?.try_into().ok()
}

fn varint(data: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = take(data, 1)?[0];
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn value(ty: &ColumnType, data: &mut &[u8]) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    use ColumnType as T;
    Some(match ty {
        T::UInt8 | T::Bool => J::from(le::<1>(data)?[0]),
        T::UInt16 | T::Date => J::from(u16::from_le_bytes(le(data)?)),
        T::UInt32 | T::DateTime => J::from(u32::from_le_bytes(le(data)?)),
        T::UInt64 => J::from(u64::from_le_bytes(le(data)?)),
        T::Int8 => J::from(le::<1>(data)?[0] as i8),
        T::Int16 => J::from(i16::from_le_bytes(le(data)?)),
        T::Int32 => J::from(i32::from_le_bytes(le(data)?)),
        T::Int64 | T::DateTime64(_) => J::from(i64::from_le_bytes(le(data)?)),
        T::Float32 => J::from(f32::from_le_bytes(le(data)?)),
        T::Float64 => J::from(f64::from_le_bytes(le(data)?)),
        T::Enum8(names) => {
            let code = le::<1>(data)?[0] as i8;
            enum_name(
                names.iter().map(|(n, c)| (n, i16::from(*c))),
                i16::from(code),
            )
        }
        T::Enum16(names) => {
            let code = i16::from_le_bytes(le(data)?);
            enum_name(names.iter().map(|(n, c)| (n, *c)), code)
        }
        T::String => {
            let n = usize::try_from(varint(data)?).ok()?;
            J::from(String::from_utf8_lossy(take(data, n)?).into_owned())
        }
        T::FixedString(n) => J::from(String::from_utf8_lossy(take(data, *n)?).into_owned()),
        T::Uuid => {
            let hi = u64::from_le_bytes(le(data)?);
            let lo = u64::from_le_bytes(le(data)?);
            J::from(format!("{:032x}", (u128::from(hi) << 64) | u128::from(lo)))
        }
        T::Decimal(p, s) => {
            let raw: i128 = match p {
                0..=9 => i128::from(i32::from_le_bytes(le(data)?)),
                10..=18 => i128::from(i64::from_le_bytes(le(data)?)),
                _ => i128::from_le_bytes(le(data)?),
            };
            J::from(format!("{raw}e-{s}"))
        }
        T::Nullable(inner) => {
            if le::<1>(data)?[0] == 1 {
                J::Null
            } else {
                value(inner, data)?
            }
        }
        T::LowCardinality(inner) => value(inner, data)?,
        T::Array(inner) => {
            let n = varint(data)?;
            J::Array((0..n).map(|_| value(inner, data)).collect::<Option<_>>()?)
        }
        T::Map(k, v) => {
            let n = varint(data)?;
            J::Array(
                (0..n)
                    .map(|_| Some(J::Array(vec![value(k, data)?, value(v, data)?])))
                    .collect::<Option<_>>()?,
            )
        }
    })
}

fn enum_name<'a>(
    mut names: impl Iterator<Item = (&'a String, i16)>,
    code: i16,
) -> serde_json::Value {
    names
        .find(|(_, c)| *c == code)
        .map_or(serde_json::Value::from(code), |(n, _)| {
            serde_json::Value::from(n.as_str())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn rows_decode_back_to_what_was_encoded() {
        let spec = [
            ("k", "UInt64"),
            ("s", "String"),
            ("n", "Nullable(Int32)"),
            ("a", "Array(String)"),
        ];
        let cols: Vec<Column> = spec
            .iter()
            .map(|(n, t)| Column::parse(n, t).expect("col"))
            .collect();
        let rows = vec![
            vec![
                Value::UInt(7),
                Value::str("x"),
                Value::Null,
                Value::Array(vec![Value::str("p")]),
            ],
            vec![
                Value::UInt(8),
                Value::str(""),
                Value::Int(-3),
                Value::Array(vec![]),
            ],
        ];
        let bytes = crate::encode::rowbinary::encode_rows(&cols, &rows);
        let names: Vec<(String, String)> = spec
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        let got = decode_rows(&names, &bytes).expect("decode");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["k"], 7);
        assert_eq!(got[0]["n"], serde_json::Value::Null);
        assert_eq!(got[1]["n"], -3);
        assert_eq!(got[0]["a"][0], "p");
        let e = decode_rows(&names, &bytes[..bytes.len() - 1]).expect_err("short");
        assert!(e.contains("row 2"), "{e}");
    }

    #[test]
    fn entries_are_stored_listed_read_and_removed() {
        let dir = tempfile::tempdir().expect("tmp");
        let dlq = Dlq::open(dir.path().join("dlq")).expect("open");
        let e = DeadLetter {
            id: "42-1".into(),
            table: "db.t".into(),
            replay_sql: "INSERT INTO db.t (k) FORMAT RowBinary".into(),
            columns: vec![("k".into(), "UInt8".into())],
            rows: 2,
            reason: "Code: 395".into(),
            created_ms: 1,
        };
        dlq.put(&e, &[1, 2]).expect("put");
        assert_eq!(dlq.list().expect("list"), vec![e.clone()]);
        assert_eq!(dlq.rows(), 2);
        assert_eq!(dlq.get("42-1").expect("get").1, vec![1, 2]);
        assert!(matches!(dlq.get("../x"), Err(DlqError::NotFound(_))));
        dlq.remove("42-1").expect("remove");
        assert!(dlq.list().expect("list").is_empty());
    }
}
