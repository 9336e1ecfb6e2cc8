//! Influx line protocol → samples: `<measurement>_<field>` metrics, tags as labels.
//!
//! [`parse`] splits the body into lines (newlines inside quoted strings stay in their line) and
//! parses each into borrowed parts; this module maps parsed lines onto [`Sample`]s and reports
//! every bad line with its number, without dropping the good ones. (The `influxdb-line-protocol`
//! crate was measured first and was too slow for the 3M samples/s target; see bench/RESULTS.md.)
//!
//! Mapping (details and examples in `gateway/PROTOCOLS.md`):
//! - metric = `<measurement>_<field>`; a field named `value` maps to just `<measurement>`;
//!   both parts sanitized to `[a-zA-Z0-9_]`.
//! - tags → labels (names sanitized, values as-is), sorted by name.
//! - float, integer (`i`), unsigned (`u`) fields → their value as f64; booleans → 1 / 0;
//!   string fields are skipped (counted in [`InfluxBatch::skipped_string_fields`]), since a
//!   sample value is a number.
//! - timestamp in `precision` units → milliseconds (floor); no timestamp → `now_ms`.

use std::borrow::Cow;
use std::str::FromStr;

pub mod parse;

use parse::{FieldValue, Line};

use super::{is_clean_name, push_sanitized, Sample, SampleSink, SampleVec};

/// Unit of the timestamps in a write request (`precision` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// `ns` (v2) or `n` (v1); the default of both APIs.
    #[default]
    Nanoseconds,
    /// `us` (v2) or `u` (v1).
    Microseconds,
    /// `ms`.
    Milliseconds,
    /// `s`.
    Seconds,
    /// `m` (v1 only).
    Minutes,
    /// `h` (v1 only).
    Hours,
}

/// A `precision` value that is not one of `ns n us u µ ms s m h`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?}: use ns, us, ms or s")]
pub struct UnknownPrecision(pub String);

impl FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ns" | "n" => Self::Nanoseconds,
            "us" | "u" | "µ" => Self::Microseconds,
            "ms" => Self::Milliseconds,
            "s" => Self::Seconds,
            "m" => Self::Minutes,
            "h" => Self::Hours,
            other => return Err(UnknownPrecision(other.to_owned())),
        })
    }
}

impl Precision {
    /// Converts a timestamp in this unit to milliseconds (rounding toward minus infinity);
    /// `None` when the result does not fit in an i64.
    pub fn to_ms(self, ts: i64) -> Option<i64> {
        match self {
            Self::Nanoseconds => Some(ts.div_euclid(1_000_000)),
            Self::Microseconds => Some(ts.div_euclid(1_000)),
            Self::Milliseconds => Some(ts),
            Self::Seconds => ts.checked_mul(1_000),
            Self::Minutes => ts.checked_mul(60_000),
            Self::Hours => ts.checked_mul(3_600_000),
        }
    }
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the body.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// The result of decoding one body: samples of the good lines, one error per bad line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InfluxBatch {
    /// Samples of every good line, in line and field order.
    pub samples: Vec<Sample>,
    /// Bad lines, in line order.
    pub errors: Vec<LineError>,
    /// String fields seen and skipped (they have no numeric value).
    pub skipped_string_fields: usize,
}

/// What [`decode_bytes_to`] did besides handing samples to its sink.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InfluxReport {
    /// Samples handed to the sink.
    pub samples: usize,
    /// Bad lines, in line order.
    pub errors: Vec<LineError>,
    /// String fields seen and skipped (they have no numeric value).
    pub skipped_string_fields: usize,
}

/// Decodes a line-protocol body. Blank lines and `#` comments are skipped; every other line
/// either yields its samples or one [`LineError`]; a bad line never affects the others.
pub fn decode(body: &str, precision: Precision, now_ms: i64) -> InfluxBatch {
    let mut sink = SampleVec::default();
    sink.samples.reserve(body.len() / 40);
    let mut report = InfluxReport::default();
    decode_into(body, 1, (precision, now_ms), &mut sink, &mut report);
    batch_of(sink, report)
}

/// [`decode`] for a body that may not be valid UTF-8: a line holding invalid UTF-8 becomes a
/// [`LineError`] like any other bad line, instead of failing the whole body.
pub fn decode_bytes(body: &[u8], precision: Precision, now_ms: i64) -> InfluxBatch {
    let mut sink = SampleVec::default();
    sink.samples.reserve(body.len() / 40);
    let report = decode_bytes_to(body, precision, now_ms, &mut sink);
    batch_of(sink, report)
}

fn batch_of(sink: SampleVec, report: InfluxReport) -> InfluxBatch {
    InfluxBatch {
        samples: sink.samples,
        errors: report.errors,
        skipped_string_fields: report.skipped_string_fields,
    }
}

/// [`decode_bytes`] without owned samples: each good line's labels go to `sink` once (borrowed
/// from the body), then its samples. A bad line hands nothing to the sink.
pub fn decode_bytes_to<S: SampleSink>(
    body: &[u8],
    precision: Precision,
    now_ms: i64,
    sink: &mut S,
) -> InfluxReport {
    let mut report = InfluxReport::default();
    let time = (precision, now_ms);
    let (mut rest, mut line_no) = (body, 1);
    loop {
        let err = match std::str::from_utf8(rest) {
            Ok(text) => {
                decode_into(text, line_no, time, sink, &mut report);
                return report;
            }
            Err(e) => e,
        };
        // Decode the good lines before the bad one, report it, go on after its newline.
        let bad = err.valid_up_to();
        let start = rest[..bad]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let good = std::str::from_utf8(&rest[..start]).unwrap_or_default();
        decode_into(good, line_no, time, sink, &mut report);
        line_no += good.matches('\n').count();
        report.errors.push(LineError {
            line: line_no,
            message: format!(
                "line is not valid UTF-8 (byte {} of the line)",
                bad - start + 1
            ),
        });
        let Some(end) = rest[bad..].iter().position(|&b| b == b'\n') else {
            return report;
        };
        rest = &rest[bad + end + 1..];
        line_no += 1;
    }
}

/// Decodes `body`, whose first line is line `first_line` of the request, into `sink`.
fn decode_into<S: SampleSink>(
    body: &str,
    first_line: usize,
    time: (Precision, i64),
    sink: &mut S,
    report: &mut InfluxReport,
) {
    let mut line = Line::default();
    let mut metric = String::with_capacity(64);
    for (line_no, text) in parse::lines(body) {
        if parse::is_blank(text) {
            continue;
        }
        let result = parse::parse_line(text, &mut line)
            .and_then(|()| map_line(&mut line, time, &mut metric, sink, report));
        if let Err(message) = result {
            report.errors.push(LineError {
                line: line_no + first_line - 1,
                message: with_excerpt(message, text),
            });
        }
    }
}

/// Hands the labels and samples of one parsed line to `sink`, or says why the line is rejected
/// (then nothing of it reaches the sink). The line's tags become its labels in place.
fn map_line<S: SampleSink>(
    line: &mut Line<'_>,
    (precision, now_ms): (Precision, i64),
    metric: &mut String,
    sink: &mut S,
    report: &mut InfluxReport,
) -> Result<(), String> {
    let timestamp_ms = match line.timestamp {
        None => now_ms,
        Some(ts) => precision
            .to_ms(ts)
            .ok_or_else(|| format!("timestamp {ts} is out of range for precision {precision:?}"))?,
    };
    tags_to_labels(&mut line.tags)?;
    sink.labels(&line.tags);
    for (field, value) in &line.fields {
        let Some(value) = numeric_value(value) else {
            report.skipped_string_fields += 1;
            continue;
        };
        metric.clear();
        push_metric_name(metric, &line.measurement, field);
        sink.sample(metric, timestamp_ms, value);
        report.samples += 1;
    }
    Ok(())
}

/// Tags → labels in place: names sanitized, sorted, unique; `__name__` is reserved.
fn tags_to_labels(tags: &mut [(Cow<'_, str>, Cow<'_, str>)]) -> Result<(), String> {
    for (name, _) in tags.iter_mut() {
        if !is_clean_name(name) {
            let mut out = String::with_capacity(name.len() + 1);
            push_sanitized(&mut out, name);
            *name = Cow::Owned(out);
        }
    }
    if tags.iter().any(|(n, _)| n == "__name__") {
        return Err("tag key __name__ is reserved for the metric name".to_owned());
    }
    if !tags.windows(2).all(|w| w[0].0 < w[1].0) {
        tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!(
                "tag key {:?} appears twice (after replacing characters outside [a-zA-Z0-9_] with _)",
                w[0].0
            ));
        }
    }
    Ok(())
}

/// Appends `<measurement>_<field>`, or `<measurement>` for the field `value`; sanitized.
fn push_metric_name(out: &mut String, measurement: &str, field: &str) {
    push_sanitized(out, measurement);
    if field != "value" {
        out.push('_');
        push_sanitized(out, field);
    }
}

/// The sample value of a field; `None` for strings (skipped).
fn numeric_value(value: &FieldValue<'_>) -> Option<f64> {
    match value {
        FieldValue::Float(v) => Some(*v),
        // i64/u64 beyond 2^53 lose precision: the samples table stores Float64.
        FieldValue::Int(v) => Some(*v as f64),
        FieldValue::UInt(v) => Some(*v as f64),
        FieldValue::Bool(b) => Some(f64::from(u8::from(*b))),
        FieldValue::Str(_) => None,
    }
}

/// The message plus the start of the line, so the client can find it.
fn with_excerpt(message: String, line: &str) -> String {
    let end = line.char_indices().nth(80).map_or(line.len(), |(i, _)| i);
    let ellipsis = if end < line.len() { "..." } else { "" };
    format!("{message}; line: {:?}{ellipsis}", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn maps_fields_tags_and_types() {
        let body =
            "cpu,zone=b,host=h1 usage=0.5,value=2i,up=true,n=7u,msg=\"hi\" 1700000000000000000\n";
        let b = decode(body, Precision::Nanoseconds, 0);
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        assert_eq!(b.skipped_string_fields, 1);
        let names: Vec<_> = b.samples.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(names, ["cpu_usage", "cpu", "cpu_up", "cpu_n"]);
        let values: Vec<_> = b.samples.iter().map(|s| s.value).collect();
        assert_eq!(values, [0.5, 2.0, 1.0, 7.0]);
        for s in &b.samples {
            assert_eq!(s.labels, l(&[("host", "h1"), ("zone", "b")]));
            assert_eq!(s.timestamp_ms, 1_700_000_000_000);
        }
    }

    #[test]
    fn escapes_and_sanitizing() {
        let body = r#"my\ meas,tag\,k=v\ 1\=x fi\=eld=1 5"#;
        let b = decode(body, Precision::Seconds, 0);
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        assert_eq!(b.samples[0].metric, "my_meas_fi_eld");
        assert_eq!(b.samples[0].labels, l(&[("tag_k", "v 1=x")]));
        assert_eq!(b.samples[0].timestamp_ms, 5000);
    }

    #[test]
    fn precision_and_missing_timestamp() {
        assert_eq!(Precision::Microseconds.to_ms(1_999), Some(1));
        assert_eq!(Precision::Nanoseconds.to_ms(-1), Some(-1));
        assert_eq!(Precision::Hours.to_ms(1), Some(3_600_000));
        assert_eq!(Precision::Seconds.to_ms(i64::MAX), None);
        assert_eq!("us".parse::<Precision>(), Ok(Precision::Microseconds));
        assert!("xs".parse::<Precision>().is_err());
        let b = decode("m f=1\n", Precision::Seconds, 42);
        assert_eq!(b.samples[0].timestamp_ms, 42);
        let b = decode("m f=1 9223372036854775807\n", Precision::Seconds, 42);
        assert_eq!(b.errors[0].line, 1);
        assert!(
            b.errors[0].message.contains("out of range"),
            "{}",
            b.errors[0].message
        );
    }

    #[test]
    fn bad_lines_are_numbered_and_do_not_poison() {
        let body = "# comment\nm f=1 1\n\nm f= 2\r\nm,t=1 s=\"a\nb\",g=2 3\nm f=abc\nm f=4 4\n";
        let b = decode(body, Precision::Milliseconds, 0);
        let lines: Vec<_> = b.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [4, 7], "{:?}", b.errors);
        let ts: Vec<_> = b.samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, [1, 3, 4]);
        assert!(
            b.errors[1].message.contains("m f=abc"),
            "{}",
            b.errors[1].message
        );
    }

    #[test]
    fn invalid_utf8_is_a_line_error() {
        let body = b"m f=1 1\nm,t=\xff f=2 2\nm f=3 3\n\nm f=\"\xfe\" 4\nm f=5 5";
        let b = decode_bytes(body, Precision::Milliseconds, 0);
        let lines: Vec<_> = b.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 5], "{:?}", b.errors);
        assert!(
            b.errors[0].message.contains("UTF-8"),
            "{}",
            b.errors[0].message
        );
        let ts: Vec<_> = b.samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, [1, 3, 5]);
        let valid = decode_bytes(b"m f=1 1\n", Precision::Milliseconds, 0);
        assert_eq!(valid, decode("m f=1 1\n", Precision::Milliseconds, 0));
    }

    #[test]
    fn reserved_and_colliding_tags() {
        let b = decode(
            "m,__name__=x f=1\nm,a.b=1,a_b=2 f=1\n",
            Precision::Seconds,
            0,
        );
        assert_eq!(b.errors.len(), 2);
        assert!(b.samples.is_empty());
        assert!(
            b.errors[1].message.contains("a_b"),
            "{}",
            b.errors[1].message
        );
    }
}
