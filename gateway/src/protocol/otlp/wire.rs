//! Zero-copy reader of a protobuf `ExportMetricsServiceRequest`, straight into a
//! [`SampleSink`].
//!
//! Decoding with prost ([`super::decode_to_prost`], kept as the reference) first builds the
//! owned [`super::messages`] tree, one `String` per attribute key and value; this reader walks
//! the wire format with the shared [`Reader`](crate::protocol::wire::Reader) and borrows names
//! and values from the body. It accepts and rejects exactly what prost does for those messages
//! and hands the sink the same calls as the mapping of the decoded tree:
//! - only the fields declared in [`super::messages`] are read; every other field is skipped
//!   (groups included), still subject to prost's recursion limit of 100 nested messages;
//! - a known field of the wrong wire type, a varint beyond 64 bits, a length past the end of
//!   its message, a field number 0, wire types 6/7, a stray end-group tag and invalid UTF-8
//!   in a declared string are errors ([`DecodeError::Malformed`] with the byte offset);
//! - a singular scalar or string keeps its last value; a singular message that occurs more
//!   than once is merged (read as the concatenation of its occurrences); repeated scalars may
//!   be packed or not;
//! - a message's fields may come in any order: a metric's name after its points, a resource
//!   after its scopes. Each message is scanned once for its singular fields, then its repeated
//!   children are mapped in order;
//! - a mapping error ([`DecodeError::InvalidMetric`]) stops the sink but not the reading: a
//!   wire error later in the body still wins, as with prost, which decodes the whole body
//!   before mapping.

use std::borrow::Cow;

use super::{
    invalid, timestamp, Label, Mapper, Names, OtlpOptions, Point, ResourceAttributes,
    FLAG_NO_RECORDED_VALUE, STALE_NAN,
};
use crate::protocol::wire::{Reader, Wire, FIXED32, FIXED64, LEN, VARINT};
use crate::protocol::{is_clean_name, sanitize_name, DecodeError, SampleSink};

const MESSAGE: &str = "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest";
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
/// prost's default recursion limit (nested messages, and groups while skipping).
const RECURSION_LIMIT: u32 = 100;

/// A message's bytes and their offset in the body.
type Part<'a> = (&'a [u8], usize);

/// The occurrences of a singular message field, merged as prost merges them: read one after
/// the other as if concatenated.
#[derive(Default)]
struct Parts<'a> {
    first: Option<Part<'a>>,
    rest: Vec<Part<'a>>,
}

impl<'a> Parts<'a> {
    fn push(&mut self, part: Part<'a>) {
        if self.first.is_none() {
            self.first = Some(part);
        } else {
            self.rest.push(part);
        }
    }

    fn is_present(&self) -> bool {
        self.first.is_some()
    }

    fn iter(&self) -> impl Iterator<Item = Part<'a>> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }

    /// Visits every field of every occurrence.
    fn fields(&self, mut f: impl FnMut(&mut Reader<'a>, u32, u8) -> Wire<()>) -> Wire<()> {
        for (bytes, at) in self.iter() {
            let mut r = Reader::new(bytes, at);
            while let Some((field, wire)) = key(&mut r)? {
                f(&mut r, field, wire)?;
            }
        }
        Ok(())
    }
}

/// Decodes a protobuf `ExportMetricsServiceRequest` into `sink` (see [`super::decode_to`]).
pub(super) fn decode_to<S: SampleSink>(
    body: &[u8],
    opts: &OtlpOptions,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    let mut walk = Walk {
        opts,
        sink,
        n: 0,
        failed: None,
        scratch: Scratch::default(),
    };
    walk.request(body)
        .map_err(|(reason, offset)| DecodeError::Malformed {
            message: MESSAGE,
            reason,
            offset,
        })?;
    match walk.failed {
        Some(e) => Err(e),
        None => Ok(walk.n),
    }
}

/// Next `(field number, wire type)` as prost reads a key, or `None` at the end.
#[inline(always)]
fn key(r: &mut Reader<'_>) -> Wire<Option<(u32, u8)>> {
    if r.is_done() {
        return Ok(None);
    }
    let at = r.offset();
    let key = r.varint_strict()?;
    let Ok(key) = u32::try_from(key) else {
        return Err(("field key above 2^32", at));
    };
    let wire = (key & 7) as u8;
    if wire > FIXED32 {
        return Err(("invalid wire type (6 or 7)", at));
    }
    if key >> 3 == 0 {
        return Err(("field number 0", at));
    }
    Ok(Some((key >> 3, wire)))
}

/// Skips an unknown field as prost does (groups included), `depth` levels below the limit.
fn skip(r: &mut Reader<'_>, field: u32, wire: u8, depth: u32) -> Wire<()> {
    if depth == 0 {
        return r.fail("messages nested more than 100 deep");
    }
    match wire {
        VARINT => r.varint_strict().map(drop),
        FIXED64 => r.take(8).map(drop),
        LEN => r.len_delimited_strict().map(drop),
        FIXED32 => r.take(4).map(drop),
        START_GROUP => loop {
            let at = r.offset();
            let Some((inner, inner_wire)) = key(r)? else {
                return Err(("group without an end tag", at));
            };
            if inner_wire == END_GROUP {
                if inner != field {
                    return Err(("end-group tag of another field", at));
                }
                return Ok(());
            }
            skip(r, inner, inner_wire, depth - 1)?;
        },
        _ => r.fail("end-group tag without a group"),
    }
}

#[inline(always)]
fn want(r: &Reader<'_>, wire: u8, expected: u8) -> Wire<()> {
    if wire == expected {
        Ok(())
    } else {
        r.fail("a known field has the wrong wire type")
    }
}

/// A nested message field's bytes; `depth` is that of the message holding the field.
#[inline(always)]
fn sub<'a>(r: &mut Reader<'a>, wire: u8, depth: u32) -> Wire<Part<'a>> {
    want(r, wire, LEN)?;
    if depth == 0 {
        return r.fail("messages nested more than 100 deep");
    }
    r.len_delimited_strict()
}

#[inline(always)]
fn string<'a>(r: &mut Reader<'a>, wire: u8) -> Wire<&'a str> {
    want(r, wire, LEN)?;
    r.str_strict()
}

#[inline(always)]
fn fixed64(r: &mut Reader<'_>, wire: u8) -> Wire<u64> {
    want(r, wire, FIXED64)?;
    r.fixed64()
}

#[inline(always)]
fn varint(r: &mut Reader<'_>, wire: u8) -> Wire<u64> {
    want(r, wire, VARINT)?;
    r.varint_strict()
}

/// `sint32` (zigzag) as prost decodes it.
fn sint32(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// A repeated `fixed64`/`double`, packed or not.
fn repeated_fixed64(r: &mut Reader<'_>, wire: u8, mut push: impl FnMut(u64)) -> Wire<()> {
    if wire == LEN {
        let (bytes, at) = r.len_delimited_strict()?;
        if bytes.len() % 8 != 0 {
            return Err(("packed 64-bit values do not fill their field", at));
        }
        for c in bytes.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            push(u64::from_le_bytes(a));
        }
        Ok(())
    } else {
        push(fixed64(r, wire)?);
        Ok(())
    }
}

/// A repeated `uint64`, packed or not.
fn repeated_varint(r: &mut Reader<'_>, wire: u8, out: &mut Vec<u64>) -> Wire<()> {
    if wire == LEN {
        let (bytes, at) = r.len_delimited_strict()?;
        let mut packed = Reader::new(bytes, at);
        while !packed.is_done() {
            out.push(packed.varint_strict()?);
        }
        Ok(())
    } else {
        out.push(varint(r, wire)?);
        Ok(())
    }
}

/// A `KeyValue`'s key and the parts of its value, read at nesting `depth`.
fn key_value<'a>((bytes, at): Part<'a>, depth: u32) -> Wire<(&'a str, Parts<'a>)> {
    let (mut k, mut value) = ("", Parts::default());
    let mut r = Reader::new(bytes, at);
    while let Some((field, wire)) = key(&mut r)? {
        match field {
            1 => k = string(&mut r, wire)?,
            2 => value.push(sub(&mut r, wire, depth)?),
            _ => skip(&mut r, field, wire, depth)?,
        }
    }
    Ok((k, value))
}

/// A `KeyValue` as a label: its key as sent, its value rendered as [`super::render`] does.
fn attribute<'a>(part: Part<'a>, depth: u32) -> Wire<(&'a str, Cow<'a, str>)> {
    let (k, value) = key_value(part, depth)?;
    let v = if value.is_present() {
        any_label(&value, depth - 1)?
    } else {
        Cow::Borrowed("")
    };
    Ok((k, v))
}

/// An `AnyValue` as label text: a string borrowed, anything else through JSON (read only
/// when needed, but nested values are always read so that prost's errors are ours).
fn any_label<'a>(parts: &Parts<'a>, depth: u32) -> Wire<Cow<'a, str>> {
    let (mut text, mut nested, mut other) = (None, false, false);
    parts.fields(|r, field, wire| {
        match field {
            1 => text = Some(string(r, wire)?),
            2 | 3 => {
                varint(r, wire)?;
                other = true;
            }
            4 => {
                fixed64(r, wire)?;
                other = true;
            }
            5 | 6 => {
                sub(r, wire, depth)?;
                nested = true;
            }
            _ => skip(r, field, wire, depth)?,
        }
        Ok(())
    })?;
    if let (false, Some(s)) = (nested, text) {
        return Ok(Cow::Borrowed(s));
    }
    if !nested && !other {
        return Ok(Cow::Borrowed(""));
    }
    // Arrays and maps (read whichever value wins, as prost does) and non-strings: JSON.
    let json = any_json(parts, depth)?;
    Ok(match (text, json) {
        (Some(s), _) => Cow::Borrowed(s),
        (None, serde_json::Value::String(s)) => Cow::Owned(s),
        (None, serde_json::Value::Null) => Cow::Borrowed(""),
        (None, other) => Cow::Owned(other.to_string()),
    })
}

/// An `AnyValue` as [`super::to_json`] renders the decoded message.
fn any_json(parts: &Parts<'_>, depth: u32) -> Wire<serde_json::Value> {
    use serde_json::Value;
    let (mut text, mut boolean, mut int, mut double) = (None, None, None, None);
    let (mut array, mut kvlist) = (None::<Parts<'_>>, None::<Parts<'_>>);
    parts.fields(|r, field, wire| {
        match field {
            1 => text = Some(string(r, wire)?),
            2 => boolean = Some(varint(r, wire)? != 0),
            3 => int = Some(varint(r, wire)? as i64),
            4 => double = Some(f64::from_bits(fixed64(r, wire)?)),
            5 => array
                .get_or_insert_with(Parts::default)
                .push(sub(r, wire, depth)?),
            6 => kvlist
                .get_or_insert_with(Parts::default)
                .push(sub(r, wire, depth)?),
            _ => skip(r, field, wire, depth)?,
        }
        Ok(())
    })?;
    // prost decodes both nested values whichever is rendered.
    let array = array.map(|p| array_json(&p, depth - 1)).transpose()?;
    let kvlist = kvlist.map(|p| kvlist_json(&p, depth - 1)).transpose()?;
    Ok(if let Some(s) = text {
        Value::String(s.to_owned())
    } else if let Some(b) = boolean {
        Value::Bool(b)
    } else if let Some(i) = int {
        Value::from(i)
    } else if let Some(d) = double {
        serde_json::Number::from_f64(d).map_or_else(|| Value::String(d.to_string()), Value::Number)
    } else if let Some(a) = array {
        a
    } else if let Some(kv) = kvlist {
        kv
    } else {
        Value::Null
    })
}

/// `ArrayValue` → JSON array.
fn array_json(parts: &Parts<'_>, depth: u32) -> Wire<serde_json::Value> {
    let mut values = Vec::new();
    parts.fields(|r, field, wire| {
        if field == 1 {
            let mut one = Parts::default();
            one.push(sub(r, wire, depth)?);
            values.push(any_json(&one, depth - 1)?);
        } else {
            skip(r, field, wire, depth)?;
        }
        Ok(())
    })?;
    Ok(serde_json::Value::Array(values))
}

/// `KeyValueList` → JSON object.
fn kvlist_json(parts: &Parts<'_>, depth: u32) -> Wire<serde_json::Value> {
    let mut entries = Vec::new();
    parts.fields(|r, field, wire| {
        if field != 1 {
            return skip(r, field, wire, depth);
        }
        let kv_depth = depth - 1;
        let (k, value) = key_value(sub(r, wire, depth)?, kv_depth)?;
        let v = if value.is_present() {
            any_json(&value, kv_depth - 1)?
        } else {
            serde_json::Value::Null
        };
        entries.push((k.to_owned(), v));
        Ok(())
    })?;
    Ok(serde_json::Value::Object(entries.into_iter().collect()))
}

/// Appends an attribute to a label set, its key sanitized as [`super::push_attributes`] does.
fn push_label<'a>(out: &mut Vec<Label<'a>>, (k, v): (&'a str, Cow<'a, str>)) {
    let name = if is_clean_name(k) {
        Cow::Borrowed(k)
    } else {
        Cow::Owned(sanitize_name(k))
    };
    out.push((name, v));
}

/// Buffers reused across points.
#[derive(Default)]
struct Scratch {
    counts: Vec<u64>,
    bounds: Vec<f64>,
    negative: Vec<u64>,
    quantiles: Vec<(f64, f64)>,
}

/// The whole request: the sink, the count and the first mapping error.
struct Walk<'o, S> {
    opts: &'o OtlpOptions,
    sink: &'o mut S,
    n: usize,
    failed: Option<DecodeError>,
    scratch: Scratch,
}

impl<S: SampleSink> Walk<'_, S> {
    fn request(&mut self, body: &[u8]) -> Wire<()> {
        let depth = RECURSION_LIMIT;
        let mut r = Reader::new(body, 0);
        while let Some((field, wire)) = key(&mut r)? {
            if field == 1 {
                let part = sub(&mut r, wire, depth)?;
                self.resource_metrics(part, depth - 1)?;
            } else {
                skip(&mut r, field, wire, depth)?;
            }
        }
        Ok(())
    }

    fn resource_metrics(&mut self, (bytes, at): Part<'_>, depth: u32) -> Wire<()> {
        let mut resource = Parts::default();
        let mut r = Reader::new(bytes, at);
        while let Some((field, wire)) = key(&mut r)? {
            match field {
                1 => resource.push(sub(&mut r, wire, depth)?),
                2 => {
                    sub(&mut r, wire, depth)?;
                }
                _ => skip(&mut r, field, wire, depth)?,
            }
        }
        let mut base: Vec<Label<'_>> = Vec::new();
        let only = &self.opts.resource_attributes;
        resource.fields(|r, field, wire| {
            if field != 1 {
                return skip(r, field, wire, depth - 1);
            }
            let kv = attribute(sub(r, wire, depth - 1)?, depth - 2)?;
            let keep = match only {
                ResourceAttributes::All => true,
                ResourceAttributes::Only(keys) => keys.iter().any(|k| k == kv.0),
                ResourceAttributes::None => false,
            };
            if keep {
                push_label(&mut base, kv);
            }
            Ok(())
        })?;
        let mut r = Reader::new(bytes, at);
        while let Some((field, wire)) = key(&mut r)? {
            if field == 2 {
                let part = sub(&mut r, wire, depth)?;
                self.scope_metrics(&base, part, depth - 1)?;
            } else {
                skip(&mut r, field, wire, depth)?;
            }
        }
        Ok(())
    }

    fn scope_metrics<'a>(
        &mut self,
        base: &[Label<'a>],
        (bytes, at): Part<'a>,
        depth: u32,
    ) -> Wire<()> {
        let mut scope = Parts::default();
        let mut r = Reader::new(bytes, at);
        while let Some((field, wire)) = key(&mut r)? {
            match field {
                1 => scope.push(sub(&mut r, wire, depth)?),
                2 => {
                    sub(&mut r, wire, depth)?;
                }
                _ => skip(&mut r, field, wire, depth)?,
            }
        }
        let mut scope_base = base.to_vec();
        if scope.is_present() {
            let i = scope_base.len();
            scope_base.push(("otel_scope_name".into(), "".into()));
            scope_base.push(("otel_scope_version".into(), "".into()));
            let (mut name, mut version) = ("", "");
            scope.fields(|r, field, wire| {
                match field {
                    1 => name = string(r, wire)?,
                    2 => version = string(r, wire)?,
                    3 => push_label(
                        &mut scope_base,
                        attribute(sub(r, wire, depth - 1)?, depth - 2)?,
                    ),
                    _ => skip(r, field, wire, depth - 1)?,
                }
                Ok(())
            })?;
            scope_base[i].1 = name.into();
            scope_base[i + 1].1 = version.into();
        }
        let mut points = Points {
            m: Mapper {
                base: &scope_base,
                labels: Vec::new(),
                sink: &mut *self.sink,
                n: 0,
            },
            failed: &mut self.failed,
            s: std::mem::take(&mut self.scratch),
        };
        let mut r = Reader::new(bytes, at);
        let mut result = Ok(());
        while let Some((field, wire)) = key(&mut r)? {
            if field == 2 {
                let part = sub(&mut r, wire, depth)?;
                result = points.metric(part, depth - 1);
                if result.is_err() {
                    break;
                }
            } else {
                skip(&mut r, field, wire, depth)?;
            }
        }
        self.n += points.m.n;
        self.scratch = points.s;
        result
    }
}

/// The metrics of one scope, mapped with the prost path's [`Mapper`].
struct Points<'s, 'k, S> {
    m: Mapper<'s, 'k, S>,
    failed: &'k mut Option<DecodeError>,
    s: Scratch,
}

impl<'s, S: SampleSink> Points<'s, '_, S> {
    /// Records the first mapping error; nothing more reaches the sink.
    fn fail(&mut self, e: DecodeError) {
        if self.failed.is_none() {
            *self.failed = Some(e);
        }
    }

    fn metric(&mut self, (bytes, at): Part<'s>, depth: u32) -> Wire<()> {
        let mut name = "";
        let [mut gauge, mut sum, mut histogram, mut exponential, mut summary] =
            std::array::from_fn(|_| Parts::default());
        let mut r = Reader::new(bytes, at);
        while let Some((field, wire)) = key(&mut r)? {
            match field {
                1 => name = string(&mut r, wire)?,
                3 => {
                    string(&mut r, wire)?;
                }
                5 => gauge.push(sub(&mut r, wire, depth)?),
                7 => sum.push(sub(&mut r, wire, depth)?),
                9 => histogram.push(sub(&mut r, wire, depth)?),
                10 => exponential.push(sub(&mut r, wire, depth)?),
                11 => summary.push(sub(&mut r, wire, depth)?),
                _ => skip(&mut r, field, wire, depth)?,
            }
        }
        let sanitized = sanitize_name(name);
        if sanitized.is_empty() {
            self.fail(invalid(name, "metric has an empty name"));
        }
        let d = depth.saturating_sub(1);
        for kind in [&gauge, &sum] {
            kind.fields(|r, field, wire| {
                self.data_point(r, field, wire, d, |p, r, d| {
                    p.number(name, &sanitized, r, d)
                })
            })?;
        }
        let names = Names::new(sanitized);
        histogram.fields(|r, field, wire| {
            self.data_point(r, field, wire, d, |p, r, d| p.histogram(name, &names, r, d))
        })?;
        summary.fields(|r, field, wire| {
            self.data_point(r, field, wire, d, |p, r, d| p.summary(name, &names, r, d))
        })?;
        exponential.fields(|r, field, wire| {
            self.data_point(r, field, wire, d, |p, r, d| {
                p.exponential(name, &names, r, d)
            })
        })
    }

    /// One field of a `Gauge`/`Sum`/`Histogram`/...: a data point (1) goes to `point`,
    /// `aggregation_temporality` (2) is read and dropped.
    fn data_point(
        &mut self,
        r: &mut Reader<'s>,
        field: u32,
        wire: u8,
        depth: u32,
        point: impl FnOnce(&mut Self, Reader<'s>, u32) -> Wire<()>,
    ) -> Wire<()> {
        match field {
            1 => {
                let (bytes, at) = sub(r, wire, depth)?;
                point(self, Reader::new(bytes, at), depth - 1)
            }
            2 => varint(r, wire).map(drop),
            _ => skip(r, field, wire, depth),
        }
    }

    /// A point attribute, pushed onto the point's label set.
    fn attribute(&mut self, r: &mut Reader<'s>, wire: u8, depth: u32) -> Wire<()> {
        let kv = attribute(sub(r, wire, depth)?, depth - 1)?;
        push_label(&mut self.m.labels, kv);
        Ok(())
    }

    /// The point's time and flags checked; `None` after a mapping error.
    fn start(&mut self, name: &str, time: u64, flags: u32) -> Option<Point> {
        if self.failed.is_some() {
            return None;
        }
        match timestamp(name, time) {
            Ok(ts) => Some(Point {
                ts,
                stale: flags & FLAG_NO_RECORDED_VALUE != 0,
            }),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn number(&mut self, name: &str, metric: &str, mut r: Reader<'s>, d: u32) -> Wire<()> {
        let (mut time, mut flags, mut double, mut int) = (0, 0, None, None);
        self.m.start_labels();
        while let Some((field, wire)) = key(&mut r)? {
            match field {
                7 => self.attribute(&mut r, wire, d)?,
                3 => time = fixed64(&mut r, wire)?,
                4 => double = Some(f64::from_bits(fixed64(&mut r, wire)?)),
                6 => int = Some(fixed64(&mut r, wire)? as i64),
                8 => flags = varint(&mut r, wire)? as u32,
                _ => skip(&mut r, field, wire, d)?,
            }
        }
        let Some(point) = self.start(name, time, 0) else {
            return Ok(());
        };
        let value = match (double, int) {
            _ if flags & FLAG_NO_RECORDED_VALUE != 0 => f64::from_bits(STALE_NAN),
            (Some(d), _) => d,
            (None, Some(i)) => i as f64,
            (None, None) => return Ok(()),
        };
        self.m.settle_labels();
        self.m.sink.labels(&self.m.labels);
        self.m.emit(metric, point.ts, value);
        Ok(())
    }

    fn histogram(&mut self, name: &str, names: &Names, mut r: Reader<'s>, d: u32) -> Wire<()> {
        let (mut time, mut flags, mut count, mut sum) = (0, 0, 0, None);
        self.m.start_labels();
        let s = &mut self.s;
        s.counts.clear();
        s.bounds.clear();
        while let Some((field, wire)) = key(&mut r)? {
            match field {
                9 => {
                    let kv = attribute(sub(&mut r, wire, d)?, d - 1)?;
                    push_label(&mut self.m.labels, kv);
                }
                3 => time = fixed64(&mut r, wire)?,
                4 => count = fixed64(&mut r, wire)?,
                5 => sum = Some(f64::from_bits(fixed64(&mut r, wire)?)),
                6 => repeated_fixed64(&mut r, wire, |c| s.counts.push(c))?,
                7 => repeated_fixed64(&mut r, wire, |b| s.bounds.push(f64::from_bits(b)))?,
                10 => flags = varint(&mut r, wire)? as u32,
                _ => skip(&mut r, field, wire, d)?,
            }
        }
        let Some(point) = self.start(name, time, flags) else {
            return Ok(());
        };
        self.m.settle_labels();
        let s = &self.s;
        if !s.counts.is_empty() && s.counts.len() != s.bounds.len() + 1 {
            let reason = format!(
                "histogram point has {} bucket_counts for {} explicit_bounds (want bounds + 1)",
                s.counts.len(),
                s.bounds.len()
            );
            self.fail(invalid(name, &reason));
            return Ok(());
        }
        let bounds = s.bounds.iter().copied().zip(s.counts.iter().copied());
        self.m.buckets(names, &point, bounds, count, sum);
        Ok(())
    }

    fn summary(&mut self, name: &str, names: &Names, mut r: Reader<'s>, d: u32) -> Wire<()> {
        let (mut time, mut flags, mut count, mut sum) = (0, 0, 0, 0.0);
        self.m.start_labels();
        let s = &mut self.s;
        s.quantiles.clear();
        while let Some((field, wire)) = key(&mut r)? {
            match field {
                7 => {
                    let kv = attribute(sub(&mut r, wire, d)?, d - 1)?;
                    push_label(&mut self.m.labels, kv);
                }
                3 => time = fixed64(&mut r, wire)?,
                4 => count = fixed64(&mut r, wire)?,
                5 => sum = f64::from_bits(fixed64(&mut r, wire)?),
                6 => {
                    let (bytes, at) = sub(&mut r, wire, d)?;
                    let (mut q, mut v) = (0.0, 0.0);
                    let mut qr = Reader::new(bytes, at);
                    while let Some((field, wire)) = key(&mut qr)? {
                        match field {
                            1 => q = f64::from_bits(fixed64(&mut qr, wire)?),
                            2 => v = f64::from_bits(fixed64(&mut qr, wire)?),
                            _ => skip(&mut qr, field, wire, d - 1)?,
                        }
                    }
                    s.quantiles.push((q, v));
                }
                8 => flags = varint(&mut r, wire)? as u32,
                _ => skip(&mut r, field, wire, d)?,
            }
        }
        let Some(point) = self.start(name, time, flags) else {
            return Ok(());
        };
        self.m.settle_labels();
        let quantiles = self.s.quantiles.iter().map(|&(q, v)| (q, point.value(v)));
        self.m
            .with_label("quantile", &names.name, point.ts, quantiles);
        self.m.sum_count(names, &point, Some(sum), count);
        Ok(())
    }

    fn exponential(&mut self, name: &str, names: &Names, mut r: Reader<'s>, d: u32) -> Wire<()> {
        let (mut time, mut flags, mut count, mut sum) = (0, 0, 0, None);
        let (mut scale, mut zero_count, mut zero_threshold) = (0, 0, 0.0);
        let (mut positive, mut negative) = (Parts::default(), Parts::default());
        self.m.start_labels();
        while let Some((field, wire)) = key(&mut r)? {
            match field {
                1 => self.attribute(&mut r, wire, d)?,
                3 => time = fixed64(&mut r, wire)?,
                4 => count = fixed64(&mut r, wire)?,
                5 => sum = Some(f64::from_bits(fixed64(&mut r, wire)?)),
                6 => scale = sint32(varint(&mut r, wire)?),
                7 => zero_count = fixed64(&mut r, wire)?,
                8 => positive.push(sub(&mut r, wire, d)?),
                9 => negative.push(sub(&mut r, wire, d)?),
                10 => flags = varint(&mut r, wire)? as u32,
                14 => zero_threshold = f64::from_bits(fixed64(&mut r, wire)?),
                _ => skip(&mut r, field, wire, d)?,
            }
        }
        let s = &mut self.s;
        s.counts.clear();
        s.negative.clear();
        let pos_offset = buckets(&positive, d.saturating_sub(1), &mut s.counts)?;
        let neg_offset = buckets(&negative, d.saturating_sub(1), &mut s.negative)?;
        let Some(point) = self.start(name, time, flags) else {
            return Ok(());
        };
        self.m.settle_labels();
        if !(-10..=20).contains(&scale) {
            let reason = format!("exponential histogram scale {scale} is outside -10..=20");
            self.fail(invalid(name, &reason));
            return Ok(());
        }
        // base^i = 2^(i * 2^-scale)
        let bound = |i: i64| (i as f64 * (-f64::from(scale)).exp2()).exp2();
        let s = &self.s;
        let neg = s.negative.iter().enumerate().rev();
        let neg = neg.map(|(k, c)| (-bound(i64::from(neg_offset) + k as i64), *c));
        let pos = s.counts.iter().enumerate();
        let pos = pos.map(|(k, c)| (bound(i64::from(pos_offset) + k as i64 + 1), *c));
        let bounds = neg
            .chain(std::iter::once((zero_threshold, zero_count)))
            .chain(pos);
        self.m.buckets(names, &point, bounds, count, sum);
        Ok(())
    }
}

/// `ExponentialHistogramDataPoint.Buckets`: its counts appended to `counts`; its offset.
fn buckets(parts: &Parts<'_>, depth: u32, counts: &mut Vec<u64>) -> Wire<i32> {
    let mut offset = 0;
    parts.fields(|r, field, wire| match field {
        1 => {
            offset = sint32(varint(r, wire)?);
            Ok(())
        }
        2 => repeated_varint(r, wire, counts),
        _ => skip(r, field, wire, depth),
    })?;
    Ok(offset)
}
