//! The envelope every serialised index shares, and bounds-checked little-endian readers and writers.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "QVIX"
//! 4       2     format version (u16 LE) of the payload layout of this kind
//! 6       1     index kind tag (u8)
//! 7       1     flags, 0
//! 8       8     payload length in bytes (u64 LE)
//! 16      n     payload (kind-specific, see docs/format.md)
//! 16+n    4     CRC32C of bytes 0..16+n (u32 LE)
//! ```
//! Decoding checks, in order: length of the envelope, magic, kind, version, payload length, checksum — then the
//! payload with every read bounds-checked, so altered bytes give an error naming the offset, never a panic.

use crate::error::{Error, Result};

pub(crate) const MAGIC: [u8; 4] = *b"QVIX";
pub(crate) const HEADER_LEN: usize = 16;

/// Builds one envelope.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(kind_tag: u8, version: u16, payload_hint: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN + payload_hint + 4);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&version.to_le_bytes());
        buf.push(kind_tag);
        buf.push(0);
        buf.extend_from_slice(&0u64.to_le_bytes());
        Self { buf }
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64s(&mut self, vs: &[u64]) {
        vs.iter().for_each(|v| self.u64(*v));
    }
    pub(crate) fn f32s(&mut self, vs: &[f32]) {
        vs.iter().for_each(|v| self.buf.extend_from_slice(&v.to_le_bytes()));
    }
    pub(crate) fn u32s(&mut self, vs: impl Iterator<Item = u32>) {
        vs.for_each(|v| self.u32(v));
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let payload_len = (self.buf.len() - HEADER_LEN) as u64;
        self.buf[8..16].copy_from_slice(&payload_len.to_le_bytes());
        let crc = crc32c::crc32c(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// Reads the kind tag of an envelope after checking magic, length and checksum.
pub(crate) fn peek_kind(bytes: &[u8], what: &'static str) -> Result<u8> {
    check_envelope(bytes, what)?;
    Ok(bytes[6])
}

fn corrupt(what: &'static str, offset: usize, detail: impl Into<String>) -> Error {
    Error::Corrupt { what, offset: offset as u64, detail: detail.into() }
}

fn check_envelope(bytes: &[u8], what: &'static str) -> Result<usize> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err(corrupt(what, bytes.len(), format!("{} bytes is shorter than the envelope", bytes.len())));
    }
    if bytes[0..4] != MAGIC {
        return Err(corrupt(what, 0, "bad magic (not a QuiverDB index)"));
    }
    let payload_len = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
    let expected = (HEADER_LEN as u64).saturating_add(payload_len).saturating_add(4);
    if expected != bytes.len() as u64 {
        return Err(corrupt(what, 8, format!("payload length {payload_len} does not match {} bytes", bytes.len())));
    }
    let body = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[body..].try_into().unwrap_or_default());
    let computed = crc32c::crc32c(&bytes[..body]);
    if stored != computed {
        return Err(Error::ChecksumMismatch { what, stored, computed });
    }
    Ok(body)
}

/// Reads one envelope's payload.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Checks the envelope (including that it holds kind `kind_tag` at version `version`) and positions at
    /// the payload.
    pub(crate) fn open(bytes: &'a [u8], what: &'static str, kind_tag: u8, version: u16) -> Result<Self> {
        Self::open_versions(bytes, what, kind_tag, version..=version).map(|(r, _)| r)
    }

    /// Like [`Reader::open`] for a kind whose readers understand every version in `versions`; returns the
    /// version found.
    pub(crate) fn open_versions(
        bytes: &'a [u8],
        what: &'static str,
        kind_tag: u8,
        versions: std::ops::RangeInclusive<u16>,
    ) -> Result<(Self, u16)> {
        let end = check_envelope(bytes, what)?;
        if bytes[6] != kind_tag {
            return Err(corrupt(what, 6, format!("kind tag {} where {kind_tag} was expected", bytes[6])));
        }
        let got = u16::from_le_bytes([bytes[4], bytes[5]]);
        if !versions.contains(&got) {
            return Err(Error::UnsupportedVersion { what, got, supported: *versions.end() });
        }
        Ok((Self { bytes, pos: HEADER_LEN, end, what }, got))
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    pub(crate) fn corrupt(&self, offset: usize, detail: impl Into<String>) -> Error {
        corrupt(self.what, offset, detail)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.pos.checked_add(n) {
            Some(stop) if stop <= self.end => {
                let s = &self.bytes[self.pos..stop];
                self.pos = stop;
                Ok(s)
            }
            _ => Err(self.corrupt(self.pos, format!("needs {n} more bytes, payload has {}", self.end - self.pos))),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// `n` u64 values; `n` is checked against the bytes left before anything is allocated.
    pub(crate) fn u64s(&mut self, n: usize) -> Result<Vec<u64>> {
        let b = self.take(n.checked_mul(8).ok_or_else(|| self.corrupt(self.pos, "count overflows"))?)?;
        Ok(b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())).collect())
    }
    /// `n` raw bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        self.take(n)
    }
    /// `n` u32 values; `n` is checked against the bytes left before anything is allocated.
    pub(crate) fn u32s(&mut self, n: usize) -> Result<Vec<u32>> {
        let b = self.take(n.checked_mul(4).ok_or_else(|| self.corrupt(self.pos, "count overflows"))?)?;
        Ok(b.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default())).collect())
    }
    /// `n` f32 values; `n` is checked against the bytes left before anything is allocated.
    pub(crate) fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let b = self.take(n.checked_mul(4).ok_or_else(|| self.corrupt(self.pos, "count overflows"))?)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default())).collect())
    }
    /// Errors unless the whole payload was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.pos == self.end {
            Ok(())
        } else {
            Err(self.corrupt(self.pos, format!("{} trailing bytes after the payload", self.end - self.pos)))
        }
    }
}
