//! Guards in front of third-party decoders that panic, or abort the process with a huge
//! allocation, on hostile input (found by `tests/hostile`): the Arrow IPC stream framing is
//! checked against the body before `arrow-ipc` sees it, and decoding runs under `catch_unwind` so
//! any panic left is a 400, not a dead connection.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::GatewayError;

fn bad(msg: String) -> GatewayError {
    GatewayError::BadRequest(format!("malformed Arrow IPC stream: {msg}"))
}

fn read_i32(body: &[u8], at: usize) -> Result<i32, GatewayError> {
    body.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_le_bytes)
        .ok_or_else(|| bad(format!("truncated at byte {at}")))
}

/// Checks every message of an Arrow IPC stream: metadata and body lengths within the input, a
/// verified flatbuffer header, record batch buffers inside their body, and a row count the body
/// could plausibly carry.
///
/// # Errors
/// 400 naming the first problem.
pub fn arrow_stream(body: &[u8]) -> Result<(), GatewayError> {
    let mut pos = 0usize;
    while pos < body.len() {
        let mut len = read_i32(body, pos)?;
        pos += 4;
        if len == -1 {
            len = read_i32(body, pos)?;
            pos += 4;
        }
        if len == 0 {
            return Ok(());
        }
        let len = usize::try_from(len).map_err(|_| bad(format!("negative length {len}")))?;
        let meta = body.get(pos..pos.saturating_add(len)).ok_or_else(|| {
            bad(format!(
                "message of {len} bytes at byte {pos} exceeds the body"
            ))
        })?;
        pos += len;
        let msg = arrow_ipc::root_as_message(meta).map_err(|e| bad(e.to_string()))?;
        let body_len = usize::try_from(msg.bodyLength())
            .ok()
            .filter(|l| *l <= body.len() - pos)
            .ok_or_else(|| {
                bad(format!(
                    "body length {} exceeds the input",
                    msg.bodyLength()
                ))
            })?;
        let batch = msg
            .header_as_record_batch()
            .or_else(|| msg.header_as_dictionary_batch().and_then(|d| d.data()));
        if let Some(rb) = batch {
            check_batch(&rb, body_len, body.len())?;
        }
        pos += body_len;
    }
    Ok(())
}

fn check_batch(
    rb: &arrow_ipc::RecordBatch<'_>,
    body_len: usize,
    input_len: usize,
) -> Result<(), GatewayError> {
    // Any real column needs at least a bit per row; 8 rows per input byte (+ slack) is the most
    // a body can carry, and caps what arrow-ipc allocates for the batch.
    let max_rows = input_len.saturating_mul(8).saturating_add(1024) as i64;
    if rb.length() < 0 || rb.length() > max_rows {
        return Err(bad(format!("record batch claims {} rows", rb.length())));
    }
    for b in rb.buffers().iter().flatten() {
        let end = b.offset().checked_add(b.length());
        if b.offset() < 0
            || b.length() < 0
            || !matches!(end, Some(e) if e as u64 <= body_len as u64)
        {
            return Err(bad(format!(
                "buffer at offset {} length {} outside the {body_len}-byte body",
                b.offset(),
                b.length()
            )));
        }
    }
    for n in rb.nodes().iter().flatten() {
        if n.length() < 0
            || n.length() > max_rows
            || n.null_count() < 0
            || n.null_count() > n.length()
        {
            return Err(bad(format!("field node claims {} rows", n.length())));
        }
    }
    Ok(())
}

/// Runs a decoder, turning a panic into a 400 (the panic is logged once by the hook).
///
/// # Errors
/// The decoder's error, or 400 when it panicked.
pub fn no_panic<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, GatewayError>,
) -> Result<T, GatewayError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(GatewayError::BadRequest(format!(
            "malformed {what} body (the decoder refused it)"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_huge_lengths_are_400_not_allocations() {
        assert!(arrow_stream(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(arrow_stream(&[0xff, 0xff]).is_err());
        assert!(
            arrow_stream(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_ok(),
            "end of stream"
        );
        assert!(arrow_stream(&[]).is_ok());
    }

    #[test]
    fn a_panicking_decoder_is_a_400() {
        let r: Result<(), _> = no_panic("test", || panic!("boom"));
        assert_eq!(r.map_err(|e| e.status()), Err(400));
    }
}
