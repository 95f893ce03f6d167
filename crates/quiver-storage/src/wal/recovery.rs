//! Reading WAL files back: validating every record and deciding, at the first bad byte, whether it is a torn tail
//! (truncate) or corruption of durable bytes (refuse).
//!
//! The rule. Every record carries `back`, the distance from its start to the file's durable watermark when it was
//! written. So for a record at offset `y`, every byte before `y - back` had been fsynced before the record was
//! written. When the record at offset `x` fails (checksum, length, end of file):
//! - in any file but the last, that is corruption: refuse (later files exist, so this one was complete);
//! - in the last file, scan the rest of the file for a valid record `y` (with a sequence number above the last good
//!   one). If some valid record says `y - back > x`, then `x` was durable before that record was written, and a
//!   crash cannot have torn it: refuse. Otherwise the bad bytes lie in a region that was never acknowledged as
//!   durable — a torn write — and the file is truncated at `x`.

use std::path::Path;

use super::record::{
    BACK_UNKNOWN, Decoded, FILE_HEADER_LEN, FILE_VERSION, HeaderError, RECORD_HEADER_LEN, decode_file_header,
    decode_record,
};
use crate::error::{Error, Result};

/// Where a good record's payload lies in a scanned file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub seq: u64,
    pub payload_start: usize,
    pub payload_len: usize,
}

/// What scanning one file found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub records: Vec<Found>,
    /// End of the last good record (the file's valid length).
    pub valid_len: usize,
    /// `Some(detail)` when the tail from `valid_len` on is torn and must be truncated.
    pub torn: Option<String>,
    /// The header itself is torn (only possible for the last file): the whole file holds nothing acknowledged.
    pub header_torn: bool,
}

/// Scans `bytes`, the content of WAL file `path` named for `name_seq`. `prev_last` is the highest sequence
/// number in earlier files (0 if none); `is_last` whether this is the newest file.
pub(crate) fn scan_file(path: &Path, bytes: &[u8], name_seq: u64, prev_last: u64, is_last: bool) -> Result<Scan> {
    let first_seq = match decode_file_header(bytes) {
        Ok(first) => first,
        Err(HeaderError::Version(found)) => {
            return Err(Error::UnsupportedVersion {
                file: path.to_owned(),
                what: "WAL file",
                found,
                supported: FILE_VERSION,
            });
        }
        Err(HeaderError::Bad(offset, detail)) => {
            if !is_last {
                return Err(Error::corrupt(path, offset, format!("{detail}; a newer WAL file exists")));
            }
            // A new file's header is synced (and the directory entry too) before any record goes in, so a torn
            // header means the file never held an acknowledged record — unless valid records follow it.
            if let Some(y) = bytes.get(FILE_HEADER_LEN..).and_then(|rest| first_valid(rest, prev_last)) {
                return Err(Error::corrupt(
                    path,
                    offset,
                    format!("{detail}; but a valid record follows at offset {}", y + FILE_HEADER_LEN),
                ));
            }
            return Ok(Scan { header_torn: true, ..Scan::default() });
        }
    };
    if first_seq != name_seq {
        return Err(Error::corrupt(
            path,
            8,
            format!("header says first sequence {first_seq}, file name says {name_seq}"),
        ));
    }
    if first_seq <= prev_last {
        return Err(Error::corrupt(
            path,
            8,
            format!("first sequence {first_seq} is not above {prev_last}, the last in the previous file"),
        ));
    }
    let mut scan = Scan { valid_len: FILE_HEADER_LEN, ..Scan::default() };
    let mut last = first_seq - 1;
    let mut pos = FILE_HEADER_LEN;
    while pos < bytes.len() {
        let detail = match decode_record(&bytes[pos..]) {
            Decoded::Record(r) => {
                if r.seq <= last {
                    return Err(Error::corrupt(
                        path,
                        pos as u64,
                        format!("record sequence {} is not above the previous {last}", r.seq),
                    ));
                }
                last = r.seq;
                scan.records.push(Found {
                    seq: r.seq,
                    payload_start: pos + RECORD_HEADER_LEN,
                    payload_len: r.payload.len(),
                });
                pos += r.encoded_len;
                scan.valid_len = pos;
                continue;
            }
            Decoded::Incomplete(need) => {
                format!("record needs {need} bytes, {} remain in the file", bytes.len() - pos)
            }
            Decoded::Bad(detail) => detail,
        };
        if !is_last {
            return Err(Error::corrupt(path, pos as u64, format!("{detail}; a newer WAL file exists")));
        }
        if let Some((y, watermark)) = durable_evidence_after(bytes, pos, last) {
            return Err(Error::corrupt(
                path,
                pos as u64,
                format!(
                    "{detail}; the record at offset {y} was written when the file was durable up to offset \
                     {watermark}, so this is not a torn write"
                ),
            ));
        }
        scan.torn = Some(detail);
        break;
    }
    Ok(scan)
}

/// The header fields of a would-be record at the start of `buf` — `(sequence number, back)` — when its length
/// fits in `buf`; nothing is checksummed. The searches below look at every offset of a damaged tail, so they
/// reject on these fields before paying for a checksum over the claimed length: on garbage or zeroed tails almost
/// every offset fails here, which keeps the search linear in practice.
fn peek(buf: &[u8]) -> Option<(u64, u32)> {
    if buf.len() < RECORD_HEADER_LEN {
        return None;
    }
    let len = super::record::u32_at(buf, 0) as usize;
    (RECORD_HEADER_LEN.checked_add(len)? <= buf.len())
        .then(|| (super::record::u64_at(buf, 8), super::record::u32_at(buf, 16)))
}

/// Offset (in `bytes`) of the first valid record with a sequence number above `last`, if any.
fn first_valid(bytes: &[u8], last: u64) -> Option<usize> {
    (0..bytes.len().saturating_sub(RECORD_HEADER_LEN - 1)).find(|&y| {
        peek(&bytes[y..]).is_some_and(|(seq, _)| seq > last)
            && matches!(decode_record(&bytes[y..]), Decoded::Record(r) if r.seq > last)
    })
}

/// A valid record after the bad offset `x` whose durable watermark lies beyond `x`: `(offset, watermark)`.
fn durable_evidence_after(bytes: &[u8], x: usize, last: u64) -> Option<(usize, usize)> {
    let end = bytes.len().saturating_sub(RECORD_HEADER_LEN - 1);
    let plausible =
        |y: usize, seq: u64, back: u32| seq > last && back != BACK_UNKNOWN && y.saturating_sub(back as usize) > x;
    (x + 1..end).find_map(|y| {
        let (seq, back) = peek(&bytes[y..])?;
        if !plausible(y, seq, back) {
            return None;
        }
        match decode_record(&bytes[y..]) {
            Decoded::Record(r) if plausible(y, r.seq, r.back) => Some((y, y.saturating_sub(r.back as usize))),
            _ => None,
        }
    })
}
