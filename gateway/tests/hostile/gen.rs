//! Input generators shared by the protocols: mutations of valid bodies and hostile fragments.

use rand::rngs::StdRng;
use rand::Rng;

/// Fragments that break parsers, identifiers and SQL when spliced into names and values.
pub const NASTY: &[&str] = &[
    "'; DROP TABLE samples; --",
    "`) ENGINE=Memory; --",
    "\\",
    "\"",
    "\u{0}",
    "../../../etc/passwd",
    "%2e%2e%2fsystem",
    "system.tables",
    "\u{202e}evil",
    "😀",
    "\n",
    "\r\n",
    ",=",
    " ",
    "NaN",
    "-Inf",
    "+Infinity",
    "1e400",
    "-1e400",
    "99999999999999999999999999",
    "-9223372036854775809",
    "18446744073709551616",
    "{",
    "}]",
    "[[[[[[[[",
    "null",
    "\u{feff}",
];

/// Byte sequences that are not UTF-8.
pub const INVALID_UTF8: &[&[u8]] = &[
    b"\xff\xfe",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
    b"\xe2\x82",
];

/// A random fragment from [`NASTY`].
pub fn nasty(rng: &mut StdRng) -> &'static str {
    NASTY[rng.gen_range(0..NASTY.len())]
}

/// `len` random bytes.
pub fn bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.gen_range(0..=max);
    (0..n).map(|_| rng.gen()).collect()
}

/// One to four random edits of `data`: bit flips, byte changes, deletions, duplications,
/// insertions of nasty text or invalid UTF-8, truncation.
pub fn mutate(rng: &mut StdRng, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let len = out.len();
        let at = if len == 0 { 0 } else { rng.gen_range(0..len) };
        match rng.gen_range(0..8) {
            0 if len > 0 => out[at] ^= 1 << rng.gen_range(0..8),
            1 if len > 0 => out[at] = rng.gen(),
            2 if len > 0 => {
                let end = (at + rng.gen_range(1..64)).min(len);
                out.drain(at..end);
            }
            3 if len > 0 => {
                let end = (at + rng.gen_range(1..256)).min(len);
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
            4 => {
                let s = nasty(rng).as_bytes().to_vec();
                out.splice(at..at, s);
            }
            5 => {
                let s = INVALID_UTF8[rng.gen_range(0..INVALID_UTF8.len())].to_vec();
                out.splice(at..at, s);
            }
            6 => out.truncate(at),
            _ => {
                if len > 0 {
                    let v = [0u8, 0xff, 0x7f, 0x80][rng.gen_range(0..4)];
                    out[at] = v;
                }
            }
        }
    }
    out
}

/// `[[[…]]]` (or `{"a":{"a":…}}`) nested `depth` deep.
pub fn deep_json(depth: usize, objects: bool) -> String {
    if objects {
        "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth)
    } else {
        "[".repeat(depth) + &"]".repeat(depth)
    }
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// zlib (`deflate`) of `data`.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// zstd of `data`.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 1).unwrap_or_default()
}

/// Snappy block of `data`.
pub fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .unwrap_or_default()
}
