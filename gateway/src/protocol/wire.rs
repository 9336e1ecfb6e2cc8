//! A borrowing protobuf wire-format cursor shared by the zero-copy decoders
//! (`remote_write::wire`, `otlp::wire`).
//!
//! [`Reader`] reads one message's bytes: keys, varints, fixed64s and length-delimited fields
//! (strings as borrowed `&str`), and reports errors as `(reason, byte offset in the whole
//! body)`. What to do with unknown fields is the caller's: [`Reader::skip`] skips the four wire
//! types remote_write uses; OTLP adds group skipping and prost's recursion limit on top.

/// Wire type 0: varint.
pub(crate) const VARINT: u8 = 0;
/// Wire type 1: 64-bit.
pub(crate) const FIXED64: u8 = 1;
/// Wire type 2: length-delimited.
pub(crate) const LEN: u8 = 2;
/// Wire type 5: 32-bit.
pub(crate) const FIXED32: u8 = 5;

/// A wire-format result: the error is a reason and a byte offset in the whole body.
pub(crate) type Wire<T> = Result<T, (&'static str, usize)>;

/// Protobuf cursor over one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the whole request, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A cursor over `buf`, which starts at byte `base` of the request.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Position in `buf`.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// True when the whole message has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Position in the whole request.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// An error at the current position.
    pub(crate) fn fail<T>(&self, reason: &'static str) -> Wire<T> {
        Err((reason, self.base + self.pos))
    }

    /// A varint; a 10th byte above 1 (bits beyond 64) is ignored.
    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Wire<u64> {
        self.varint_checked(false)
    }

    /// A varint as prost reads it: a 10th byte above 1 overflows 64 bits and is an error.
    #[inline(always)]
    pub(crate) fn varint_strict(&mut self) -> Wire<u64> {
        self.varint_checked(true)
    }

    #[inline(always)]
    fn varint_checked(&mut self, strict: bool) -> Wire<u64> {
        // Tags and most lengths are one byte.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow(strict)
    }

    #[inline(never)]
    fn varint_slow(&mut self, strict: bool) -> Wire<u64> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(("truncated varint", self.base + start));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                if strict && shift == 63 && b > 1 {
                    return Err(("varint overflows 64 bits", self.base + start));
                }
                return Ok(value);
            }
        }
        Err(("varint longer than 10 bytes", self.base + start))
    }

    /// Next `(field number, wire type)`, or `None` at the end of the message.
    #[inline(always)]
    pub(crate) fn key(&mut self) -> Wire<Option<(u64, u8)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        Ok(Some((key >> 3, (key & 7) as u8)))
    }

    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> Wire<&'a [u8]> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            _ => self.fail("length runs past the end of the message"),
        }
    }

    /// A length-delimited field's bytes and their offset in the request.
    #[inline(always)]
    pub(crate) fn len_delimited(&mut self) -> Wire<(&'a [u8], usize)> {
        let n = self.varint()?;
        self.len_bytes(n)
    }

    /// As [`Reader::len_delimited`], the length read with [`Reader::varint_strict`].
    #[inline(always)]
    pub(crate) fn len_delimited_strict(&mut self) -> Wire<(&'a [u8], usize)> {
        let n = self.varint_strict()?;
        self.len_bytes(n)
    }

    #[inline(always)]
    fn len_bytes(&mut self, n: u64) -> Wire<(&'a [u8], usize)> {
        let n = usize::try_from(n).or_else(|_| self.fail("length too large"))?;
        let at = self.base + self.pos;
        Ok((self.take(n)?, at))
    }

    /// A UTF-8 string field's text.
    #[inline(always)]
    pub(crate) fn str(&mut self) -> Wire<&'a str> {
        let (bytes, at) = self.len_delimited()?;
        utf8(bytes, at)
    }

    /// As [`Reader::str`], the length read with [`Reader::varint_strict`].
    #[inline(always)]
    pub(crate) fn str_strict(&mut self) -> Wire<&'a str> {
        let (bytes, at) = self.len_delimited_strict()?;
        utf8(bytes, at)
    }

    /// A little-endian 64-bit field.
    #[inline(always)]
    pub(crate) fn fixed64(&mut self) -> Wire<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips a field of wire type varint, 64-bit, length-delimited or 32-bit.
    pub(crate) fn skip(&mut self, wire: u8) -> Wire<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => self.fail("unsupported wire type (groups are not used by remote_write)"),
        }
    }
}

#[inline(always)]
fn utf8(bytes: &[u8], at: usize) -> Wire<&str> {
    std::str::from_utf8(bytes).map_err(|_| ("string is not valid UTF-8", at))
}
