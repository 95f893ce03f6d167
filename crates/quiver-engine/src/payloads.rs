//! The payloads of a segment's rows: on the heap (the growing segment; sealed files written before payloads were
//! read in place), or read in place from a sealed segment's memory-mapped file, one row at a time, so a sealed
//! segment's payloads cost the heap nothing but its payload indexes.
//!
//! A sealed segment stores its payloads in two uncompressed Payload blocks: tag 1 the rows' payloads as JSON, back
//! to back; tag 2 `rows + 1` offsets into it (u64 LE; row `r` is bytes `offsets[r]..offsets[r + 1]`). Reading a row
//! parses one small JSON object (about a microsecond for a few hundred bytes), so a search that returns payloads
//! touches only its hits. Opening the segment checks both blocks' checksums and parses every payload once, in
//! order, to build the payload indexes (a payload that does not parse fails the open).

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::payload::Payload;

/// Payload block tag of the payloads' JSON bytes.
pub const DATA_TAG: u32 = 1;
/// Payload block tag of the row offsets.
pub const OFFSETS_TAG: u32 = 2;

/// A payload of a segment: borrowed from the heap, or parsed from the segment's file.
#[derive(Debug)]
pub enum PayloadRef<'a> {
    /// On the heap.
    Borrowed(&'a Payload),
    /// Parsed from the file for this read.
    Owned(Payload),
}

impl PayloadRef<'_> {
    /// The payload, owned: a heap payload is cloned, one parsed from the file is moved out.
    pub fn into_owned(self) -> Payload {
        match self {
            PayloadRef::Borrowed(p) => p.clone(),
            PayloadRef::Owned(p) => p,
        }
    }
}

impl Deref for PayloadRef<'_> {
    type Target = Payload;

    fn deref(&self) -> &Payload {
        match self {
            PayloadRef::Borrowed(p) => p,
            PayloadRef::Owned(p) => p,
        }
    }
}

/// Estimated heap bytes of one payload (a map of JSON values).
pub(crate) fn heap_guess(p: &Payload) -> u64 {
    32 + p.len() as u64 * 48
}

/// A segment's payloads (see the module docs).
#[derive(Debug)]
pub(crate) enum Payloads {
    Heap(Vec<Payload>),
    File(FilePayloads),
}

impl Default for Payloads {
    fn default() -> Self {
        Payloads::Heap(Vec::new())
    }
}

/// Payloads read in place from a sealed segment's file.
#[derive(Debug)]
pub(crate) struct FilePayloads {
    segment: Arc<quiver_storage::Segment>,
    data: usize,
    offsets: usize,
    rows: u32,
    /// Sum of [`heap_guess`] over every payload (what they would cost on the heap).
    total_guess: u64,
}

fn offset_at(offsets: &[u8], row: usize) -> Option<usize> {
    let b = offsets.get(row * 8..row * 8 + 8)?;
    usize::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()
}

impl FilePayloads {
    /// The payloads of `segment`'s blocks `data` and `offsets` for `rows` rows: checks both blocks' checksums and
    /// the offsets, then calls `each(row, payload)` for every row in order (parsing each payload once), then lets
    /// the blocks' pages leave the resident set.
    pub fn open(
        segment: Arc<quiver_storage::Segment>,
        data: usize,
        offsets: usize,
        rows: u32,
        path: &Path,
        mut each: impl FnMut(u32, &Payload),
    ) -> Result<FilePayloads> {
        let bytes = segment.stored_bytes(data)?;
        let offs = segment.stored_bytes(offsets)?;
        let corrupt = |block: usize, detail: String| Error::Corrupt {
            file: path.to_owned(),
            offset: segment.blocks()[block].offset,
            detail,
        };
        if offs.len() != (rows as usize + 1) * 8 {
            return Err(corrupt(offsets, format!("{} offset bytes for {rows} rows", offs.len())));
        }
        let mut total_guess = 0;
        let mut start = 0;
        for row in 0..rows {
            let end = offset_at(offs, row as usize + 1).unwrap_or(usize::MAX);
            let json = bytes
                .get(start..end)
                .ok_or_else(|| corrupt(offsets, format!("row {row}: payload bytes {start}..{end} out of range")))?;
            let p: Payload = serde_json::from_slice(json)
                .map_err(|e| corrupt(data, format!("row {row}: payload does not parse: {e}")))?;
            total_guess += heap_guess(&p);
            each(row, &p);
            start = end;
        }
        if start != bytes.len() || offset_at(offs, 0) != Some(0) {
            return Err(corrupt(offsets, "offsets do not cover the payload bytes".into()));
        }
        segment.verify_and_release(data)?;
        segment.verify_and_release(offsets)?;
        Ok(FilePayloads { segment, data, offsets, rows, total_guess })
    }

    fn get(&self, row: u32) -> Option<Payload> {
        if row >= self.rows {
            return None;
        }
        // Both blocks were checked at open (checksums, offsets, every payload parsed), so nothing below fails on
        // the file's bytes; a row that could not be read would read as having no payload.
        let offs = self.segment.stored_bytes(self.offsets).ok()?;
        let (start, end) = (offset_at(offs, row as usize)?, offset_at(offs, row as usize + 1)?);
        let bytes = self.segment.stored_bytes(self.data).ok()?;
        serde_json::from_slice(bytes.get(start..end)?).ok()
    }
}

impl Payloads {
    /// The payload of `row`, if the segment has that row.
    pub fn get(&self, row: u32) -> Option<PayloadRef<'_>> {
        match self {
            Payloads::Heap(v) => v.get(row as usize).map(PayloadRef::Borrowed),
            Payloads::File(f) => f.get(row).map(PayloadRef::Owned),
        }
    }

    /// Appends a payload (heap payloads only: sealed segments never grow).
    pub fn push(&mut self, p: Payload) {
        match self {
            Payloads::Heap(v) => v.push(p),
            Payloads::File(_) => debug_assert!(false, "a sealed segment's payloads never grow"),
        }
    }

    /// Heap bytes held (estimated): 0 for payloads read from the file.
    pub fn heap_bytes(&self) -> u64 {
        match self {
            Payloads::Heap(v) => v.iter().map(heap_guess).sum(),
            Payloads::File(_) => 0,
        }
    }

    /// What every payload would cost on the heap (the memory estimate's per-payload average comes from it).
    pub fn total_guess(&self) -> u64 {
        match self {
            Payloads::Heap(v) => v.iter().map(heap_guess).sum(),
            Payloads::File(f) => f.total_guess,
        }
    }
}

/// Payloads being written: JSON bytes and row offsets (see the module docs).
#[derive(Debug)]
pub(crate) struct PayloadWriter {
    data: Vec<u8>,
    offsets: Vec<u8>,
}

impl Default for PayloadWriter {
    fn default() -> Self {
        PayloadWriter { data: Vec::new(), offsets: 0u64.to_le_bytes().to_vec() }
    }
}

impl PayloadWriter {
    pub fn push(&mut self, p: &Payload) -> Result<()> {
        serde_json::to_writer(&mut self.data, p)
            .map_err(|e| Error::invalid("payload", "a JSON object", format!("one that does not serialise: {e}")))?;
        self.offsets.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        Ok(())
    }

    /// The data and offsets blocks' bytes.
    pub fn into_blocks(self) -> (Vec<u8>, Vec<u8>) {
        (self.data, self.offsets)
    }
}
