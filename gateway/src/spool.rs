//! The durable spool: a segmented, checksummed write-ahead log of encoded insert blocks.
//!
//! With `ack = "spooled"` a batch is encoded (one `RowBinary` block per write lane), appended here
//! and `fdatasync`ed before its requests get their 2xx; delivery to ClickHouse happens afterwards
//! (see [`crate::delivery`]). A block keeps its exact bytes, so every resend — after a timeout or
//! after a crash and replay — is byte-identical and ClickHouse's replicated block deduplication
//! (plus `insert_deduplication_token` on servers that have it) drops the copy that already landed.
//!
//! On disk: `seg-<seq>.wal` files, each a sequence of records
//! `magic "CGS1" | kind u8 | header_len u32 | body_len u32 | crc32(kind, header, body) u32 | header | body`.
//! Kind 1 is a block (JSON [`BlockMeta`] header; body = row offsets as u32 LE, then the block);
//! kind 2 marks a block delivered (8-byte id, written without fsync: losing one only causes a
//! resend that deduplication drops). A segment is deleted when it and every older one hold no
//! undelivered block. Opening the spool scans every segment: a torn or corrupt record truncates
//! its segment at that point (warning + `chgate_spool_truncated_total`), never a crash; the
//! undelivered blocks are returned in order for replay before new traffic.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::metrics;

const MAGIC: &[u8; 4] = b"CGS1";
const HEADER: usize = 4 + 1 + 4 + 4 + 4;
const KIND_BLOCK: u8 = 1;
const KIND_DELIVERED: u8 = 2;

/// `[spool]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Directory of the segments (and of the dead-letter queue, `<dir>/dlq`). Required with
    /// `ack = "spooled"`; one directory per gateway instance. Default: none.
    pub dir: Option<PathBuf>,
    /// A segment is closed and a new one started above this size, bytes. Default 64 MiB.
    pub segment_bytes: u64,
    /// Spool size (segments on disk) above which new requests get 503 + Retry-After. Default 1 GiB.
    pub max_bytes: u64,
    /// Free space the spool's file system must keep; below it new requests get 503. Default 512 MiB.
    pub min_free_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: None,
            segment_bytes: 64 << 20,
            max_bytes: 1 << 30,
            min_free_bytes: 512 << 20,
        }
    }
}

/// Errors of the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file operation failed.
    #[error("spool {file}: {source}")]
    Io {
        /// The file or directory.
        file: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A record header could not be encoded or decoded.
    #[error("spool {file}: bad record header: {message}")]
    Header {
        /// The segment.
        file: PathBuf,
        /// What was wrong.
        message: String,
    },
}

fn io(file: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        file: file.to_owned(),
        source,
    }
}

/// Where a block goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Straight to shard N's local table (0-based), failing over between its replicas.
    Shard(usize),
    /// Through the Distributed table (`insert_distributed_sync=1`).
    Distributed,
}

/// A spooled block's description (the record header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Unique within this spool.
    pub id: u64,
    /// Where it goes.
    pub lane: Lane,
    /// The logical table (`db.table`) the rows were written to.
    pub table: String,
    /// The insert statement (`INSERT INTO target (cols) FORMAT RowBinary`).
    pub sql: String,
    /// Column names and server types, in order.
    pub columns: Vec<(String, String)>,
    /// Rows in the block.
    pub rows: u32,
    /// Milliseconds since the epoch when it was spooled.
    pub created_ms: i64,
}

/// A block to append: its description, the byte offset of each row, and the block.
#[derive(Debug, Clone)]
pub struct NewBlock {
    /// Description (`id` is assigned by [`Spool::append`]).
    pub meta: BlockMeta,
    /// Start of each row within `block`.
    pub offsets: Vec<u32>,
    /// The encoded rows.
    pub block: bytes::Bytes,
}

/// A block in the spool, not yet delivered.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Description.
    pub meta: Arc<BlockMeta>,
    seq: u64,
    body_at: u64,
    body_len: u32,
}

impl Entry {
    /// Bytes this entry occupies in its segment.
    pub fn body_len(&self) -> u32 {
        self.body_len
    }
}

/// A spooled block read back: row offsets and the block.
#[derive(Debug, Clone)]
pub struct Block {
    /// Start of each row within `block`.
    pub offsets: Vec<u32>,
    /// The encoded rows, byte-identical to what was spooled.
    pub block: bytes::Bytes,
}

impl Block {
    /// The bytes of rows `lo..hi`.
    pub fn rows(&self, lo: usize, hi: usize) -> bytes::Bytes {
        let at = |i: usize| {
            self.offsets
                .get(i)
                .map_or(self.block.len(), |&o| o as usize)
        };
        self.block.slice(at(lo)..at(hi))
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Segment {
    outstanding: usize,
    len: u64,
}

struct Inner {
    active: File,
    active_seq: u64,
    segments: BTreeMap<u64, Segment>,
    next_id: u64,
    pending_bytes: u64,
}

/// What opening found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Undelivered blocks, oldest first: replay these before new traffic.
    pub replay: Vec<Entry>,
    /// Segments truncated at a torn or corrupt record: (file, bytes cut).
    pub truncated: Vec<(PathBuf, u64)>,
}

/// The spool of one gateway.
pub struct Spool {
    dir: PathBuf,
    cfg: SpoolConfig,
    inner: Mutex<Inner>,
    free: Mutex<(Instant, u64)>,
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("seg-{seq:016}.wal"))
}

fn record(kind: u8, header: &[u8], body: &[&[u8]]) -> Vec<u8> {
    let body_len: usize = body.iter().map(|b| b.len()).sum();
    let mut out = Vec::with_capacity(HEADER + header.len() + body_len);
    out.extend_from_slice(MAGIC);
    out.push(kind);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(header);
    for b in body {
        crc.update(b);
    }
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(header);
    for b in body {
        out.extend_from_slice(b);
    }
    out
}

/// One record as scanned: kind, header, body position.
struct Scanned {
    kind: u8,
    header: Vec<u8>,
    body_at: u64,
    body_len: u32,
    end: u64,
}

/// Reads the record at `at`; `None` at a clean end, `Err(())` for a torn or corrupt record.
fn scan_one(data: &[u8], at: usize) -> Result<Option<Scanned>, ()> {
    if at == data.len() {
        return Ok(None);
    }
    let h = data.get(at..at + HEADER).ok_or(())?;
    if &h[..4] != MAGIC {
        return Err(());
    }
    let kind = h[4];
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (hl, bl, crc) = (u32_at(5) as usize, u32_at(9) as usize, u32_at(13));
    let header = data.get(at + HEADER..at + HEADER + hl).ok_or(())?;
    let body = data
        .get(at + HEADER + hl..at + HEADER + hl + bl)
        .ok_or(())?;
    let mut c = crc32fast::Hasher::new();
    c.update(&[kind]);
    c.update(header);
    c.update(body);
    if c.finalize() != crc || !matches!(kind, KIND_BLOCK | KIND_DELIVERED) {
        return Err(());
    }
    Ok(Some(Scanned {
        kind,
        header: header.to_vec(),
        body_at: (at + HEADER + hl) as u64,
        body_len: bl as u32,
        end: (at + HEADER + hl + bl) as u64,
    }))
}

impl Spool {
    /// Opens (creating) the spool in `cfg.dir`, recovering what a previous run left.
    ///
    /// # Errors
    /// [`SpoolError`] when the directory or a segment cannot be read or written.
    pub fn open(cfg: SpoolConfig) -> Result<(Arc<Spool>, Recovery), SpoolError> {
        let dir = cfg.dir.clone().unwrap_or_else(|| PathBuf::from("spool"));
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut seqs: Vec<u64> = fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("seg-")?
                    .strip_suffix(".wal")?
                    .parse()
                    .ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut recovery = Recovery::default();
        let mut blocks: Vec<Entry> = Vec::new();
        let mut delivered: HashSet<u64> = HashSet::new();
        let mut segments = BTreeMap::new();
        let mut max_id = 0u64;
        for &seq in &seqs {
            let path = seg_path(&dir, seq);
            let mut data = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(io(&path))?;
            let mut at = 0usize;
            loop {
                match scan_one(&data, at) {
                    Ok(None) => break,
                    Ok(Some(r)) => {
                        at = r.end as usize;
                        if r.kind == KIND_DELIVERED {
                            let id = r.header.get(..8).and_then(|b| b.try_into().ok());
                            delivered.extend(id.map(u64::from_le_bytes));
                            continue;
                        }
                        let Ok(meta) = serde_json::from_slice::<BlockMeta>(&r.header) else {
                            tracing::warn!(file = %path.display(), offset = at, "unreadable block header skipped");
                            continue;
                        };
                        max_id = max_id.max(meta.id);
                        blocks.push(Entry {
                            meta: Arc::new(meta),
                            seq,
                            body_at: r.body_at,
                            body_len: r.body_len,
                        });
                    }
                    Err(()) => {
                        let cut = (data.len() - at) as u64;
                        tracing::warn!(file = %path.display(), offset = at, bytes = cut, "torn or corrupt spool record: truncating the segment here");
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .and_then(|f| f.set_len(at as u64).and_then(|()| f.sync_all()))
                            .map_err(io(&path))?;
                        metrics::SPOOL_TRUNCATED.inc();
                        metrics::SPOOL_TRUNCATED_BYTES.inc_by(cut);
                        recovery.truncated.push((path.clone(), cut));
                        break;
                    }
                }
            }
            segments.insert(
                seq,
                Segment {
                    outstanding: 0,
                    len: at as u64,
                },
            );
        }
        let mut pending_bytes = 0;
        for e in blocks {
            if delivered.contains(&e.meta.id) {
                continue;
            }
            if let Some(s) = segments.get_mut(&e.seq) {
                s.outstanding += 1;
            }
            pending_bytes += u64::from(e.body_len);
            recovery.replay.push(e);
        }
        let active_seq = seqs.last().map_or(1, |s| s + 1);
        let active_path = seg_path(&dir, active_seq);
        let active = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&active_path)
            .map_err(io(&active_path))?;
        segments.insert(active_seq, Segment::default());
        // Ids only need to be unique among live segments; time keeps them apart after a full drain.
        let next_id = (max_id + 1).max(crate::server::now_ms().max(0) as u64 * 1000);
        let spool = Arc::new(Spool {
            dir,
            cfg,
            inner: Mutex::new(Inner {
                active,
                active_seq,
                segments,
                next_id,
                pending_bytes,
            }),
            free: Mutex::new((Instant::now() - Duration::from_secs(60), u64::MAX)),
        });
        {
            let mut g = spool.lock();
            spool.collect(&mut g);
            spool.export(&g);
        }
        Ok((spool, recovery))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends blocks and fsyncs them; returns their entries (ids assigned) once durable.
    /// Blocking: call from `spawn_blocking`.
    ///
    /// # Errors
    /// [`SpoolError::Io`] when writing or syncing fails (nothing may be acked then).
    pub fn append(&self, blocks: Vec<NewBlock>) -> Result<Vec<Entry>, SpoolError> {
        let mut g = self.lock();
        let path = seg_path(&self.dir, g.active_seq);
        let mut out = Vec::with_capacity(blocks.len());
        let mut buf = Vec::new();
        let mut len = g.segments.get(&g.active_seq).map_or(0, |s| s.len);
        for mut b in blocks {
            b.meta.id = g.next_id;
            g.next_id += 1;
            let header = serde_json::to_vec(&b.meta).map_err(|e| SpoolError::Header {
                file: path.clone(),
                message: e.to_string(),
            })?;
            let offsets: Vec<u8> = b.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
            let rec = record(KIND_BLOCK, &header, &[&offsets, &b.block]);
            let body_len = (offsets.len() + b.block.len()) as u32;
            let body_at = len + buf.len() as u64 + (HEADER + header.len()) as u64;
            buf.extend_from_slice(&rec);
            out.push(Entry {
                meta: Arc::new(b.meta),
                seq: g.active_seq,
                body_at,
                body_len,
            });
        }
        let written = g.active.write_all(&buf).and_then(|()| g.active.sync_data());
        if let Err(e) = written {
            // Nothing of this append was acked. Cut what may have been written, or start a new
            // segment, so later records never follow a torn one (a scan stops at the first).
            if g.active.set_len(len).is_err() {
                let _ = self.roll(&mut g);
            }
            return Err(io(&path)(e));
        }
        len += buf.len() as u64;
        let seq = g.active_seq;
        let seg = g.segments.entry(seq).or_default();
        seg.len = len;
        seg.outstanding += out.len();
        g.pending_bytes += out.iter().map(|e| u64::from(e.body_len)).sum::<u64>();
        if len >= self.cfg.segment_bytes {
            self.roll(&mut g)?;
        }
        self.export(&g);
        Ok(out)
    }

    fn roll(&self, g: &mut Inner) -> Result<(), SpoolError> {
        let seq = g.active_seq + 1;
        let path = seg_path(&self.dir, seq);
        g.active = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        g.active_seq = seq;
        g.segments.insert(seq, Segment::default());
        Ok(())
    }

    /// Reads an entry's block back (byte-identical to what was appended).
    ///
    /// # Errors
    /// [`SpoolError::Io`] when the segment cannot be read.
    pub fn read(&self, e: &Entry) -> Result<Block, SpoolError> {
        let path = seg_path(&self.dir, e.seq);
        let mut body = vec![0u8; e.body_len as usize];
        File::open(&path)
            .and_then(|f| f.read_exact_at(&mut body, e.body_at))
            .map_err(io(&path))?;
        let n = e.meta.rows as usize * 4;
        if body.len() < n {
            return Err(SpoolError::Header {
                file: path,
                message: format!("block {} is shorter than its row offsets", e.meta.id),
            });
        }
        let offsets = body[..n]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let block = bytes::Bytes::from(body).slice(n..);
        Ok(Block { offsets, block })
    }

    /// Marks an entry delivered (or dead-lettered); deletes segments that hold nothing pending.
    pub fn delivered(&self, e: &Entry) {
        let mut g = self.lock();
        let rec = record(KIND_DELIVERED, &e.meta.id.to_le_bytes(), &[]);
        let seq = g.active_seq;
        let before = g.segments.get(&seq).map_or(0, |s| s.len);
        // Not synced: a lost marker only means one resend, which deduplication drops.
        if let Err(err) = g.active.write_all(&rec) {
            tracing::warn!(error = %err, "cannot write a spool delivery marker");
            // A torn marker must not precede later blocks: cut it, or start a new segment.
            if g.active.set_len(before).is_err() {
                let _ = self.roll(&mut g);
            }
        } else if let Some(s) = g.segments.get_mut(&seq) {
            s.len += rec.len() as u64;
        }
        if let Some(s) = g.segments.get_mut(&e.seq) {
            s.outstanding = s.outstanding.saturating_sub(1);
        }
        g.pending_bytes = g.pending_bytes.saturating_sub(u64::from(e.body_len));
        if g.segments
            .get(&seq)
            .is_some_and(|s| s.len >= self.cfg.segment_bytes)
        {
            if let Err(err) = self.roll(&mut g) {
                tracing::warn!(error = %err, "cannot start a new spool segment");
            }
        }
        self.collect(&mut g);
        self.export(&g);
    }

    /// Deletes the oldest closed segments while they (and all older ones) hold nothing pending,
    /// so a delivery marker is never deleted before the block it marks.
    fn collect(&self, g: &mut Inner) {
        while let Some((&seq, s)) = g.segments.iter().next() {
            if seq == g.active_seq || s.outstanding > 0 {
                break;
            }
            let path = seg_path(&self.dir, seq);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot delete a delivered spool segment");
                break;
            }
            g.segments.remove(&seq);
        }
    }

    fn export(&self, g: &Inner) {
        metrics::SPOOL_BYTES.set(g.pending_bytes as i64);
        metrics::SPOOL_SEGMENTS.set(g.segments.len() as i64);
        metrics::SPOOL_DISK_BYTES.set(g.segments.values().map(|s| s.len).sum::<u64>() as i64);
    }

    /// Bytes of undelivered blocks.
    pub fn pending_bytes(&self) -> u64 {
        self.lock().pending_bytes
    }

    /// Bytes of all segments on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.lock().segments.values().map(|s| s.len).sum()
    }

    /// Whether new data may be spooled: `Err(reason)` when the spool is over `max_bytes` or its
    /// file system has less than `min_free_bytes` free (checked at most once a second).
    ///
    /// # Errors
    /// The reason, for a 503 message.
    pub fn admit(&self) -> Result<(), String> {
        let used = self.disk_bytes();
        if used >= self.cfg.max_bytes {
            return Err(format!(
                "the spool is full ({used} bytes of max_bytes {})",
                self.cfg.max_bytes
            ));
        }
        let free = self.free_bytes();
        if free < self.cfg.min_free_bytes {
            return Err(format!(
                "the spool's disk has {free} bytes free, below min_free_bytes {}",
                self.cfg.min_free_bytes
            ));
        }
        Ok(())
    }

    fn free_bytes(&self) -> u64 {
        let mut g = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.elapsed() >= Duration::from_secs(1) {
            // fsblkcnt_t / c_ulong are u64 on Linux x86_64 but not everywhere.
            #[allow(clippy::unnecessary_cast)]
            let free = nix::sys::statvfs::statvfs(&self.dir)
                .map(|s| s.blocks_available() as u64 * s.fragment_size() as u64)
                .unwrap_or(u64::MAX);
            *g = (Instant::now(), free);
        }
        g.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> SpoolConfig {
        SpoolConfig {
            dir: Some(dir.to_owned()),
            segment_bytes: 300,
            ..SpoolConfig::default()
        }
    }

    fn block(n: u8) -> NewBlock {
        NewBlock {
            meta: BlockMeta {
                id: 0,
                lane: Lane::Shard(usize::from(n % 2)),
                table: "db.t".into(),
                sql: "INSERT INTO db.t_local (k) FORMAT RowBinary".into(),
                columns: vec![("k".into(), "UInt8".into())],
                rows: 2,
                created_ms: 0,
            },
            offsets: vec![0, 1],
            block: bytes::Bytes::from(vec![n, n + 1]),
        }
    }

    #[test]
    fn blocks_survive_reopen_byte_identical_and_delivered_ones_are_not_replayed() {
        let dir = tempfile::tempdir().expect("tmp");
        let (s, r) = Spool::open(cfg(dir.path())).expect("open");
        assert!(r.replay.is_empty());
        let e = s.append((0..6).map(block).collect()).expect("append");
        s.delivered(&e[0]);
        s.delivered(&e[3]);
        drop(s);
        let (s, r) = Spool::open(cfg(dir.path())).expect("reopen");
        let ids: Vec<u64> = r.replay.iter().map(|e| e.meta.id).collect();
        let want: Vec<u64> = [1, 2, 4, 5].iter().map(|&i| e[i].meta.id).collect();
        assert_eq!(ids, want, "undelivered, in order");
        let b = s.read(&r.replay[0]).expect("read");
        assert_eq!(b.block.as_ref(), &[1, 2]);
        assert_eq!(b.rows(1, 2).as_ref(), &[2]);
        for e in &r.replay {
            s.delivered(e);
        }
        assert_eq!(s.pending_bytes(), 0);
        drop(s);
        let (_s, r) = Spool::open(cfg(dir.path())).expect("reopen");
        assert!(r.replay.is_empty());
    }

    #[test]
    fn delivered_segments_are_deleted_oldest_first() {
        let dir = tempfile::tempdir().expect("tmp");
        let (s, _) = Spool::open(cfg(dir.path())).expect("open");
        let mut all = Vec::new();
        for i in 0..10 {
            all.extend(s.append(vec![block(i)]).expect("append"));
        }
        let files = || fs::read_dir(dir.path()).expect("ls").count();
        let before = files();
        assert!(before > 2, "segments rolled at 300 bytes: {before}");
        // Delivering the newest first frees nothing: older segments still hold pending blocks.
        for e in all.iter().rev().take(5) {
            s.delivered(e);
        }
        assert!(files() >= before - 1);
        for e in all.iter().take(5) {
            s.delivered(e);
        }
        assert_eq!(files(), 1, "only the active segment is left");
    }

    #[test]
    fn a_torn_tail_is_truncated_and_reported_and_earlier_blocks_survive() {
        let dir = tempfile::tempdir().expect("tmp");
        let (s, _) = Spool::open(SpoolConfig {
            dir: Some(dir.path().to_owned()),
            ..SpoolConfig::default()
        })
        .expect("open");
        s.append(vec![block(1), block(2)]).expect("append");
        drop(s);
        let seg = seg_path(dir.path(), 1);
        let len = fs::metadata(&seg).expect("meta").len();
        // Cut the last record in half, then append garbage as a crash mid-write would leave.
        let f = OpenOptions::new().write(true).open(&seg).expect("open");
        f.set_len(len - 5).expect("truncate");
        drop(f);
        let mut f = OpenOptions::new().append(true).open(&seg).expect("open");
        f.write_all(b"garbage").expect("write");
        drop(f);
        let (_s, r) = Spool::open(SpoolConfig {
            dir: Some(dir.path().to_owned()),
            ..SpoolConfig::default()
        })
        .expect("opens despite the torn tail");
        assert_eq!(r.replay.len(), 1, "the intact block is replayed");
        assert_eq!(r.truncated.len(), 1);
        assert!(r.truncated[0].1 > 7);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let rec = record(KIND_BLOCK, b"{}", &[b"abc"]);
        assert!(scan_one(&rec, 0).expect("ok").is_some());
        let mut bad = rec.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(scan_one(&bad, 0).is_err());
    }

    #[test]
    fn admission_refuses_when_over_max_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let (s, _) = Spool::open(SpoolConfig {
            dir: Some(dir.path().to_owned()),
            max_bytes: 100,
            min_free_bytes: 0,
            ..SpoolConfig::default()
        })
        .expect("open");
        assert!(s.admit().is_ok());
        s.append((0..4).map(block).collect()).expect("append");
        let e = s.admit().expect_err("full");
        assert!(e.contains("max_bytes"), "{e}");
    }
}
