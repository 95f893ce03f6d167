//! WAL byte formats: the file header and the framed record. Layouts are in `docs/format.md`.

/// Magic at the start of every WAL file.
pub const FILE_MAGIC: [u8; 4] = *b"QWAL";
/// Version of the WAL file and record format written by this build.
pub const FILE_VERSION: u16 = 1;
/// Bytes in a WAL file header.
pub const FILE_HEADER_LEN: usize = 20;
/// Bytes in a record header (before the payload).
pub const RECORD_HEADER_LEN: usize = 20;
/// Largest payload one record may carry.
pub const MAX_PAYLOAD: usize = 64 << 20;
/// `back` value meaning "the durable watermark is unknown (further back than a u32 can say)".
pub const BACK_UNKNOWN: u32 = u32::MAX;

/// Encodes a WAL file header.
pub fn encode_file_header(first_seq: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&FILE_MAGIC);
    h[4..6].copy_from_slice(&FILE_VERSION.to_le_bytes());
    // 6..8: flags, zero.
    h[8..16].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a file header was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`FILE_HEADER_LEN`] bytes, wrong magic or a checksum mismatch: detail and offset.
    Bad(u64, String),
    /// A well-formed header of an unknown version.
    Version(u16),
}

/// Decodes a WAL file header, returning its first sequence number.
pub fn decode_file_header(bytes: &[u8]) -> Result<u64, HeaderError> {
    if bytes.len() < FILE_HEADER_LEN {
        return Err(HeaderError::Bad(
            0,
            format!("file header needs {FILE_HEADER_LEN} bytes, file has {}", bytes.len()),
        ));
    }
    let stored = u32_at(bytes, 16);
    let actual = crc32c::crc32c(&bytes[0..16]);
    if stored != actual {
        return Err(HeaderError::Bad(16, format!("file header checksum {stored:#010x}, computed {actual:#010x}")));
    }
    if bytes[0..4] != FILE_MAGIC {
        return Err(HeaderError::Bad(0, "not a WAL file (bad magic)".into()));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FILE_VERSION {
        return Err(HeaderError::Version(version));
    }
    if bytes[6..8] != [0, 0] {
        return Err(HeaderError::Bad(6, "unknown file header flags".into()));
    }
    Ok(u64_at(bytes, 8))
}

/// Appends one framed record to `out`. `back` is the distance in bytes from this record's start back to the file's
/// durable watermark when the record was written (0 when everything before it was already synced); recovery uses
/// it to tell a torn unsynced tail from corruption of durable bytes. The payload must not exceed [`MAX_PAYLOAD`].
pub fn encode_record(out: &mut Vec<u8>, seq: u64, back: u32, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&back.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = record_crc(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// CRC32C over a whole encoded record except its checksum field (bytes 4..8).
fn record_crc(record: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&record[0..4]);
    crc32c::crc32c_append(crc, &record[8..])
}

/// One record as found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Distance back to the durable watermark when written (see [`encode_record`]).
    pub back: u32,
    /// The opaque payload.
    pub payload: &'a [u8],
    /// Total encoded length (header + payload).
    pub encoded_len: usize,
}

/// Result of decoding the bytes at one position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole record whose checksum matches.
    Record(RecordRef<'a>),
    /// The buffer ends inside the record (needs this many bytes in all).
    Incomplete(u64),
    /// The bytes are not a valid record.
    Bad(String),
}

/// Decodes the record at the start of `buf`. Never panics, never allocates.
pub fn decode_record(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < RECORD_HEADER_LEN {
        return Decoded::Incomplete(RECORD_HEADER_LEN as u64);
    }
    let len = u32_at(buf, 0) as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Bad(format!("record length {len} exceeds the maximum {MAX_PAYLOAD}"));
    }
    let total = RECORD_HEADER_LEN + len;
    if buf.len() < total {
        return Decoded::Incomplete(total as u64);
    }
    let stored = u32_at(buf, 4);
    let actual = record_crc(&buf[..total]);
    if stored != actual {
        return Decoded::Bad(format!("record checksum {stored:#010x}, computed {actual:#010x}"));
    }
    Decoded::Record(RecordRef {
        seq: u64_at(buf, 8),
        back: u32_at(buf, 16),
        payload: &buf[RECORD_HEADER_LEN..total],
        encoded_len: total,
    })
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn record_round_trip(seq in any::<u64>(), back in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut buf = vec![7u8; 3];
            encode_record(&mut buf, seq, back, &payload);
            prop_assert_eq!(buf.len(), 3 + RECORD_HEADER_LEN + payload.len());
            match decode_record(&buf[3..]) {
                Decoded::Record(r) => {
                    prop_assert_eq!(r.seq, seq);
                    prop_assert_eq!(r.back, back);
                    prop_assert_eq!(r.payload, &payload[..]);
                    prop_assert_eq!(r.encoded_len, buf.len() - 3);
                }
                other => prop_assert!(false, "{:?}", other),
            }
            // Every strict prefix is incomplete, never a record.
            for cut in [0, 1, RECORD_HEADER_LEN - 1, RECORD_HEADER_LEN, buf.len() - 4] {
                if cut < buf.len() - 3 {
                    prop_assert!(matches!(decode_record(&buf[3..3 + cut]), Decoded::Incomplete(_)));
                }
            }
        }

        #[test]
        fn any_single_bit_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 0..300), bit in any::<usize>()) {
            let mut buf = Vec::new();
            encode_record(&mut buf, 42, 0, &payload);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!matches!(decode_record(&buf), Decoded::Record(_)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_record(&bytes);
            let _ = decode_file_header(&bytes);
        }

        #[test]
        fn header_round_trip(first in any::<u64>()) {
            prop_assert_eq!(decode_file_header(&encode_file_header(first)), Ok(first));
        }
    }
}
