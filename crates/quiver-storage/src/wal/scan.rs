//! Read-only verification of a WAL directory: the checks of [`super::Wal::open`] (every record's checksum,
//! sequence order, file headers, the torn-tail rule), without truncating or removing anything.
//!
//! Where opening the WAL would *repair* something — truncate a torn tail of the newest file, remove a newest file
//! whose header was torn — [`scan`] reports what it would do ([`FileScan::torn_tail`], [`FileScan::header_torn`]);
//! where opening would *refuse*, it reports the error with file and offset ([`FileScan::error`]) and goes on with
//! the next file, so one scan finds every damaged file.

use std::path::{Path, PathBuf};

use super::record::{Decoded, FILE_HEADER_LEN, RECORD_HEADER_LEN, decode_record};
use super::{TruncatedTail, parse_file_name, recovery};
use crate::dir::Directory;
use crate::error::{Error, Result};

/// One valid record, as handed to [`scan`]'s callback.
#[derive(Debug, Clone, Copy)]
pub struct ScannedRecord<'a> {
    /// The WAL file holding it.
    pub file: &'a Path,
    /// Byte offset of the record (its header) in the file.
    pub offset: u64,
    /// Sequence number.
    pub seq: u64,
    /// The opaque payload.
    pub payload: &'a [u8],
}

/// What [`scan`] found in one WAL file.
#[derive(Debug)]
pub struct FileScan {
    /// The file.
    pub file: PathBuf,
    /// The first sequence number its name stands for.
    pub first_seq: u64,
    /// Its length in bytes.
    pub bytes: u64,
    /// Valid records found (before the first bad byte, if any).
    pub records: u64,
    /// Highest sequence number among them (`None` when there are none).
    pub last_seq: Option<u64>,
    /// The torn tail that opening the WAL would truncate (only ever in the newest file): the offset of the first
    /// bad byte, the bytes after it, and what was wrong there. Recoverable: those bytes were never acknowledged.
    pub torn_tail: Option<TruncatedTail>,
    /// The newest file's header is torn and nothing valid follows it: opening the WAL would remove the file (a
    /// crash while starting it; it never held an acknowledged record).
    pub header_torn: bool,
    /// Damage that makes opening the WAL fail ([`Error::Corrupt`] naming file and offset,
    /// [`Error::UnsupportedVersion`]), or the error that prevented reading the file.
    pub error: Option<Error>,
}

/// What [`scan`] found in a WAL directory, file by file in sequence order.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Every WAL file, oldest first.
    pub files: Vec<FileScan>,
}

impl ScanReport {
    /// Valid records in all files.
    pub fn records(&self) -> u64 {
        self.files.iter().map(|f| f.records).sum()
    }

    /// Bytes in all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Highest sequence number found (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.files.iter().filter_map(|f| f.last_seq).max().unwrap_or(0)
    }

    /// `true` when opening the WAL would succeed (a torn tail or header may still be repaired by that open).
    pub fn is_ok(&self) -> bool {
        self.files.iter().all(|f| f.error.is_none())
    }
}

/// Checks every WAL file in `dir` as [`super::Wal::open`] would, reading only: nothing is written, truncated or
/// removed. Calls `f` with each valid record in order (records after a file's first bad byte are not visited).
/// Fails only when `dir` cannot be listed; a file that cannot be read is reported in its [`FileScan::error`].
pub fn scan(dir: &dyn Directory, mut f: impl FnMut(ScannedRecord<'_>)) -> Result<ScanReport> {
    let mut names: Vec<(u64, String)> =
        dir.list()?.into_iter().filter_map(|n| parse_file_name(&n).map(|s| (s, n))).collect();
    names.sort();
    let count = names.len();
    let mut report = ScanReport::default();
    let mut last = 0u64;
    for (i, (first_seq, name)) in names.into_iter().enumerate() {
        let path = dir.file_path(&name);
        let mut fs = FileScan {
            file: path.clone(),
            first_seq,
            bytes: 0,
            records: 0,
            last_seq: None,
            torn_tail: None,
            header_torn: false,
            error: None,
        };
        let bytes = match dir.read(&name) {
            Ok(b) => b,
            Err(e) => {
                fs.error = Some(e);
                report.files.push(fs);
                continue;
            }
        };
        fs.bytes = bytes.len() as u64;
        match recovery::scan_file(&path, &bytes, first_seq, last, i + 1 == count) {
            Ok(s) => {
                fs.header_torn = s.header_torn;
                for r in &s.records {
                    let offset = r.payload_start - RECORD_HEADER_LEN;
                    let payload = &bytes[r.payload_start..r.payload_start + r.payload_len];
                    f(ScannedRecord { file: &path, offset: offset as u64, seq: r.seq, payload });
                }
                fs.records = s.records.len() as u64;
                fs.last_seq = s.records.last().map(|r| r.seq);
                if let Some(detail) = s.torn {
                    fs.torn_tail = Some(TruncatedTail {
                        file: path.clone(),
                        offset: s.valid_len as u64,
                        bytes_dropped: (bytes.len() - s.valid_len) as u64,
                        detail,
                    });
                }
            }
            Err(e) => {
                // Count (and hand out) the valid records before the bad offset, so the report says how much of
                // the file is intact; later files are checked against the last of them.
                let upto = match &e {
                    Error::Corrupt { offset, .. } => *offset as usize,
                    _ => 0,
                };
                let (records, last_seq) = valid_prefix(&path, &bytes, upto, last, &mut f);
                fs.records = records;
                fs.last_seq = last_seq;
                fs.error = Some(e);
            }
        }
        if let Some(s) = fs.last_seq {
            last = last.max(s);
        }
        report.files.push(fs);
    }
    Ok(report)
}

/// Valid records, in order, that start after the file header and end at or before `upto` with sequence numbers
/// above `last`; stops at the first record that is not.
fn valid_prefix(
    path: &Path,
    bytes: &[u8],
    upto: usize,
    last: u64,
    f: &mut impl FnMut(ScannedRecord<'_>),
) -> (u64, Option<u64>) {
    let mut pos = FILE_HEADER_LEN;
    let (mut n, mut prev, mut last_seq) = (0u64, last, None);
    while pos < upto.min(bytes.len()) {
        match decode_record(&bytes[pos..]) {
            Decoded::Record(r) if r.seq > prev && pos + r.encoded_len <= upto => {
                f(ScannedRecord { file: path, offset: pos as u64, seq: r.seq, payload: r.payload });
                n += 1;
                prev = r.seq;
                last_seq = Some(r.seq);
                pos += r.encoded_len;
            }
            _ => break,
        }
    }
    (n, last_seq)
}
